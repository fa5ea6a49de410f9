#include "proto/port_spec.h"

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "base/strings.h"

namespace plng::proto {

namespace {

constexpr const char* kExample = "e.g. tcp:80 or udp:6000-6010";

// An item as a message quotes it: it comes from a user, so it is cut short
// (about 40 bytes shown) and anything but printable ASCII is written as \xNN.
std::string quoted(std::string_view item) {
  constexpr std::size_t kMaxShown = 40;
  std::string out = "\"";
  std::size_t i = 0;
  for (; i < item.size() && out.size() <= kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(item[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    }
  }
  if (i < item.size()) out += "...";
  return out + "\"";
}

[[noreturn]] void refuse(std::size_t index, std::string_view item, const std::string& why) {
  throw PortSpecError("item " + std::to_string(index) + " " + quoted(item) + ": " + why);
}

// "tcp" or "udp", in any case (ABNF's quoted strings are case-insensitive).
bool parseTransport(std::string_view text, Transport& transport) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  if (lower == "tcp") {
    transport = Transport::kTcp;
  } else if (lower == "udp") {
    transport = Transport::kUdp;
  } else {
    return false;
  }
  return true;
}

// 1 to 5 decimal digits (leading zeros allowed: "080" is 80) naming 1..65535.
std::uint16_t parsePort(std::size_t index, std::string_view item, std::string_view text) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    refuse(index, item,
           quoted(text) + " is not a port number (1 to 5 decimal digits, 1-65535); " + kExample);
  }
  unsigned value = 0;
  for (char c : text) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value < 1 || value > 65535) {
    refuse(index, item, "port " + std::to_string(value) + " is out of range: ports are 1-65535");
  }
  return static_cast<std::uint16_t>(value);
}

PortRange parseItem(std::size_t index, std::string_view item) {
  const auto colon = item.find(':');
  if (colon == std::string_view::npos) {
    refuse(index, item, std::string("expected <tcp|udp>:<port>[-<port>], ") + kExample);
  }
  PortRange range;
  if (!parseTransport(item.substr(0, colon), range.transport)) {
    refuse(index, item, quoted(item.substr(0, colon)) + " is not a protocol: tcp or udp");
  }
  const auto ports = item.substr(colon + 1);
  const auto dash = ports.find('-');
  range.first = parsePort(index, item, ports.substr(0, dash));
  range.last =
      dash == std::string_view::npos ? range.first : parsePort(index, item, ports.substr(dash + 1));
  if (range.first > range.last) {
    refuse(index, item,
           "a range names its lower port first (" + std::string(transportName(range.transport)) +
               ":" + std::to_string(range.last) + "-" + std::to_string(range.first) + ")");
  }
  return range;
}

}  // namespace

std::vector<PortRange> canonicalPortRanges(std::vector<PortRange> ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const PortRange& a, const PortRange& b) {
    return std::tuple(a.transport, a.first, a.last) < std::tuple(b.transport, b.first, b.last);
  });
  std::vector<PortRange> merged;
  for (const auto& range : ranges) {
    if (!merged.empty() && merged.back().transport == range.transport &&
        static_cast<unsigned>(range.first) <= static_cast<unsigned>(merged.back().last) + 1) {
      merged.back().last = std::max(merged.back().last, range.last);
    } else {
      merged.push_back(range);
    }
  }
  return merged;
}

std::string_view transportName(Transport transport) {
  return transport == Transport::kTcp ? "tcp" : "udp";
}

bool PortRange::overlaps(const PortRange& other) const {
  return transport == other.transport && first <= other.last && other.first <= last;
}

bool PortRange::contains(Transport t, std::uint16_t port) const {
  return transport == t && first <= port && port <= last;
}

std::vector<PortRange> parsePortSpec(std::string_view value) {
  std::vector<PortRange> ranges;
  if (base::trim(value).empty()) return ranges;
  std::size_t index = 0;
  for (const auto& part : base::split(value, ',')) {
    ++index;
    const auto item = base::trim(part);
    if (item.empty()) {
      throw PortSpecError("item " + std::to_string(index) +
                          " is empty: separate items with single commas, e.g. tcp:80,udp:53");
    }
    ranges.push_back(parseItem(index, item));
  }
  return canonicalPortRanges(std::move(ranges));
}

std::string formatPortSpec(std::vector<PortRange> ranges) {
  std::string out;
  for (const auto& range : canonicalPortRanges(std::move(ranges))) {
    if (!out.empty()) out += ',';
    out += transportName(range.transport);
    out += ':' + std::to_string(range.first);
    if (range.last != range.first) out += '-' + std::to_string(range.last);
  }
  return out;
}

std::string firstCollision(const std::vector<PortRange>& a, const std::vector<PortRange>& b) {
  // Both canonical: sorted, disjoint; walk them side by side, advancing the
  // range that ends first, so the first overlap found is the lowest port.
  const auto left = canonicalPortRanges(a);
  const auto right = canonicalPortRanges(b);
  auto key = [](const PortRange& r, std::uint16_t port) { return std::pair(r.transport, port); };
  std::size_t i = 0, j = 0;
  while (i < left.size() && j < right.size()) {
    const auto& x = left[i];
    const auto& y = right[j];
    if (x.overlaps(y)) {
      return std::string(transportName(x.transport)) + ":" +
             std::to_string(std::max(x.first, y.first));
    }
    if (key(x, x.last) < key(y, y.last)) {
      ++i;
    } else {
      ++j;
    }
  }
  return {};
}

}  // namespace plng::proto
