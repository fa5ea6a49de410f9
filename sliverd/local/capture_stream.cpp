#include "sliverd/local/capture_stream.h"

#include <linux/if_packet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace plng::sliverd {
namespace {

constexpr std::uint32_t kPcapMagic = 0xa1b2c3d4;  // microsecond timestamps, host order
constexpr std::uint32_t kLinktypeRaw = 101;       // LINKTYPE_RAW: starts at the IP header
constexpr int kLoopbackIfindex = 1;               // lo, in every network namespace

struct PcapFileHeader {
  std::uint32_t magic = kPcapMagic;
  std::uint16_t version_major = 2;
  std::uint16_t version_minor = 4;
  std::int32_t thiszone = 0;
  std::uint32_t sigfigs = 0;
  std::uint32_t snaplen = 0;
  std::uint32_t linktype = kLinktypeRaw;
};

struct PcapRecordHeader {
  std::uint32_t seconds = 0;
  std::uint32_t microseconds = 0;
  std::uint32_t captured = 0;
  std::uint32_t length = 0;
};

// Writes all of `data`, waiting while `out` is full. False when the reader is gone.
bool writeAll(int out, const void* data, std::size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::send(out, bytes, size, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) return ::write(out, bytes, size) == static_cast<ssize_t>(size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{out, POLLOUT, 0};
      if (::poll(&p, 1, 1000) < 0 && errno != EINTR) return false;
      continue;
    }
    if (n <= 0) return false;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

CaptureLimits CaptureLimits::fitted(std::uint32_t count, std::uint32_t seconds,
                                    std::uint32_t snaplen) {
  CaptureLimits limits;
  if (count != 0) limits.count = std::min(count, kMaxCount);
  if (seconds != 0) limits.seconds = std::min(seconds, kMaxSeconds);
  if (snaplen != 0) limits.snaplen = std::clamp(snaplen, kMinSnaplen, kDefaultSnaplen);
  return limits;
}

std::uint64_t streamCapture(int packet_socket, int out, const CaptureLimits& limits) {
  PcapFileHeader file;
  file.snaplen = limits.snaplen;
  if (!writeAll(out, &file, sizeof file)) return 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(limits.seconds);
  std::vector<char> packet(limits.snaplen);
  std::uint64_t written = 0;
  while (written < limits.count) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    // The reader's hang-up ends the capture as much as a packet wakes it.
    pollfd polls[2] = {{packet_socket, POLLIN, 0}, {out, POLLRDHUP, 0}};
    const int ready = ::poll(polls, 2, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (polls[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) break;
    if (!(polls[0].revents & POLLIN)) continue;
    sockaddr_ll from{};
    socklen_t from_size = sizeof from;
    const ssize_t n =
        ::recvfrom(packet_socket, packet.data(), packet.size(), MSG_TRUNC | MSG_DONTWAIT,
                   reinterpret_cast<sockaddr*>(&from), &from_size);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      break;
    }
    if (from.sll_pkttype == PACKET_OUTGOING && from.sll_ifindex == kLoopbackIfindex) continue;
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    PcapRecordHeader record;
    record.seconds = static_cast<std::uint32_t>(now.tv_sec);
    record.microseconds = static_cast<std::uint32_t>(now.tv_nsec / 1000);
    record.length = static_cast<std::uint32_t>(n);
    record.captured = std::min<std::uint32_t>(record.length, limits.snaplen);
    if (!writeAll(out, &record, sizeof record) || !writeAll(out, packet.data(), record.captured)) {
      break;
    }
    ++written;
  }
  return written;
}

}  // namespace plng::sliverd
