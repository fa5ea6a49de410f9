// vnet-bpf's rule compilers: what the loader writes into the programs' maps,
// computed from a desired state without touching the kernel (so tested without
// root): blacklist prefixes into LPM trie keys, port reservations into
// reserved_ports entries, and the difference between what a map holds and what
// it should hold.
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "proto/port_spec.h"
#include "vnet-bpf/abi.h"

namespace plng::vnet {

// An IPv4 or IPv6 prefix with its host bits cleared ("10.1.0.0/16", "2001:db8::/32").
struct Prefix {
  int family = AF_INET;                    // AF_INET or AF_INET6
  std::array<std::uint8_t, 16> address{};  // network order; IPv4 in the first 4 bytes
  unsigned length = 0;                     // 0..32 or 0..128

  auto operator<=>(const Prefix&) const = default;
};

// A prefix in text: "a.b.c.d/n", "x::y/n", or a bare address (/32, /128). An
// IPv4-mapped IPv6 prefix (::ffff:a.b.c.d/n, n >= 96) is its IPv4 prefix, as the
// programs see such a destination. Throws std::invalid_argument naming the text.
Prefix parsePrefix(std::string_view text);
std::string formatPrefix(const Prefix& prefix);

vnet_lpm4 lpmKey4(const Prefix& prefix);  // prefix.family == AF_INET
vnet_lpm6 lpmKey6(const Prefix& prefix);  // prefix.family == AF_INET6

// The LPM keys of a blacklist, one set per family (duplicates merged).
struct LpmKeys {
  std::set<std::vector<std::uint8_t>> v4;  // bytes of vnet_lpm4
  std::set<std::vector<std::uint8_t>> v6;  // bytes of vnet_lpm6
};
LpmKeys lpmKeys(const std::vector<Prefix>& prefixes);

// What to delete from a map holding `current` keys and what to add so that it
// holds `desired`: applied in that order, a lookup of a key in both never misses.
template <typename Key>
struct KeyDiff {
  std::vector<Key> remove;
  std::vector<Key> add;
};
template <typename Key>
KeyDiff<Key> diffKeys(const std::set<Key>& current, const std::set<Key>& desired) {
  KeyDiff<Key> diff;
  for (const Key& key : current)
    if (!desired.contains(key)) diff.remove.push_back(key);
  for (const Key& key : desired)
    if (!current.contains(key)) diff.add.push_back(key);
  return diff;
}

// (protocol, port), a port table entry; ordered for sets and maps.
struct PortKey {
  std::uint8_t protocol = VNET_PROTO_TCP;
  std::uint16_t port = 0;
  auto operator<=>(const PortKey&) const = default;
  std::uint32_t index() const { return vnet_port_index(protocol, port); }
  // The key of entry `index` (< VNET_PORT_TABLE_SIZE) of the port table.
  static PortKey atIndex(std::uint32_t index);
};
// A port map's protocol as text: "tcp", "udp", "icmp" (echo ids), "proto?".
std::string_view protocolName(std::uint8_t protocol);
std::string formatPortKey(const PortKey& key);  // "tcp:80", "udp:53", "icmp:1234"

// Every port of `ranges` as port table keys.
std::set<PortKey> portKeys(const std::vector<proto::PortRange>& ranges);

// The owner of each reserved port: the node's ports (VNET_XID_NODE) and each
// slice's reservation. Throws ReservationConflict when two owners claim one
// port (a slice's reservation over the node's ports, or over another slice's).
class ReservationConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
std::map<PortKey, std::uint32_t> reservedPortOwners(
    const std::vector<proto::PortRange>& node_ports,
    const std::map<std::uint32_t, std::vector<proto::PortRange>>& slice_reservations);

// The value of net.ipv4.ip_local_reserved_ports (ports the kernel never picks
// at connect or sendto; binds that name them are unaffected) that keeps
// `operator_value` (what the node had, in the sysctl's syntax: "8080,9000-9010",
// or empty) and adds every port of `reserved`, TCP and UDP alike (the sysctl
// does not tell them apart): sorted, merged ranges. Throws std::invalid_argument
// naming a malformed item of `operator_value`.
std::string localReservedPortsValue(std::string_view operator_value,
                                    const std::vector<proto::PortRange>& reserved);

}  // namespace plng::vnet
