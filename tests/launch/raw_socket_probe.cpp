// raw-socket-probe: raw sockets from inside a sliver, for raw_socket_test (run
// there by runInSliver's exec_fd or by an initscript). Static: it runs in any
// image. Prints `key=value` lines; errno values are numbers (0 = success).
//
//   raw-socket-probe open 4|6 <protocol>
//       socket(AF_INET|AF_INET6, SOCK_RAW|SOCK_CLOEXEC|SOCK_NONBLOCK, protocol):
//       errno and the descriptor's flags. For ICMP over IPv4, also an echo
//       request to 127.0.0.1: sendto's errno and whether the reply came back
//       on the socket.
//   raw-socket-probe ping-dgram [address]
//       An echo request to the address (default 127.0.0.1) over an ICMP datagram
//       socket, as iputils' ping sends it without privileges: errno, sendto's
//       errno, echo_reply.
//   raw-socket-probe loop <seconds>
//       Opens and closes raw ICMP sockets for that long; prints how many
//       succeeded, how many failed and the longest single call in ms.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

double nowMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

unsigned short checksum(const void* data, std::size_t length) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  unsigned long sum = 0;
  for (std::size_t i = 0; i + 1 < length; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if (length % 2) sum += bytes[length - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<unsigned short>(~sum));
}

// An echo request to 127.0.0.1 on raw ICMP socket `fd`; true when its reply
// arrives within two seconds.
bool echo(int fd) {
  icmphdr request{};
  request.type = ICMP_ECHO;
  request.un.echo.id = htons(static_cast<unsigned short>(::getpid()));
  request.un.echo.sequence = htons(7);
  request.checksum = checksum(&request, sizeof request);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::sendto(fd, &request, sizeof request, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
    std::printf("sendto_errno=%d\n", errno);
    return false;
  }
  std::printf("sendto_errno=0\n");
  const double deadline = nowMs() + 2000;
  while (nowMs() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char packet[1500];
    const ssize_t n = ::recv(fd, packet, sizeof packet, 0);
    if (n < static_cast<ssize_t>(sizeof(iphdr) + sizeof(icmphdr))) continue;
    const auto* ip = reinterpret_cast<const iphdr*>(packet);
    const auto* reply = reinterpret_cast<const icmphdr*>(packet + ip->ihl * 4);
    if (reply->type == ICMP_ECHOREPLY && reply->un.echo.id == request.un.echo.id) return true;
  }
  return false;
}

int open(int version, int protocol) {
  const int family = version == 6 ? AF_INET6 : AF_INET;
  const int fd = ::socket(family, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
  std::printf("errno=%d\n", fd < 0 ? errno : 0);
  if (fd < 0) return 0;
  std::printf("cloexec=%d\n", (::fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
  std::printf("nonblock=%d\n", (::fcntl(fd, F_GETFL) & O_NONBLOCK) ? 1 : 0);
  if (family == AF_INET && protocol == IPPROTO_ICMP)
    std::printf("echo_reply=%d\n", echo(fd) ? 1 : 0);
  ::close(fd);
  return 0;
}

// An ICMP datagram ("ping") socket, as iputils' ping opens one: allowed by
// net.ipv4.ping_group_range, no raw right needed. The kernel fills in the echo
// id and checksum, and hands back the reply without its IP header.
int pingDgram(const char* address) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP);
  std::printf("errno=%d\n", fd < 0 ? errno : 0);
  if (fd < 0) return 0;
  icmphdr request{};
  request.type = ICMP_ECHO;
  request.un.echo.sequence = htons(9);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  if (::inet_pton(AF_INET, address, &to.sin_addr) != 1) return 2;
  const bool sent =
      ::sendto(fd, &request, sizeof request, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) >= 0;
  std::printf("sendto_errno=%d\n", sent ? 0 : errno);
  bool replied = false;
  pollfd p{fd, POLLIN, 0};
  if (sent && ::poll(&p, 1, 2000) == 1) {
    icmphdr reply{};
    replied = ::recv(fd, &reply, sizeof reply, 0) == sizeof reply && reply.type == ICMP_ECHOREPLY;
  }
  std::printf("echo_reply=%d\n", replied ? 1 : 0);
  ::close(fd);
  return 0;
}

int loop(double seconds) {
  const double end = nowMs() + seconds * 1000;
  unsigned long ok = 0, failed = 0;
  int last_errno = 0;
  double longest = 0;
  while (nowMs() < end) {
    const double start = nowMs();
    const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    const double took = nowMs() - start;
    if (took > longest) longest = took;
    if (fd < 0) {
      ++failed;
      last_errno = errno;
    } else {
      ++ok;
      ::close(fd);
    }
  }
  std::printf("ok=%lu\nfailed=%lu\nlast_errno=%d\nlongest_ms=%.0f\n", ok, failed, last_errno,
              longest);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc == 4 && std::strcmp(argv[1], "open") == 0) {
    return open(std::atoi(argv[2]), std::atoi(argv[3]));
  }
  if (argc == 3 && std::strcmp(argv[1], "loop") == 0) return loop(std::atof(argv[2]));
  if ((argc == 2 || argc == 3) && std::strcmp(argv[1], "ping-dgram") == 0) {
    return pingDgram(argc == 3 ? argv[2] : "127.0.0.1");
  }
  std::fprintf(
      stderr,
      "usage: raw-socket-probe open 4|6 <protocol> | loop <seconds> | ping-dgram [address]\n");
  return 2;
}
