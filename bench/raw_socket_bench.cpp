// raw_socket_bench: what one brokered raw socket() costs a sliver, beside the
// same call made directly by host root, measured in the same run
// (docs/benchmarks.md, "raw_socket_bench"). The same static loop
// (raw-socket-probe loop) runs on the host with CAP_NET_RAW and inside a sliver
// under the sliver filter, where sliverd's RawSocketBroker answers each call;
// then inside the sliver without the right (the refusal's cost), and the
// broker's own step, socketInCgroup, in-process. Runs as root, in a network
// namespace of its own.
//
//   raw_socket_bench [--seconds S]   (default 2 per contender)
//
// The test fixtures it reuses (TestNode) report through Catch's assertions:
// Catch's implementation is compiled here (CATCH_CONFIG_RUNNER) and the bench
// is one test case that main() runs.
#define CATCH_CONFIG_RUNNER
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/fd.h"
#include "node/raw_socket.h"
#include "node/runtime.h"
#include "sliverd/core/raw_socket_broker.h"
#include "sliverd/core/raw_socket_runtime.h"
#include "tests/support/node_sliver_exec.h"
#include "tests/support/node_test_node.h"

namespace {

using plng::base::UniqueFd;
using Clock = std::chrono::steady_clock;

// `raw-socket-probe loop <seconds>` on the host, as root.
std::string loopOnHost(double seconds) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return "";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    const std::string s = std::to_string(seconds);
    ::execl(PLNG_BENCH_RAW_SOCKET_PROBE_PATH, "raw-socket-probe", "loop", s.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buffer[512];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) {
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  ::waitpid(pid, nullptr, 0);
  return text;
}

void report(const char* what, const std::map<std::string, std::string>& loop, double seconds,
            double baseline_us) {
  const double ok = std::atof(loop.count("ok") ? loop.at("ok").c_str() : "0");
  const double failed = std::atof(loop.count("failed") ? loop.at("failed").c_str() : "0");
  const double calls = ok + failed;
  const double us = calls > 0 ? seconds * 1e6 / calls : 0;
  std::printf("  %-44s %9.0f calls/s %8.2f us/call", what, calls / seconds, us);
  if (baseline_us > 0) std::printf("  %6.1fx", us / baseline_us);
  std::printf("  (ok %s, failed %s, errno %s, longest %s ms)\n",
              loop.count("ok") ? loop.at("ok").c_str() : "?",
              loop.count("failed") ? loop.at("failed").c_str() : "?",
              loop.count("last_errno") ? loop.at("last_errno").c_str() : "?",
              loop.count("longest_ms") ? loop.at("longest_ms").c_str() : "?");
}

double g_seconds = 2;

}  // namespace

TEST_CASE("raw_socket_bench") {
  const double seconds = g_seconds;
  if (::unshare(CLONE_NEWNET) != 0 || std::system("ip link set lo up") != 0) {
    FAIL("a network namespace of its own: " << std::strerror(errno));
  }
  try {
    plng::test::TestNode node(
        "plng-rawsock-bench",
        {PLNG_BENCH_BUILD_IMAGE_SCRIPT, PLNG_BENCH_IMAGES_DIR, PLNG_BENCH_SLIVER_INIT_PATH});
    auto runtime = node.runtime();
    plng::node::SliverConfig config;
    config.slice = "pl_bench";
    config.xid = 990;
    config.vref = "busybox";
    config.disk_quota_bytes = 64ull << 20;
    std::atomic<bool> right{true};
    plng::sliverd::RawSocketBroker broker(plng::sliverd::RawSocketBroker::Options{
        .has_right = [&](const std::string&) { return right.load(); },
        .in_flight_file = node.paths.rawSocketCall(),
    });
    plng::sliverd::RawSocketRuntime brokered(runtime, *node.cgroups, broker);
    brokered.create(config);
    brokered.start(config.slice);

    utsname uts{};
    ::uname(&uts);
    std::printf(
        "raw_socket_bench: socket(AF_INET, SOCK_RAW|SOCK_CLOEXEC, IPPROTO_ICMP) + "
        "close(), %.1f s per contender\nkernel %s, %ld CPUs, build %s\n\n",
        seconds, uts.release, ::sysconf(_SC_NPROCESSORS_ONLN), PLNG_BENCH_BUILD_TYPE);

    const auto direct = plng::test::keyValues(loopOnHost(seconds));
    const double ok = std::atof(direct.count("ok") ? direct.at("ok").c_str() : "0");
    const double direct_us = ok > 0 ? seconds * 1e6 / ok : 0;
    report("direct (host root, CAP_NET_RAW)", direct, seconds, 0);

    UniqueFd init = runtime.openInit(config.slice);
    UniqueFd program(::open(PLNG_BENCH_RAW_SOCKET_PROBE_PATH, O_PATH | O_CLOEXEC));
    plng::test::SliverExecOptions options;
    options.exec_fd = program.get();
    pid_t holder = 1 << 30;
    options.seccomp_listener = [&](UniqueFd listener) {
      broker.watch(config.slice, ++holder, std::move(listener),
                   node.cgroups->openUnifiedDir(config.slice));
    };
    const std::string s = std::to_string(seconds);
    const auto granted = plng::test::keyValues(
        plng::test::runInSliver(init.get(), {"raw-socket-probe", "loop", s}, options).output);
    report("brokered (sliver with the right)", granted, seconds, direct_us);
    right = false;
    const auto refused = plng::test::keyValues(
        plng::test::runInSliver(init.get(), {"raw-socket-probe", "loop", s}, options).output);
    report("refused by the broker (no right: EPERM)", refused, seconds, direct_us);

    // The broker's own step: the socket made by a task cloned into the cgroup.
    UniqueFd cgroup = node.cgroups->openUnifiedDir(config.slice);
    unsigned long made = 0;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    const auto start = Clock::now();
    while (Clock::now() < end) {
      UniqueFd fd = plng::node::socketInCgroup(cgroup.get(), AF_INET, SOCK_RAW, IPPROTO_ICMP);
      ++made;
    }
    const double took = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("  %-44s %9.0f calls/s %8.2f us/call\n", "of which socketInCgroup (in sliverd)",
                static_cast<double>(made) / took, took * 1e6 / static_cast<double>(made));
    brokered.destroy(config.slice);
  } catch (const std::exception& e) {
    FAIL(e.what());
  }
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      g_seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: raw_socket_bench [--seconds S]\n");
      return 2;
    }
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "raw_socket_bench: run as root\n");
    return 1;
  }
  const char* catch_args[] = {"raw_socket_bench"};
  return Catch::Session().run(1, catch_args);
}
