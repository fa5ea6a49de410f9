// Slice tags -> Resources, and Resources -> kernel knob values.
//
// The knob mapping is documented in docs/node.md ("## Cgroups").
#include "node/resources.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "base/strings.h"
#include "node/sliver_name.h"

namespace plng::node {

namespace {

// Largest values a tag may carry. cpu_share is a relative weight; above what the
// kernel can express (see cpuWeightOf) shares saturate. cpu_cap counts percent of
// one CPU, and a slice tag holds for every node, so a cap above the node's CPUs is
// accepted and simply never binds; 100000 % (1000 CPUs) bounds typos.
// mem_limit must fit the kernel's signed 64-bit counters, and anything below
// 1 MiB could not even hold a process. tasks is bounded by PID_MAX_LIMIT.
constexpr std::uint64_t kMaxCpuShare = 1'000'000;
constexpr std::uint64_t kMaxCpuCapPct = 100'000;
constexpr std::uint64_t kMinMemLimit = 1 << 20;
constexpr std::uint64_t kMaxMemLimit = std::numeric_limits<std::int64_t>::max();
constexpr std::uint64_t kMaxTasks = 4 * 1024 * 1024;
constexpr std::uint64_t kMaxIoWeight = 10'000;
// Network rates are bit/s; 10 Tbit/s is beyond any node's link and bounds typos.
// A daily byte budget fits the kernel's signed 64-bit counters.
constexpr std::uint64_t kMaxNetRate = 10'000'000'000'000;
constexpr std::uint64_t kMaxNetDailyBytes = std::numeric_limits<std::int64_t>::max();

std::string quoted(const std::string& tag, const std::string& value) {
  return "tag " + tag + ": value " + quotedTagValue(value);
}

}  // namespace

std::uint64_t numericTag(const std::string& tag, const std::string& value, std::uint64_t min,
                         std::uint64_t max, bool zero_allowed) {
  std::uint64_t out = 0;
  bool digits = !value.empty() && std::all_of(value.begin(), value.end(),
                                              [](char c) { return c >= '0' && c <= '9'; });
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (!digits || end != value.data() + value.size() || ec == std::errc::invalid_argument)
    throw TagError(quoted(tag, value) + " is not a decimal integer");
  if (ec == std::errc::result_out_of_range || ((out != 0 || !zero_allowed) && out < min) ||
      out > max)
    throw TagError(quoted(tag, value) + " is out of range " + (zero_allowed ? "0 or " : "") +
                   std::to_string(min) + ".." + std::to_string(max));
  return out;
}

std::string quotedTagValue(std::string_view value) {
  constexpr std::size_t kMaxShown = 64;
  std::string out = "\"";
  for (std::size_t i = 0; i < value.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x" + base::toHex(value.substr(i, 1));
    }
  }
  out += "\"";
  if (value.size() > kMaxShown) out += " (cut, " + std::to_string(value.size()) + " bytes)";
  return out;
}

Resources resourcesFromTags(const std::map<std::string, std::string>& tags) {
  Resources r;
  auto get = [&](const char* tag, std::uint64_t min, std::uint64_t max, bool zero_allowed,
                 auto& field) {
    auto it = tags.find(tag);
    if (it == tags.end()) return;
    field = static_cast<std::remove_reference_t<decltype(field)>>(
        numericTag(tag, it->second, min, max, zero_allowed));
  };
  get("cpu_share", 1, kMaxCpuShare, false, r.cpu_share);
  get("cpu_cap", 1, kMaxCpuCapPct, true, r.cpu_cap_pct);
  get("mem_limit", kMinMemLimit, kMaxMemLimit, true, r.mem_limit_bytes);
  get("tasks", 1, kMaxTasks, true, r.tasks);
  get("io_weight", 1, kMaxIoWeight, false, r.io_weight);
  return r;
}

std::optional<std::uint64_t> nodeNetworkCapFromTags(
    const std::map<std::string, std::string>& tags) {
  auto it = tags.find("net_node_cap");
  if (it == tags.end()) return std::nullopt;
  return numericTag("net_node_cap", it->second, 1, kMaxNetRate, false);
}

NetworkLimits networkLimitsFromTags(const std::map<std::string, std::string>& tags) {
  NetworkLimits n;
  auto get = [&](const char* tag, std::uint64_t max, std::uint64_t& field) {
    if (auto it = tags.find(tag); it != tags.end())
      field = numericTag(tag, it->second, 1, max, true);
  };
  get("net_min_rate", kMaxNetRate, n.min_rate_bps);
  get("net_max_rate", kMaxNetRate, n.max_rate_bps);
  get("net_daily_bytes", kMaxNetDailyBytes, n.daily_bytes);
  std::uint64_t pps = 0;
  get("net_icmp_pps", NetworkLimits::kMaxIcmpPps, pps);
  n.icmp_pps = static_cast<std::uint32_t>(pps);
  return n;
}

NetworkRights networkRightsFromTags(const std::map<std::string, std::string>& tags) {
  NetworkRights rights;
  if (auto it = tags.find("ports"); it != tags.end()) {
    try {
      rights.reserved_ports = proto::parsePortSpec(it->second);
    } catch (const proto::PortSpecError& e) {
      throw TagError(quoted("ports", it->second) + ": " + e.what());
    }
  }
  if (auto it = tags.find("net_max_ports"); it != tags.end()) {
    rights.max_ports = static_cast<std::uint32_t>(
        numericTag("net_max_ports", it->second, 1, NetworkRights::kMaxMaxPorts, true));
  }
  if (auto it = tags.find("capabilities"); it != tags.end()) {
    for (const auto& name : base::split(it->second, ',')) {
      if (base::trim(name) == "CAP_NET_RAW") rights.raw_sockets = true;
    }
  }
  return rights;
}

bool ProperPrivileges::allowsSliverControl(std::string_view target) const {
  return std::any_of(privileges.begin(), privileges.end(), [&](const std::string& p) {
    return p == "sliver_control:*" || p == "sliver_control:" + std::string(target);
  });
}

ProperPrivileges properFromTag(std::string_view value) {
  ProperPrivileges out;
  auto separator = [](char c) {
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
  };
  std::size_t i = 0;
  while (i < value.size()) {
    if (separator(value[i])) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < value.size() && !separator(value[end])) ++end;
    const std::string privilege(value.substr(i, end - i));
    i = end;
    const auto colon = privilege.find(':');
    const std::string name = privilege.substr(0, colon);
    const bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
    const bool printable = std::all_of(privilege.begin(), privilege.end(), [](char c) {
      return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
    });
    if (!name_ok || !printable) {
      throw TagError("tag proper: " + quotedTagValue(privilege) +
                     " is not a privilege (name[:argument], e.g. sliver_control:pl_beta)");
    }
    if (name == "sliver_control") {
      const std::string target = colon == std::string::npos ? "" : privilege.substr(colon + 1);
      if (target != "*" && !isValidSliverName(target)) {
        throw TagError("tag proper: " + quotedTagValue(privilege) +
                       " is not a privilege: sliver_control names a slice or '*'");
      }
    }
    out.privileges.push_back(privilege);
  }
  return out;
}

// The kernel's default weight (v2 cpu.weight 100, v1 cpu.shares 1024) stands for
// PlanetLab's default 32 shares, so a sliver with default shares competes evenly
// with any other default cgroup of the node; other shares scale linearly from it.
std::uint64_t cpuWeightOf(std::uint32_t cpu_share) {
  // share * 100 / 32 = share * 25 / 8, rounded to nearest; exact for multiples of 8.
  std::uint64_t weight = (static_cast<std::uint64_t>(cpu_share) * 25 + 4) / 8;
  return std::clamp<std::uint64_t>(weight, 1, 10'000);
}

std::uint64_t cpuSharesV1Of(std::uint32_t cpu_share) {
  return std::clamp<std::uint64_t>(static_cast<std::uint64_t>(cpu_share) * 32, 2, 262'144);
}

}  // namespace plng::node
