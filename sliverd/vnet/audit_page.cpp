#include "sliverd/vnet/audit_page.h"

#include <arpa/inet.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "base/strings.h"

namespace plng::sliverd {

namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr std::string_view kHtml = "text/html; charset=utf-8";
constexpr std::string_view kJson = "application/json";

// --- requests -----------------------------------------------------------------------------

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A URL component with %XX and (in a query) '+' decoded; nullopt when malformed.
std::optional<std::string> percentDecode(std::string_view text, bool query) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int high = hexDigit(text[i + 1]);
      int low = hexDigit(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      out += query && c == '+' ? ' ' : c;
    }
  }
  return out;
}

// The value of `name` in a query string ("a=1&dst=x"): nullopt when absent,
// "malformed" set when it does not decode.
struct QueryValue {
  std::string value;
  bool malformed = false;
};
std::optional<QueryValue> queryValue(std::string_view query, std::string_view name) {
  for (const std::string& pair : base::split(query, '&')) {
    auto equals = pair.find('=');
    if (pair.substr(0, equals) != name) continue;
    auto decoded = percentDecode(equals == std::string::npos ? "" : pair.substr(equals + 1), true);
    return decoded ? QueryValue{*decoded} : QueryValue{{}, true};
  }
  return std::nullopt;
}

// The address in canonical text ("::ffff:1.2.3.4" stays as it is); nullopt
// when `text` is not an IPv4 or IPv6 address.
std::optional<std::string> canonicalAddress(std::string_view text) {
  std::string trimmed(base::trim(text));
  unsigned char bytes[16];
  char out[INET6_ADDRSTRLEN] = {};
  if (inet_pton(AF_INET, trimmed.c_str(), bytes) == 1)
    return inet_ntop(AF_INET, bytes, out, sizeof(out));
  if (inet_pton(AF_INET6, trimmed.c_str(), bytes) == 1)
    return inet_ntop(AF_INET6, bytes, out, sizeof(out));
  return std::nullopt;
}

bool isIcmp(std::uint32_t protocol) { return protocol == 1 || protocol == 58; }

// The destination side of a row: a port, or ICMP's type and code.
std::string destinationPort(const FlowRecord& r) {
  if (!isIcmp(r.protocol)) return std::to_string(r.dst_port);
  return "type " + std::to_string(r.dst_port >> 8) + " code " + std::to_string(r.dst_port & 0xff);
}

// The source side: a port, or an echo's id.
std::string sourcePort(const FlowRecord& r) {
  if (!isIcmp(r.protocol)) return std::to_string(r.src_port);
  return r.src_port ? "echo id " + std::to_string(r.src_port) : "";
}

std::string plcctlCommand(const std::string& dst) { return "plcctl audit --dst " + dst; }

// --- JSON ---------------------------------------------------------------------------------

Value text(std::string_view s) {
  Value v;
  v.set_string_value(std::string(s));
  return v;
}
Value number(double n) {
  Value v;
  v.set_number_value(n);
  return v;
}

Value flowJson(const FlowSummary& summary) {
  const FlowRecord& r = summary.total;
  Value v;
  auto& f = *v.mutable_struct_value()->mutable_fields();
  f["slice"] = text(r.slice);
  f["protocol"] = text(protocolName(r.protocol));
  f["src"] = text(r.src);
  f["dst"] = text(r.dst);
  if (isIcmp(r.protocol)) {
    f["icmp_type"] = number(r.dst_port >> 8);
    f["icmp_code"] = number(r.dst_port & 0xff);
    if (r.src_port) f["echo_id"] = number(r.src_port);
  } else {
    f["src_port"] = number(r.src_port);
    f["dst_port"] = number(r.dst_port);
  }
  if (r.protocol == 6) f["tcp_flags"] = text(tcpFlagNames(r.tcp_flags));
  f["packets"] = number(static_cast<double>(r.packets));
  f["bytes"] = number(static_cast<double>(r.bytes));
  f["first_seen"] = text(formatUnixNs(r.first_seen_ns));
  f["last_seen"] = text(formatUnixNs(r.last_seen_ns));
  f["refused"] = text(r.refused);
  return v;
}

Value aboutJson(const SliceAbout& about) {
  Value v;
  auto& f = *v.mutable_struct_value()->mutable_fields();
  f["description"] = text(about.description);
  f["url"] = text(about.url);
  ListValue contacts;
  for (const SliceContact& contact : about.contacts) {
    Value c;
    auto& cf = *c.mutable_struct_value()->mutable_fields();
    cf["name"] = text(contact.name);
    cf["email"] = text(contact.email);
    cf["role"] = text(contact.role);
    *contacts.add_values() = c;
  }
  *f["contacts"].mutable_list_value() = contacts;
  return v;
}

std::string toJson(const Struct& document) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(document, &json, options);
  return json;
}

// --- HTML ---------------------------------------------------------------------------------

class Html {
 public:
  Html(std::string_view title) {
    out_ += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>";
    out_ += escapeHtml(title);
    out_ += "</title></head>\n<body>\n<h1>";
    out_ += escapeHtml(title);
    out_ += "</h1>\n";
  }
  Html& raw(std::string_view html) {
    out_ += html;
    return *this;
  }
  Html& text(std::string_view plain) {
    out_ += escapeHtml(plain);
    return *this;
  }
  Html& element(std::string_view tag, std::string_view plain) {
    out_ += "<";
    out_ += tag;
    out_ += ">";
    text(plain);
    out_ += "</";
    out_ += tag;
    out_ += ">";
    return *this;
  }
  std::string finish() { return out_ + "</body></html>\n"; }

 private:
  std::string out_;
};

void lookupForm(Html& html, const std::string& value) {
  html.raw(
          "<form method=\"get\" action=\"/\"><label>Destination address: <input name=\"dst\" "
          "size=\"40\" required value=\"")
      .text(value)
      .raw("\"></label> <button type=\"submit\">Who sent this?</button></form>\n");
}

// A link only for http(s) addresses; anything else is shown as text.
void link(Html& html, const std::string& url) {
  if (url.starts_with("http://") || url.starts_with("https://"))
    html.raw("<a href=\"").text(url).raw("\" rel=\"noreferrer nofollow\">").text(url).raw("</a>");
  else
    html.text(url);
}

void aboutHtml(Html& html, const std::string& slice, const SliceAbout& about) {
  html.raw("<h3 id=\"slice-").text(slice).raw("\"><a href=\"/slice/").text(slice).raw("\">");
  html.text(slice).raw("</a></h3>\n<p class=\"description\">");
  html.text(about.description.empty() ? "(no description)" : about.description).raw("</p>\n");
  if (!about.url.empty()) {
    html.raw("<p>URL: ");
    link(html, about.url);
    html.raw("</p>\n");
  }
  html.raw("<p>Contacts: ");
  if (about.contacts.empty()) html.text("(none known to this node)");
  bool first = true;
  for (const SliceContact& contact : about.contacts) {
    if (!first) html.text("; ");
    first = false;
    html.text(contact.name.empty() ? contact.email : contact.name);
    if (!contact.email.empty())
      html.raw(" &lt;<a href=\"mailto:")
          .text(contact.email)
          .raw("\">")
          .text(contact.email)
          .raw("</a>&gt;");
    if (!contact.role.empty()) html.text(" (" + contact.role + ")");
  }
  html.raw("</p>\n");
}

void flowTable(Html& html, const std::vector<FlowSummary>& rows, bool by_destination) {
  html.raw("<table id=\"flows\" border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\n<tr>");
  for (std::string_view heading : {by_destination ? "Destination" : "Slice", "Protocol", "Source",
                                   "Source port", "Destination port / ICMP", "TCP flags", "Packets",
                                   "Bytes", "First seen (UTC)", "Last seen (UTC)", "Refused"})
    html.element("th", heading);
  html.raw("</tr>\n");
  for (const FlowSummary& row : rows) {
    const FlowRecord& r = row.total;
    html.raw("<tr class=\"flow\">");
    html.element("td", by_destination ? r.dst : r.slice);
    html.element("td", protocolName(r.protocol));
    html.element("td", r.src);
    html.element("td", sourcePort(r));
    html.element("td", destinationPort(r));
    html.element("td", r.protocol == 6 ? tcpFlagNames(r.tcp_flags) : "");
    html.element("td", std::to_string(r.packets));
    html.element("td", std::to_string(r.bytes));
    html.element("td", formatUnixNs(r.first_seen_ns).substr(0, 19));
    html.element("td", formatUnixNs(r.last_seen_ns).substr(0, 19));
    html.element("td", r.refused.empty() ? "" : "refused: " + r.refused);
    html.raw("</tr>\n");
  }
  html.raw("</table>\n");
}

}  // namespace

std::string escapeHtml(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::vector<FlowSummary> summarize(const std::vector<FlowRecord>& records) {
  using Key = std::tuple<std::string, std::uint32_t, std::string, std::uint32_t, std::string,
                         std::uint32_t, std::string>;
  std::map<Key, FlowSummary> rows;
  for (const FlowRecord& r : records) {
    Key key{r.slice, r.protocol, r.src, r.src_port, r.dst, r.dst_port, r.refused};
    auto [it, fresh] = rows.try_emplace(key, FlowSummary{r, 1});
    if (fresh) continue;
    FlowRecord& total = it->second.total;
    total.packets += r.packets;
    total.bytes += r.bytes;
    total.tcp_flags |= r.tcp_flags;
    total.first_seen_ns = std::min(total.first_seen_ns, r.first_seen_ns);
    total.last_seen_ns = std::max(total.last_seen_ns, r.last_seen_ns);
    ++it->second.records;
  }
  std::vector<FlowSummary> out;
  for (auto& [key, summary] : rows) out.push_back(std::move(summary));
  // The busiest first.
  std::stable_sort(out.begin(), out.end(), [](const FlowSummary& a, const FlowSummary& b) {
    return a.total.bytes > b.total.bytes;
  });
  return out;
}

AuditPages::AuditPages(const FlowFiles& files, std::function<SliceAbout(const std::string&)> about,
                       const FlowClock& clock, Options options)
    : files_(files), about_(std::move(about)), clock_(clock), options_(std::move(options)) {}

std::vector<FlowRecord> AuditPages::lastWindow() const {
  const std::int64_t now = clock_.unixNs();
  return files_.read(now - std::chrono::nanoseconds(options_.window).count(), now);
}

AuditPages::Response AuditPages::get(std::string_view target) const {
  auto question = target.find('?');
  std::string_view path = target.substr(0, question);
  std::string_view query = question == std::string_view::npos ? "" : target.substr(question + 1);
  auto decoded = percentDecode(path, false);
  if (!decoded)
    return {400, std::string(kHtml), Html("Bad request").text("Malformed URL.").finish()};
  const std::string& p = *decoded;
  if (p == "/" || p == "/api/flows") {
    const bool json = p == "/api/flows";
    auto dst = queryValue(query, "dst");
    if (!dst && !json) return formPage();
    if (dst && dst->malformed)
      return {400, std::string(kHtml), Html("Bad request").text("Malformed query.").finish()};
    return destinationPage(dst ? dst->value : "", json);
  }
  for (auto [prefix, json] : {std::pair{std::string_view("/slice/"), false},
                              std::pair{std::string_view("/api/slices/"), true}}) {
    if (p.starts_with(prefix) && p.size() > prefix.size())
      return slicePage(p.substr(prefix.size()), json);
  }
  return {404, std::string(kHtml),
          Html("Not found").raw("<p><a href=\"/\">Who sent this?</a></p>\n").finish()};
}

AuditPages::Response AuditPages::formPage() const {
  Html html("Who sent this? PlanetLab node " + options_.hostname);
  html.raw("<p>")
      .text(
          "This machine is a PlanetLab node: research slices run here and send traffic from "
          "its address. Type the destination address that received traffic from this node "
          "to see which slices sent it in the last hour, and whom to contact.")
      .raw("</p>\n");
  lookupForm(html, "");
  return {200, std::string(kHtml), html.finish()};
}

AuditPages::Response AuditPages::destinationPage(const std::string& dst, bool json) const {
  auto address = canonicalAddress(dst);
  if (!address) {
    std::string why = "not an IPv4 or IPv6 address: " + dst;
    if (json) {
      Struct error;
      (*error.mutable_fields())["error"] = text(why);
      return {400, std::string(kJson), toJson(error)};
    }
    Html html("Who sent this? PlanetLab node " + options_.hostname);
    html.element("p", why);
    lookupForm(html, dst);
    return {400, std::string(kHtml), html.finish()};
  }
  std::vector<FlowRecord> matching;
  for (FlowRecord& r : lastWindow())
    if (canonicalAddress(r.dst) == address) matching.push_back(std::move(r));
  std::vector<FlowSummary> rows = summarize(matching);
  std::set<std::string> slices;
  for (const FlowSummary& row : rows) slices.insert(row.total.slice);
  const std::int64_t now = clock_.unixNs();
  const std::int64_t since = now - std::chrono::nanoseconds(options_.window).count();

  if (json) {
    Struct doc;
    auto& f = *doc.mutable_fields();
    f["node"] = text(options_.hostname);
    f["dst"] = text(*address);
    f["since"] = text(formatUnixNs(since));
    f["until"] = text(formatUnixNs(now));
    ListValue flows;
    for (const FlowSummary& row : rows) *flows.add_values() = flowJson(row);
    *f["flows"].mutable_list_value() = flows;
    Value about;
    for (const std::string& slice : slices)
      (*about.mutable_struct_value()->mutable_fields())[slice] = aboutJson(about_(slice));
    if (!about.has_struct_value()) about.mutable_struct_value();
    f["slices"] = about;
    f["older"] = text(plcctlCommand(*address));
    f["plc_url"] = text(options_.plc_url);
    return {200, std::string(kJson), toJson(doc)};
  }

  Html html("Who sent this? PlanetLab node " + options_.hostname);
  lookupForm(html, *address);
  html.raw("<h2>").text("Traffic to " + *address + " in the last hour").raw("</h2>\n");
  html.element("p", "From " + formatUnixNs(since).substr(0, 19) + " to " +
                        formatUnixNs(now).substr(0, 19) + " UTC.");
  if (rows.empty())
    html.raw("<p id=\"none\">")
        .text("No slice on this node sent anything to " + *address + " in the last hour.")
        .raw("</p>\n");
  else
    flowTable(html, rows, /*by_destination=*/false);
  if (!slices.empty()) html.raw("<h2>Slices</h2>\n");
  for (const std::string& slice : slices) aboutHtml(html, slice, about_(slice));
  html.raw("<h2>Older traffic</h2>\n<p>").text("PLC keeps every node's records: run ");
  html.raw("<code>").text(plcctlCommand(*address)).raw("</code>");
  if (!options_.plc_url.empty()) {
    html.text(" or see ");
    link(html, options_.plc_url);
  }
  html.raw(".</p>\n");
  return {200, std::string(kHtml), html.finish()};
}

AuditPages::Response AuditPages::slicePage(const std::string& slice, bool json) const {
  std::vector<FlowRecord> matching;
  for (FlowRecord& r : lastWindow())
    if (r.slice == slice) matching.push_back(std::move(r));
  std::vector<FlowSummary> rows = summarize(matching);
  std::uint64_t packets = 0, bytes = 0, refused = 0;
  std::set<std::string> destinations;
  for (const FlowSummary& row : rows) {
    packets += row.total.packets;
    bytes += row.total.bytes;
    if (!row.total.refused.empty()) refused += row.total.packets;
    destinations.insert(row.total.dst);
  }
  const SliceAbout about = about_(slice);
  if (json) {
    Struct doc;
    auto& f = *doc.mutable_fields();
    f["node"] = text(options_.hostname);
    f["slice"] = text(slice);
    f["about"] = aboutJson(about);
    f["packets"] = number(static_cast<double>(packets));
    f["bytes"] = number(static_cast<double>(bytes));
    f["refused_packets"] = number(static_cast<double>(refused));
    f["destinations"] = number(static_cast<double>(destinations.size()));
    ListValue flows;
    for (const FlowSummary& row : rows) *flows.add_values() = flowJson(row);
    *f["flows"].mutable_list_value() = flows;
    return {200, std::string(kJson), toJson(doc)};
  }
  Html html("Slice " + slice + " on PlanetLab node " + options_.hostname);
  aboutHtml(html, slice, about);
  html.raw("<h2>Last hour</h2>\n<p id=\"totals\">")
      .text(std::to_string(packets) + " packets, " + std::to_string(bytes) + " bytes to " +
            std::to_string(destinations.size()) + " destinations; " + std::to_string(refused) +
            " packets refused by the node's policy.")
      .raw("</p>\n");
  flowTable(html, rows, /*by_destination=*/true);
  html.raw("<p><a href=\"/\">Who sent this?</a></p>\n");
  return {200, std::string(kHtml), html.finish()};
}

}  // namespace plng::sliverd
