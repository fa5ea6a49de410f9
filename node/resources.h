// Resource allocations of a sliver, and their translation from slice tags.
//
// PLC stores tag values canonically (docs/plc.md): bytes in bytes, rates in
// bit/s, ints, booleans, capability lists "CAP_A,CAP_B". Nodes never parse units.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

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

// Knob values as the kernel takes them, shared by both drivers.
std::uint64_t cpuWeightOf(std::uint32_t cpu_share);    // v2 cpu.weight, 1..10000
std::uint64_t cpuSharesV1Of(std::uint32_t cpu_share);  // v1 cpu.shares, 2..262144

}  // namespace plng::node
