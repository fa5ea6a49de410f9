// vnet-bpf's rule compilers, without privileges: prefixes into LPM keys, port
// reservations into reserved_ports entries and their conflicts, map diffs.
#include <catch2/catch.hpp>

#include "base/landlock.h"
#include "vnet-bpf/network_policy.h"
#include "vnet-bpf/rules.h"

using namespace plng::vnet;
using plng::proto::PortRange;
using plng::proto::Transport;

TEST_CASE("prefixes parse into canonical IPv4 and IPv6 prefixes", "[vnet]") {
  Prefix v4 = parsePrefix("10.1.2.3/16");
  CHECK(v4.family == AF_INET);
  CHECK(v4.length == 16);
  CHECK(formatPrefix(v4) == "10.1.0.0/16");
  CHECK(formatPrefix(parsePrefix("192.0.2.7")) == "192.0.2.7/32");
  CHECK(formatPrefix(parsePrefix("2001:db8:1::5/33")) == "2001:db8::/33");
  CHECK(formatPrefix(parsePrefix("::1")) == "::1/128");
  // A v4-mapped prefix is its IPv4 prefix, as the programs see the destination.
  Prefix mapped = parsePrefix("::ffff:127.0.0.0/104");
  CHECK(mapped.family == AF_INET);
  CHECK(formatPrefix(mapped) == "127.0.0.0/8");
  CHECK(formatPrefix(parsePrefix("0.0.0.0/0")) == "0.0.0.0/0");
}

TEST_CASE("a bad prefix is refused with its text in the message", "[vnet]") {
  CHECK_THROWS_WITH(parsePrefix("10.0.0.0/33"),
                    Catch::Contains("10.0.0.0/33") && Catch::Contains("at most /32"));
  CHECK_THROWS_WITH(parsePrefix("2001:db8::/129"), Catch::Contains("at most /128"));
  CHECK_THROWS_WITH(parsePrefix("example.org/8"), Catch::Contains("not an IPv4 or IPv6 address"));
  CHECK_THROWS_WITH(parsePrefix("10.0.0.0/x"), Catch::Contains("must be a number"));
  CHECK_THROWS_WITH(parsePrefix("10.0.0.0/"), Catch::Contains("must be a number"));
}

TEST_CASE("LPM keys carry the prefix length and network-order bytes", "[vnet]") {
  vnet_lpm4 key4 = lpmKey4(parsePrefix("192.0.2.0/24"));
  CHECK(key4.prefixlen == 24);
  CHECK(key4.addr[0] == 192);
  CHECK(key4.addr[1] == 0);
  CHECK(key4.addr[2] == 2);
  CHECK(key4.addr[3] == 0);
  vnet_lpm6 key6 = lpmKey6(parsePrefix("2001:db8::/32"));
  CHECK(key6.prefixlen == 32);
  CHECK(key6.addr[0] == 0x20);
  CHECK(key6.addr[1] == 0x01);
  CHECK(key6.addr[3] == 0xb8);
  CHECK(key6.addr[15] == 0);

  // Duplicates (the same prefix written twice) are one key.
  LpmKeys keys = lpmKeys({parsePrefix("10.0.0.0/8"), parsePrefix("10.9.9.9/8"),
                          parsePrefix("2001:db8::/32"), parsePrefix("::ffff:10.0.0.0/104")});
  CHECK(keys.v4.size() == 1);
  CHECK(keys.v6.size() == 1);
}

TEST_CASE("a map diff deletes what is gone and adds what is new, nothing else", "[vnet]") {
  std::set<int> current = {1, 2, 3};
  std::set<int> desired = {2, 3, 4, 5};
  KeyDiff<int> diff = diffKeys(current, desired);
  CHECK(diff.remove == std::vector<int>{1});
  CHECK(diff.add == std::vector<int>{4, 5});
  CHECK(diffKeys(desired, desired).add.empty());
  CHECK(diffKeys(desired, desired).remove.empty());
}

TEST_CASE("port ranges become one key per port and protocol", "[vnet]") {
  std::set<PortKey> keys =
      portKeys({{Transport::kTcp, 80, 81}, {Transport::kUdp, 53, 53}, {Transport::kTcp, 81, 82}});
  CHECK(keys.size() == 4);
  CHECK(keys.contains(PortKey{VNET_PROTO_TCP, 80}));
  CHECK(keys.contains(PortKey{VNET_PROTO_TCP, 82}));
  CHECK(keys.contains(PortKey{VNET_PROTO_UDP, 53}));
  CHECK_FALSE(keys.contains(PortKey{VNET_PROTO_UDP, 80}));
  CHECK(formatPortKey(PortKey{VNET_PROTO_UDP, 53}) == "udp:53");
  // The top of the port space does not wrap.
  CHECK(portKeys({{Transport::kUdp, 65534, 65535}}).size() == 2);
}

TEST_CASE("every (protocol, port) has one entry of the port table, and back", "[vnet]") {
  std::set<std::uint32_t> seen;
  for (std::uint8_t protocol : {VNET_PROTO_ICMP, VNET_PROTO_TCP, VNET_PROTO_UDP}) {
    for (std::uint32_t port : {0u, 1u, 80u, 65535u}) {
      PortKey key{protocol, static_cast<std::uint16_t>(port)};
      CHECK(key.index() < VNET_PORT_TABLE_SIZE);
      CHECK(PortKey::atIndex(key.index()) == key);
      seen.insert(key.index());
    }
  }
  CHECK(seen.size() == 12);
  CHECK(PortKey::atIndex(VNET_PORT_TABLE_SIZE - 1) == PortKey{VNET_PROTO_UDP, 65535});
}

TEST_CASE("reservations that collide are refused naming both owners", "[vnet]") {
  std::vector<PortRange> node = {{Transport::kTcp, 22, 22}, {Transport::kTcp, 812, 814}};
  auto owners = reservedPortOwners(
      node, {{101, {{Transport::kTcp, 80, 80}}}, {102, {{Transport::kUdp, 80, 80}}}});
  CHECK(owners.at(PortKey{VNET_PROTO_TCP, 22}) == VNET_XID_NODE);
  CHECK(owners.at(PortKey{VNET_PROTO_TCP, 80}) == 101);
  CHECK(owners.at(PortKey{VNET_PROTO_UDP, 80}) == 102);  // another protocol: no collision

  CHECK_THROWS_WITH(reservedPortOwners(node, {{101, {{Transport::kTcp, 70, 90}}},
                                              {102, {{Transport::kTcp, 85, 85}}}}),
                    Catch::Contains("tcp:85") && Catch::Contains("slice xid 102") &&
                        Catch::Contains("slice xid 101"));
  CHECK_THROWS_AS(reservedPortOwners(node, {{101, {{Transport::kTcp, 810, 812}}}}),
                  ReservationConflict);
  CHECK_THROWS_WITH(reservedPortOwners(node, {{101, {{Transport::kTcp, 810, 812}}}}),
                    Catch::Contains("node's own ports") && Catch::Contains("tcp:812"));
}

TEST_CASE("ip_local_reserved_ports keeps the operator's ports and adds the reserved ones",
          "[vnet]") {
  CHECK(localReservedPortsValue("", {}) == "");
  CHECK(localReservedPortsValue("", {{Transport::kTcp, 80, 80}, {Transport::kUdp, 53, 53}}) ==
        "53,80");
  // Merged across transports, with what the operator had; adjacent ranges join.
  CHECK(localReservedPortsValue("8080, 9000-9010", {{Transport::kTcp, 6000, 6010},
                                                    {Transport::kUdp, 6011, 6011},
                                                    {Transport::kTcp, 9005, 9020}}) ==
        "6000-6011,8080,9000-9020");
  CHECK(localReservedPortsValue("65535,0", {}) == "0,65535");
  CHECK_THROWS_WITH(localReservedPortsValue("80,http", {}), Catch::Contains("'http'"));
  CHECK_THROWS_WITH(localReservedPortsValue("90-80", {}), Catch::Contains("ends before"));
  CHECK_THROWS_AS(localReservedPortsValue("70000", {}), std::invalid_argument);
}

TEST_CASE("every refusal reason has a name", "[vnet]") {
  for (std::uint32_t reason = VNET_R_PORT_OWNED; reason < VNET_R_COUNT; ++reason)
    CHECK(reasonName(reason) != "unknown");
  CHECK(reasonName(VNET_R_BLACKLIST) == "blacklist");
  CHECK(portHoldName(PortHold::kLazy) == "lazy");
}

TEST_CASE("abstract unix sockets are isolated by Landlock where it scopes, else connect_unix",
          "[vnet]") {
  auto features = [](bool connect_unix, bool landlock) {
    Features f;
    f.list.push_back({kConnectUnix, connect_unix, false, ""});
    f.list.push_back({kLandlockAbstractScope, landlock, false, ""});
    return f;
  };
  CHECK(features(true, true).abstractUnixIsolation() == "landlock");
  CHECK(features(false, true).abstractUnixIsolation() == "landlock");
  CHECK(features(true, false).abstractUnixIsolation() == "connect_unix");
  CHECK(features(false, false).abstractUnixIsolation() == "none");
  // The report and what launchSliver does come from the one probe.
  CHECK(probeFeatures().has(kLandlockAbstractScope) ==
        plng::base::landlockScopesAbstractUnixSockets());
}
