// The `ports` slice tag: port numbers a slice reserves on the nodes it runs on.
// PLC validates and stores it canonically, sliverd compiles it into vnet-bpf's
// port maps; both read it through this one parser (docs/vnet.md, "Ports").
//
// Grammar (white space around items is ignored; the empty value reserves nothing):
//   ports    = [ item *( "," item ) ]
//   item     = proto ":" port [ "-" port ]
//   proto    = "tcp" | "udp"
//   port     = 1*5DIGIT            ; 1..65535, no sign, no leading "+"
// A range names its lower port first ("tcp:80-80" is "tcp:80"). The protocol is
// read in any case ("TCP:80"); a port may have leading zeros within its five
// digits ("tcp:080" is tcp:80, decimal, never octal); there is no white space
// inside an item ("tcp: 80" is refused). Items may overlap each other; the
// canonical form (formatPortSpec) writes the protocol in lower case and ports
// without leading zeros, sorts by protocol then port, and merges overlapping
// and adjacent ranges: "udp:53, tcp:81,tcp:80" -> "tcp:80-81,udp:53".
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace plng::proto {

enum class Transport : std::uint8_t { kTcp = 6, kUdp = 17 };  // IPPROTO_TCP, IPPROTO_UDP

std::string_view transportName(Transport transport);  // "tcp" | "udp"

struct PortRange {
  Transport transport = Transport::kTcp;
  std::uint16_t first = 0;
  std::uint16_t last = 0;  // inclusive; first <= last
  bool overlaps(const PortRange& other) const;
  bool contains(Transport t, std::uint16_t port) const;
  bool operator==(const PortRange&) const = default;
};

// A `ports` value that does not follow the grammar: the message names the
// offending item and says what is expected.
class PortSpecError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Parses a `ports` value into canonical ranges (sorted, merged). Throws
// PortSpecError.
std::vector<PortRange> parsePortSpec(std::string_view value);

// `ranges` sorted by protocol then port, overlapping and adjacent ones merged.
std::vector<PortRange> canonicalPortRanges(std::vector<PortRange> ranges);

// The canonical text of `ranges` (which need not be canonical themselves).
std::string formatPortSpec(std::vector<PortRange> ranges);

// The first pair of overlapping ranges between `a` and `b`, if any: the port
// both reserve, for an error message ("tcp:80"): the lowest such port, and ""
// when `a` and `b` share none.
std::string firstCollision(const std::vector<PortRange>& a, const std::vector<PortRange>& b);

}  // namespace plng::proto
