// vnet-bpf's policy programs against the real kernel: two slices (A, B) in
// sliver cgroups under one slivers cgroup, in a network namespace of the
// test's own; real sockets and packets, each rule allowed and refused.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "tests/support/skip.h"
#include "tests/vnet/vnet_fixture.h"
#include "vnet-bpf/bandwidth.h"
#include "vnet-bpf/features.h"
#include "vnet-bpf/network_policy.h"

using namespace plng::test;
using namespace plng::vnet;
using plng::proto::PortRange;
using plng::proto::Transport;

namespace {

std::uint64_t counter(NetworkPolicy& policy, std::uint32_t xid, const std::string& reason) {
  auto counts = policy.counters(xid);
  auto it = counts.find(reason);
  return it == counts.end() ? 0 : it->second;
}

// A policy whose two slices both have the raw right.
std::unique_ptr<NetworkPolicy> openWithRawSlices(VnetEnvironment& env) {
  auto policy = env.open();
  policy->setSlice(kXidA, SlicePolicy{.raw_sockets = true, .max_ports = 2000, .reserved = {}});
  policy->setSlice(kXidB, SlicePolicy{.raw_sockets = true, .max_ports = 2000, .reserved = {}});
  return policy;
}

std::uint16_t checksum(const void* data, std::size_t length) {
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < length; i += 2)
    sum += static_cast<std::uint32_t>(bytes[i] << 8 | bytes[i + 1]);
  if (length % 2) sum += static_cast<std::uint32_t>(bytes[length - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<std::uint16_t>(~sum));
}

struct RawPacket {
  const char* source = "127.0.0.1";
  const char* destination = "127.0.0.1";
  std::uint8_t protocol = IPPROTO_UDP;
  std::uint16_t source_port = 40000;  // UDP/TCP; the echo id for ICMP
  std::uint16_t destination_port = 7000;
  std::uint8_t icmp_type = ICMP_ECHO;
  bool more_fragments = false;
};

// Sends `packet` through an IP_HDRINCL raw socket: 0 or errno.
int sendRaw(const RawPacket& packet) {
  int sock = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (sock < 0) return errno;
  std::uint8_t buffer[64] = {};
  auto* ip = reinterpret_cast<iphdr*>(buffer);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = packet.protocol;
  ip->frag_off = htons(packet.more_fragments ? IP_MF : 0);
  inet_pton(AF_INET, packet.source, &ip->saddr);
  inet_pton(AF_INET, packet.destination, &ip->daddr);
  std::uint8_t* l4 = buffer + sizeof(iphdr);
  std::size_t l4_length = 8;
  if (packet.protocol == IPPROTO_ICMP) {
    auto* icmp = reinterpret_cast<icmphdr*>(l4);
    icmp->type = packet.icmp_type;
    icmp->un.echo.id = htons(packet.source_port);
    icmp->un.echo.sequence = htons(1);
    icmp->checksum = checksum(icmp, l4_length);
  } else {
    auto* udp = reinterpret_cast<udphdr*>(l4);
    udp->source = htons(packet.source_port);
    udp->dest = htons(packet.destination_port);
    udp->len = htons(static_cast<std::uint16_t>(l4_length));
  }
  std::size_t total = sizeof(iphdr) + l4_length;
  ip->tot_len = htons(static_cast<std::uint16_t>(total));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = ip->daddr;
  int err =
      sendto(sock, buffer, total, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0 ? errno : 0;
  close(sock);
  return err;
}

// An ICMP echo request to 127.0.0.1 with `id` from a raw (or ping) socket.
int sendEcho(int sock, std::uint16_t id) {
  icmphdr icmp{};
  icmp.type = ICMP_ECHO;
  icmp.un.echo.id = htons(id);
  icmp.un.echo.sequence = htons(1);
  icmp.checksum = checksum(&icmp, sizeof(icmp));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sendto(sock, &icmp, sizeof(icmp), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0
             ? errno
             : 0;
}

// Echo replies a raw ICMP socket receives within `window`: bit 0 = one with
// `own` id, bit 1 = one with another id; negative: errno of a failed send.
int echoRepliesSeen(std::uint16_t own, std::chrono::milliseconds delay,
                    std::chrono::milliseconds window) {
  int sock = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (sock < 0) return -errno;
  std::this_thread::sleep_for(delay);
  if (int err = sendEcho(sock, own)) return -err;
  int seen = 0;
  auto end = std::chrono::steady_clock::now() + window;
  while (std::chrono::steady_clock::now() < end) {
    pollfd poller{sock, POLLIN, 0};
    if (poll(&poller, 1, 50) <= 0) continue;
    std::uint8_t buffer[256];
    ssize_t n = recv(sock, buffer, sizeof(buffer), 0);
    if (n < static_cast<ssize_t>(sizeof(iphdr) + sizeof(icmphdr))) continue;
    auto* ip = reinterpret_cast<iphdr*>(buffer);
    auto* icmp = reinterpret_cast<icmphdr*>(buffer + ip->ihl * 4);
    if (icmp->type != ICMP_ECHOREPLY) continue;
    seen |= ntohs(icmp->un.echo.id) == own ? 1 : 2;
  }
  close(sock);
  return seen;
}

// ICMP errors a raw ICMP socket receives within `window` after a UDP socket bound
// to `port` sent to 127.0.0.1:7000 (allowlisted, nobody listening: port
// unreachable) when `send`: bit 0 = an error quoting `port`, bit 1 = any other.
int portUnreachablesSeen(int port, bool send, std::chrono::milliseconds window) {
  int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  if (raw < 0) return -errno;
  if (send) {
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(static_cast<std::uint16_t>(port));
    if (bind(udp, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) return -errno;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(7000);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sendto(udp, "probe", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) return -errno;
  }
  int seen = 0;
  auto end = std::chrono::steady_clock::now() + window;
  while (std::chrono::steady_clock::now() < end) {
    pollfd poller{raw, POLLIN, 0};
    if (poll(&poller, 1, 50) <= 0) continue;
    std::uint8_t buffer[256];
    ssize_t n = recv(raw, buffer, sizeof(buffer), 0);
    if (n < 20 + 8 + 20 + 8) continue;
    auto* ip = reinterpret_cast<iphdr*>(buffer);
    auto* icmp = reinterpret_cast<icmphdr*>(buffer + ip->ihl * 4);
    if (icmp->type != ICMP_DEST_UNREACH) continue;
    auto* quoted = reinterpret_cast<iphdr*>(reinterpret_cast<std::uint8_t*>(icmp) + 8);
    auto* quoted_udp =
        reinterpret_cast<udphdr*>(reinterpret_cast<std::uint8_t*>(quoted) + quoted->ihl * 4);
    seen |= ntohs(quoted_udp->source) == port ? 1 : 2;
  }
  close(raw);
  return seen;
}

}  // namespace

TEST_CASE("features are probed and the required ones are present here", "[vnet][root][ports]") {
  requireRoot();
  const Features& features = probeFeatures();
  INFO(features.summary());
  CHECK(features.complete());
  CHECK(features.has(kCgroupSockAddr));
  CHECK(features.has(kSockRelease));
  CHECK(features.summary().find("connect_unix=") != std::string::npos);
}

TEST_CASE("a port bound by one slice cannot be taken by another", "[vnet][root][ports]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();

  SECTION("TCP, every way of binding it") {
    SliceProcess holder(env.slice_a, false,
                        [] { return bindSocket(AF_INET, SOCK_STREAM, 18080, true, true); });
    REQUIRE(holder.result() == 0);
    // Another address family, SO_REUSEADDR, SO_REUSEPORT, v4-mapped: all refused.
    CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_STREAM, 18080); }) == EPERM);
    CHECK(runInSlice(env.slice_b,
                     [] { return bindSocket(AF_INET, SOCK_STREAM, 18080, true, true); }) == EPERM);
    CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET6, SOCK_STREAM, 18080); }) ==
          EPERM);
    CHECK(runInSlice(env.slice_b, [] {
            return bindSocket(AF_INET6, SOCK_STREAM, 18080, false, false, /*v4mapped=*/true);
          }) == EPERM);
    // The owner binds it again (SO_REUSEPORT, same uid).
    CHECK(runInSlice(env.slice_a,
                     [] { return bindSocket(AF_INET, SOCK_STREAM, 18080, true, true); }) == 0);
    CHECK(counter(*policy, kXidB, "port_owned") >= 4);
    auto owners = policy->ports(kXidA);
    REQUIRE(owners.size() == 1);
    CHECK(owners[0].port == PortKey{VNET_PROTO_TCP, 18080});
    CHECK(owners[0].hold == PortHold::kBound);
    CHECK(owners[0].sockets == 1);

    // Freed when the owner's last socket closes.
    holder.stop();
    CHECK(policy->ports(kXidA).empty());
    CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET6, SOCK_STREAM, 18080); }) == 0);
  }

  SECTION("UDP with SO_REUSEADDR, which the kernel alone would share across uids") {
    SliceProcess holder(env.slice_a, false,
                        [] { return bindSocket(AF_INET6, SOCK_DGRAM, 18053, true); });
    REQUIRE(holder.result() == 0);
    CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 18053, true); }) ==
          EPERM);
    CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET6, SOCK_DGRAM, 18053, true); }) ==
          EPERM);
    // Outside the slivers (the node itself) the kernel's own rule still applies.
    CHECK(bindSocket(AF_INET, SOCK_DGRAM, 18054, true) == 0);
    CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 18054, true); }) ==
          0);
  }

  SECTION("port 0 and ports the kernel picks at sendto belong to their slice") {
    int picked = 0;
    int* picked_ptr = &picked;
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    SliceProcess bound_zero(env.slice_a, false, [&] {
      int port = 0;
      int err = bindSocket(AF_INET, SOCK_DGRAM, 0, true, false, false, &port);
      if (write(pipefd[1], &port, sizeof(port)) != sizeof(port)) return -1;
      return err;
    });
    REQUIRE(bound_zero.result() == 0);
    REQUIRE(read(pipefd[0], picked_ptr, sizeof(picked)) == sizeof(picked));
    CHECK(runInSlice(env.slice_b, [&] { return bindSocket(AF_INET, SOCK_DGRAM, picked, true); }) ==
          EPERM);

    int sent_from = 0;
    SliceProcess sender(env.slice_a, false, [&] {
      int port = 0;
      int err = sendUdp(AF_INET, "127.0.0.1", 7000, &port, /*reuseaddr=*/true);
      if (write(pipefd[1], &port, sizeof(port)) != sizeof(port)) return -1;
      return err;
    });
    REQUIRE(sender.result() == 0);
    REQUIRE(read(pipefd[0], &sent_from, sizeof(sent_from)) == sizeof(sent_from));
    CHECK(runInSlice(env.slice_b,
                     [&] { return bindSocket(AF_INET, SOCK_DGRAM, sent_from, true); }) == EPERM);
    sender.stop();
    CHECK(runInSlice(env.slice_b,
                     [&] { return bindSocket(AF_INET, SOCK_DGRAM, sent_from, true); }) == 0);

    // A TCP port picked at connect (SO_REUSEADDR on both sides: the kernel alone
    // would let B bind it while A's connection is not listening).
    int node = listenAsNode(AF_INET, SOCK_STREAM, 7000);
    int connected_from = 0;
    SliceProcess client(env.slice_a, false, [&] {
      int sock = socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(7000);
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      int err = connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 ? 0 : errno;
      sockaddr_in local{};
      socklen_t length = sizeof(local);
      getsockname(sock, reinterpret_cast<sockaddr*>(&local), &length);
      int port = ntohs(local.sin_port);
      if (write(pipefd[1], &port, sizeof(port)) != sizeof(port)) return -1;
      return err;
    });
    REQUIRE(client.result() == 0);
    REQUIRE(read(pipefd[0], &connected_from, sizeof(connected_from)) == sizeof(connected_from));
    CHECK(runInSlice(env.slice_b, [&] {
            return bindSocket(AF_INET, SOCK_STREAM, connected_from, true);
          }) == EPERM);
    // Closed, it frees the port, though TCP still sends its FIN or RST after
    // sock_release.
    client.stop();
    CHECK(runInSlice(env.slice_a, [] {
            for (int i = 0; i < 3; ++i) {
              int sock = socket(AF_INET, SOCK_STREAM, 0);
              sockaddr_in to{};
              to.sin_family = AF_INET;
              to.sin_port = htons(7000);
              to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
              if (connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return errno;
              linger reset{1, 0};
              setsockopt(sock, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
              close(sock);
            }
            return 0;
          }) == 0);
    for (const PortOwner& owner : policy->ports(kXidA))
      CHECK(owner.port.protocol != VNET_PROTO_TCP);
    close(node);
    close(pipefd[0]);
    close(pipefd[1]);
  }
}

TEST_CASE("a slice holds at most max_ports ports at once", "[vnet][root][ports]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  policy->setSlice(kXidA, SlicePolicy{.raw_sockets = false, .max_ports = 3, .reserved = {}});
  CHECK(runInSlice(env.slice_a, [] {
          for (int port = 19001; port <= 19003; ++port)
            if (int err = bindSocket(AF_INET, SOCK_DGRAM, port)) return err;
          return bindSocket(AF_INET, SOCK_DGRAM, 19004);
        }) == EPERM);
  CHECK(counter(*policy, kXidA, "port_cap") == 1);
  // A port the kernel would pick past the cap is refused at connect and at the
  // first sendto, with an error, not by a SYN dropped at egress.
  int node = listenAsNode(AF_INET, SOCK_STREAM, 7000);
  CHECK(runInSlice(env.slice_a, [] {
          for (int port = 19001; port <= 19003; ++port)
            if (int err = bindSocket(AF_INET, SOCK_DGRAM, port)) return err;
          if (int err = connectTcp(AF_INET, "127.0.0.1", 7000); err != EPERM) return 1000 + err;
          return sendUdp(AF_INET, "127.0.0.1", 7000);
        }) == EPERM);
  CHECK(counter(*policy, kXidA, "port_cap") == 3);
  CHECK(runInSlice(env.slice_a, [] { return connectTcp(AF_INET, "127.0.0.1", 7000); }) == 0);
  close(node);
  // The cap is per slice: B is not affected, and A's ports came back on exit.
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19004); }) == 0);
  CHECK(runInSlice(env.slice_a, [] {
          for (int port = 19001; port <= 19003; ++port)
            if (int err = bindSocket(AF_INET, SOCK_DGRAM, port)) return err;
          return 0;
        }) == 0);
  // A cgroup no longer registered as a sliver's is not policed.
  policy->removeSliverCgroup(NetworkPolicy::cgroupId(env.slice_b));
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_STREAM, 5555); }) == 0);
  CHECK(runInSlice(env.slice_a, [] { return bindSocket(AF_INET, SOCK_STREAM, 5555); }) == EPERM);
}

TEST_CASE("a bind the kernel refuses holds its claim only while its socket does",
          "[vnet][root][ports]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  auto ownerOf = [&](int port) -> std::uint32_t {
    for (const PortOwner& owner : policy->ports())
      if (owner.port == PortKey{VNET_PROTO_UDP, static_cast<std::uint16_t>(port)}) return owner.xid;
    return 0;
  };
  // A's first socket holds 19101; its second asks for it too and the kernel
  // refuses (no SO_REUSEADDR): the second socket's claim keeps the port A's
  // after the first closes, until the second binds elsewhere.
  int step_fds[2];
  int go_fds[2];
  REQUIRE(pipe(step_fds) == 0);
  REQUIRE(pipe(go_fds) == 0);
  SliceProcess a(env.slice_a, false, [&] {
    int first = socket(AF_INET, SOCK_DGRAM, 0);
    int second = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(19101);
    if (bind(first, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return errno;
    if (bind(second, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 ||
        errno != EADDRINUSE)
      return -1;
    // A second bind of a bound socket is the kernel's to refuse (EINVAL);
    // the port it holds stays its own.
    sockaddr_in other = address;
    other.sin_port = htons(19103);
    if (bind(first, reinterpret_cast<sockaddr*>(&other), sizeof(other)) == 0 || errno != EINVAL)
      return -2;
    close(first);
    char step = 1;
    if (write(step_fds[1], &step, 1) != 1 || read(go_fds[0], &step, 1) != 1) return -3;
    other.sin_port = htons(19102);
    if (bind(second, reinterpret_cast<sockaddr*>(&other), sizeof(other)) != 0) return errno;
    return 0;
  });
  char step = 0;
  REQUIRE(read(step_fds[0], &step, 1) == 1);
  CHECK(ownerOf(19101) == kXidA);
  CHECK(ownerOf(19103) == 0);
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19101, true); }) ==
        EPERM);
  REQUIRE(write(go_fds[1], &step, 1) == 1);
  CHECK(a.result() == 0);
  CHECK(ownerOf(19101) == 0);
  CHECK(ownerOf(19102) == kXidA);
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19101, true); }) == 0);
  a.stop();
  CHECK(ownerOf(19102) == 0);
  for (int fd : {step_fds[0], step_fds[1], go_fds[0], go_fds[1]}) close(fd);
}

TEST_CASE("a slice holds at most max_bound_sockets bound sockets", "[vnet][root][ports]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  PolicyOptions options = env.options();
  options.max_bound_sockets = 4;
  auto policy = env.open(options);
  // Four sockets on one port (SO_REUSEPORT) are four bound sockets.
  CHECK(runInSlice(env.slice_a, [] {
          for (int i = 0; i < 4; ++i)
            if (int err = bindSocket(AF_INET, SOCK_DGRAM, 19201, false, true)) return err;
          return bindSocket(AF_INET, SOCK_DGRAM, 19202);
        }) == EPERM);
  CHECK(counter(*policy, kXidA, "socket_cap") == 1);
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19202); }) == 0);
  // Closed, they count no more.
  CHECK(runInSlice(env.slice_a, [] {
          for (int port = 19203; port <= 19206; ++port)
            if (int err = bindSocket(AF_INET, SOCK_DGRAM, port)) return err;
          return 0;
        }) == 0);
}

TEST_CASE("reserved ports: only their slice binds them, low ones without the capability",
          "[vnet][root][ports]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  policy->setSlice(
      kXidA, SlicePolicy{.raw_sockets = false,
                         .max_ports = 2000,
                         .reserved = {{Transport::kTcp, 80, 80}, {Transport::kUdp, 19500, 19500}}});
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET6, SOCK_DGRAM, 19500); }) == EPERM);
  CHECK(counter(*policy, kXidB, "port_reserved") == 1);
  CHECK(runInSlice(env.slice_a, [] { return bindSocket(AF_INET6, SOCK_DGRAM, 19500); }) == 0);
  if (probeFeatures().has(kBindGrantsLowPort)) {
    CHECK(runInSlice(env.slice_a, [] { return bindSocket(AF_INET, SOCK_STREAM, 80); }) == 0);
  } else {
    WARN("bind_grants_low_port absent: a reserved low port needs CAP_NET_BIND_SERVICE");
  }
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_STREAM, 80); }) == EPERM);
  // A low port nobody reserved: the kernel's own rule (no capability).
  CHECK(runInSlice(env.slice_a, [] { return bindSocket(AF_INET, SOCK_STREAM, 81); }) == EACCES);

  // The node's own ports, low and high.
  CHECK(runInSlice(env.slice_a, [] { return bindSocket(AF_INET, SOCK_STREAM, 5555); }) == EPERM);
  CHECK(counter(*policy, kXidA, "port_node") == 1);
  CHECK(runInSlice(env.slice_a, [] { return bindSocket(AF_INET, SOCK_STREAM, 5556); }) == 0);

  // Collisions are refused naming both, and change nothing.
  CHECK_THROWS_WITH(
      policy->setSlice(kXidB, SlicePolicy{.raw_sockets = false,
                                          .max_ports = 2000,
                                          .reserved = {{Transport::kTcp, 79, 81}}}),
      Catch::Contains("1002") && Catch::Contains("1001") && Catch::Contains("tcp:80"));
  CHECK_THROWS_WITH(policy->setSlice(kXidB, SlicePolicy{.raw_sockets = false,
                                                        .max_ports = 2000,
                                                        .reserved = {{Transport::kTcp, 22, 22}}}),
                    Catch::Contains("node's own ports"));
  CHECK(policy->ports(kXidB).empty());
  // Removing the slice frees its reservation for others.
  policy->removeSlice(kXidA);
  CHECK(policy->ports(kXidA).empty());
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET6, SOCK_DGRAM, 19500); }) == 0);
}

TEST_CASE("slices reach each other on the node's addresses, not the node's own services",
          "[vnet][root]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  int node_tcp = listenAsNode(AF_INET, SOCK_STREAM, 6000);
  int node_tcp6 = listenAsNode(AF_INET6, SOCK_STREAM, 6000);
  int allowed_tcp = listenAsNode(AF_INET, SOCK_STREAM, 7000);

  CHECK(runInSlice(env.slice_a, [] { return connectTcp(AF_INET, "127.0.0.1", 6000); }) == EPERM);
  CHECK(runInSlice(env.slice_a, [] { return connectTcp(AF_INET, "127.9.9.9", 6000); }) == EPERM);
  CHECK(runInSlice(env.slice_a, [] { return connectTcp(AF_INET6, "::1", 6000); }) == EPERM);
  CHECK(runInSlice(env.slice_a, [] { return connectTcp(AF_INET6, "::ffff:127.0.0.1", 6000); }) ==
        EPERM);
  CHECK(runInSlice(env.slice_a, [] { return sendUdp(AF_INET, "127.0.0.1", 6000); }) == EPERM);
  CHECK(runInSlice(env.slice_a, [] { return sendUdp(AF_INET6, "::1", 6000); }) == EPERM);
  CHECK(counter(*policy, kXidA, "node_service") == 6);
  // A UDP connect sends nothing (ping and traceroute connect one only to learn
  // their source address): it succeeds, and its datagrams are refused.
  CHECK(runInSlice(env.slice_a, [] {
          int sock = socket(AF_INET, SOCK_DGRAM, 0);
          sockaddr_in to{};
          to.sin_family = AF_INET;
          to.sin_port = htons(6000);
          to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          if (connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return 1000 + errno;
          return send(sock, "x", 1, 0) < 0 ? errno : 0;
        }) == EPERM);
  CHECK(counter(*policy, kXidA, "node_service") == 7);
  // The node itself is not policed.
  CHECK(connectTcp(AF_INET, "127.0.0.1", 6000) == 0);
  // The allowlist.
  CHECK(runInSlice(env.slice_a, [] { return connectTcp(AF_INET, "127.0.0.1", 7000); }) == 0);
  CHECK(runInSlice(env.slice_a, [] { return sendUdp(AF_INET6, "::1", 7000); }) == 0);
  // Another slice's port on the node's address.
  SliceProcess server(env.slice_b, false, [] { return bindSocket(AF_INET6, SOCK_STREAM, 18443); });
  REQUIRE(server.result() == 0);
  CHECK(runInSlice(env.slice_a, [] { return connectTcp(AF_INET, "127.0.0.1", 18443); }) == 0);
  CHECK(runInSlice(env.slice_a, [] { return connectTcp(AF_INET6, "::1", 18443); }) == 0);
  close(node_tcp);
  close(node_tcp6);
  close(allowed_tcp);
}

TEST_CASE("the blacklist applies at once, added and removed live", "[vnet][root][blacklist]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  // Destinations in this namespace: an allowlisted port on 127.0.0.2 and ::1,
  // so that only the blacklist can refuse them.
  int listener = listenAsNode(AF_INET, SOCK_STREAM, 7000, /*any_address=*/true);
  int listener6 = listenAsNode(AF_INET6, SOCK_STREAM, 7000);
  auto connect_v4 = [] { return connectTcp(AF_INET, "127.0.0.2", 7000); };
  auto connect_v6 = [] { return connectTcp(AF_INET6, "::1", 7000); };
  auto udp_v4 = [] { return sendUdp(AF_INET, "127.0.0.2", 7000); };
  CHECK(runInSlice(env.slice_a, connect_v4) == 0);
  CHECK(runInSlice(env.slice_a, connect_v6) == 0);

  policy->setBlacklist({parsePrefix("127.0.0.2/31"), parsePrefix("::1/128")});
  CHECK(runInSlice(env.slice_a, connect_v4) == EPERM);
  CHECK(runInSlice(env.slice_a, connect_v6) == EPERM);
  CHECK(runInSlice(env.slice_a, udp_v4) == EPERM);
  // Packets of any kind: a ping socket's echo request and a raw UDP packet.
  policy->setSlice(kXidA, SlicePolicy{.raw_sockets = true, .max_ports = 2000, .reserved = {}});
  CHECK(runInSlice(env.slice_a, [] {
          int sock = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
          if (sock < 0) return errno;
          icmphdr icmp{};
          icmp.type = ICMP_ECHO;
          sockaddr_in to{};
          to.sin_family = AF_INET;
          inet_pton(AF_INET, "127.0.0.3", &to.sin_addr);
          return sendto(sock, &icmp, sizeof(icmp), 0, reinterpret_cast<sockaddr*>(&to),
                        sizeof(to)) < 0
                     ? errno
                     : 0;
        }) == EPERM);
  CHECK(runInSlice(
            env.slice_a,
            [] { return sendRaw(RawPacket{.destination = "127.0.0.2", .source_port = 40100}); },
            /*as_root=*/true) == EPERM);
  CHECK(counter(*policy, kXidA, "blacklist") == 5);
  // The node is not policed; another destination is unaffected.
  CHECK(connectTcp(AF_INET, "127.0.0.2", 7000) == 0);
  CHECK(runInSlice(env.slice_a, [] { return connectTcp(AF_INET, "127.0.0.4", 7000); }) == 0);

  policy->setBlacklist({parsePrefix("::1/128")});
  CHECK(runInSlice(env.slice_a, connect_v4) == 0);
  CHECK(runInSlice(env.slice_a, connect_v6) == EPERM);
  policy->setBlacklist({});
  CHECK(runInSlice(env.slice_a, connect_v6) == 0);
  close(listener);
  close(listener6);
}

// A link to the world outside the node: plv0 (198.51.100.1, the node's) to
// plv1, whose driver drops UDP to the discard port; 198.51.100.2 answers ARP
// through a permanent neighbour entry. Made before the policy opens, so that
// 198.51.100.1 is among the node's addresses and 198.51.100.2 is not.
void makeOutsideLink() {
  REQUIRE(std::system("ip link add plv0 type veth peer name plv1 && "
                      "ip addr add 198.51.100.1/24 dev plv0 && ip link set plv0 up && "
                      "ip link set plv1 up && ip neigh replace 198.51.100.2 lladdr "
                      "$(ip -br link show plv1 | awk '{print $3}') dev plv0 nud permanent") == 0);
  attachUdpDiscard("plv1");
}

// A slice's step-by-step sender: a connected UDP socket to 198.51.100.2's
// discard port, sending `count` datagrams when told, reporting 0 or the errno
// of a send that failed.
class SteppedSender {
 public:
  explicit SteppedSender(const std::filesystem::path& cgroup) {
    REQUIRE(pipe(commands_) == 0);
    REQUIRE(pipe(results_) == 0);
    int commands = commands_[0];
    int results = results_[1];
    process_ = std::make_unique<SliceProcess>(cgroup, false, [commands, results] {
      int sock = socket(AF_INET, SOCK_DGRAM, 0);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(kDiscardPort);
      inet_pton(AF_INET, "198.51.100.2", &to.sin_addr);
      if (sock < 0 || connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0)
        return errno;
      int count = 0;
      while (read(commands, &count, sizeof(count)) == sizeof(count)) {
        int err = 0;
        for (int i = 0; i < count && err == 0; ++i)
          if (::send(sock, "datagram", 8, 0) != 8) err = errno;
        if (write(results, &err, sizeof(err)) != sizeof(err)) return EIO;
      }
      return 0;
    });
  }
  ~SteppedSender() {
    process_.reset();
    for (int fd : {commands_[0], commands_[1], results_[0], results_[1]}) close(fd);
  }
  int send(int count) {
    if (write(commands_[1], &count, sizeof(count)) != sizeof(count)) return EIO;
    int err = EIO;
    if (read(results_[0], &err, sizeof(err)) != sizeof(err)) return EIO;
    return err;
  }

 private:
  int commands_[2] = {-1, -1};
  int results_[2] = {-1, -1};
  std::unique_ptr<SliceProcess> process_;
};

// Packets of slice A's flows to 198.51.100.2 that left (refused == 0) or
// were refused.
std::uint64_t outsidePackets(NetworkPolicy& policy, bool refused) {
  std::uint64_t packets = 0;
  for (const FlowEntry& entry : policy.flows()) {
    std::uint32_t daddr = 0;
    std::memcpy(&daddr, entry.key.daddr, 4);
    if (entry.key.xid == kXidA && daddr == inet_addr("198.51.100.2") &&
        (entry.key.refused != 0) == refused)
      packets += entry.flow.packets;
  }
  return packets;
}

TEST_CASE("a socket's remembered flow follows the policy: the blacklist stops its next packet",
          "[vnet][root][blacklist]") {
  // docs/vnet.md, "The egress fast path": after its first packet, a connected
  // socket's datagrams skip the lookups; a policy change must still apply to
  // the very next one, and every packet must still be recorded.
  enterPrivateNetwork();
  makeOutsideLink();
  VnetEnvironment env;
  auto policy = env.open();
  SteppedSender sender(env.slice_a);
  REQUIRE(sender.send(10) == 0);
  CHECK(outsidePackets(*policy, false) == 10);

  // What a reconcile pass rewrites unchanged, and the slice's raw right and
  // cap, leave what sockets remember alone (sliverd writes them every pass).
  auto epoch = [&] {
    int map = bpf_obj_get((env.pin_dir / "policy_epoch").c_str());
    REQUIRE(map >= 0);
    const std::uint32_t zero = 0;
    std::uint64_t value = 0;
    REQUIRE(bpf_map_lookup_elem(map, &zero, &value) == 0);
    close(map);
    return value;
  };
  const std::uint64_t before = epoch();
  policy->setSliverCgroup(NetworkPolicy::cgroupId(env.slice_a), kXidA);
  policy->setSlice(kXidA, SlicePolicy{.raw_sockets = true, .max_ports = 100, .reserved = {}});
  CHECK(epoch() == before);
  REQUIRE(sender.send(1) == 0);

  policy->setBlacklist({parsePrefix("198.51.100.0/28")});
  CHECK(sender.send(1) == EPERM);
  CHECK(counter(*policy, kXidA, "blacklist") == 1);
  CHECK(outsidePackets(*policy, true) == 1);

  // A prefix elsewhere leaves the flow refused; lifting the blacklist lets it
  // go again, counted on the same record.
  policy->setBlacklist({parsePrefix("198.51.100.0/28"), parsePrefix("203.0.113.0/24")});
  CHECK(sender.send(1) == EPERM);
  policy->setBlacklist({parsePrefix("203.0.113.0/24")});
  CHECK(sender.send(5) == 0);
  CHECK(outsidePackets(*policy, false) == 16);
  CHECK(counter(*policy, kXidA, "blacklist") == 2);

  // After a restart of the loader (the same pins), a blacklist set by the new
  // instance stops the flow too.
  policy.reset();
  policy = env.open();
  CHECK(sender.send(3) == 0);
  policy->setBlacklist({parsePrefix("198.51.100.2/32")});
  CHECK(sender.send(1) == EPERM);
  CHECK(outsidePackets(*policy, false) == 19);
}

// Packets HTB counted in class `handle` of plv0 (tc -s class show).
std::uint64_t classPackets(std::uint32_t handle) {
  char id[32];
  std::snprintf(id, sizeof(id), "%x:%x", handle >> 16, handle & 0xffff);
  FILE* out = popen(("tc -s class show dev plv0 classid " + std::string(id)).c_str(), "r");
  REQUIRE(out);
  std::string text;
  char buffer[512];
  while (std::size_t n = fread(buffer, 1, sizeof(buffer), out)) text.append(buffer, n);
  pclose(out);
  auto at = text.find(" bytes ");
  return at == std::string::npos ? 0 : std::strtoull(text.c_str() + at + 7, nullptr, 10);
}

TEST_CASE("a socket's remembered flow follows its slice's class when the class changes",
          "[vnet][root][bandwidth]") {
  enterPrivateNetwork();
  makeOutsideLink();
  VnetEnvironment env;
  auto policy = env.open();
  HtbTree uplink("plv0");
  uplink.install(1'000'000'000);
  const SliceBandwidth bandwidth{.min_rate_bps = 1'000'000, .max_rate_bps = 500'000'000};
  const SliceClassIds first = classIdsOfSlot(1);
  const SliceClassIds second = classIdsOfSlot(2);
  uplink.setSlice(first, bandwidth);
  uplink.setSlice(second, bandwidth);
  policy->setSliceClasses(kXidA, first);
  SteppedSender sender(env.slice_a);
  REQUIRE(sender.send(10) == 0);
  CHECK(classPackets(first.bulk) == 10);
  policy->setSliceClasses(kXidA, second);
  REQUIRE(sender.send(7) == 0);
  CHECK(classPackets(first.bulk) == 10);
  CHECK(classPackets(second.bulk) == 7);
  uplink.remove();
}

TEST_CASE("raw packets leave only under PlanetLab's rules", "[vnet][root]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto options = env.options();
  options.lazy_idle_seconds = 1;
  auto policy = env.open(options);
  policy->setSlice(kXidA, SlicePolicy{.raw_sockets = true, .max_ports = 2000, .reserved = {}});
  policy->setSlice(kXidB, SlicePolicy{.raw_sockets = true, .max_ports = 2000, .reserved = {}});
  auto raw_from = [&](const std::filesystem::path& slice, RawPacket packet) {
    return runInSlice(
        slice, [packet] { return sendRaw(packet); }, /*as_root=*/true);
  };

  CHECK(raw_from(env.slice_a, RawPacket{}) == 0);
  CHECK(raw_from(env.slice_a, RawPacket{.source = "192.0.2.9", .source_port = 40001}) == EPERM);
  CHECK(counter(*policy, kXidA, "raw_spoofed") == 1);
  CHECK(raw_from(env.slice_a, RawPacket{.source_port = 40002, .more_fragments = true}) == EPERM);
  CHECK(counter(*policy, kXidA, "raw_fragment") == 1);
  for (std::uint8_t type : {ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_REDIRECT,
                            ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB})
    CHECK(raw_from(env.slice_a,
                   RawPacket{.protocol = IPPROTO_ICMP, .source_port = 7, .icmp_type = type}) ==
          EPERM);
  CHECK(counter(*policy, kXidA, "raw_icmp_error") == 5);
  CHECK(raw_from(env.slice_a, RawPacket{.protocol = IPPROTO_GRE}) == EPERM);
  CHECK(counter(*policy, kXidA, "raw_protocol") == 1);
  // To a node service (not allowlisted, no slice's).
  CHECK(raw_from(env.slice_a, RawPacket{.source_port = 40003, .destination_port = 6000}) == EPERM);
  CHECK(counter(*policy, kXidA, "node_service") == 1);

  // Source ports and echo ids: the first sender owns a free one until idle.
  CHECK(raw_from(env.slice_b, RawPacket{}) == EPERM);  // A's port 40000
  CHECK(raw_from(env.slice_b, RawPacket{.protocol = IPPROTO_ICMP, .source_port = 4242}) == 0);
  CHECK(raw_from(env.slice_a, RawPacket{.protocol = IPPROTO_ICMP, .source_port = 4242}) == EPERM);
  CHECK(counter(*policy, kXidA, "port_owned") == 1);
  auto owners = policy->ports(kXidA);
  REQUIRE(owners.size() == 1);
  CHECK(owners[0].hold == PortHold::kLazy);
  // A slice's claim also keeps others from binding the port.
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 40000); }) == EPERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  CHECK(raw_from(env.slice_b, RawPacket{}) == 0);  // A's claim went idle
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  CHECK(policy->expireIdleClaims() == 2);  // B's echo id and port
  CHECK(policy->ports().size() == 2);      // the node's ports only

  // Without the raw right (revoked live).
  policy->setSlice(kXidA, SlicePolicy{});
  CHECK(raw_from(env.slice_a, RawPacket{.source_port = 40010}) == EPERM);
  CHECK(counter(*policy, kXidA, "raw_denied") == 1);
}

TEST_CASE("an echo id a slice's ping socket uses is not another slice's", "[vnet][root]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  // Both bind the same id with SO_REUSEADDR, which the kernel allows.
  auto ping_from_id = [] {
    int sock = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    if (sock < 0) return errno;
    int one = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(0x4444);
    if (bind(sock, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) return errno;
    return sendEcho(sock, 0x4444);
  };
  SliceProcess a(env.slice_a, false, ping_from_id);
  REQUIRE(a.result() == 0);
  CHECK(runInSlice(env.slice_b, ping_from_id) == EPERM);
  CHECK(counter(*policy, kXidB, "port_owned") == 1);
  auto owners = policy->ports(kXidA);
  REQUIRE(owners.size() == 1);
  CHECK(owners[0].port == PortKey{VNET_PROTO_ICMP, 0x4444});
  CHECK(owners[0].hold == PortHold::kLazy);
}

TEST_CASE("IPv6 raw packets: ICMPv6 echo leaves, errors and foreign ids do not", "[vnet][root]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = openWithRawSlices(env);
  // The kernel fills in an ICMPv6 raw socket's checksum.
  auto icmp6 = [](std::uint8_t type, std::uint16_t id) {
    return [type, id] {
      int sock = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
      if (sock < 0) return errno;
      icmp6_hdr header{};
      header.icmp6_type = type;
      header.icmp6_id = htons(id);
      header.icmp6_seq = htons(1);
      sockaddr_in6 to{};
      to.sin6_family = AF_INET6;
      to.sin6_addr = in6addr_loopback;
      return sendto(sock, &header, sizeof(header), 0, reinterpret_cast<sockaddr*>(&to),
                    sizeof(to)) < 0
                 ? errno
                 : 0;
    };
  };
  CHECK(runInSlice(env.slice_a, icmp6(ICMP6_ECHO_REQUEST, 0x6001), /*as_root=*/true) == 0);
  CHECK(runInSlice(env.slice_b, icmp6(ICMP6_ECHO_REQUEST, 0x6001), /*as_root=*/true) == EPERM);
  CHECK(counter(*policy, kXidB, "port_owned") == 1);
  for (std::uint8_t type :
       {ICMP6_DST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED, ICMP6_PARAM_PROB})
    CHECK(runInSlice(env.slice_a, icmp6(type, 0x6002), /*as_root=*/true) == EPERM);
  CHECK(counter(*policy, kXidA, "raw_icmp_error") == 4);
  // Other informational types (here a router solicitation) are not echo: refused.
  CHECK(runInSlice(env.slice_a, icmp6(ND_ROUTER_SOLICIT, 0), /*as_root=*/true) == EPERM);
  CHECK(counter(*policy, kXidA, "raw_protocol") == 1);
}

TEST_CASE("raw and ping sockets of two slices each see only their own replies", "[vnet][root]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = openWithRawSlices(env);
  using std::chrono::milliseconds;
  SliceProcess a(env.slice_a, true,
                 [] { return echoRepliesSeen(0x1111, milliseconds(0), milliseconds(600)); });
  SliceProcess b(env.slice_b, true,
                 [] { return echoRepliesSeen(0x2222, milliseconds(200), milliseconds(400)); });
  CHECK(a.result() == 1);
  CHECK(b.result() == 1);
  CHECK(counter(*policy, kXidA, "ingress_foreign") >= 1);
}

TEST_CASE("an ICMP error reaches the raw socket of the slice whose packet it quotes",
          "[vnet][root]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = openWithRawSlices(env);
  using std::chrono::milliseconds;
  // B listens first; A's UDP probe draws a port unreachable (what traceroute reads).
  SliceProcess b(env.slice_b, true,
                 [] { return portUnreachablesSeen(19811, false, milliseconds(700)); });
  std::this_thread::sleep_for(milliseconds(100));
  SliceProcess a(env.slice_a, true,
                 [] { return portUnreachablesSeen(19810, true, milliseconds(400)); });
  CHECK(a.result() == 1);
  CHECK(b.result() == 0);
  CHECK(counter(*policy, kXidB, "ingress_foreign") >= 1);
}

TEST_CASE("stock ping and traceroute work from slices, within the rules", "[vnet][root]") {
  enterPrivateNetwork();
  if (std::system("command -v ping >/dev/null && command -v traceroute >/dev/null") != 0)
    skipTest("ping or traceroute is not installed");
  VnetEnvironment env;
  auto policy = env.open();
  policy->setSlice(kXidA, SlicePolicy{.raw_sockets = true, .max_ports = 2000, .reserved = {}});
  auto run = [](const char* command) {
    return [command] {
      int status = std::system(command);
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    };
  };
  // A sliver's user: ICMP datagram sockets, no raw right needed.
  CHECK(runInSlice(env.slice_b, run("ping -c 2 -i 0.2 -W 1 127.0.0.1 >/dev/null 2>&1")) == 0);
  CHECK(runInSlice(env.slice_b, run("ping -6 -c 2 -i 0.2 -W 1 ::1 >/dev/null 2>&1")) == 0);
  // ICMP traceroute through a raw socket, as sliverd would hand it to a slice with the right.
  CHECK(runInSlice(env.slice_a,
                   run("traceroute -I -n -q 1 -m 3 127.0.0.1 2>&1 | grep -q ' 127.0.0.1 '"),
                   /*as_root=*/true) == 0);
  policy->setBlacklist({parsePrefix("127.0.0.0/8")});
  CHECK(runInSlice(env.slice_b, run("ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1")) != 0);
  CHECK(counter(*policy, kXidB, "blacklist") >= 1);
}

TEST_CASE("state and rules survive the loader: a crash, a restart, decommission", "[vnet][root]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  CHECK_FALSE(policy->reusedPinnedLinks());
  policy->setSlice(kXidA, SlicePolicy{.raw_sockets = false,
                                      .max_ports = 2000,
                                      .reserved = {{Transport::kUdp, 19600, 19600}}});
  policy->setBlacklist({parsePrefix("127.0.0.2/32")});
  SliceProcess holder(env.slice_a, false, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19601); });
  REQUIRE(holder.result() == 0);

  policy.reset();  // as a crash would leave it: nothing unpinned
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19601); }) == EPERM);
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19600); }) == EPERM);
  CHECK(runInSlice(env.slice_b, [] { return sendUdp(AF_INET, "127.0.0.2", 7000); }) == EPERM);

  // A new process opening the same pin directory reuses all of it.
  int child_status = -1;
  pid_t child = fork();
  if (child == 0) {
    int code = 0;
    try {
      auto reopened = std::make_unique<NetworkPolicy>(env.options());
      auto owners = reopened->ports(kXidA);
      code = reopened->reusedPinnedLinks() && owners.size() == 2 ? 0 : 1;
    } catch (const std::exception&) {
      code = 2;
    }
    _exit(code);
  }
  REQUIRE(waitpid(child, &child_status, 0) == child);
  CHECK(WIFEXITED(child_status));
  CHECK(WEXITSTATUS(child_status) == 0);
  CHECK(runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19601); }) == EPERM);

  policy = env.open();
  CHECK(policy->reusedPinnedLinks());
  CHECK(policy->counters(kXidB).at("port_owned") == 2);
  policy.reset();

  // (The holder, forked while link descriptors were open, holds copies of them.)
  holder.stop();
  NetworkPolicy::removePinned(env.pin_dir);
  CHECK_FALSE(std::filesystem::exists(env.pin_dir));
  // Detached: the kernel's own rules only. (bpffs frees an unpinned link after
  // an RCU grace period: the detach follows the unlink by a moment.)
  int bind_reserved = EPERM;
  for (int attempt = 0; attempt < 40 && bind_reserved != 0; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    bind_reserved = runInSlice(env.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19600); });
  }
  CHECK(bind_reserved == 0);
  CHECK(runInSlice(env.slice_b, [] { return sendUdp(AF_INET, "127.0.0.2", 7000); }) == 0);
}

TEST_CASE("two instances on one host share no state", "[vnet][root]") {
  enterPrivateNetwork();
  VnetEnvironment one;
  VnetEnvironment two;
  auto first = one.open();
  auto second = two.open();
  SliceProcess holder(one.slice_a, false, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19700); });
  REQUIRE(holder.result() == 0);
  CHECK(first->ports(kXidA).size() == 1);
  CHECK(second->ports(kXidA).empty());
  // Slice B of the other instance is policed by its own instance's maps only.
  CHECK(runInSlice(one.slice_b, [] { return bindSocket(AF_INET, SOCK_DGRAM, 19700, true); }) ==
        EPERM);
}

TEST_CASE("a program the verifier refuses carries its log in the error", "[vnet][root]") {
  requireRoot();
  std::string logged;
  LogSink sink = [&](LogLevel, const std::string& line) { logged += line + "\n"; };
  try {
    loadObjectForTest(PLNG_VNET_BROKEN_OBJECT, sink);
    FAIL("the broken program loaded");
  } catch (const BpfLoadError& error) {
    INFO(error.what());
    CHECK(std::string(error.what()).find("verifier said") != std::string::npos);
    CHECK(error.verifierLog().find("invalid mem access") != std::string::npos);
    CHECK(std::string(error.what()).find("invalid mem access") != std::string::npos);
  }
  CHECK(logged.find("libbpf:") != std::string::npos);
}

TEST_CASE("abstract unix sockets: a slice connects only to names registered for it",
          "[vnet][root][unix]") {
  requireRoot();
  if (!probeFeatures().has(kConnectUnix)) skipTest("the kernel has no cgroup/connect_unix");
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const char name[] = "plng-vnet-test";
  std::memcpy(address.sun_path + 1, name, sizeof(name) - 1);
  socklen_t length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + sizeof(name) - 1);
  REQUIRE(bind(server, reinterpret_cast<sockaddr*>(&address), length) == 0);
  REQUIRE(listen(server, 8) == 0);
  auto connect_abstract = [&] {
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    return connect(sock, reinterpret_cast<sockaddr*>(&address), length) == 0 ? 0 : errno;
  };
  CHECK(connect_abstract() == 0);  // the node
  CHECK(runInSlice(env.slice_a, connect_abstract) == EPERM);
  CHECK(counter(*policy, kXidA, "unix_abstract") == 1);
  policy->setAbstractUnixNames(kXidA, {"plng-vnet-test"});
  CHECK(runInSlice(env.slice_a, connect_abstract) == 0);
  CHECK(runInSlice(env.slice_b, connect_abstract) == EPERM);

  // Where Landlock scopes slivers, sliverd turns connect_unix off: the pinned
  // link is dropped, and the program refuses nothing any more...
  policy.reset();
  auto without = env.options();
  without.connect_unix = false;
  policy = env.open(without);
  CHECK_FALSE(std::filesystem::exists(env.pin_dir / "link_vnet_connect_unix"));
  CHECK(runInSlice(env.slice_b, connect_abstract) == 0);
  // ... until it is turned on again.
  policy.reset();
  policy = env.open();
  CHECK(std::filesystem::exists(env.pin_dir / "link_vnet_connect_unix"));
  CHECK(runInSlice(env.slice_b, connect_abstract) == EPERM);
  close(server);
}
