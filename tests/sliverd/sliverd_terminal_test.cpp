// sliverd itself, started as an operator starts the local planet: from a root
// shell, with a terminal as its controlling terminal and stdio. Whatever sliverd
// starts later (slivers, helpers) must find no way back to that terminal.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "base/fd.h"
#include "base/proc.h"
#include "tests/support/node_cgroup_sandbox.h"
#include "tests/support/scratch_dir.h"

namespace fs = std::filesystem;
using plng::base::UniqueFd;

namespace {

// Field 7 of /proc/<pid>/stat; empty when the process is gone.
std::string ttyNr(pid_t pid) {
  const auto stat = plng::base::readProcStat(pid);
  return stat ? std::to_string(stat->tty_nr) : "";
}

}  // namespace

TEST_CASE("sliverd started from a terminal gives it up and switches TIOCSTI off",
          "[root][sliverd]") {
  plng::test::CgroupSandbox sandbox;  // skips when not root
  plng::test::ScratchDir scratch("plng-sliverd-tty");
  const fs::path& dir = scratch.path();
  std::ofstream(dir / "node.key") << std::string(64, 'a') << "\n";
  std::ofstream(dir / "sliverd.conf") << "state_dir = " << (dir / "state").string() << "\n"
                                      << "run_dir = " << (dir / "run").string() << "\n"
                                      << "node_key_file = " << (dir / "node.key").string() << "\n"
                                      << "listen = 127.0.0.1:0\n"
                                      << "plc_address = 127.0.0.1:1\n"
                                      << "slice_accounts = false\n"
                                      << "storage_kind = none\n"
                                      << "watchdog = false\n"
                                      // Not this test's subject; it would pin programs.
                                      << "network_isolation = false\n";

  // The sysctl as a kernel boots with it, restored afterwards.
  const fs::path sysctl = "/proc/sys/dev/tty/legacy_tiocsti";
  const bool has_sysctl = fs::exists(sysctl);
  std::string before;
  if (has_sysctl) std::ifstream(sysctl) >> before;
  struct Restore {
    fs::path file;
    std::string value;
    ~Restore() {
      if (!value.empty()) std::ofstream(file) << value << "\n";
    }
  } restore{sysctl, before};
  if (has_sysctl) std::ofstream(sysctl) << "1\n";
  // sliverd also widens net.ipv4.ping_group_range (ping sockets in slivers;
  // decommission would restore it): this test restores it itself.
  const fs::path ping_range = "/proc/sys/net/ipv4/ping_group_range";
  std::string ping_before;
  std::getline(std::ifstream(ping_range), ping_before);
  Restore restore_ping{ping_range, ping_before};

  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  REQUIRE(master);
  REQUIRE(::grantpt(master.get()) == 0);
  REQUIRE(::unlockpt(master.get()) == 0);
  const std::string slave = ::ptsname(master.get());

  // sliverd manages cgroups beneath the one it starts in: the sandbox's.
  std::set<fs::path> cgroups = {sandbox.roots().unified};
  for (const auto& [controller, path] : sandbox.roots().v1) cgroups.insert(path);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (const auto& cgroup : cgroups) std::ofstream(cgroup / "cgroup.procs") << ::getpid();
    ::setsid();
    int tty = ::open(slave.c_str(), O_RDWR);
    if (tty < 0 || ::ioctl(tty, TIOCSCTTY, 0) != 0) ::_exit(126);
    ::dup2(tty, 0);
    ::dup2(tty, 1);
    ::dup2(tty, 2);
    const std::string config = (dir / "sliverd.conf").string();
    ::execl(PLNG_SLIVERD_PATH, "sliverd", "--config", config.c_str(), "serve", nullptr);
    ::_exit(127);
  }
  struct Stop {
    pid_t pid;
    ~Stop() {
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 150; ++i) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
        ::usleep(100'000);
      }
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } stop{pid};

  // Its log, on the terminal, until the local API is up.
  std::string log;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (log.find("local API on") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{master.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 200) <= 0) {
      REQUIRE(::waitpid(pid, nullptr, WNOHANG) == 0);  // still running
      continue;
    }
    char buf[4096];
    ssize_t n = ::read(master.get(), buf, sizeof buf);
    if (n <= 0) break;
    log.append(buf, static_cast<std::size_t>(n));
  }
  INFO(log);
  REQUIRE(log.find("local API on") != std::string::npos);

  CHECK(ttyNr(pid) == "0");
  CHECK(fs::read_symlink("/proc/" + std::to_string(pid) + "/fd/0") == "/dev/null");
  CHECK(log.find("gave up controlling terminal " + slave) != std::string::npos);
  if (has_sysctl) {
    std::string now;
    std::ifstream(sysctl) >> now;
    CHECK(now == "0");
    CHECK(log.find("dev.tty.legacy_tiocsti was 1, set to 0") != std::string::npos);
  } else {
    CHECK(log.find("this kernel has no dev.tty.legacy_tiocsti") != std::string::npos);
  }
}
