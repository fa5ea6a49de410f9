// node/resources.h: a slice's network rights from its effective tags.
#include <catch2/catch.hpp>
#include <string>

#include "node/resources.h"

using plng::node::NetworkRights;
using plng::node::networkRightsFromTags;
using plng::node::TagError;
using plng::proto::PortRange;
using plng::proto::Transport;

TEST_CASE("without network tags a slice reserves no port, holds the default cap, has no raw") {
  const auto rights = networkRightsFromTags({{"cpu_share", "32"}});
  CHECK(rights.reserved_ports.empty());
  CHECK(rights.max_ports == 2000);
  CHECK(rights.max_ports == NetworkRights::kDefaultMaxPorts);
  CHECK_FALSE(rights.raw_sockets);
  CHECK(networkRightsFromTags({}) == NetworkRights{});
}

TEST_CASE("the ports tag gives the slice's reserved ranges, canonical") {
  const auto rights = networkRightsFromTags({{"ports", "udp:53, tcp:81,tcp:80,tcp:6000-6010"}});
  CHECK(rights.reserved_ports == std::vector<PortRange>{{Transport::kTcp, 80, 81},
                                                        {Transport::kTcp, 6000, 6010},
                                                        {Transport::kUdp, 53, 53}});
  CHECK(networkRightsFromTags({{"ports", ""}}).reserved_ports.empty());
}

TEST_CASE("a malformed ports tag is a TagError naming the tag, the value and the item") {
  CHECK_THROWS_MATCHES(networkRightsFromTags({{"ports", "tcp:80,80"}}), TagError,
                       Catch::Message("tag ports: value \"tcp:80,80\": item 2 \"80\": expected "
                                      "<tcp|udp>:<port>[-<port>], e.g. tcp:80 or udp:6000-6010"));
  CHECK_THROWS_AS(networkRightsFromTags({{"ports", "tcp:0"}}), TagError);
  CHECK_THROWS_AS(networkRightsFromTags({{"ports", "tcp:65536"}}), TagError);
  // The old grammar (bare ports) is refused: a node never guesses the protocol.
  CHECK_THROWS_AS(networkRightsFromTags({{"ports", "80,443"}}), TagError);
  // A long value is quoted cut short, not carried whole into logs.
  try {
    networkRightsFromTags({{"ports", "tcp:80," + std::string(70000, 'x')}});
    FAIL("a 70000-byte ports value was accepted");
  } catch (const TagError& e) {
    CHECK(std::string(e.what()).size() < 300);
    CHECK(std::string(e.what()).find("(cut, 70007 bytes)") != std::string::npos);
  }
}

TEST_CASE("net_max_ports caps the ports held at once; 0 is no cap") {
  CHECK(networkRightsFromTags({{"net_max_ports", "10"}}).max_ports == 10);
  CHECK(networkRightsFromTags({{"net_max_ports", "1"}}).max_ports == 1);
  CHECK(networkRightsFromTags({{"net_max_ports", "0"}}).max_ports == 0);
  CHECK(networkRightsFromTags({{"net_max_ports", "131070"}}).max_ports == 131070);
  CHECK_THROWS_MATCHES(networkRightsFromTags({{"net_max_ports", "131071"}}), TagError,
                       Catch::Message("tag net_max_ports: value \"131071\" is out of range 0 or "
                                      "1..131070"));
  CHECK_THROWS_MATCHES(networkRightsFromTags({{"net_max_ports", "2k"}}), TagError,
                       Catch::Message("tag net_max_ports: value \"2k\" is not a decimal integer"));
  CHECK_THROWS_AS(networkRightsFromTags({{"net_max_ports", ""}}), TagError);
  CHECK_THROWS_AS(networkRightsFromTags({{"net_max_ports", "-1"}}), TagError);
}

TEST_CASE("raw sockets are granted by CAP_NET_RAW in the capabilities tag") {
  CHECK(networkRightsFromTags({{"capabilities", "CAP_NET_RAW"}}).raw_sockets);
  CHECK(networkRightsFromTags({{"capabilities", "CAP_NET_ADMIN,CAP_NET_RAW,CAP_SYS_PTRACE"}})
            .raw_sockets);
  CHECK(networkRightsFromTags({{"capabilities", "CAP_SYS_PTRACE, CAP_NET_RAW "}}).raw_sockets);
  CHECK_FALSE(networkRightsFromTags({{"capabilities", ""}}).raw_sockets);
  CHECK_FALSE(networkRightsFromTags({{"capabilities", "CAP_NET_ADMIN"}}).raw_sockets);
  // Only the name itself: neither a prefix of it nor a longer name.
  CHECK_FALSE(networkRightsFromTags({{"capabilities", "CAP_NET_RAWX"}}).raw_sockets);
  CHECK_FALSE(networkRightsFromTags({{"capabilities", "CAP_NET_RA"}}).raw_sockets);
  CHECK_FALSE(networkRightsFromTags({{"net_raw", "true"}}).raw_sockets);
}

TEST_CASE("net_capture grants packet capture; anything but a boolean is a TagError") {
  CHECK_FALSE(networkRightsFromTags({}).packet_capture);
  CHECK(networkRightsFromTags({{"net_capture", "true"}}).packet_capture);
  CHECK(networkRightsFromTags({{"net_capture", "1"}}).packet_capture);
  CHECK_FALSE(networkRightsFromTags({{"net_capture", "false"}}).packet_capture);
  CHECK_FALSE(networkRightsFromTags({{"net_capture", "0"}}).packet_capture);
  CHECK_THROWS_WITH(networkRightsFromTags({{"net_capture", "sometimes"}}),
                    Catch::Contains("net_capture") && Catch::Contains("true or false"));
}
