#include "cli/views.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <vector>

#include "base/strings.h"
#include "cli/values.h"
#include "proto/ticket.h"

namespace plcctl {

namespace {

std::string count(int n) { return std::to_string(n); }

template <class Map>
std::string tagsText(const Map& tags, std::string_view separator, std::string_view assign) {
  // Proto maps iterate in no particular order; people expect a stable one.
  std::map<std::string, std::string> sorted;
  for (const auto& entry : tags) sorted.emplace(entry.first, entry.second);
  std::string text;
  for (const auto& [name, value] : sorted) {
    if (!text.empty()) text += separator;
    text += name + std::string(assign) + value;
  }
  return text.empty() ? "-" : text;
}

std::string status(bool enabled, std::int64_t deleted_at) {
  if (deleted_at != 0) return "deleted";
  return enabled ? "enabled" : "disabled";
}

template <class Grants>
std::string rolesText(const Grants& grants, std::string_view separator) {
  std::vector<std::string> roles;
  for (const auto& grant : grants) roles.push_back(roleText(grant));
  return joinOrDash(roles, separator);
}

std::string keyLine(const v1::Key& key) {
  return key.key_type() + " " + key.fingerprint() + " (id " + std::to_string(key.key_id()) + ")";
}

std::string sshKeysText(const google::protobuf::RepeatedPtrField<v1::SshKey>& keys) {
  std::vector<std::string> lines;
  for (const v1::SshKey& key : keys) {
    const std::string_view text = key.key();
    lines.push_back(key.person_email() + ": " + std::string(text.substr(0, text.find(' '))));
  }
  return joinOrDash(lines, "\n");
}

}  // namespace

std::string roleText(const v1::RoleGrant& grant) {
  return grant.login_base().empty() ? grant.role() : grant.role() + "@" + grant.login_base();
}

std::string nodeKeyId(std::string_view raw_public_key) {
  if (raw_public_key.empty()) return "-";
  try {
    return plng::ticket::keyIdOf(plng::ticket::publicKeyFromBytes(raw_public_key));
  } catch (const std::invalid_argument&) {
    return "invalid (" + std::to_string(raw_public_key.size()) + " bytes)";
  }
}

View<v1::Site> siteView() {
  using S = v1::Site;
  return {
      "sites",
      {
          {"site_id", [](const S& s) { return std::to_string(s.site_id()); }, Shown::kDetailOnly},
          {"login_base", [](const S& s) { return s.login_base(); }},
          {"name", [](const S& s) { return s.name(); }},
          {"url", [](const S& s) { return orDash(s.url()); }, Shown::kDetailOnly},
          {"status",
           [](const S& s) { return s.pending() ? "pending" : status(s.enabled(), s.deleted_at()); },
           Shown::kListOnly},
          {"enabled", [](const S& s) { return yesNo(s.enabled()); }, Shown::kDetailOnly},
          {"pending", [](const S& s) { return yesNo(s.pending()); }, Shown::kDetailOnly},
          {"requested_at", [](const S& s) { return formatTime(s.requested_at()); },
           Shown::kDetailOnly},
          {"tech_contact",
           [](const S& s) {
             if (s.tech_contact_email().empty()) return orDash(s.tech_contact_name());
             return s.tech_contact_name() + " <" + s.tech_contact_email() + ">";
           },
           Shown::kDetailOnly},
          {"max_slices", [](const S& s) { return std::to_string(s.max_slices()); }},
          {"max_slivers", [](const S& s) { return std::to_string(s.max_slivers()); }},
          {"organizations", [](const S& s) { return joinOrDash(s.organizations(), ", "); },
           Shown::kDetailOnly},
          {"created_at", [](const S& s) { return formatTime(s.created_at()); }},
          {"deleted_at", [](const S& s) { return formatTime(s.deleted_at()); }, Shown::kDetailOnly},
      }};
}

View<v1::Organization> organizationView() {
  using O = v1::Organization;
  return {"organizations",
          {
              {"organization_id", [](const O& o) { return std::to_string(o.organization_id()); },
               Shown::kDetailOnly},
              {"name", [](const O& o) { return o.name(); }},
              {"sites", [](const O& o) { return joinOrDash(o.sites(), ","); }},
              {"description", [](const O& o) { return orDash(o.description()); }},
              {"created_at", [](const O& o) { return formatTime(o.created_at()); }},
          }};
}

View<v1::Person> personView() {
  using P = v1::Person;
  return {
      "persons",
      {
          {"person_id", [](const P& p) { return std::to_string(p.person_id()); },
           Shown::kDetailOnly},
          {"email", [](const P& p) { return p.email(); }},
          {"name", [](const P& p) { return p.first_name() + " " + p.last_name(); },
           Shown::kListOnly},
          {"first_name", [](const P& p) { return p.first_name(); }, Shown::kDetailOnly},
          {"last_name", [](const P& p) { return p.last_name(); }, Shown::kDetailOnly},
          {"status", [](const P& p) { return status(p.enabled(), p.deleted_at()); }},
          {"primary_site", [](const P& p) { return orDash(p.primary_site()); }, Shown::kDetailOnly},
          {"sites", [](const P& p) { return joinOrDash(p.sites(), ","); }},
          {"roles", [](const P& p) { return rolesText(p.roles(), ","); }},
          {"keys", [](const P& p) { return count(p.keys_size()); }, Shown::kListOnly},
          {"keys",
           [](const P& p) {
             std::vector<std::string> lines;
             for (const v1::Key& key : p.keys()) lines.push_back(keyLine(key));
             return joinOrDash(lines, "\n");
           },
           Shown::kDetailOnly},
          {"created_at", [](const P& p) { return formatTime(p.created_at()); }, Shown::kDetailOnly},
          {"deleted_at", [](const P& p) { return formatTime(p.deleted_at()); }, Shown::kDetailOnly},
      }};
}

View<v1::Key> keyView() {
  using K = v1::Key;
  return {"keys",
          {
              {"key_id", [](const K& k) { return std::to_string(k.key_id()); }},
              {"person_email", [](const K& k) { return k.person_email(); }},
              {"key_type", [](const K& k) { return k.key_type(); }},
              {"fingerprint", [](const K& k) { return k.fingerprint(); }},
              {"created_at", [](const K& k) { return formatTime(k.created_at()); }},
              {"key", [](const K& k) { return k.key(); }, Shown::kDetailOnly},
          }};
}

View<v1::Node> nodeView() {
  using N = v1::Node;
  const std::int64_t now = unixNow();
  return {
      "nodes",
      {
          {"node_id", [](const N& n) { return std::to_string(n.node_id()); }, Shown::kDetailOnly},
          {"hostname", [](const N& n) { return n.hostname(); }},
          {"site", [](const N& n) { return n.login_base(); }},
          {"boot_state",
           [](const N& n) { return n.deleted_at() != 0 ? "deleted" : orDash(n.boot_state()); }},
          {"key_id", [](const N& n) { return nodeKeyId(n.public_key()); }},
          {"public_key", [](const N& n) { return orDash(plng::base::toHex(n.public_key())); },
           Shown::kDetailOnly},
          {"last_contact", [](const N& n) { return formatTime(n.last_contact()); },
           Shown::kListOnly},
          {"last_contact", [now](const N& n) { return formatTimeFromNow(n.last_contact(), now); },
           Shown::kDetailOnly},
          {"slices", [](const N& n) { return count(n.slices_size()); }, Shown::kListOnly},
          {"slices", [](const N& n) { return joinOrDash(n.slices(), ", "); }, Shown::kDetailOnly},
          {"nodegroups", [](const N& n) { return joinOrDash(n.nodegroups(), ", "); },
           Shown::kDetailOnly},
          {"tags", [](const N& n) { return tagsText(n.tags(), "\n", " = "); }, Shown::kDetailOnly},
          {"created_at", [](const N& n) { return formatTime(n.created_at()); }, Shown::kDetailOnly},
          {"deleted_at", [](const N& n) { return formatTime(n.deleted_at()); }, Shown::kDetailOnly},
      }};
}

View<v1::NodeGroup> nodeGroupView() {
  using G = v1::NodeGroup;
  return {"node groups",
          {
              {"nodegroup_id", [](const G& g) { return std::to_string(g.nodegroup_id()); },
               Shown::kDetailOnly},
              {"name", [](const G& g) { return g.name(); }},
              {"tag", [](const G& g) { return g.tag(); }},
              {"value", [](const G& g) { return g.value(); }},
              {"nodes", [](const G& g) { return count(g.hostnames_size()); }, Shown::kListOnly},
              {"hostnames", [](const G& g) { return joinOrDash(g.hostnames(), "\n"); },
               Shown::kDetailOnly},
          }};
}

View<v1::TagType> tagTypeView() {
  using T = v1::TagType;
  return {"tag types",
          {
              {"tag_type_id", [](const T& t) { return std::to_string(t.tag_type_id()); },
               Shown::kDetailOnly},
              {"name", [](const T& t) { return t.name(); }},
              {"category", [](const T& t) { return orDash(t.category()); }},
              {"min_role", [](const T& t) { return orDash(t.min_role()); }},
              {"value_kind", [](const T& t) { return orDash(t.value_kind()); }},
              {"default_value", [](const T& t) { return orDash(t.default_value()); }},
              {"description", [](const T& t) { return orDash(t.description()); }},
          }};
}

View<v1::BlacklistEntry> blacklistView() {
  using B = v1::BlacklistEntry;
  return {"blacklist entries",
          {
              {"entry_id", [](const B& b) { return std::to_string(b.entry_id()); }},
              {"prefix", [](const B& b) { return b.prefix(); }},
              {"reason", [](const B& b) { return orDash(b.reason()); }},
              {"created_at", [](const B& b) { return formatTime(b.created_at()); }},
          }};
}

View<v1::PlcPublicKey> plcKeyView(std::string signing_key_id) {
  using K = v1::PlcPublicKey;
  return {
      "PLC keys",
      {
          {"key_id", [](const K& k) { return k.key_id(); }},
          {"signing", [signing_key_id](const K& k) { return yesNo(k.key_id() == signing_key_id); }},
          {"created_at", [](const K& k) { return formatTime(k.created_at()); }},
          {"not_after", [](const K& k) { return formatTime(k.not_after()); }},
          {"public_key", [](const K& k) { return plng::base::toHex(k.public_key()); }},
      }};
}

View<v1::ApiToken> apiTokenView() {
  using T = v1::ApiToken;
  return {"API tokens",
          {
              {"id", [](const T& t) { return std::to_string(t.id()); }},
              {"description", [](const T& t) { return orDash(t.description()); }},
              {"created_at", [](const T& t) { return formatTime(t.created_at()); }},
              {"expires_at", [](const T& t) { return formatTime(t.expires_at()); }},
          }};
}

View<v1::SliceInfo> sliceView() {
  using S = v1::SliceInfo;
  const std::int64_t now = unixNow();
  return {
      "slices",
      {
          {"slice_id", [](const S& s) { return std::to_string(s.slice_id()); }, Shown::kDetailOnly},
          {"name", [](const S& s) { return s.name(); }},
          {"site", [](const S& s) { return s.login_base(); }, Shown::kDetailOnly},
          {"xid", [](const S& s) { return std::to_string(s.xid()); }},
          {"instantiation", [](const S& s) { return orDash(s.instantiation()); }},
          {"expires_at", [](const S& s) { return formatTime(s.expires_at()); }, Shown::kListOnly},
          // "(!)" within a week of expiry: PLC's first reminder mail by default.
          {"expires",
           [now](const S& s) {
             return s.deleted_at() != 0 ? std::string("-") : formatExpiry(s.expires_at(), now);
           },
           Shown::kListOnly},
          {"expires_at", [now](const S& s) { return formatTimeFromNow(s.expires_at(), now); },
           Shown::kDetailOnly},
          {"max_nodes", [](const S& s) { return std::to_string(s.max_nodes()); },
           Shown::kDetailOnly},
          // What RenewSlice accepts from you now.
          {"renewable_until",
           [now](const S& s) {
             return s.max_expires_at() == 0 ? std::string("- (you may not renew it)")
                                            : formatTimeFromNow(s.max_expires_at(), now);
           },
           Shown::kDetailOnly},
          {"nodes", [](const S& s) { return count(s.nodes_size()); }, Shown::kListOnly},
          {"members", [](const S& s) { return count(s.members_size()); }, Shown::kListOnly},
          {"description", [](const S& s) { return orDash(s.description()); }, Shown::kDetailOnly},
          {"url", [](const S& s) { return orDash(s.url()); }, Shown::kDetailOnly},
          {"creator", [](const S& s) { return orDash(s.creator()); }, Shown::kDetailOnly},
          {"members", [](const S& s) { return joinOrDash(s.members(), "\n"); }, Shown::kDetailOnly},
          {"nodes", [](const S& s) { return joinOrDash(s.nodes(), "\n"); }, Shown::kDetailOnly},
          {"created_at", [](const S& s) { return formatTime(s.created_at()); }, Shown::kDetailOnly},
          {"deleted_at", [](const S& s) { return formatTime(s.deleted_at()); }, Shown::kDetailOnly},
      }};
}

View<v1::SliceTag> sliceTagView() {
  using T = v1::SliceTag;
  return {"slice tags",
          {
              {"slice_tag_id", [](const T& t) { return std::to_string(t.slice_tag_id()); }},
              {"slice", [](const T& t) { return t.slice(); }, Shown::kDetailOnly},
              {"tag", [](const T& t) { return t.tag(); }},
              {"value", [](const T& t) { return t.value(); }},
              {"scope",
               [](const T& t) -> std::string {
                 if (!t.node().empty()) return "node " + t.node();
                 if (!t.nodegroup().empty()) return "nodegroup " + t.nodegroup();
                 return "slice";
               }},
          }};
}

View<v1::Event> eventView() {
  using E = v1::Event;
  return {"events",
          {
              {"event_id", [](const E& e) { return std::to_string(e.event_id()); }},
              {"at", [](const E& e) { return formatTime(e.at()); }},
              {"caller", [](const E& e) { return orDash(e.caller()); }},
              {"role", [](const E& e) { return orDash(e.role_used()); }},
              {"method", [](const E& e) { return e.method(); }},
              {"objects", [](const E& e) { return joinOrDash(e.objects(), ","); }},
              {"result", [](const E& e) { return e.result(); }},
              {"ms", [](const E& e) { return std::to_string(e.duration_us() / 1000); }},
              {"message", [](const E& e) { return orDash(e.message()); }},
          }};
}

namespace {

// "512M", "15.6G": bytes in binary units, three significant digits at most.
std::string shortBytes(std::uint64_t bytes) {
  static const char* kUnits[] = {"B", "K", "M", "G", "T", "P"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char out[32];
  std::snprintf(out, sizeof out, value < 10 && unit > 0 ? "%.1f%s" : "%.0f%s", value, kUnits[unit]);
  return out;
}

std::string ago(std::int64_t at, std::int64_t now) {
  if (at == 0) return "never";
  return formatDuration(std::max<std::int64_t>(0, now - at)) + " ago";
}

// What a health report says, or "-" for a node that sent none (older sliverd).
template <class F>
std::string health(const v1::NodeStatusReport& report, F get) {
  return report.has_health() ? get(report.health()) : std::string("-");
}

std::string load(const v1::NodeHealth& h) {
  char out[64];
  std::snprintf(out, sizeof out, "%.2f", h.load1());
  return out;
}

// Available of total: what a slice could still get.
std::string memory(const v1::NodeHealth& h) {
  if (h.memory_total_bytes() == 0) return "-";
  return shortBytes(h.memory_available_bytes()) + "/" + shortBytes(h.memory_total_bytes());
}

std::string slivers(const v1::NodeHealth& h) {
  return std::to_string(h.slivers_running()) + "/" + std::to_string(h.slivers_failed_size());
}

// "cgroup=v2,quota=prjquota,vnet=bpf": sorted, each value cut short, the
// whole at most 48 characters (the json output has them all).
std::string features(const v1::NodeHealth& h) {
  std::map<std::string, std::string> sorted(h.features().begin(), h.features().end());
  std::string out;
  for (const auto& [name, value] : sorted) {
    if (!out.empty()) out += ',';
    out += name + "=" + (value.size() > 16 ? value.substr(0, 15) + "~" : value);
  }
  if (out.size() > 48) out = out.substr(0, 47) + "~";
  return out.empty() ? "-" : out;
}

std::string reconcile(const v1::NodeHealth& h, std::int64_t now) {
  if (h.last_reconcile_at() == 0) return "none yet";
  return ago(h.last_reconcile_at(), now) + (h.last_reconcile_ok() ? " ok" : " failed");
}

}  // namespace

std::string nodeState(const v1::NodeStatus& node) {
  if (node.last_contact() == 0 && node.received_at() == 0) return "never";
  return node.down() ? "down" : "up";
}

View<v1::NodeStatus> nodeFleetView(std::int64_t now) {
  using N = v1::NodeStatus;
  return {"nodes",
          {
              {"hostname", [](const N& n) { return n.hostname(); }},
              {"state", [](const N& n) { return nodeState(n); }},
              {"contact",
               [now](const N& n) { return ago(std::max(n.last_contact(), n.received_at()), now); }},
              {"reported", [now](const N& n) { return ago(n.received_at(), now); }},
              {"version",
               [](const N& n) {
                 return health(n.report(), [](const v1::NodeHealth& h) {
                   return orDash(h.software_version());
                 });
               }},
              {"load", [](const N& n) { return health(n.report(), load); }},
              {"memory", [](const N& n) { return health(n.report(), memory); }},
              {"slivers", [](const N& n) { return health(n.report(), slivers); }},
              {"features", [](const N& n) { return health(n.report(), features); }},
          }};
}

View<v1::NodeStatusRecord> nodeReportView(std::int64_t now) {
  using R = v1::NodeStatusRecord;
  return {
      "reports",
      {
          {"received_at", [](const R& r) { return formatTime(r.received_at()); }},
          {"version",
           [](const R& r) {
             return health(r.report(),
                           [](const v1::NodeHealth& h) { return orDash(h.software_version()); });
           }},
          {"load", [](const R& r) { return health(r.report(), load); }},
          {"memory", [](const R& r) { return health(r.report(), memory); }},
          {"slivers", [](const R& r) { return health(r.report(), slivers); }},
          {"reconcile",
           [now](const R& r) {
             return health(r.report(),
                           [now](const v1::NodeHealth& h) { return reconcile(h, now); });
           }},
          {"plc_stream",
           [](const R& r) {
             return health(r.report(),
                           [](const v1::NodeHealth& h) { return orDash(h.plc_stream()); });
           }},
          {"slices_net", [](const R& r) { return std::to_string(r.report().slice_net_size()); }},
      }};
}

View<v1::SliverFailure> sliverFailureView(std::int64_t now) {
  using F = v1::SliverFailure;
  return {"failed slivers",
          {
              {"slice", [](const F& f) { return f.slice_name(); }},
              {"since", [now](const F& f) { return ago(f.since(), now); }},
              {"reason", [](const F& f) { return orDash(f.reason()); }},
          }};
}

View<v1::NodeStatus> nodeNetView() {
  using N = v1::NodeStatus;
  // The row's slice: the first of the report's (plcctl shows one a row).
  auto usage = [](const N& n) -> const v1::SliceNetUsage* {
    return n.report().slice_net().empty() ? nullptr : &n.report().slice_net(0);
  };
  auto field = [usage](auto get) {
    return [usage, get](const N& n) -> std::string {
      const v1::SliceNetUsage* u = usage(n);
      return u != nullptr ? get(*u) : std::string("-");
    };
  };
  return {"node statuses",
          {
              {"hostname", [](const N& n) { return n.hostname(); }},
              {"received_at",
               [](const N& n) {
                 return n.received_at() == 0 ? std::string("never") : formatTime(n.received_at());
               }},
              {"slice", field([](const v1::SliceNetUsage& u) { return u.slice_name(); })},
              {"daily_bytes", field([](const v1::SliceNetUsage& u) {
                 return u.daily_bytes() == 0 ? std::string("none")
                                             : std::to_string(u.daily_bytes());
               })},
              {"bytes_used",
               field([](const v1::SliceNetUsage& u) { return std::to_string(u.bytes_used()); })},
              {"window_start",
               field([](const v1::SliceNetUsage& u) { return formatTime(u.window_start()); })},
              {"ceil_bps", field([](const v1::SliceNetUsage& u) {
                 return u.ceil_bps() == 0 ? std::string("-") : std::to_string(u.ceil_bps());
               })},
              {"capped", field([](const v1::SliceNetUsage& u) { return yesNo(u.capped()); })},
          }};
}

View<v1::WhoAmIResponse> whoAmIView(std::string plc_address) {
  using W = v1::WhoAmIResponse;
  const std::int64_t now = unixNow();
  return {"identities",
          {
              {"kind", [](const W& w) { return w.kind(); }},
              {"email", [](const W& w) { return orDash(w.email()); }},
              {"hostname", [](const W& w) { return orDash(w.hostname()); }},
              {"roles", [](const W& w) { return rolesText(w.roles(), ", "); }},
              {"sites", [](const W& w) { return joinOrDash(w.sites(), ", "); }},
              {"token_expires_at",
               [now](const W& w) { return formatTimeFromNow(w.token_expires_at(), now); }},
              {"plc", [plc_address](const W&) { return plc_address; }},
          }};
}

View<v1::TicketBody> ticketBodyView() {
  using T = v1::TicketBody;
  const std::int64_t now = unixNow();
  return {"tickets",
          {
              {"ticket_id", [](const T& t) { return t.ticket_id(); }},
              {"slice", [](const T& t) { return t.slice_name(); }},
              {"xid", [](const T& t) { return std::to_string(t.xid()); }},
              {"instantiation", [](const T& t) { return orDash(t.instantiation()); }},
              {"nodes",
               [](const T& t) {
                 std::vector<std::string> lines;
                 for (const v1::NodeGrant& node : t.nodes()) {
                   lines.push_back(node.hostname() + " (" + std::to_string(node.tags_size()) +
                                   " tags)");
                 }
                 return joinOrDash(lines, "\n");
               }},
              {"member_keys", [](const T& t) { return sshKeysText(t.member_keys()); }},
              {"not_before", [now](const T& t) { return formatTimeFromNow(t.not_before(), now); }},
              {"not_after", [now](const T& t) { return formatTimeFromNow(t.not_after(), now); }},
              {"issued_at", [](const T& t) { return formatTime(t.issued_at()); }},
              {"issuer_key_id", [](const T& t) { return t.issuer_key_id(); }},
          }};
}

View<v1::NodeState> nodeStateView() {
  using S = v1::NodeState;
  return {
      "node states",
      {
          {"hostname", [](const S& s) { return s.hostname(); }},
          {"epoch", [](const S& s) { return s.epoch(); }},
          {"version", [](const S& s) { return std::to_string(s.version()); }},
          {"generated_at", [](const S& s) { return formatTime(s.generated_at()); }},
          {"slivers", [](const S& s) { return count(s.slivers_size()); }},
          {"plc_keys",
           [](const S& s) {
             std::vector<std::string> ids;
             for (const v1::PlcPublicKey& key : s.plc_keys()) {
               ids.push_back(key.key_id() + (key.not_after() != 0
                                                 ? " (until " + formatTime(key.not_after()) + ")"
                                                 : ""));
             }
             return joinOrDash(ids, ", ");
           }},
          {"blacklist",
           [](const S& s) {
             std::vector<std::string> prefixes;
             for (const v1::BlacklistEntry& entry : s.blacklist()) {
               prefixes.push_back(entry.prefix());
             }
             return joinOrDash(prefixes, ", ");
           }},
      }};
}

View<v1::SliverSpec> sliverView() {
  using S = v1::SliverSpec;
  return {"slivers",
          {
              {"slice", [](const S& s) { return s.slice_name(); }},
              {"xid", [](const S& s) { return std::to_string(s.xid()); }},
              {"instantiation", [](const S& s) { return orDash(s.instantiation()); }},
              {"expires_at", [](const S& s) { return formatTime(s.expires_at()); }},
              {"keys", [](const S& s) { return count(s.keys_size()); }},
              {"tags", [](const S& s) { return tagsText(s.tags(), " ", "="); }},
          }};
}

}  // namespace plcctl
