// Resource allocations of a sliver, and their translation from slice tags.
//
// PLC stores tag values canonically (docs/plc.md): bytes in bytes, rates in
// bit/s, ints, booleans, capability lists "CAP_A,CAP_B". Nodes never parse units.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "proto/port_spec.h"

namespace plng::node {

struct Resources {
  std::uint32_t cpu_share = 32;       // PlanetLab shares (relative weight)
  std::uint32_t cpu_cap_pct = 0;      // percent of one CPU; 0 = no cap
  std::uint64_t mem_limit_bytes = 0;  // 0 = no limit
  std::uint32_t tasks = 0;            // processes + threads; 0 = no limit
  std::uint32_t io_weight = 100;      // 1..10000 (v2 io.weight scale)
  bool operator==(const Resources&) const = default;
};

// A tag value that cannot be applied (named in the message).
class TagError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A tag value as an error message quotes it: in double quotes, at most 64
// bytes, other than printable ASCII as \xNN, and the full length named when
// cut. Tag values come from users (PLC takes up to 64 KiB of any bytes): a
// message must not carry all of it into logs and API replies, nor be cut short
// at a NUL by what().
std::string quotedTagValue(std::string_view value);

// Reads cpu_share, cpu_cap, mem_limit, tasks, io_weight from a slice's effective
// tags; a missing tag keeps the Resources default. Throws TagError naming the tag
// and the value for a malformed or out-of-range value.
Resources resourcesFromTags(const std::map<std::string, std::string>& tags);

// A canonical decimal tag value (digits only: no sign, unit or spaces) within
// min..max, or 0 when zero_allowed. Throws TagError naming the tag otherwise.
std::uint64_t numericTag(const std::string& tag, const std::string& value, std::uint64_t min,
                         std::uint64_t max, bool zero_allowed);

// A sliver's network allowances, in PLC's canonical units (docs/plc.md: rates in
// bit/s, bytes in bytes). vnet-bpf enforces them; the local API reports them.
struct NetworkLimits {
  std::uint64_t min_rate_bps = 0;  // net_min_rate: guaranteed outgoing rate; 0 = none
  std::uint64_t max_rate_bps = 0;  // net_max_rate: outgoing cap; 0 = none set
  std::uint64_t daily_bytes = 0;   // net_daily_bytes: outgoing bytes a day; 0 = unlimited
  // net_icmp_pps: ICMP and IP-options packets a second (1..kMaxIcmpPps); 0 = not
  // set (the node's default, vnet-bpf/bandwidth.h).
  std::uint32_t icmp_pps = 0;
  static constexpr std::uint32_t kMaxIcmpPps = 10000;
  bool operator==(const NetworkLimits&) const = default;
};

// Reads net_min_rate, net_max_rate, net_daily_bytes and net_icmp_pps; a missing
// tag is 0.
// Throws TagError naming the tag for a malformed or out-of-range value.
NetworkLimits networkLimitsFromTags(const std::map<std::string, std::string>& tags);

// The node's uplink limit set by its site (node tag net_node_cap, bit/s), or
// nullopt when the tag is not set. Throws TagError for a malformed value.
std::optional<std::uint64_t> nodeNetworkCapFromTags(const std::map<std::string, std::string>& tags);

// What a slice may do with the node's network besides its bandwidth: the
// ports it reserves, how many it may hold at once, whether it gets raw sockets.
// vnet-bpf enforces them (docs/vnet.md, "Ports").
struct NetworkRights {
  // Held at once by default (net_max_ports): a slice must not exhaust the node's
  // ~28,000 ephemeral ports (net.ipv4.ip_local_port_range).
  static constexpr std::uint32_t kDefaultMaxPorts = 2000;
  // TCP and UDP ports together: a larger cap could never bind.
  static constexpr std::uint32_t kMaxMaxPorts = 2 * 65535;

  std::vector<proto::PortRange> reserved_ports;  // `ports`, canonical (sorted, merged)
  std::uint32_t max_ports = kDefaultMaxPorts;    // net_max_ports; 0 = no cap
  bool raw_sockets = false;                      // `capabilities` names CAP_NET_RAW
  bool operator==(const NetworkRights&) const = default;
};

// Reads `ports` (proto/port_spec.h grammar), net_max_ports (0..kMaxMaxPorts; a
// missing tag is kDefaultMaxPorts) and whether `capabilities` names CAP_NET_RAW
// (PlanetLab's raw-socket right; the other names are capabilityPlanFromTag's
// to check). Throws TagError naming the tag for a malformed `ports` or
// net_max_ports.
NetworkRights networkRightsFromTags(const std::map<std::string, std::string>& tags);

// The `proper` tag: privileged operations the slice may ask of this node,
// separated by commas or white space. Each is a name ([a-z0-9_]) with an
// optional ":argument"; the node reads sliver_control:<slice> (may control
// that slice's sliver) and sliver_control:* (every sliver), and keeps the
// others for the services that read them.
struct ProperPrivileges {
  std::vector<std::string> privileges;  // as written, in order
  bool allowsSliverControl(std::string_view target) const;
  bool operator==(const ProperPrivileges&) const = default;
};

// Throws TagError for a privilege that is not name[:argument] of printable
// characters, or a sliver_control whose argument is neither '*' nor a sliver
// name (node/sliver_name.h).
ProperPrivileges properFromTag(std::string_view value);

// Knob values as the kernel takes them, shared by both drivers.
std::uint64_t cpuWeightOf(std::uint32_t cpu_share);    // v2 cpu.weight, 1..10000
std::uint64_t cpuSharesV1Of(std::uint32_t cpu_share);  // v1 cpu.shares, 2..262144

}  // namespace plng::node
