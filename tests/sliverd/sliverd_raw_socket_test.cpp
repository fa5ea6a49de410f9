// sliverd itself with raw sockets and ping sockets (docs/vnet.md, "Raw
// sockets"): a slice whose capabilities tag grants CAP_NET_RAW loops busybox
// `traceroute -I` (raw ICMP sockets only) from its initscript while sliverd is
// killed with SIGKILL and started again; a slice without the right gets EPERM
// for raw sockets and pings over an ICMP datagram socket once sliverd has
// widened net.ipv4.ping_group_range, which `sliverd decommission` restores. PLC's state is the one
// sliverd keeps on disk (no PLC runs); everything runs in a network namespace of the test's own,
// whose sysctl starts at the kernel's default "1 0".
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/file.h"
#include "node/idrange.h"
#include "node/kvfile.h"
#include "proto/plc.pb.h"
#include "tests/sliverd/sliverd_test_util.h"
#include "tests/support/node_cgroup_sandbox.h"
#include "tests/support/node_image.h"
#include "tests/support/node_private_network.h"
#include "tests/support/node_sliver_exec.h"
#include "tests/support/scratch_dir.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using plng::base::UniqueFd;

namespace {

constexpr const char* kPingGroupRange = "/proc/sys/net/ipv4/ping_group_range";

std::string pingGroupRange() {
  std::string value = plng::base::readFile(kPingGroupRange);
  for (char& c : value) c = c == '\t' ? ' ' : c;
  while (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

struct Sliverd {
  fs::path dir;
  std::set<fs::path> cgroups;

  // Runs `sliverd <command>` with the test's config; returns its pid (serve)
  // or waits for it (anything else) and returns its exit status.
  pid_t spawn(const std::string& command) const {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (const auto& cgroup : cgroups) std::ofstream(cgroup / "cgroup.procs") << ::getpid();
      const int log = ::open((dir / "sliverd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(log, 1);
      ::dup2(log, 2);
      const std::string config = (dir / "sliverd.conf").string();
      ::execl(PLNG_SLIVERD_PATH, "sliverd", "--config", config.c_str(), "--log-level", "debug",
              command.c_str(), nullptr);
      ::_exit(127);
    }
    return pid;
  }

  // A file inside the running sliver `slice` (through its init's root).
  std::string sliverFile(const std::string& slice, const std::string& path) const {
    try {
      auto record = plng::node::readKvFile(dir / "run" / "slivers" / (slice + ".init"));
      return plng::base::readFileIfExists("/proc/" + record.at("pid") + "/root" + path)
          .value_or("");
    } catch (const std::exception&) {
      return "";
    }
  }
};

// `raw-socket-probe <mode>` inside the running sliver `slice`, as its root.
std::string probeInSliver(const Sliverd& sliverd, const std::string& slice,
                          const std::vector<std::string>& args) {
  auto record = plng::node::readKvFile(sliverd.dir / "run" / "slivers" / (slice + ".init"));
  UniqueFd init(static_cast<int>(::syscall(SYS_pidfd_open, std::stoi(record.at("pid")), 0)));
  REQUIRE(init);
  UniqueFd program(::open(PLNG_RAW_SOCKET_PROBE_PATH, O_PATH | O_CLOEXEC));
  REQUIRE(program);
  plng::test::SliverExecOptions options;
  options.exec_fd = program.get();
  std::vector<std::string> argv = {"raw-socket-probe"};
  argv.insert(argv.end(), args.begin(), args.end());
  return plng::test::runInSliver(init.get(), argv, options).output;
}

// socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) in a child with gid `gid`: 0 or
// its errno (EACCES outside ping_group_range).
int pingSocketErrno(gid_t gid) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0) ::_exit(255);
    const int fd = ::socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    ::_exit(fd >= 0 ? 0 : errno);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::size_t countOf(const std::string& text, const std::string& word) {
  std::size_t n = 0;
  for (auto at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

// GET `target` from 127.0.0.1:port: the whole response.
std::string httpGet(int port, const std::string& target) {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return "";
  plng::base::writeAll(sock.get(), "GET " + target + " HTTP/1.1\r\nHost: node\r\n\r\n", "GET");
  return plng::base::readAll(sock.get(), "audit page");
}

void stop(pid_t pid, int signal) {
  ::kill(pid, signal);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

}  // namespace

TEST_CASE("sliverd brokers raw sockets across a SIGKILL and opens ping sockets to slices",
          "[root][sliverd][vnet]") {
  plng::test::CgroupSandbox sandbox;  // skips when not root
  plng::test::ScratchDir scratch("plng-sliverd-raw");
  plng::test::PrivateNetwork network(/*with_peer=*/true);
  const std::string range_before = pingGroupRange();
  const fs::path images =
      plng::test::busyboxImage(PLNG_BUILD_IMAGE_SCRIPT, fs::path(PLNG_TEST_IMAGES_DIR) / "busybox");

  Sliverd sliverd{scratch.path(), {sandbox.roots().unified}};
  for (const auto& [controller, path] : sandbox.roots().v1) sliverd.cgroups.insert(path);
  const fs::path& dir = scratch.path();
  std::ofstream(dir / "sliverd.conf")
      << plng::test::standaloneSliverdConfig(dir, images.parent_path(), PLNG_SLIVER_INIT_PATH)
      << "flow_drain_interval_s = 1\n"
      << "audit_listen = 127.0.0.1:0\n";

  // PLC's last state as sliverd keeps it: two slices, one with the raw right.
  planetlab::v1::NodeState state;
  state.set_version(1);
  state.set_epoch("raw-socket-test");
  state.set_hostname("node1.test");
  auto* raw = state.add_slivers();
  raw->set_slice_name("pl_rawd");
  raw->set_xid(801);
  (*raw->mutable_tags())["vref"] = "busybox";
  (*raw->mutable_tags())["capabilities"] = "CAP_NET_RAW";
  (*raw->mutable_tags())["initscript"] =
      "#!/bin/sh\n"
      "while :; do\n"
      "  if traceroute -n -I -m 1 -q 1 -w 1 10.213.0.2 >/dev/null 2>&1\n"
      "  then echo ok; else echo fail; fi >> /var/loop\n"
      "done\n";
  auto* plain = state.add_slivers();
  plain->set_slice_name("pl_pingd");
  plain->set_xid(802);
  (*plain->mutable_tags())["vref"] = "busybox";
  (*plain->mutable_tags())["initscript"] =
      "#!/bin/sh\n"
      "traceroute -n -I -m 1 -q 1 -w 1 10.213.0.2 > /var/traceroute.out 2>&1\n"
      "echo exit=$? >> /var/traceroute.out\n";
  fs::create_directories(dir / "state");
  plng::base::writeFileAtomic(dir / "state" / "plc-state", state.SerializeAsString(), 0600);

  auto waitFor = [&](auto done, std::chrono::seconds timeout = 30s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(100ms);
    return done();
  };
  auto log = [&] { return plng::base::readFileIfExists(dir / "sliverd.log").value_or(""); };

  pid_t pid = sliverd.spawn("serve");
  struct Guard {
    const Sliverd& sliverd;
    pid_t& pid;
    ~Guard() {
      if (pid > 0) stop(pid, SIGKILL);
      int status = 0;
      ::waitpid(sliverd.spawn("decommission"), &status, 0);
    }
  } guard{sliverd, pid};

  // ping_group_range covers every slice's gids.
  const plng::node::IdRange all = plng::node::allSliceIds();
  CHECK(waitFor([&] { return pingGroupRange() != range_before; }));
  CHECK(pingGroupRange() ==
        std::to_string(all.first) + " " + std::to_string(std::uint64_t{all.first} + all.count - 1));

  // The raw slice's loop gets its sockets; the other slice gets EPERM for raw
  // sockets (traceroute fails) and pings over an ICMP datagram socket (busybox's
  // ping always opens a raw socket: iputils' ping, the Debian image's, opens a
  // datagram one as the probe does).
  const bool looping =
      waitFor([&] { return countOf(sliverd.sliverFile("pl_rawd", "/var/loop"), "ok") >= 3; });
  INFO(log());
  REQUIRE(looping);

  // Flow auditing (docs/vnet.md): the loop's probes (busybox's traceroute
  // sends UDP datagrams, reading ICMP replies on its raw socket) are in the flow
  // record files within a drain or two, and the node's page names the slice.
  auto flowRecords = [&] {
    std::string records;
    std::error_code ec;
    for (const auto& file : fs::directory_iterator(dir / "state" / "flows", ec))
      if (file.path().extension() == ".tsv") records += plng::base::readFile(file.path());
    return records;
  };
  CHECK(waitFor(
      [&] { return flowRecords().find("\tpl_rawd\t801\t17\t10.213.0.1\t") != std::string::npos; }));
  const std::string started = log();
  const auto announced = started.find("\"who sent this?\" page on 127.0.0.1:0 (port ");
  REQUIRE(announced != std::string::npos);
  const int audit_port = std::stoi(started.substr(started.find("(port ", announced) + 6));
  CHECK(countOf(httpGet(audit_port, "/?dst=10.213.0.2"), "<td>pl_rawd</td>") >= 1);
  REQUIRE(waitFor([&] {
    return sliverd.sliverFile("pl_pingd", "/var/traceroute.out").find("exit=") != std::string::npos;
  }));
  const std::string traceroute = sliverd.sliverFile("pl_pingd", "/var/traceroute.out");
  INFO(traceroute);
  CHECK(traceroute.find("Operation not permitted") != std::string::npos);
  CHECK(traceroute.find("exit=0") == std::string::npos);
  const std::string ping =
      probeInSliver(sliverd, "pl_pingd", {"ping-dgram", plng::test::PrivateNetwork::kPeerAddress});
  INFO(ping);
  CHECK(ping.find("errno=0") != std::string::npos);
  CHECK(ping.find("echo_reply=1") != std::string::npos);
  CHECK(pingSocketErrno(all.first) == 0);

  // SIGKILL: the loop waits in socket() and goes on with the next sliverd.
  stop(pid, SIGKILL);
  pid = 0;
  std::this_thread::sleep_for(300ms);
  const std::size_t while_down = countOf(sliverd.sliverFile("pl_rawd", "/var/loop"), "ok");
  std::this_thread::sleep_for(700ms);
  CHECK(countOf(sliverd.sliverFile("pl_rawd", "/var/loop"), "ok") <= while_down + 1);
  pid = sliverd.spawn("serve");
  CHECK(waitFor(
      [&] { return countOf(sliverd.sliverFile("pl_rawd", "/var/loop"), "ok") >= while_down + 5; }));
  const std::string loop = sliverd.sliverFile("pl_rawd", "/var/loop");
  CHECK(countOf(loop, "fail") == 0);

  // Decommission (sliverd stopped first) puts the sysctl back.
  stop(pid, SIGTERM);
  pid = 0;
  int status = 0;
  ::waitpid(sliverd.spawn("decommission"), &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(pingGroupRange() == range_before);
  CHECK(pingSocketErrno(all.first) == EACCES);
}
