// vnet_bench: what vnet-bpf's policy programs cost, measured in one run beside
// the same work without them. The work runs in a process placed in a sliver
// cgroup under the policed slivers cgroup, and again in a sibling cgroup where
// no program is attached, alternating, in a network namespace of the bench's
// own:
//   - bind() of a UDP socket on a fixed port (bind4, post_bind4), and close() of
//     it (sock_release), each call timed on its own;
//   - TCP connect()+close() to a listener of the node on an allowlisted port
//     (connect4, egress's claim of the kernel-picked port, sock_release);
//   - TCP throughput (iperf3, 3 s) and 64-byte UDP datagrams per second (one
//     CPU-bound sender) across a veth pair, the node's uplink, to a second
//     namespace that drops the datagrams at its device: without
//     anything against the slice's traffic classified into its class of the
//     uplink's HTB tree (vnet-bpf/bandwidth.h; the tree made before each policed
//     round and removed before each plain one, its limits above what the veth
//     carries, so it shapes nothing: what is measured is its cost);
//   - UDP datagrams of 1472, 512, 256 and 64 bytes offered at a 1 Gbit/s
//     Ethernet line rate through the same uplink, paced by the clock: the
//     datagrams per second the uplink carried (its device's count), with the
//     tree against the bare uplink;
//   - raw IP_HDRINCL UDP packets per second through the egress policing.
// Runs as root; prints medians of five rounds and the ratios, and the programs'
// own run time per operation from the kernel's BPF statistics. See
// docs/benchmarks.md, "vnet_bench".
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/vnet/vnet_fixture.h"
#include "vnet-bpf/bandwidth.h"

namespace {

namespace fs = std::filesystem;
using namespace plng;
using Clock = std::chrono::steady_clock;

constexpr int kRounds = 5;
constexpr int kBindCloses = 50000;  // per round
constexpr int kConnects = 3000;
constexpr int kRawPackets = 100000;
constexpr int kUdpPackets = 200000;             // per round, through the uplink
constexpr double kLineRateBitsPerSecond = 1e9;  // the uplink class the issue names
constexpr double kLineRateSeconds = 1.0;        // per round
constexpr std::size_t kLineRatePayloads[] = {1472, 512, 256, 64};
constexpr const char* kRemote = "192.0.2.2";  // TEST-NET-1, inside the bench's own namespaces

double* sharedResult() {
  void* memory =
      mmap(nullptr, sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::runtime_error("mmap");
  return static_cast<double*>(memory);
}

// Runs `work` (returning a figure) in `cgroup` as root; the figure.
double measureIn(const fs::path& cgroup, const std::function<double()>& work) {
  double* result = sharedResult();
  int status = test::runInSlice(
      cgroup,
      [&] {
        *result = work();
        return 0;
      },
      /*as_root=*/true);
  double value = status == 0 ? *result : -1;
  munmap(result, sizeof(double));
  return value;
}

// bind() and close() of a UDP socket on a port asked for, each call timed on
// its own: nanoseconds per bind() (bind4, post_bind4), or per close() of the
// bound socket (sock_release). socket() is left out of both. The port goes
// round 31000-31999: on this host a port closed a moment before was, rarely,
// still in use (EADDRINUSE, with or without the programs).
double nsPerBindOrClose(bool time_close) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  Clock::duration spent{};
  for (int i = 0; i < kBindCloses; ++i) {
    address.sin_port = htons(static_cast<std::uint16_t>(31000 + i % 1000));
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    auto before_bind = Clock::now();
    if (bind(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      std::fprintf(stderr, "vnet_bench: bind %d failed: %s\n", i, std::strerror(errno));
      return -1;
    }
    auto before_close = Clock::now();
    close(sock);
    auto after = Clock::now();
    spent += time_close ? after - before_close : before_close - before_bind;
  }
  return std::chrono::duration<double, std::nano>(spent).count() / kBindCloses;
}
double nsPerBind() { return nsPerBindOrClose(false); }
double nsPerClose() { return nsPerBindOrClose(true); }

double usPerConnect() {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(7000);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto start = Clock::now();
  for (int i = 0; i < kConnects; ++i) {
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return -1;
    // RST on close: no TIME_WAIT pile-up between rounds.
    linger hard{1, 0};
    setsockopt(sock, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
    close(sock);
  }
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / kConnects;
}

double rawPacketsPerSecond() {
  int sock = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (sock < 0) return -1;
  std::uint8_t packet[28 + 32] = {};
  auto* ip = reinterpret_cast<iphdr*>(packet);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(sizeof(packet));
  ip->saddr = htonl(INADDR_LOOPBACK);
  ip->daddr = htonl(INADDR_LOOPBACK);
  auto* udp = reinterpret_cast<udphdr*>(packet + sizeof(iphdr));
  udp->source = htons(41000);
  udp->dest = htons(7000);  // allowlisted: not a node service
  udp->len = htons(sizeof(packet) - sizeof(iphdr));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = ip->daddr;
  auto start = Clock::now();
  for (int i = 0; i < kRawPackets; ++i)
    if (sendto(sock, packet, sizeof(packet), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0)
      return -1;
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  close(sock);
  return kRawPackets / seconds;
}

// Puts the calling process on the machine's last CPU: a packet-rate round's
// sender always on the same CPU, with and without the policy (left to the
// scheduler, this host's rounds fell into two groups a third apart, with and
// without the policy alike). A no-op where affinity cannot be set.
void pinToLastCpu() {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(cpus - 1), &set);
  (void)sched_setaffinity(0, sizeof(set), &set);
}

// A packet-rate round's sender, on the last CPU: a UDP socket connected to the
// remote end's discard port, after 1,000 untimed datagrams of `payload` bytes
// (the route, the neighbour entry, the port's claim); -1 when it cannot.
int discardSender(std::size_t payload) {
  pinToLastCpu();
  const int sock = socket(AF_INET, SOCK_DGRAM, 0);
  if (sock < 0) return -1;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(test::kDiscardPort);
  inet_pton(AF_INET, kRemote, &to.sin_addr);
  if (connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    close(sock);
    return -1;
  }
  const std::vector<char> datagram(payload);
  for (int i = 0; i < 1000; ++i) (void)!write(sock, datagram.data(), datagram.size());
  return sock;
}

// 64-byte UDP datagrams through the uplink as fast as one sender can write them
// on a connected socket (one write() a datagram, as iperf3 and most programs
// send): datagrams per second. CPU-bound, so the rate is the send path's cost
// per packet; the remote end drops them at its device's ingress, as a NIC takes
// a frame away, so that what is timed is this host's side only.
double udpPacketsPerSecond() {
  char payload[64] = {};
  const int sock = discardSender(sizeof(payload));
  if (sock < 0) return -1;
  bool failed = false;
  auto start = Clock::now();
  for (int i = 0; i < kUdpPackets && !failed; ++i)
    failed = write(sock, payload, sizeof(payload)) < 0 && errno != ENOBUFS;
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  close(sock);
  return failed ? -1 : kUdpPackets / seconds;
}

// Packets the uplink (vb0, in the calling process's network namespace) has
// transmitted: what left the qdisc for the wire, not what the sender wrote.
// The kernel's 32-bit count (rtnl_link_stats), so a difference of two readings
// is taken modulo 2^32; nothing when the device or its counters cannot be read.
std::optional<std::uint32_t> uplinkPacketsSent() {
  ifaddrs* addresses = nullptr;
  if (getifaddrs(&addresses) != 0) return std::nullopt;
  std::optional<std::uint32_t> packets;
  for (ifaddrs* entry = addresses; entry; entry = entry->ifa_next)
    if (entry->ifa_addr && entry->ifa_addr->sa_family == AF_PACKET && entry->ifa_data &&
        std::strcmp(entry->ifa_name, "vb0") == 0)
      packets = static_cast<const rtnl_link_stats*>(entry->ifa_data)->tx_packets;
  freeifaddrs(addresses);
  return packets;
}

// UDP datagrams of `payload` bytes offered at a 1 Gbit/s Ethernet link's line
// rate (each datagram a frame of payload + 66 bytes on the wire: UDP, IP,
// Ethernet header, FCS, preamble and gap), paced by the clock for
// kLineRateSeconds: the datagrams per second the uplink carried. Below a size
// one CPU cannot write that fast, and the figure is the path's CPU-bound rate.
double udpAtLineRate(std::size_t payload) {
  const double offered = kLineRateBitsPerSecond / (8.0 * static_cast<double>(payload + 66));
  const int sock = discardSender(payload);
  if (sock < 0) return -1;
  std::vector<char> datagram(payload);
  bool failed = false;
  const std::optional<std::uint32_t> before = uplinkPacketsSent();
  const auto start = Clock::now();
  auto now = start;
  // Datagrams go out in bursts of at most 32, as many as the line rate has made
  // due by then: one clock read a burst, not a datagram, so that the clock's
  // cost does not stand in for the path's when the CPU is the limit.
  for (std::uint64_t sent = 0; !failed;) {
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (elapsed >= kLineRateSeconds) break;
    const auto due = static_cast<std::uint64_t>(elapsed * offered);
    if (sent >= due) {
      // Ahead of the line: sleep until the next burst is due rather than spin
      // (a spinning real-time process is throttled by the kernel's RT limit).
      std::this_thread::sleep_until(
          start + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(static_cast<double>(sent + 32) / offered)));
    }
    for (int burst = 0; sent < due && burst < 32 && !failed; ++burst, ++sent)
      failed = write(sock, datagram.data(), datagram.size()) < 0 && errno != ENOBUFS;
    now = Clock::now();
  }
  const double seconds = std::chrono::duration<double>(now - start).count();
  const std::optional<std::uint32_t> after = uplinkPacketsSent();
  close(sock);
  if (failed || !before || !after) return -1;
  const std::uint32_t carried = *after - *before;  // modulo 2^32, as the counter wraps
  return static_cast<double>(carried) / seconds;
}

int runCommand(const std::string& command) { return std::system(command.c_str()); }

// Attaches the discard program to `device` in the named network namespace
// (test::attachUdpDiscard); false when it cannot.
bool discardUdpAt(const std::string& netns, const char* device) {
  int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  int far = open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
  bool attached = false;
  if (own >= 0 && far >= 0 && setns(far, CLONE_NEWNET) == 0) {
    try {
      test::attachUdpDiscard(device);
      attached = true;
    } catch (const std::exception& error) {
      std::fprintf(stderr, "vnet_bench: %s\n", error.what());
    }
    if (setns(own, CLONE_NEWNET) != 0) throw std::runtime_error("cannot return to own netns");
  }
  if (own >= 0) close(own);
  if (far >= 0) close(far);
  return attached;
}

// A number field of iperf3's JSON report: the first `field` after `section`.
double iperfField(const std::string& arguments, const char* section, const char* field) {
  FILE* out = popen(
      ("timeout 20 iperf3 -c " + std::string(kRemote) + " -t 3 -J " + arguments + " 2>/dev/null")
          .c_str(),
      "r");
  if (!out) return -1;
  std::string json;
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof(buffer), out)) json.append(buffer, n);
  pclose(out);
  auto at = json.find(section);
  if (at == std::string::npos) return -1;
  const std::string key = std::string("\"") + field + "\":";
  at = json.find(key, at);
  if (at == std::string::npos) return -1;
  return std::strtod(json.c_str() + at + key.size(), nullptr);
}

// TCP: the sender's throughput in Gbit/s.
double iperfGbps() { return iperfField("", "\"sum_sent\"", "bits_per_second") / 1e9; }

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Run count and run time of each attached program (kernel BPF statistics, on
// while the bench holds its BPF_ENABLE_STATS descriptor), by link name.
using RunTimes = std::map<std::string, std::pair<std::uint64_t, std::uint64_t>>;
RunTimes programRunTimes(const fs::path& pin_dir) {
  RunTimes times;
  for (const auto& entry : fs::directory_iterator(pin_dir)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with("link_")) continue;
    int link = bpf_obj_get(entry.path().c_str());
    bpf_link_info link_info{};
    std::uint32_t length = sizeof(link_info);
    if (link < 0 || bpf_obj_get_info_by_fd(link, &link_info, &length) != 0) continue;
    int program = bpf_prog_get_fd_by_id(link_info.prog_id);
    bpf_prog_info info{};
    length = sizeof(info);
    if (program >= 0 && bpf_obj_get_info_by_fd(program, &info, &length) == 0)
      times[name.substr(5)] = {info.run_cnt, info.run_time_ns};
    if (program >= 0) close(program);
    close(link);
  }
  return times;
}

// The programs' own time between two snapshots, per operation of a workload.
double programNsPerOperation(const RunTimes& before, const RunTimes& after, double operations) {
  std::uint64_t ns = 0;
  for (const auto& [name, value] : after) {
    auto it = before.find(name);
    ns += value.second - (it == before.end() ? 0 : it->second.second);
  }
  return static_cast<double>(ns) / operations;
}

struct Pair {
  double plain = 0;
  double policed = 0;
};

// `prepare(policed)` runs before each round, when given.
Pair alternate(const char* what, const fs::path& plain, const fs::path& policed,
               const std::function<double()>& work, const std::function<void(bool)>& prepare = {}) {
  std::vector<double> without;
  std::vector<double> with;
  for (int round = 0; round < kRounds; ++round) {
    if (prepare) prepare(false);
    without.push_back(measureIn(plain, work));
    if (prepare) prepare(true);
    with.push_back(measureIn(policed, work));
    std::fprintf(stderr, "vnet_bench: %s round %d: %.2f without, %.2f with\n", what, round + 1,
                 without.back(), with.back());
  }
  return {median(without), median(with)};
}

}  // namespace

constexpr const char* kUsage =
    "usage: vnet_bench [--uplink]\n"
    "  What vnet-bpf's policy programs cost, beside the same work without them\n"
    "  (docs/benchmarks.md, \"vnet_bench\"). Runs as root, in namespaces and a\n"
    "  cgroup sandbox of its own.\n"
    "  --uplink  only the rounds through the uplink (TCP throughput, UDP packets,\n"
    "            UDP at a 1 Gbit/s line rate)\n";

int main(int argc, char** argv) {
  bool socket_calls = true;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument == "--help" || argument == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (argument != "--uplink") {
      std::fprintf(stderr, "vnet_bench: unknown argument %s\n%s", argv[i], kUsage);
      return 2;
    }
    socket_calls = false;
  }
  try {
    test::enterPrivateNetwork();
    test::VnetEnvironment env;
    fs::path plain = env.sandbox.roots().unified / "plain";
    fs::create_directories(plain);
    auto policy = env.open();
    policy->setSlice(test::kXidA,
                     vnet::SlicePolicy{.raw_sockets = true, .max_ports = 2000, .reserved = {}});
    policy->setBlacklist(
        {vnet::parsePrefix("203.0.113.0/24"), vnet::parsePrefix("2001:db8:dead::/48")});

    // The node's listener on the allowlisted port, accepting in a thread.
    int listener = test::listenAsNode(AF_INET, SOCK_STREAM, 7000);
    std::thread acceptor([listener] {
      while (true) {
        int peer = accept(listener, nullptr, nullptr);
        if (peer < 0) return;
        close(peer);
      }
    });
    acceptor.detach();

    // Only the policed rounds run programs: the plain cgroup is not below the
    // slivers. The timed rounds run without the kernel's BPF statistics (they
    // add two clock reads to every program run); one more round of each
    // workload, with them on, gives the programs' own time.
    Pair binds, closes, connects, raw;
    RunTimes start, after_raw;
    double bind_program_ns = 0, connect_program_ns = 0, raw_program_ns = 0;
    if (socket_calls) {
      binds = alternate("bind", plain, env.slice_a, nsPerBind);
      closes = alternate("close", plain, env.slice_a, nsPerClose);
      connects = alternate("connect", plain, env.slice_a, usPerConnect);
      raw = alternate("raw", plain, env.slice_a, rawPacketsPerSecond);
      int stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
      start = programRunTimes(env.pin_dir);
      measureIn(env.slice_a, nsPerBind);
      RunTimes after_bind = programRunTimes(env.pin_dir);
      measureIn(env.slice_a, usPerConnect);
      RunTimes after_connect = programRunTimes(env.pin_dir);
      measureIn(env.slice_a, rawPacketsPerSecond);
      after_raw = programRunTimes(env.pin_dir);
      if (stats >= 0) close(stats);
      bind_program_ns = programNsPerOperation(start, after_bind, kBindCloses);
      connect_program_ns = programNsPerOperation(after_bind, after_connect, kConnects);
      raw_program_ns = programNsPerOperation(after_connect, after_raw, kRawPackets);
    }

    // A veth pair to a "remote host" namespace running iperf3's server.
    std::string ns = "plng-vnet-bench-" + std::to_string(getpid());
    Pair throughput{-1, -1};
    Pair udp{-1, -1};
    Pair udp_programs{-1, -1};    // the programs alone, no HTB tree
    std::vector<Pair> line_rate;  // per kLineRatePayloads
    double egress_ns_per_packet = -1;
    if (runCommand("command -v iperf3 >/dev/null") == 0 &&
        runCommand(
            "ip netns add " + ns + " && ip link add vb0 type veth peer name vb1 netns " + ns +
            " && ip addr add 192.0.2.1/24 dev vb0 && ip link set vb0 up && ip netns exec " + ns +
            " ip addr add " + kRemote + "/24 dev vb1 && ip netns exec " + ns +
            " ip link set vb1 up && ip netns exec " + ns + " ip link set lo up && ip netns exec " +
            ns + " iperf3 -s -D -I /tmp/" + ns + ".pid") == 0 &&
        discardUdpAt(ns, "vb1")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      // The uplink's HTB tree for the policed rounds: the node's limit and the
      // slice's ceil far above the veth's rate, the slice's class in its entry
      // of the slices map, as sliverd's BandwidthControl sets them.
      constexpr std::uint64_t kUnshaped = 400'000'000'000;  // 400 Gbit/s
      vnet::HtbTree uplink("vb0");
      const vnet::SliceClassIds ids = vnet::ClassIdAllocator().assign(test::kXidA);
      policy->setSliceClasses(test::kXidA, ids);
      // The plain rounds' uplink has what a physical uplink has without
      // PlanetLab NG, a root qdisc: the kernel's default, pfifo_fast (Debian
      // sets fq_codel, which this host's kernel lacks), not the veth's own
      // noqueue, which no physical device has.
      auto shaping = [&](bool policed) {
        if (!policed) {
          uplink.remove();
          runCommand("tc qdisc replace dev vb0 root pfifo_fast");
          return;
        }
        uplink.install(kUnshaped);  // replaces the root qdisc
        uplink.setSlice(
            ids, vnet::SliceBandwidth{.min_rate_bps = 1'000'000'000, .max_rate_bps = kUnshaped});
      };
      // The programs alone: no qdisc on either side (the veth's noqueue).
      auto bare = [&](bool) {
        uplink.remove();
        runCommand("tc qdisc del dev vb0 root 2>/dev/null");
      };
      throughput = alternate("iperf3 TCP", plain, env.slice_a, iperfGbps, shaping);
      udp = alternate("UDP 64 B", plain, env.slice_a, udpPacketsPerSecond, shaping);
      udp_programs = alternate("UDP 64 B, no qdisc", plain, env.slice_a, udpPacketsPerSecond, bare);
      for (std::size_t payload : kLineRatePayloads) {
        const std::string what = "UDP " + std::to_string(payload) + " B at 1 Gbit/s";
        line_rate.push_back(alternate(
            what.c_str(), plain, env.slice_a, [payload] { return udpAtLineRate(payload); },
            shaping));
      }
      // The egress program's own time per packet, over one more UDP round.
      shaping(true);
      int udp_stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
      RunTimes before_udp = programRunTimes(env.pin_dir);
      measureIn(env.slice_a, udpPacketsPerSecond);
      RunTimes after_udp = programRunTimes(env.pin_dir);
      if (udp_stats >= 0) close(udp_stats);
      auto egress_after = after_udp.find("vnet_egress");
      auto egress_before = before_udp.find("vnet_egress");
      if (egress_after != after_udp.end() && egress_before != before_udp.end()) {
        const std::uint64_t runs = egress_after->second.first - egress_before->second.first;
        if (runs)
          egress_ns_per_packet =
              static_cast<double>(egress_after->second.second - egress_before->second.second) /
              static_cast<double>(runs);
      }
      uplink.remove();
    }
    runCommand("test -f /tmp/" + ns + ".pid && kill $(cat /tmp/" + ns + ".pid); rm -f /tmp/" + ns +
               ".pid; ip netns del " + ns + " 2>/dev/null");

    std::printf("vnet_bench: medians of %d rounds, each without and with the policy programs\n",
                kRounds);
    if (socket_calls) {
      std::printf("  bind (UDP)            %8.0f ns    %8.0f ns    added %+.0f ns per bind\n",
                  binds.plain, binds.policed, binds.policed - binds.plain);
      std::printf("  close (bound UDP)     %8.0f ns    %8.0f ns    added %+.0f ns per close\n",
                  closes.plain, closes.policed, closes.policed - closes.plain);
      std::printf("  TCP connect+close     %8.2f us    %8.2f us    ratio %.3f\n", connects.plain,
                  connects.policed, connects.plain / connects.policed);
      std::printf("  raw packets (egress)  %8.0f /s    %8.0f /s    ratio %.3f\n", raw.plain,
                  raw.policed, raw.policed / raw.plain);
    }
    std::printf("  TCP throughput uplink %8.2f Gb/s  %8.2f Gb/s  ratio %.3f   (pfifo_fast | HTB)\n",
                throughput.plain, throughput.policed, throughput.policed / throughput.plain);
    std::printf("  UDP 64 B pkts uplink  %8.0f /s    %8.0f /s    ratio %.3f   (pfifo_fast | HTB)\n",
                udp.plain, udp.policed, udp.policed / udp.plain);
    std::printf("  UDP 64 B pkts uplink  %8.0f /s    %8.0f /s    ratio %.3f   (no qdisc either)\n",
                udp_programs.plain, udp_programs.policed,
                udp_programs.policed / udp_programs.plain);
    std::printf(
        "  added per UDP packet: %.0f ns with the HTB tree, %.0f ns by the programs alone\n",
        1e9 / udp.policed - 1e9 / udp.plain, 1e9 / udp_programs.policed - 1e9 / udp_programs.plain);
    for (std::size_t i = 0; i < line_rate.size(); ++i) {
      const double offered =
          kLineRateBitsPerSecond / (8.0 * static_cast<double>(kLineRatePayloads[i] + 66));
      std::printf(
          "  UDP %4zu B at 1 Gbit/s %8.0f /s    %8.0f /s    ratio %.3f   (%.0f /s offered)\n",
          kLineRatePayloads[i], line_rate[i].plain, line_rate[i].policed,
          line_rate[i].policed / line_rate[i].plain, offered);
    }
    std::printf("  (ratio: policed rate / plain rate; 1.0 = no cost)\n");
    std::printf("the programs' own run time (kernel BPF statistics), per operation:\n");
    std::printf("  egress program per UDP packet through the uplink: %.0f ns\n",
                egress_ns_per_packet);
    if (socket_calls) {
      std::printf("  bind+close %.0f ns, TCP connect+close %.0f ns, raw packet %.0f ns\n",
                  bind_program_ns, connect_program_ns, raw_program_ns);
      // Per program, over the three rounds with statistics on.
      for (const auto& [name, value] : after_raw) {
        auto before = start.find(name);
        std::uint64_t runs = value.first - (before == start.end() ? 0 : before->second.first);
        std::uint64_t run_ns = value.second - (before == start.end() ? 0 : before->second.second);
        if (runs)
          std::printf("  %-18s %10llu runs  %6.0f ns per run\n", name.c_str(),
                      static_cast<unsigned long long>(runs),
                      static_cast<double>(run_ns) / static_cast<double>(runs));
      }
    }
    shutdown(listener, SHUT_RDWR);
    close(listener);
    policy.reset();
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "vnet_bench: " << error.what() << "\n";
    return 1;
  }
}
