// Raw sockets in real slivers through sliverd's broker (docs/vnet.md, "Raw
// sockets"): busybox's ping from a sliver's initscript (a child of sliver-init,
// under the filter installed at launch), a probe under a login's own filter,
// the socket's cgroup (a cgroup BPF program sees its packets), refusals, live revocation, and a
// broker killed and replaced under a loop of socket() calls. Everything runs in
// a network namespace of the test's own: the pings go to its loopback.
#include "node/raw_socket.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "base/fd.h"
#include "node/sliver_runtime.h"
#include "sliverd/core/raw_socket_broker.h"
#include "sliverd/core/raw_socket_runtime.h"
#include "tests/support/node_private_network.h"
#include "tests/support/node_sliver_exec.h"
#include "tests/support/node_test_node.h"
#include "tests/support/skip.h"

using namespace std::chrono_literals;
using plng::base::UniqueFd;
using plng::node::SliverConfig;
using plng::sliverd::RawSocketBroker;
using plng::sliverd::RawSocketRuntime;

namespace {

struct Node : plng::test::TestNode {
  Node()
      : TestNode("plng-rawsock",
                 {PLNG_BUILD_IMAGE_SCRIPT, PLNG_TEST_IMAGES_DIR, PLNG_SLIVER_INIT_PATH}) {}
};

SliverConfig config(const std::string& slice, const std::string& initscript = "") {
  SliverConfig c;
  c.slice = slice;
  c.xid = 700;
  c.vref = "busybox";
  c.disk_quota_bytes = 64ull << 20;
  c.initscript = initscript;
  return c;
}

// A cgroup_skb/egress program that drops every packet, attached to one cgroup
// (`mov r0, 0; exit`: verdict 0 drops, and a raw sendto gets EPERM) while it
// lives. The kernel runs it only for sockets of that cgroup: a socket it stops
// belongs there.
class EgressDrop {
 public:
  explicit EgressDrop(const plng::node::CgroupDriver& cgroups, const std::string& slice) {
    UniqueFd path = cgroups.openUnifiedDir(slice);
    cgroup_.reset(::open(("/proc/self/fd/" + std::to_string(path.get())).c_str(),
                         O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(cgroup_);
    const bpf_insn program[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    bpf_attr load{};
    load.prog_type = BPF_PROG_TYPE_CGROUP_SKB;
    load.expected_attach_type = BPF_CGROUP_INET_EGRESS;
    load.insns = reinterpret_cast<std::uint64_t>(program);
    load.insn_cnt = 2;
    load.license = reinterpret_cast<std::uint64_t>("GPL");
    program_.reset(static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load)));
    REQUIRE(program_);
    bpf_attr attach{};
    attach.target_fd = static_cast<std::uint32_t>(cgroup_.get());
    attach.attach_bpf_fd = static_cast<std::uint32_t>(program_.get());
    attach.attach_type = BPF_CGROUP_INET_EGRESS;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    REQUIRE(::syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) == 0);
  }
  ~EgressDrop() {
    bpf_attr detach{};
    detach.target_fd = static_cast<std::uint32_t>(cgroup_.get());
    detach.attach_bpf_fd = static_cast<std::uint32_t>(program_.get());
    detach.attach_type = BPF_CGROUP_INET_EGRESS;
    ::syscall(SYS_bpf, BPF_PROG_DETACH, &detach, sizeof detach);
  }

 private:
  UniqueFd cgroup_;
  UniqueFd program_;
};

// A sliver and a broker answering its calls by `right`.
struct BrokeredSliver {
  explicit BrokeredSliver(const SliverConfig& c) : slice(c.slice) {
    brokered.create(c);
    brokered.start(slice);
  }
  ~BrokeredSliver() {
    try {
      brokered.destroy(slice);
    } catch (...) {
    }
  }

  // `raw-socket-probe args...` under a login's own filter, whose listener this
  // broker watches too.
  std::map<std::string, std::string> probe(const std::vector<std::string>& args) {
    UniqueFd init = runtime.openInit(slice);
    REQUIRE(init);
    UniqueFd program(::open(PLNG_RAW_SOCKET_PROBE_PATH, O_PATH | O_CLOEXEC));
    REQUIRE(program);
    plng::test::SliverExecOptions options;
    options.exec_fd = program.get();
    options.cgroup_fd = -1;
    options.seccomp_listener = [this](UniqueFd listener) {
      broker.watch(slice, ++next_login_holder, std::move(listener),
                   node.cgroups->openUnifiedDir(slice));
    };
    std::vector<std::string> argv = {"raw-socket-probe"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = plng::test::runInSliver(init.get(), argv, options);
    INFO(result.output);
    REQUIRE(result.exit_code == 0);
    return plng::test::keyValues(result.output);
  }

  std::string sh(const std::string& script) {
    UniqueFd init = runtime.openInit(slice);
    REQUIRE(init);
    return plng::test::shInSliver(init.get(), script).output;
  }

  // Waits up to `timeout` for `file` inside the sliver to contain `text`.
  std::string waitFor(const std::string& file, const std::string& text,
                      std::chrono::milliseconds timeout = 10s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    std::string content;
    while (std::chrono::steady_clock::now() < end) {
      content = sh("cat " + file + " 2>/dev/null");
      if (content.find(text) != std::string::npos) break;
      std::this_thread::sleep_for(100ms);
    }
    return content;
  }

  std::string slice;
  Node node;
  plng::node::LinuxSliverRuntime runtime = node.runtime();
  std::atomic<bool> right{true};
  RawSocketBroker broker{RawSocketBroker::Options{
      .has_right = [this](const std::string&) { return right.load(); },
      .in_flight_file = node.paths.rawSocketCall(),
  }};
  RawSocketRuntime brokered{runtime, *node.cgroups, broker};
  pid_t next_login_holder = 1 << 30;
};

}  // namespace

TEST_CASE("a slice with the raw right runs busybox ping over a raw socket made in its cgroup",
          "[root][vnet]") {
  plng::test::requireRoot();
  plng::test::PrivateNetwork network;
  // The initscript is a child of sliver-init: under the filter launchSliver
  // installed, whose listener sliver-init holds.
  BrokeredSliver s(config("pl_raw",
                          "#!/bin/sh\n"
                          "ping -c 1 -W 2 127.0.0.1 > /var/ping.out 2>&1\n"
                          "echo exit=$? >> /var/ping.out\n"));
  const std::string ping = s.waitFor("/var/ping.out", "exit=");
  INFO(ping);
  CHECK(ping.find("1 packets received") != std::string::npos);
  CHECK(ping.find("exit=0") != std::string::npos);
  // Busybox's ping tries a raw socket first: the broker made it.
  CHECK(s.broker.counters("pl_raw").granted >= 1);

  // The socket works and carries the flags asked for.
  auto v4 = s.probe({"open", "4", "1"});
  CHECK(v4["errno"] == "0");
  CHECK(v4["cloexec"] == "1");
  CHECK(v4["nonblock"] == "1");
  CHECK(v4["echo_reply"] == "1");
  CHECK(s.probe({"open", "6", std::to_string(IPPROTO_ICMPV6)})["errno"] == "0");
  // It belongs to the sliver's cgroup (the one vnet-bpf's programs key on),
  // though the probe itself runs outside it: a program that drops everything
  // leaving that cgroup stops its packets.
  {
    EgressDrop drop(*s.node.cgroups, "pl_raw");
    auto dropped = s.probe({"open", "4", "1"});
    CHECK(dropped["errno"] == "0");
    CHECK(dropped["sendto_errno"] == std::to_string(EPERM));
    CHECK(dropped["echo_reply"] == "0");
  }
  CHECK(s.probe({"open", "4", "1"})["echo_reply"] == "1");
  CHECK(s.probe({"open", "4", std::to_string(IPPROTO_UDP)})["errno"] == "0");
  CHECK(s.probe({"open", "6", std::to_string(IPPROTO_RAW)})["errno"] == "0");
  // Protocols egress policing never passes: refused even with the right.
  CHECK(s.probe({"open", "4", "47"})["errno"] == std::to_string(EPROTONOSUPPORT));
  CHECK(s.probe({"open", "6", std::to_string(IPPROTO_ICMP)})["errno"] ==
        std::to_string(EPROTONOSUPPORT));
}

TEST_CASE("without the raw right socket() fails with EPERM; revoking it applies at once",
          "[root][vnet]") {
  plng::test::requireRoot();
  plng::test::PrivateNetwork network;
  BrokeredSliver s(config("pl_noraw"));
  s.right = false;
  auto refused = s.probe({"open", "4", "1"});
  CHECK(refused["errno"] == std::to_string(EPERM));
  CHECK(s.probe({"open", "6", std::to_string(IPPROTO_ICMPV6)})["errno"] == std::to_string(EPERM));
  CHECK(s.broker.counters("pl_noraw").refused == 2);
  CHECK(s.broker.counters("pl_noraw").granted == 0);

  // Granted, then revoked: each takes effect at the very next socket.
  s.right = true;
  CHECK(s.probe({"open", "4", "1"})["errno"] == "0");
  s.right = false;
  CHECK(s.probe({"open", "4", "1"})["errno"] == std::to_string(EPERM));
}

namespace {

// A broker in a process of its own, as sliverd runs it: it adopts the running
// slivers through RawSocketRuntime::list() (what a restarted sliverd's first
// reconciliation does) and serves until killed. With `stall_first`, it hangs
// in the right check of its first call — after reading and recording it, as a
// sliverd killed at that moment would leave it.
pid_t startBrokerProcess(Node& node, bool stall_first) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid > 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  try {
    auto runtime = node.runtime();
    std::atomic<bool> first{true};
    RawSocketBroker broker(RawSocketBroker::Options{
        .has_right =
            [&](const std::string&) {
              if (stall_first && first.exchange(false)) {
                for (;;) ::pause();
              }
              return true;
            },
        .in_flight_file = node.paths.rawSocketCall(),
    });
    RawSocketRuntime brokered(runtime, *node.cgroups, broker);
    brokered.list();
    for (;;) ::pause();
  } catch (...) {
    ::_exit(1);
  }
}

void killBrokerProcess(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

std::size_t countOf(const std::string& text, const std::string& word) {
  std::size_t n = 0;
  for (auto at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

// busybox traceroute -I needs raw ICMP sockets (it has no fallback): every
// round is two brokered sockets. /var/loop gets "ok" or "fail: <why>" a round.
constexpr const char* kTracerouteLoop =
    "#!/bin/sh\n"
    "while :; do\n"
    "  if why=$(traceroute -n -I -m 1 -q 1 -w 1 127.0.0.1 2>&1 >/dev/null)\n"
    "  then echo ok; else echo \"fail: $why\"; fi >> /var/loop\n"
    "done\n";

// A sliver running kTracerouteLoop, on a node and in a network namespace of
// its own (call requireRoot() first).
struct TracerouteLoop {
  explicit TracerouteLoop(std::string name) : slice(std::move(name)) {
    runtime.create(config(slice, kTracerouteLoop));
    runtime.start(slice);
  }
  ~TracerouteLoop() {
    try {
      runtime.destroy(slice);
    } catch (const std::exception& e) {
      WARN("destroying " << slice << ": " << e.what());
    }
  }

  std::string output() {
    UniqueFd init = runtime.openInit(slice);
    REQUIRE(init);
    return plng::test::shInSliver(init.get(), "cat /var/loop 2>/dev/null").output;
  }

  // The output once it holds `oks` rounds that succeeded, or after 10 s.
  std::string waitForOks(std::size_t oks) {
    const auto end = std::chrono::steady_clock::now() + 10s;
    std::string text = output();
    while (countOf(text, "ok") < oks && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(50ms);
      text = output();
    }
    return text;
  }

  std::string slice;
  plng::test::PrivateNetwork network;
  Node node;
  plng::node::LinuxSliverRuntime runtime = node.runtime();
};

}  // namespace

TEST_CASE("a traceroute loop in a sliver continues across a broker killed with SIGKILL",
          "[root][vnet]") {
  plng::test::requireRoot();
  TracerouteLoop sliver("pl_loop");
  Node& node = sliver.node;
  auto loop = [&] { return sliver.output(); };
  auto waitForOks = [&](std::size_t oks) { return sliver.waitForOks(oks); };

  // The first broker dies holding the loop's first call, read and unanswered:
  // the kernel never delivers that call again, only the record tells the next
  // broker about it.
  pid_t broker = startBrokerProcess(node, /*stall_first=*/true);
  std::this_thread::sleep_for(500ms);
  CHECK(loop().empty());
  killBrokerProcess(broker);

  broker = startBrokerProcess(node, /*stall_first=*/false);
  std::string text = waitForOks(5);
  INFO(text);
  CHECK(countOf(text, "ok") >= 5);
  CHECK(countOf(text, "fail") == 0);

  // Killed under traffic, the loop waits (no failure) and goes on with the next.
  killBrokerProcess(broker);
  std::this_thread::sleep_for(300ms);
  const std::size_t while_down = countOf(loop(), "ok");
  std::this_thread::sleep_for(500ms);
  CHECK(countOf(loop(), "ok") <= while_down + 1);
  broker = startBrokerProcess(node, /*stall_first=*/false);
  text = waitForOks(while_down + 5);
  INFO("after the second restart:\n" << text);
  CHECK(countOf(text, "ok") >= while_down + 5);
  CHECK(countOf(text, "fail") == 0);
  killBrokerProcess(broker);
}

TEST_CASE("a call read by a broker killed before it recorded it is answered by the next",
          "[root][vnet]") {
  plng::test::requireRoot();
  TracerouteLoop loop("pl_lost");
  Node& node = loop.node;
  pid_t init_pid = 0;
  for (const auto& sliver : loop.runtime.list()) {
    if (sliver.config.slice == "pl_lost") init_pid = sliver.init_pid;
  }
  REQUIRE(init_pid > 0);

  // A broker answers (and records) the loop's calls and is killed. Until the
  // loop's next call is one nobody has read (the broker may have died holding
  // one: the next broker answers that from its record), again.
  UniqueFd listener;
  std::optional<plng::node::SocketCall> lost;
  for (int attempt = 0; attempt < 5 && !lost; ++attempt) {
    const pid_t broker = startBrokerProcess(node, /*stall_first=*/false);
    const std::size_t oks = countOf(loop.output(), "ok");
    CHECK(countOf(loop.waitForOks(oks + 2), "ok") >= oks + 2);
    killBrokerProcess(broker);
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, init_pid, 0)));
    REQUIRE(pidfd);
    listener = plng::node::takeSeccompListener(pidfd.get(), init_pid);
    REQUIRE(listener);
    pollfd ready{listener.get(), POLLIN, 0};
    if (::poll(&ready, 1, 2000) == 1) lost = plng::node::receiveSocketCall(listener.get());
  }
  REQUIRE(lost);
  // Read and never answered nor recorded, as by a broker killed right after
  // reading it: the kernel never hands it out again.
  INFO("the lost call: id " << lost->id << ", pid " << lost->pid);
  CHECK(plng::node::waitingSocketCall(lost->pid).has_value());
  listener.reset();
  const std::size_t before = countOf(loop.output(), "ok");
  std::this_thread::sleep_for(300ms);
  CHECK(countOf(loop.output(), "ok") == before);

  const pid_t broker = startBrokerProcess(node, /*stall_first=*/false);
  const std::string text = loop.waitForOks(before + 3);
  INFO(text);
  CHECK(countOf(text, "ok") >= before + 3);
  CHECK(countOf(text, "fail") == 0);
  killBrokerProcess(broker);
}
