// proto/port_spec.h: the `ports` tag's grammar, canonical form and collisions.
#include "proto/port_spec.h"

#include <catch2/catch.hpp>
#include <string>

using plng::proto::firstCollision;
using plng::proto::formatPortSpec;
using plng::proto::parsePortSpec;
using plng::proto::PortRange;
using plng::proto::PortSpecError;
using plng::proto::Transport;

namespace {

std::string canonical(std::string_view value) { return formatPortSpec(parsePortSpec(value)); }

// The message parsePortSpec refuses `value` with ("" when it accepts it).
std::string refusal(std::string_view value) {
  try {
    parsePortSpec(value);
  } catch (const PortSpecError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a port spec reads single ports and ranges of either protocol") {
  CHECK(parsePortSpec("tcp:80") == std::vector<PortRange>{{Transport::kTcp, 80, 80}});
  CHECK(parsePortSpec("udp:53") == std::vector<PortRange>{{Transport::kUdp, 53, 53}});
  CHECK(parsePortSpec("tcp:6000-6010") == std::vector<PortRange>{{Transport::kTcp, 6000, 6010}});
  CHECK(parsePortSpec("tcp:80,udp:53,tcp:6000-6010") ==
        std::vector<PortRange>{
            {Transport::kTcp, 80, 80}, {Transport::kTcp, 6000, 6010}, {Transport::kUdp, 53, 53}});
}

TEST_CASE("the empty value, or only white space, reserves nothing") {
  CHECK(parsePortSpec("").empty());
  CHECK(parsePortSpec("  \t ").empty());
  CHECK(formatPortSpec({}).empty());
}

TEST_CASE("the extremes of the port range are accepted, 0 and 65536 are not") {
  CHECK(canonical("tcp:1") == "tcp:1");
  CHECK(canonical("udp:65535") == "udp:65535");
  CHECK(canonical("tcp:1-65535") == "tcp:1-65535");
  CHECK(refusal("tcp:0") == "item 1 \"tcp:0\": port 0 is out of range: ports are 1-65535");
  CHECK(refusal("tcp:65536") ==
        "item 1 \"tcp:65536\": port 65536 is out of range: ports are 1-65535");
  CHECK(refusal("udp:0-10") != "");
  CHECK(refusal("udp:10-65536") != "");
  CHECK(refusal("tcp:99999") ==
        "item 1 \"tcp:99999\": port 99999 is out of range: ports are 1-65535");
}

TEST_CASE("leading zeros are decimal within five digits and dropped from the canonical form") {
  CHECK(canonical("tcp:080") == "tcp:80");
  CHECK(canonical("tcp:00001") == "tcp:1");
  CHECK(canonical("udp:010-020") == "udp:10-20");  // decimal, never octal
  // Six digits are more than any port has, whatever their value.
  CHECK(refusal("tcp:000080") ==
        "item 1 \"tcp:000080\": \"000080\" is not a port number (1 to 5 decimal digits, "
        "1-65535); e.g. tcp:80 or udp:6000-6010");
  CHECK(refusal("tcp:00000") != "");
}

TEST_CASE("the protocol is tcp or udp, in any case") {
  CHECK(canonical("TCP:80,Udp:53") == "tcp:80,udp:53");
  CHECK(refusal("sctp:80") == "item 1 \"sctp:80\": \"sctp\" is not a protocol: tcp or udp");
  CHECK(refusal("icmp:1") != "");
  CHECK(refusal(":80") == "item 1 \":80\": \"\" is not a protocol: tcp or udp");
  CHECK(refusal("tcpx:80") != "");
}

TEST_CASE("white space around items is ignored, inside an item it is refused") {
  CHECK(canonical(" tcp:80 ,\tudp:53\n") == "tcp:80,udp:53");
  CHECK(refusal("tcp: 80") ==
        "item 1 \"tcp: 80\": \" 80\" is not a port number (1 to 5 decimal digits, 1-65535);"
        " e.g. tcp:80 or udp:6000-6010");
  CHECK(refusal("tcp :80") != "");
  CHECK(refusal("tcp:80 -90") != "");
  CHECK(refusal("tcp:80- 90") != "");
}

TEST_CASE("a malformed item is refused naming its position and what is expected") {
  // A bare port, as the old `ports` tag took it: the protocol is required.
  CHECK(refusal("80") ==
        "item 1 \"80\": expected <tcp|udp>:<port>[-<port>], e.g. tcp:80 or udp:6000-6010");
  CHECK(refusal("tcp:80,443") ==
        "item 2 \"443\": expected <tcp|udp>:<port>[-<port>], e.g. tcp:80 or udp:6000-6010");
  CHECK(refusal("tcp:") ==
        "item 1 \"tcp:\": \"\" is not a port number (1 to 5 decimal digits, "
        "1-65535); e.g. tcp:80 or udp:6000-6010");
  CHECK(refusal("tcp:-80") != "");
  CHECK(refusal("tcp:80-") != "");
  CHECK(refusal("tcp:+80") != "");
  CHECK(refusal("tcp:80-90-100") != "");  // "90-100" is not a port
  CHECK(refusal("tcp:80:81") != "");
  CHECK(refusal("tcp:0x50") != "");
  CHECK(refusal("tcp:8O") != "");
}

TEST_CASE("an empty item between commas is refused") {
  CHECK(refusal("tcp:80,,udp:53") ==
        "item 2 is empty: separate items with single commas, e.g. tcp:80,udp:53");
  CHECK(refusal("tcp:80,") != "");
  CHECK(refusal(",tcp:80") != "");
  CHECK(refusal(" , ") != "");
}

TEST_CASE("a range names its lower port first") {
  CHECK(refusal("tcp:90-80") ==
        "item 1 \"tcp:90-80\": a range names its lower port first (tcp:80-90)");
  CHECK(canonical("tcp:80-80") == "tcp:80");
}

TEST_CASE("an item quoted in a message is cut short and its bytes made printable") {
  const std::string message = refusal("tcp:80,sctp:" + std::string(1000, '1'));
  CHECK(message.size() < 150);
  CHECK(message.find("item 2 \"sctp:1111") == 0);
  CHECK(message.find("...\"") != std::string::npos);
  CHECK(refusal(std::string("tcp:8\0", 6)) ==
        "item 1 \"tcp:8\\x00\": \"8\\x00\" is not a port number (1 to 5 decimal digits, "
        "1-65535); e.g. tcp:80 or udp:6000-6010");
  CHECK(refusal("tcp:\"80\"").find("\\x2280\\x22") != std::string::npos);
}

TEST_CASE("the canonical form sorts by protocol then port and merges overlaps and neighbours") {
  CHECK(canonical("udp:53, tcp:81,tcp:80") == "tcp:80-81,udp:53");
  CHECK(canonical("tcp:100-200,tcp:150-300") == "tcp:100-300");
  CHECK(canonical("tcp:100-200,tcp:201-300") == "tcp:100-300");  // adjacent
  CHECK(canonical("tcp:100-200,tcp:202-300") == "tcp:100-200,tcp:202-300");
  CHECK(canonical("tcp:100-300,tcp:150") == "tcp:100-300");    // contained
  CHECK(canonical("tcp:80,tcp:80") == "tcp:80");               // repeated
  CHECK(canonical("tcp:80,udp:80") == "tcp:80,udp:80");        // protocols never merge
  CHECK(canonical("udp:65535,udp:1-65534") == "udp:1-65535");  // no overflow at the top
  CHECK(canonical("tcp:65535,tcp:65535") == "tcp:65535");
  // The canonical form reads back as itself.
  for (const char* value : {"tcp:80-81,udp:53", "tcp:1-65535,udp:1-65535", "udp:7"}) {
    CHECK(canonical(value) == value);
  }
}

TEST_CASE("formatPortSpec canonicalises ranges it is given in any order") {
  CHECK(formatPortSpec(
            {{Transport::kUdp, 53, 53}, {Transport::kTcp, 90, 95}, {Transport::kTcp, 80, 89}}) ==
        "tcp:80-95,udp:53");
}

TEST_CASE("a port range knows what it contains and what it overlaps") {
  const PortRange web{Transport::kTcp, 80, 90};
  CHECK(web.contains(Transport::kTcp, 80));
  CHECK(web.contains(Transport::kTcp, 90));
  CHECK_FALSE(web.contains(Transport::kTcp, 79));
  CHECK_FALSE(web.contains(Transport::kTcp, 91));
  CHECK_FALSE(web.contains(Transport::kUdp, 85));
  CHECK(web.overlaps({Transport::kTcp, 90, 100}));
  CHECK(web.overlaps({Transport::kTcp, 1, 80}));
  CHECK(web.overlaps({Transport::kTcp, 85, 85}));
  CHECK(web.overlaps({Transport::kTcp, 1, 65535}));
  CHECK_FALSE(web.overlaps({Transport::kTcp, 91, 100}));
  CHECK_FALSE(web.overlaps({Transport::kTcp, 1, 79}));
  CHECK_FALSE(web.overlaps({Transport::kUdp, 80, 90}));
}

TEST_CASE("firstCollision names the lowest port two specs both reserve") {
  CHECK(firstCollision(parsePortSpec("tcp:80"), parsePortSpec("tcp:80")) == "tcp:80");
  CHECK(firstCollision(parsePortSpec("tcp:6000-6010"), parsePortSpec("tcp:6005-7000")) ==
        "tcp:6005");
  CHECK(firstCollision(parsePortSpec("tcp:6005-7000"), parsePortSpec("tcp:6000-6010")) ==
        "tcp:6005");
  CHECK(firstCollision(parsePortSpec("tcp:1-65535"), parsePortSpec("udp:9,tcp:65535")) ==
        "tcp:65535");
  CHECK(firstCollision(parsePortSpec("tcp:22,udp:53,udp:123"),
                       parsePortSpec("udp:100-200,tcp:443")) == "udp:123");
  // The first in (protocol, port) order, wherever it sits in either list.
  CHECK(firstCollision(parsePortSpec("tcp:10,tcp:20,udp:5"), parsePortSpec("udp:1-10,tcp:15-25")) ==
        "tcp:20");
  // Unsorted, overlapping input is canonicalised first.
  CHECK(firstCollision({{Transport::kTcp, 500, 600}, {Transport::kTcp, 100, 200}},
                       {{Transport::kTcp, 150, 150}}) == "tcp:150");
}

TEST_CASE("firstCollision finds nothing across protocols, neighbours or empty specs") {
  CHECK(firstCollision(parsePortSpec("tcp:80"), parsePortSpec("udp:80")).empty());
  CHECK(firstCollision(parsePortSpec("tcp:80-90"), parsePortSpec("tcp:91-100")).empty());
  CHECK(firstCollision(parsePortSpec("tcp:80,tcp:82"), parsePortSpec("tcp:81,tcp:83")).empty());
  CHECK(firstCollision({}, parsePortSpec("tcp:1-65535")).empty());
  CHECK(firstCollision(parsePortSpec("tcp:1-65535"), {}).empty());
}

TEST_CASE("transport names and numbers are the kernel's") {
  CHECK(plng::proto::transportName(Transport::kTcp) == "tcp");
  CHECK(plng::proto::transportName(Transport::kUdp) == "udp");
  CHECK(static_cast<int>(Transport::kTcp) == 6);
  CHECK(static_cast<int>(Transport::kUdp) == 17);
}

TEST_CASE("canonicalPortRanges sorts and merges ranges without text") {
  CHECK(plng::proto::canonicalPortRanges({{Transport::kUdp, 1, 5},
                                          {Transport::kTcp, 7, 9},
                                          {Transport::kUdp, 6, 6},
                                          {Transport::kTcp, 8, 20}}) ==
        std::vector<PortRange>{{Transport::kTcp, 7, 20}, {Transport::kUdp, 1, 6}});
  CHECK(plng::proto::canonicalPortRanges({}).empty());
}
