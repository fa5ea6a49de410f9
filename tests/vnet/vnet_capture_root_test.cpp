// Packet capture by slices (docs/vnet.md, "Packet capture"): stock tcpdump run
// by a slice with the capture right, under the sliver seccomp filter whose
// packet socket() calls sliverd's broker answers, sees exactly its slice's
// packets while another slice and the node talk on the same loopback; the
// filter cannot be detached or replaced; the interface never turns
// promiscuous; a slice without the right gets EPERM. In a network namespace of
// the test's own.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/scope_guard.h"
#include "base/unix_socket.h"
#include "node/cgroup.h"
#include "node/raw_socket.h"
#include "node/security.h"
#include "sliverd/core/raw_socket_broker.h"
#include "sliverd/local/local_protocol.h"
#include "sliverd/local/local_server.h"
#include "sliverd/local/local_service.h"
#include "sliverd/local/peer_slice.h"
#include "tests/sliverd/fake_runtime.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/skip.h"
#include "tests/vnet/vnet_fixture.h"
#include "vnet-bpf/capture_filter.h"
#include "vnet-bpf/packet_guard.h"

using namespace std::chrono_literals;
using plng::base::UniqueFd;
using plng::sliverd::RawSocketBroker;
namespace fs = std::filesystem;

namespace {

constexpr uid_t kSliceUid = 61000;

// The ports each party uses (all on 127.0.0.1 / ::1).
constexpr int kAServer = 41001;  // slice A, UDP and TCP
constexpr int kAClient = 41002;  // slice A, to itself
constexpr int kAToB = 41003;     // slice A, to slice B
constexpr int kBServer = 41031;  // slice B
constexpr int kBClient = 41030;  // slice B, to itself and to A
constexpr int kNodeServer = 41021;
constexpr int kNodeClient = 41020;

// A process of a slice as a sliver's process is one: in the slice's cgroup,
// under the sliver seccomp filter with its listener watched by `broker`, as an
// unprivileged uid (no capability over the node's network namespace). It runs
// `body` and exits with what it returns; output goes to a pipe.
class BrokeredSliceProcess {
 public:
  BrokeredSliceProcess(RawSocketBroker& broker, const std::string& slice, const fs::path& cgroup,
                       const std::function<int()>& body) {
    // Compiled here: the child only applies it.
    const auto& program = plng::node::sliverSeccompProgram(plng::node::RawSockets::kBrokered);
    int pair[2];
    int out[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(pair[0]);
      ::close(out[0]);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(out[1], STDERR_FILENO);
      const std::string pid = std::to_string(::getpid());
      int procs = ::open((cgroup / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (procs < 0 || ::write(procs, pid.data(), pid.size()) < 0) ::_exit(120);
      ::close(procs);
      const int listener = plng::node::applySeccompWithListener(program);
      if (listener < 0) ::_exit(121);
      const int fds[] = {listener};
      try {
        plng::base::sendFds(pair[1], "l", fds, "listener");
      } catch (...) {
        ::_exit(122);
      }
      ::close(listener);
      char go = 0;
      if (::read(pair[1], &go, 1) != 1) ::_exit(123);
      if (::setgroups(0, nullptr) != 0 || ::setresgid(kSliceUid, kSliceUid, kSliceUid) != 0 ||
          ::setresuid(kSliceUid, kSliceUid, kSliceUid) != 0) {
        ::_exit(124);
      }
      ::_exit(body());
    }
    ::close(pair[1]);
    ::close(out[1]);
    UniqueFd control(pair[0]);
    output_.reset(out[0]);
    auto message = plng::base::receiveFds(control.get(), 1, 1, "the slice's seccomp listener");
    if (message.fds.empty()) FAIL("the slice process exited with " << wait() << ": " << text_);
    UniqueFd cgroup_dir(::open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(cgroup_dir);
    broker.watch(slice, pid_, std::move(message.fds[0]), std::move(cgroup_dir));
    REQUIRE(::write(control.get(), "g", 1) == 1);
  }
  ~BrokeredSliceProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // Reads the output until it contains `text` (true) or ends or `timeout` passes.
  bool waitForOutput(const std::string& text, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (text_.find(text) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{output_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buffer[4096];
      const ssize_t n = ::read(output_.get(), buffer, sizeof buffer);
      if (n <= 0) return false;
      text_.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
  }
  // Sends `signal` and returns the exit code (128 + n for a signal).
  int stop(int signal) {
    ::kill(pid_, signal);
    return wait();
  }
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    char buffer[4096];
    for (ssize_t n; (n = ::read(output_.get(), buffer, sizeof buffer)) > 0;) {
      text_.append(buffer, static_cast<std::size_t>(n));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::string& output() const { return text_; }

 private:
  pid_t pid_ = -1;
  UniqueFd output_;
  std::string text_;
};

int execTcpdump(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  static std::vector<std::string> keep;
  keep = args;
  keep.insert(keep.begin(), "tcpdump");
  for (auto& arg : keep) argv.push_back(arg.data());
  argv.push_back(nullptr);
  ::execv("/usr/bin/tcpdump", argv.data());
  return 127;
}

// `tcpdump -r file -nn` lines.
std::vector<std::string> readPcap(const fs::path& file) {
  std::string command = "tcpdump -r '" + file.string() + "' -nn 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::vector<std::string> lines;
  char line[1024];
  while (std::fgets(line, sizeof line, pipe) != nullptr) lines.emplace_back(line);
  ::pclose(pipe);
  return lines;
}

// 127.0.0.1 or ::1, port `port`, in `address`; returns its length.
socklen_t loopback(int family, int port, sockaddr_storage& address) {
  address = {};
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&address);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(port));
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof *in;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(static_cast<std::uint16_t>(port));
  in6->sin6_addr = in6addr_loopback;
  return sizeof *in6;
}

// A UDP socket of the caller bound to `port` on 127.0.0.1 (or ::1).
UniqueFd udpSocket(int family, int port) {
  UniqueFd fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_storage address;
  const socklen_t length = loopback(family, port, address);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0) return UniqueFd();
  return fd;
}

// Sends `text` from `fd` to `port` on 127.0.0.1 (or ::1): 0 or the errno.
int sendTo(int fd, int family, int port, const char* text) {
  sockaddr_storage address;
  const socklen_t length = loopback(family, port, address);
  const ssize_t sent =
      ::sendto(fd, text, std::strlen(text), 0, reinterpret_cast<sockaddr*>(&address), length);
  return sent >= 0 ? 0 : errno;
}

// The interface's promiscuity count (`ip -d link`, which any process may
// run): 0 unless someone asked; -1 when it cannot be read.
int promiscuity(const std::string& interface) {
  std::string command = "ip -d link show " + interface + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string text;
  char buffer[1024];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) text += buffer;
  ::pclose(pipe);
  std::smatch match;
  if (!std::regex_search(text, match, std::regex("promiscuity (\\d+)"))) return -1;
  return std::stoi(match[1]);
}

struct CaptureEnvironment {
  plng::test::VnetEnvironment env;
  std::unique_ptr<plng::vnet::NetworkPolicy> policy;
  plng::vnet::CaptureFilters filters;
  std::map<std::string, std::uint32_t> xids = {{"a", plng::test::kXidA}, {"b", plng::test::kXidB}};
  std::set<std::string> may_capture = {"a"};
  RawSocketBroker broker;

  CaptureEnvironment()
      : policy((plng::test::enterPrivateNetwork(), env.open())),
        filters(env.pin_dir),
        broker(RawSocketBroker::Options{
            .has_right = [](const std::string&) { return false; },
            .in_flight_file = {},
            .receive_timeout = 200ms,
            .may_capture =
                [this](const std::string& slice) { return may_capture.count(slice) > 0; },
            .restrict_capture = [this](const std::string& slice,
                                       int socket) { filters.restrict(socket, xids.at(slice)); },
        }) {}
  ~CaptureEnvironment() { broker.stop(); }
};

void requireTcpdump() {
  if (::access("/usr/bin/tcpdump", X_OK) != 0) plng::test::skipTest("/usr/bin/tcpdump is missing");
}

}  // namespace

TEST_CASE("stock tcpdump in a slice with the capture right sees exactly the slice's packets",
          "[vnet][root]") {
  requireTcpdump();
  CaptureEnvironment c;
  plng::test::ScratchDir scratch("plng-capture", 0777);
  const fs::path all = scratch / "all.pcap";
  const fs::path udp = scratch / "udp.pcap";

  // The slices' servers, held by processes of theirs: the programs record
  // that each slice owns its port.
  auto serve = [](int port) {
    return [port] {
      static UniqueFd s4;
      static UniqueFd s6;
      s4 = udpSocket(AF_INET, port);
      s6 = udpSocket(AF_INET6, port);
      return s4 && s6 ? 0 : -1;
    };
  };
  plng::test::SliceProcess a_server(c.env.slice_a, false, serve(kAServer));
  plng::test::SliceProcess b_server(c.env.slice_b, false, serve(kBServer));
  REQUIRE(a_server.result() == 0);
  REQUIRE(b_server.result() == 0);

  BrokeredSliceProcess everything(c.broker, "a", c.env.slice_a, [&] {
    return execTcpdump({"-i", "lo", "--immediate-mode", "-U", "-w", all});
  });
  BrokeredSliceProcess filtered(c.broker, "a", c.env.slice_a, [&] {
    return execTcpdump({"-i", "lo", "--immediate-mode", "-U", "-w", udp, "udp", "and", "port",
                        std::to_string(kAServer)});
  });
  INFO(everything.output() << filtered.output());
  REQUIRE(everything.waitForOutput("listening on lo"));
  REQUIRE(filtered.waitForOutput("listening on lo"));
  // Not promiscuous, though tcpdump asked (no -p).
  CHECK(promiscuity("lo") == 0);

  // Traffic: A to itself, A to B, B to A, B to itself, the node to A and to
  // itself, over IPv4 and IPv6 and TCP.
  CHECK(plng::test::runInSlice(c.env.slice_a, [] {
          UniqueFd client = udpSocket(AF_INET, kAClient);
          UniqueFd to_b = udpSocket(AF_INET6, kAToB);
          if (!client || !to_b) return -1;
          return sendTo(client.get(), AF_INET, kAServer, "a-a") +
                 sendTo(to_b.get(), AF_INET6, kBServer, "a-b");
        }) == 0);
  CHECK(plng::test::runInSlice(c.env.slice_b, [] {
          UniqueFd client = udpSocket(AF_INET, kBClient);
          if (!client) return -1;
          return sendTo(client.get(), AF_INET, kAServer, "b-a") +
                 sendTo(client.get(), AF_INET, kBServer, "b-b");
        }) == 0);
  {
    UniqueFd node_server = udpSocket(AF_INET, kNodeServer);
    UniqueFd node_client = udpSocket(AF_INET6, kNodeClient);
    REQUIRE(node_server);
    REQUIRE(node_client);
    CHECK(sendTo(node_client.get(), AF_INET6, kAServer, "node-a") == 0);
    UniqueFd node4 = udpSocket(AF_INET, kNodeClient);
    CHECK(sendTo(node4.get(), AF_INET, kNodeServer, "node-node") == 0);
  }
  std::this_thread::sleep_for(300ms);
  CHECK(promiscuity("lo") == 0);
  CHECK(everything.stop(SIGINT) == 0);
  CHECK(filtered.stop(SIGINT) == 0);
  INFO("tcpdump said: " << everything.output() << filtered.output());
  for (const auto& owner : c.policy->ports(plng::test::kXidA)) {
    UNSCOPED_INFO("A holds " << owner.port.port << " proto " << int(owner.port.protocol));
  }

  const auto lines = readPcap(all);
  std::string text;
  for (const auto& line : lines) text += line;
  INFO(text);
  const std::string a4 = "127.0.0.1." + std::to_string(kAServer);
  const std::string a6 = "::1." + std::to_string(kAServer);
  // Each once: on loopback libpcap keeps the arriving copy of a packet.
  CHECK(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
          return l.find("." + std::to_string(kAClient) + " > " + a4) != std::string::npos;
        }) == 1);
  CHECK(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
          return l.find("." + std::to_string(kAToB) + " > ::1." + std::to_string(kBServer)) !=
                 std::string::npos;
        }) == 1);
  CHECK(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
          return l.find("." + std::to_string(kBClient) + " > " + a4) != std::string::npos;
        }) == 1);
  CHECK(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
          return l.find("." + std::to_string(kNodeClient) + " > " + a6) != std::string::npos;
        }) == 1);
  // Nothing else: not B's own traffic, not the node's, no ARP or anything.
  CHECK(lines.size() == 4);

  // The filter expression was applied (in user space: the kernel filter is
  // the slice's).
  const auto udp_lines = readPcap(udp);
  std::string udp_text;
  for (const auto& line : udp_lines) udp_text += line;
  INFO(udp_text);
  CHECK(udp_lines.size() == 3);  // all of the above but A to B
  for (const auto& line : udp_lines)
    CHECK(line.find(std::to_string(kAServer)) != std::string::npos);
  CHECK(filtered.output().find("Warning: Kernel filter failed") != std::string::npos);
}

namespace {

int askPromiscuous(int socket) {
  packet_mreq request{};
  request.mr_ifindex = static_cast<int>(::if_nametoindex("lo"));
  request.mr_type = PACKET_MR_PROMISC;
  return ::setsockopt(socket, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &request, sizeof request) == 0
             ? 0
             : errno;
}

// The UDP ports of an IPv4 packet read from a SOCK_DGRAM packet socket.
std::pair<int, int> udpPorts(const unsigned char* packet, ssize_t length) {
  if (length < 28 || (packet[0] >> 4) != 4 || packet[9] != IPPROTO_UDP) return {-1, -1};
  const int header = (packet[0] & 0xf) * 4;
  if (length < header + 4) return {-1, -1};
  return {(packet[header] << 8) | packet[header + 1],
          (packet[header + 2] << 8) | packet[header + 3]};
}

}  // namespace

TEST_CASE("a slice's packet socket keeps its filter and never turns the interface promiscuous",
          "[vnet][root]") {
  CaptureEnvironment c;
  plng::test::SliceProcess a_server(c.env.slice_a, false, [] {
    static UniqueFd s4;
    s4 = udpSocket(AF_INET, kAServer);
    return s4 ? 0 : -1;
  });
  REQUIRE(a_server.result() == 0);

  SECTION("the control: an unfiltered packet socket sees the node's packets, and promiscuity") {
    UniqueFd raw(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP)));
    REQUIRE(raw);
    CHECK(askPromiscuous(raw.get()) == 0);
    CHECK(promiscuity("lo") == 1);
    UniqueFd node = udpSocket(AF_INET, kNodeClient);
    CHECK(sendTo(node.get(), AF_INET, kNodeServer, "node") == 0);
    unsigned char packet[2048];
    const ssize_t n = ::recv(raw.get(), packet, sizeof packet, 0);
    CHECK(udpPorts(packet, n) == std::make_pair(kNodeClient, kNodeServer));
    raw.reset();
    CHECK(promiscuity("lo") == 0);
  }

  SECTION("the slice's socket") {
    // The node talks all along; the slice's socket must never see it.
    std::atomic<bool> done{false};
    std::thread node_traffic([&] {
      UniqueFd node = udpSocket(AF_INET, kNodeClient);
      while (!done) {
        sendTo(node.get(), AF_INET, kNodeServer, "node");
        std::this_thread::sleep_for(5ms);
      }
    });
    BrokeredSliceProcess a(c.broker, "a", c.env.slice_a, [] {
      const int fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
      if (fd < 0) return 10;
      // Never promiscuous: the call "succeeds" and does nothing.
      if (askPromiscuous(fd) != 0) return 11;
      if (promiscuity("lo") != 0) return 12;
      // Neither replaced (the lock) nor detached (answered "no filter").
      sock_filter accept_all[] = {{BPF_RET | BPF_K, 0, 0, 0xffff}};
      sock_fprog program{1, accept_all};
      if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0 ||
          errno != EPERM) {
        return 13;
      }
      const int zero = 0;
      if (::setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof zero) == 0 ||
          errno != ENOENT) {
        return 14;
      }
      if (::setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &zero, sizeof zero) == 0 || errno != EPERM) {
        return 15;
      }
      // The slice's own packet comes through; nothing else ever does.
      UniqueFd client = udpSocket(AF_INET, kAClient);
      if (sendTo(client.get(), AF_INET, kAServer, "a") != 0) return 16;
      timeval timeout{0, 300000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      int own = 0;
      unsigned char packet[2048];
      for (ssize_t n; (n = ::recv(fd, packet, sizeof packet, 0)) >= 0;) {
        auto ports = udpPorts(packet, n);
        if (ports != std::make_pair(kAClient, kAServer)) return 17;
        ++own;
      }
      return own >= 1 ? 0 : 18;
    });
    const int code = a.wait();
    done = true;
    node_traffic.join();
    INFO(a.output());
    CHECK(code == 0);
    CHECK(promiscuity("lo") == 0);
  }
}

TEST_CASE("packet sockets are refused to a slice without the capture right, and obsolete ones",
          "[vnet][root]") {
  CaptureEnvironment c;
  BrokeredSliceProcess b(c.broker, "b", c.env.slice_b, [] {
    const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd >= 0 || errno != EPERM) return 1;
    // Interface flags are the node's.
    UniqueFd inet(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ifreq request{};
    std::strcpy(request.ifr_name, "lo");
    if (::ioctl(inet.get(), SIOCGIFFLAGS, &request) != 0) return 2;
    request.ifr_flags |= IFF_PROMISC;
    if (::ioctl(inet.get(), SIOCSIFFLAGS, &request) == 0 || errno != EPERM) return 3;
    return 0;
  });
  CHECK(b.wait() == 0);
  INFO(b.output());
  BrokeredSliceProcess a(c.broker, "a", c.env.slice_a, [] {
    // SOCK_PACKET, in either spelling.
    int fd = ::socket(AF_PACKET, SOCK_PACKET | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd >= 0 || errno != EPERM) return 1;
    fd = ::socket(AF_INET, SOCK_PACKET | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd >= 0 || errno != EPERM) return 2;
    // The right: a packet socket.
    fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    return fd >= 0 ? 0 : 3;
  });
  CHECK(a.wait() == 0);
  // The broker counts after it answered: give its thread a moment.
  for (int i = 0; i < 100 && c.broker.counters("a").granted == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(c.broker.counters("b").refused == 1);
  CHECK(c.broker.counters("a").refused == 1);
  CHECK(c.broker.counters("a").granted == 1);
}

TEST_CASE("sliverctl capture's stream has only the calling slice's packets", "[vnet][root]") {
  requireTcpdump();
  CaptureEnvironment c;
  plng::test::ScratchDir scratch("plng-capture");
  plng::test::FakeRuntime runtime;
  plng::sliverd::GrantedSliversFrom granted(
      [&](const std::string& slice) -> std::optional<plng::sliverd::GrantedSliver> {
        if (!c.xids.count(slice)) return std::nullopt;
        plng::sliverd::GrantedSliver grant;
        grant.xid = c.xids.at(slice);
        return grant;
      },
      [] {
        return std::vector<std::string>{"a", "b"};
      });
  plng::sliverd::RcapTable rcaps(scratch / "rcaps", plng::sliverd::ResourceSpec{}, nullptr);
  plng::node::NodePaths paths;
  paths.state_dir = scratch / "state";
  paths.run_dir = scratch / "run";
  // As sliverd makes them (sliverd/daemon/main.cpp).
  auto captures = [&](std::uint32_t xid, const std::string& interface) {
    UniqueFd socket(::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!socket) plng::base::throwErrno("packet socket");
    c.filters.restrict(socket.get(), xid);
    const int ifindex =
        interface.empty() ? 0 : static_cast<int>(::if_nametoindex(interface.c_str()));
    plng::node::bindPacketSocket(socket.get(), htons(ETH_P_ALL), ifindex);
    return socket;
  };
  plng::sliverd::LocalService service(runtime, granted, rcaps, paths, 1s, {}, {}, {}, captures);

  planetlab::v1::CaptureRequest request;
  request.set_count(2);
  request.set_seconds(5);
  auto ask = [&](const plng::sliverd::Peer& peer, plng::sliverd::LocalService::Stream* stream) {
    return plng::sliverd::decodeLocalResponse(
        service.handle(peer, "Capture", request.SerializeAsString(), stream));
  };

  SECTION("outside a sliver it is refused") {
    plng::sliverd::Peer host;
    host.kind = plng::sliverd::Peer::Kind::kHostRoot;
    plng::sliverd::LocalService::Stream stream;
    CHECK(ask(host, &stream).status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK_FALSE(stream);
  }

  SECTION("through the local API's socket, the connection becomes the stream") {
    auto driver = plng::node::makeCgroupDriver(c.env.sandbox.roots());
    plng::sliverd::PeerIdentifier peers(*driver);
    boost::asio::io_context io;
    const fs::path socket = scratch / "sliverd.sock";
    plng::sliverd::LocalApiServer server(io, socket, service, peers);
    server.start();
    std::thread loop([&] { io.run(); });
    const int code = plng::test::runInSlice(
        c.env.slice_b,
        [&] {
          plng::sliverd::LocalApiClient client(socket);
          planetlab::v1::CaptureRequest one;
          one.set_count(1);
          planetlab::v1::CaptureResponse applied;
          if (!client.capture(one, &applied).ok() || applied.count() != 1) return 1;
          UniqueFd server4 = udpSocket(AF_INET, kBServer);
          UniqueFd client4 = udpSocket(AF_INET, kBClient);
          if (sendTo(client4.get(), AF_INET, kBServer, "b-b") != 0) return 2;
          std::string pcap;
          char buffer[4096];
          for (ssize_t n; (n = ::read(client.connection(), buffer, sizeof buffer)) > 0;) {
            pcap.append(buffer, static_cast<std::size_t>(n));
          }
          // The pcap header, one record's header and the 31-byte IPv4/UDP packet.
          return pcap.size() == 24 + 16 + 31 ? 0 : 3;
        },
        /*as_root=*/true);
    boost::asio::post(io, [&] { server.stop(); });
    io.stop();
    loop.join();
    CHECK(code == 0);
  }

  SECTION("a sliver gets its own packets, with no capture right") {
    plng::test::SliceProcess b_server(c.env.slice_b, false, [] {
      static UniqueFd s4;
      s4 = udpSocket(AF_INET, kBServer);
      return s4 ? 0 : -1;
    });
    REQUIRE(b_server.result() == 0);
    plng::sliverd::Peer b;
    b.kind = plng::sliverd::Peer::Kind::kSliver;
    b.slice = "b";
    plng::sliverd::LocalService::Stream stream;
    auto answer = ask(b, &stream);
    INFO(answer.status.error_message());
    REQUIRE(answer.status.ok());
    REQUIRE(stream);
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    UniqueFd reader(pair[1]);
    std::thread streaming(
        [&, connection = UniqueFd(pair[0])]() mutable { stream(std::move(connection)); });
    // The node's and A's packets first; then B's two (the count).
    UniqueFd node = udpSocket(AF_INET, kNodeClient);
    CHECK(sendTo(node.get(), AF_INET, kNodeServer, "node-node") == 0);
    CHECK(plng::test::runInSlice(c.env.slice_a, [] {
            UniqueFd server = udpSocket(AF_INET, kAServer);
            UniqueFd a = udpSocket(AF_INET, kAClient);
            return server && a ? sendTo(a.get(), AF_INET, kAServer, "a-a") : -1;
          }) == 0);
    CHECK(sendTo(node.get(), AF_INET, kBServer, "node-b") == 0);
    CHECK(plng::test::runInSlice(c.env.slice_b, [] {
            UniqueFd client = udpSocket(AF_INET, kBClient);
            return client ? sendTo(client.get(), AF_INET, kBServer, "b-b") : -1;
          }) == 0);
    std::string pcap;
    char buffer[4096];
    for (ssize_t n; (n = ::read(reader.get(), buffer, sizeof buffer)) > 0;) {
      pcap.append(buffer, static_cast<std::size_t>(n));
    }
    streaming.join();
    const fs::path file = scratch / "b.pcap";
    std::ofstream(file, std::ios::binary) << pcap;
    const auto lines = readPcap(file);
    std::string text;
    for (const auto& line : lines) text += line;
    INFO(text);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].find(".41020 > 127.0.0.1.41031: UDP, length 6") != std::string::npos);
    CHECK(lines[1].find(".41030 > 127.0.0.1.41031: UDP, length 3") != std::string::npos);
  }
}

namespace {

// An Ethernet frame (broadcast) holding a UDP/IPv4 packet from 10.99.0.1 to the
// peer's 10.99.0.2, port 41001, whose payload is `marker`.
std::string udpFrame(const std::string& marker) {
  const auto high = [](std::size_t value) { return static_cast<char>((value >> 8) & 0xff); };
  const auto low = [](std::size_t value) { return static_cast<char>(value & 0xff); };
  const std::size_t udp_length = 8 + marker.size();
  std::string ip = {0x45,
                    0,
                    high(20 + udp_length),
                    low(20 + udp_length),
                    0,
                    0,
                    0x40,
                    0,
                    64,
                    IPPROTO_UDP,
                    0,
                    0,
                    10,
                    99,
                    0,
                    1,
                    10,
                    99,
                    0,
                    2};
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < ip.size(); i += 2)
    sum += (static_cast<unsigned char>(ip[i]) << 8) | static_cast<unsigned char>(ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = high(~sum);
  ip[11] = low(~sum);
  const std::string ethernet = {'\xff', '\xff', '\xff', '\xff', '\xff', '\xff', 0x02,
                                0,      0,      0,      0,      0x01,   0x08,   0x00};
  const std::string udp = {high(kAServer),
                           low(kAServer),
                           high(kAServer),
                           low(kAServer),
                           high(udp_length),
                           low(udp_length),
                           0,
                           0};
  return ethernet + ip + udp + marker;
}

sockaddr_ll frameDestination(int ifindex) {
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_IP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  return to;
}

// Sends `frame` on device `ifindex`: 0 or the errno.
int sendFrame(int socket, int ifindex, const std::string& frame) {
  const sockaddr_ll to = frameDestination(ifindex);
  return ::sendto(socket, frame.data(), frame.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                  sizeof to) >= 0
             ? 0
             : errno;
}

// Sends `frame` through a PACKET_TX_RING (TPACKET_V1) on `socket`: 0 or the errno.
int sendFrameThroughRing(int socket, int ifindex, const std::string& frame) {
  tpacket_req ring{};
  ring.tp_block_size = 4096;
  ring.tp_block_nr = 1;
  ring.tp_frame_size = 2048;
  ring.tp_frame_nr = 2;
  if (::setsockopt(socket, SOL_PACKET, PACKET_TX_RING, &ring, sizeof ring) != 0) return errno;
  void* memory = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, socket, 0);
  if (memory == MAP_FAILED) return errno;
  auto* slot = static_cast<tpacket_hdr*>(memory);
  std::memcpy(static_cast<char*>(memory) + TPACKET_HDRLEN - sizeof(sockaddr_ll), frame.data(),
              frame.size());
  slot->tp_len = static_cast<unsigned>(frame.size());
  slot->tp_status = TP_STATUS_SEND_REQUEST;
  const sockaddr_ll to = frameDestination(ifindex);
  const int result =
      ::sendto(socket, nullptr, 0, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) >= 0
          ? 0
          : errno;
  ::munmap(memory, 4096);
  return result;
}

void setUp(const char* device) {
  UniqueFd inet(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq request{};
  std::strcpy(request.ifr_name, device);
  if (::ioctl(inet.get(), SIOCGIFFLAGS, &request) != 0) ::_exit(3);
  request.ifr_flags |= IFF_UP;
  if (::ioctl(inet.get(), SIOCSIFFLAGS, &request) != 0) ::_exit(4);
}

// The far end of a veth pair, in a network namespace of its own: a process
// that writes the marker of every frame from `markers` arriving on `device`,
// one a line, until it is stopped.
class FramePeer {
 public:
  FramePeer(const std::string& device, const std::vector<std::string>& markers) {
    int ready[2];
    int go[2];
    int out[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      char byte = 0;
      if (::unshare(CLONE_NEWNET) != 0) ::_exit(1);
      if (::write(ready[1], "r", 1) != 1 || ::read(go[0], &byte, 1) != 1) ::_exit(2);
      setUp(device.c_str());
      const int raw = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
      sockaddr_ll at{};
      at.sll_family = AF_PACKET;
      at.sll_protocol = htons(ETH_P_ALL);
      at.sll_ifindex = static_cast<int>(::if_nametoindex(device.c_str()));
      if (raw < 0 || ::bind(raw, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) ::_exit(5);
      if (::write(ready[1], "r", 1) != 1) ::_exit(6);
      unsigned char frame[2048];
      for (;;) {
        const ssize_t n = ::recv(raw, frame, sizeof frame, 0);
        if (n <= 0) ::_exit(7);
        for (const std::string& marker : markers) {
          if (::memmem(frame, static_cast<std::size_t>(n), marker.data(), marker.size()) &&
              (::write(out[1], marker.data(), marker.size()) < 0 || ::write(out[1], "\n", 1) < 0))
            ::_exit(8);
        }
      }
    }
    // Stopped if it never gets ready (a failed REQUIRE leaves no destructor to run).
    plng::base::ScopeGuard stop_early([this] { stop(); });
    ::close(ready[1]);
    ::close(go[0]);
    ::close(out[1]);
    UniqueFd ready_fd(ready[0]);
    UniqueFd go_fd(go[1]);
    output_.reset(out[0]);
    char byte = 0;
    REQUIRE(::read(ready_fd.get(), &byte, 1) == 1);
    const std::string move = "ip link set " + device + " netns " + std::to_string(pid_) + " 2>&1";
    REQUIRE(std::system(move.c_str()) == 0);
    REQUIRE(::write(go_fd.get(), "g", 1) == 1);
    REQUIRE(::read(ready_fd.get(), &byte, 1) == 1);
    stop_early.dismiss();
  }
  ~FramePeer() {
    if (pid_ > 0) stop();
  }
  // Stops it; the markers it saw, one a line.
  std::string stop() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(output_.get(), buffer, sizeof buffer)) > 0;)
      text.append(buffer, static_cast<std::size_t>(n));
    return text;
  }

 private:
  pid_t pid_ = -1;
  UniqueFd output_;
};

// `tc filter show dev <device> egress` lines naming the guard's program.
int guardFilters(const std::string& device) {
  std::string command = "tc filter show dev " + device + " egress 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  int count = 0;
  char line[1024];
  while (std::fgets(line, sizeof line, pipe) != nullptr)
    count += std::strstr(line, "vnet_pkt_guard") != nullptr;
  ::pclose(pipe);
  return count;
}

}  // namespace

TEST_CASE("a slice's packet socket cannot send: tc egress drops its frames and counts them",
          "[vnet][root]") {
  CaptureEnvironment c;
  REQUIRE(std::system("ip link add capg0 type veth peer name capg1 && ip link set capg0 up") == 0);
  FramePeer peer("capg1", {"slice-send", "slice-ring", "node-send"});
  const int ifindex = static_cast<int>(::if_nametoindex("capg0"));
  REQUIRE(ifindex > 0);

  plng::vnet::PacketSendGuard guard(c.env.pin_dir, c.policy->sliverCgroupLevel());
  const auto attached = guard.attachToEveryDevice();
  CHECK(std::set<std::string>(attached.begin(), attached.end()) ==
        std::set<std::string>{"lo", "capg0"});
  // Again, and as a restarted sliverd: never stacked.
  CHECK(guard.attachToEveryDevice().empty());
  plng::vnet::PacketSendGuard restarted(c.env.pin_dir, c.policy->sliverCgroupLevel());
  CHECK(restarted.attachToEveryDevice().size() == 2);
  CHECK(guardFilters("capg0") == 1);
  CHECK(guardFilters("lo") == 1);

  const auto slice_frame = udpFrame("slice-send");
  const auto ring_frame = udpFrame("slice-ring");
  BrokeredSliceProcess a(c.broker, "a", c.env.slice_a, [&] {
    const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (fd < 0) return 10;
    // A bypassed frame would skip tc.
    const int on = 1;
    if (::setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &on, sizeof on) == 0 || errno != EPERM)
      return 11;
    // Sent or not, as the kernel reports a drop at tc; the peer tells.
    std::printf("send: %s\n", std::strerror(sendFrame(fd, ifindex, slice_frame)));
    std::printf("ring: %s\n", std::strerror(sendFrameThroughRing(fd, ifindex, ring_frame)));
    std::fflush(stdout);
    return 0;
  });
  CHECK(a.wait() == 0);
  INFO(a.output());

  // The control: the node's own packet socket sends the same frame, and may
  // bypass the queue.
  UniqueFd node(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  REQUIRE(node);
  CHECK(sendFrame(node.get(), ifindex, udpFrame("node-send")) == 0);
  const int on = 1;
  CHECK(::setsockopt(node.get(), SOL_PACKET, PACKET_QDISC_BYPASS, &on, sizeof on) == 0);

  std::this_thread::sleep_for(300ms);
  const std::string seen = peer.stop();
  INFO("the peer saw: " << seen);
  CHECK(seen.find("node-send") != std::string::npos);
  CHECK(seen.find("slice-send") == std::string::npos);
  CHECK(seen.find("slice-ring") == std::string::npos);
  CHECK(c.policy->counters(plng::test::kXidA)["packet_send"] == 2);
  CHECK(c.policy->counters(plng::test::kXidB).count("packet_send") == 0);

  plng::vnet::PacketSendGuard::detachFromEveryDevice();
  CHECK(guardFilters("capg0") == 0);
  CHECK(guardFilters("lo") == 0);
}
