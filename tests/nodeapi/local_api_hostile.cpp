// A hostile client of sliverd's local API, run inside a real sliver by
// local_api_test (statically linked: a sliver's image has no host libraries).
// It speaks the framing of sliverd/local/local_protocol.h by hand, as an attacker
// would, and prints what happened on stdout.
//
//   hold SOCKET N MARK         open N connections and keep them (until killed);
//                              creates the file MARK once they are open
//   announce SOCKET N LEN SENT MARK
//                              open N connections, each sending a frame header
//                              announcing LEN bytes and then SENT bytes of it,
//                              and keep them (until killed); then creates MARK
//   call SOCKET METHOD [SLICE] one request; prints "<status code> <message>"
//   idle SOCKET MAX_MS         connect, send nothing; prints "closed after <ms>"
//                              when sliverd closes it, or "open" after MAX_MS
//   slowloris SOCKET EVERY_MS MAX_MS
//                              a request frame sent one byte every EVERY_MS;
//                              prints "closed after <ms>" or "open"
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/eintr.h"

namespace {

int connectTo(const char* path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string u32(std::uint32_t v) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
  return out;
}

bool sendAll(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = plng::base::retryOnEintr(
        [&] { return ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL); });
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool recvAll(int fd, char* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n =
        plng::base::retryOnEintr([&] { return ::recv(fd, out + done, size - done, 0); });
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

long long nowMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Waits until the peer closes (or sends): true when it did within `ms`.
bool closedWithin(int fd, long long ms) {
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(ms));
  if (r <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) == 0 || (p.revents & (POLLHUP | POLLERR)) != 0;
}

void raiseFileLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

[[noreturn]] void holdForever(const char* mark) {
  std::fflush(stdout);
  if (FILE* f = std::fopen(mark, "w")) std::fclose(f);
  for (;;) ::pause();
}

int hold(const char* socket, long n, const char* mark) {
  raiseFileLimit();
  long connected = 0;
  for (long i = 0; i < n; ++i) {
    if (connectTo(socket) >= 0) ++connected;
  }
  std::printf("connected %ld of %ld\n", connected, n);
  holdForever(mark);
}

int announce(const char* socket, long n, long claimed, long sent, const char* mark) {
  raiseFileLimit();
  const std::string frame = u32(static_cast<std::uint32_t>(claimed)) + std::string(sent, 'x');
  long delivered = 0;
  for (long i = 0; i < n; ++i) {
    int fd = connectTo(socket);
    if (fd < 0) continue;
    if (sendAll(fd, frame)) ++delivered;
  }
  std::printf("announced %ld frames of %ld bytes\n", delivered, claimed);
  holdForever(mark);
}

int call(const char* socket, const std::string& method, const std::string& slice) {
  int fd = connectTo(socket);
  if (fd < 0) {
    std::printf("connect: %s\n", std::strerror(errno));
    return 2;
  }
  // The request: u8 method length, method, then GetSliverRequest /
  // SliverActionRequest { string slice_name = 1; } when a slice is named.
  std::string body(1, static_cast<char>(method.size()));
  body += method;
  if (!slice.empty()) {
    body += '\x0a';
    body += static_cast<char>(slice.size());
    body += slice;
  }
  sendAll(fd, u32(static_cast<std::uint32_t>(body.size())) + body);
  unsigned char header[4];
  if (!recvAll(fd, reinterpret_cast<char*>(header), 4)) {
    std::printf("no answer\n");
    return 3;
  }
  std::uint32_t size = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                       (std::uint32_t{header[2]} << 8) | header[3];
  if (size < 8 || size > (1u << 20)) {
    std::printf("bad answer of %u bytes\n", size);
    return 3;
  }
  std::string answer(size, '\0');
  if (!recvAll(fd, answer.data(), size)) {
    std::printf("truncated answer\n");
    return 3;
  }
  auto at = [&](std::size_t i) { return static_cast<unsigned char>(answer[i]); };
  std::uint32_t code = (std::uint32_t{at(0)} << 24) | (at(1) << 16) | (at(2) << 8) | at(3);
  std::uint32_t length = (std::uint32_t{at(4)} << 24) | (at(5) << 16) | (at(6) << 8) | at(7);
  std::printf("%u %s\n", code, answer.substr(8, length).c_str());
  return 0;
}

int idle(const char* socket, long max_ms) {
  int fd = connectTo(socket);
  if (fd < 0) {
    std::printf("connect: %s\n", std::strerror(errno));
    return 2;
  }
  const long long start = nowMs();
  if (closedWithin(fd, max_ms)) {
    std::printf("closed after %lld ms\n", nowMs() - start);
  } else {
    std::printf("open\n");
  }
  return 0;
}

int slowloris(const char* socket, long every_ms, long max_ms) {
  int fd = connectTo(socket);
  if (fd < 0) {
    std::printf("connect: %s\n", std::strerror(errno));
    return 2;
  }
  const std::string frame = u32(200) + std::string(200, 'x');
  const long long start = nowMs();
  for (std::size_t i = 0; nowMs() - start < max_ms; ++i) {
    if (i < frame.size() && !sendAll(fd, frame.substr(i, 1))) break;
    if (closedWithin(fd, every_ms)) break;
  }
  if (nowMs() - start < max_ms) {
    std::printf("closed after %lld ms\n", nowMs() - start);
  } else {
    std::printf("open\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "hold" && argc == 5) return hold(argv[2], std::atol(argv[3]), argv[4]);
  if (command == "announce" && argc == 7) {
    return announce(argv[2], std::atol(argv[3]), std::atol(argv[4]), std::atol(argv[5]), argv[6]);
  }
  if (command == "call" && (argc == 4 || argc == 5)) {
    return call(argv[2], argv[3], argc == 5 ? argv[4] : "");
  }
  if (command == "idle" && argc == 4) return idle(argv[2], std::atol(argv[3]));
  if (command == "slowloris" && argc == 5) {
    return slowloris(argv[2], std::atol(argv[3]), std::atol(argv[4]));
  }
  std::fprintf(stderr, "usage: see the comment at the top of local_api_hostile.cpp\n");
  return 64;
}
