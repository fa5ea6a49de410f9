// Fuzz target: the `ports` grammar (proto/port_spec.h) that PLC and every node
// parse.
//
// Input: "<first spec>\n<second spec>" (no newline: one spec). Properties:
//  - parsePortSpec refuses with PortSpecError only, in a short printable message;
//  - what it accepts is canonical: sorted by protocol then port, each range
//    first <= last within 1-65535, neither overlapping nor touching the next;
//  - formatPortSpec reads back as the same ranges and is canonical again;
//  - firstCollision of two accepted specs names a port both contain, and is
//    empty exactly when no range of one overlaps a range of the other.
#include "proto/port_spec.h"

#include <algorithm>
#include <string>
#include <tuple>

#include "tests/fuzz/fuzz_harness.h"

namespace {

using plng::fuzz::fail;
using plng::proto::PortRange;
using plng::proto::Transport;

bool parse(std::string_view value, std::vector<PortRange>& ranges) {
  try {
    ranges = plng::proto::parsePortSpec(value);
    return true;
  } catch (const plng::proto::PortSpecError& e) {
    const std::string message = e.what();
    if (message.size() > 256 || !std::all_of(message.begin(), message.end(), [](unsigned char c) {
          return c >= 0x20 && c < 0x7f;
        })) {
      fail("a refusal is long or not printable: " + message.substr(0, 256));
    }
    return false;
  }
}

void checkCanonical(const std::vector<PortRange>& ranges) {
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const auto& r = ranges[i];
    if (r.first < 1 || r.first > r.last) fail("a range is empty or starts at port 0");
    if (r.transport != Transport::kTcp && r.transport != Transport::kUdp) fail("bad transport");
    if (i == 0) continue;
    const auto& p = ranges[i - 1];
    if (std::tuple(p.transport, p.last) >= std::tuple(r.transport, r.first) ||
        (p.transport == r.transport && p.last + 1 == r.first)) {
      fail("ranges not sorted, disjoint and apart: " + plng::proto::formatPortSpec(ranges));
    }
  }
  const auto text = plng::proto::formatPortSpec(ranges);
  std::vector<PortRange> again;
  if (!parse(text, again) || again != ranges) fail("canonical text does not read back: " + text);
  if (plng::proto::formatPortSpec(again) != text) fail("canonical text not canonical: " + text);
}

void checkCollision(const std::vector<PortRange>& a, const std::vector<PortRange>& b) {
  bool any = false;
  for (const auto& x : a) {
    for (const auto& y : b) any = any || x.overlaps(y);
  }
  const auto collision = plng::proto::firstCollision(a, b);
  if (collision.empty() != !any) fail("firstCollision disagrees with overlaps()");
  if (collision != plng::proto::firstCollision(b, a)) fail("firstCollision is not symmetric");
  if (collision.empty()) return;
  std::vector<PortRange> port;
  if (!parse(collision, port) || port.size() != 1 || port[0].first != port[0].last) {
    fail("firstCollision is not one port: " + collision);
  }
  auto holds = [&](const std::vector<PortRange>& spec) {
    return std::any_of(spec.begin(), spec.end(), [&](const PortRange& r) {
      return r.contains(port[0].transport, port[0].first);
    });
  };
  if (!holds(a) || !holds(b)) fail("firstCollision names a port not in both: " + collision);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = plng::fuzz::asText(data, size);
  const auto nl = input.find('\n');
  std::vector<PortRange> a, b;
  const bool a_ok = parse(input.substr(0, nl), a);
  if (a_ok) checkCanonical(a);
  if (nl == std::string_view::npos) return 0;
  const bool b_ok = parse(input.substr(nl + 1), b);
  if (b_ok) checkCanonical(b);
  if (a_ok && b_ok) checkCollision(a, b);
  return 0;
}

std::vector<plng::fuzz::Seed> plng::fuzz::generatedSeeds() { return {}; }
