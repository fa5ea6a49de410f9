// The stream of `sliverctl capture` (docs/vnet.md, "Packet capture"): what a
// slice's filtered packet socket receives, written as a pcap file to the local
// API connection that asked for it. sliverd keeps the socket: a slice without
// net_capture never holds a packet socket (which could also send raw frames).
#pragma once

#include <chrono>
#include <cstdint>

namespace plng::sliverd {

inline constexpr std::uint32_t kMaxCapturePackets = 1'000'000;

struct CaptureLimits {
  static constexpr std::uint32_t kDefaultCount = 1000;
  static constexpr std::uint32_t kMaxCount = kMaxCapturePackets;
  static constexpr std::uint32_t kDefaultSeconds = 60;
  static constexpr std::uint32_t kMaxSeconds = 3600;
  static constexpr std::uint32_t kDefaultSnaplen = 262144;  // tcpdump's
  static constexpr std::uint32_t kMinSnaplen = 64;

  std::uint32_t count = kDefaultCount;
  std::uint32_t seconds = kDefaultSeconds;
  std::uint32_t snaplen = kDefaultSnaplen;

  // A caller's request made to fit: 0 = the default, above the maximum = the
  // maximum.
  static CaptureLimits fitted(std::uint32_t count, std::uint32_t seconds, std::uint32_t snaplen);
};

// Writes a pcap stream (the classic format, link type RAW: each record an IPv4
// or IPv6 packet) of what `packet_socket` (AF_PACKET, SOCK_DGRAM) receives to
// `out`, until `limits` are reached or the reader goes (`out` hangs up or a
// write fails). On loopback the kernel shows each packet twice, leaving and
// arriving: the leaving copy is skipped, as libpcap does. Returns the packets
// written. Blocks; `out` may be non-blocking.
std::uint64_t streamCapture(int packet_socket, int out, const CaptureLimits& limits);

}  // namespace plng::sliverd
