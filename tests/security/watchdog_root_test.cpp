// MemoryWatchdog with real sliver cgroups: two slivers holding different amounts
// of memory, a probe that says the node is short — the bigger one dies.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "base/error.h"
#include "base/fd.h"
#include "node/cgroup.h"
#include "node/watchdog.h"
#include "tests/support/node_cgroup_sandbox.h"

using plng::base::UniqueFd;

using namespace plng::node;

namespace {

constexpr std::size_t kMiB = 1 << 20;

class ShortProbe : public MemoryProbe {
 public:
  NodeMemory read() override { return {16ULL << 30, 512ULL << 20, 0, 0}; }  // 3% available
};

// A process in a sliver's cgroup holding `bytes` of touched anonymous memory;
// killed and reaped on destruction.
class MemoryHog {
 public:
  MemoryHog(CgroupDriver& cgroups, const std::string& sliver, std::size_t bytes) {
    int go[2], ready[2];
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      char byte;
      // Allocate only once placed: v1 memory cgroups do not move charges.
      if (::read(go[0], &byte, 1) != 1) ::_exit(1);
      char* p = static_cast<char*>(std::malloc(bytes));
      if (!p) ::_exit(2);
      for (std::size_t i = 0; i < bytes; i += 4096) p[i] = 1;
      if (::write(ready[1], "r", 1) != 1) ::_exit(3);
      for (;;) ::pause();
    }
    ::close(go[0]);
    ::close(ready[1]);
    UniqueFd go_w(go[1]), ready_r(ready[0]);
    {
      std::ofstream procs(cgroups.unifiedDir(sliver) / "cgroup.procs");
      procs << pid_ << std::flush;
      REQUIRE(procs.good());
    }
    cgroups.attach(sliver, pid_);
    REQUIRE(::write(go_w.get(), "g", 1) == 1);
    char byte = 0;
    REQUIRE(::read(ready_r.get(), &byte, 1) == 1);
  }
  ~MemoryHog() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  // Reaps the process if it has died; returns the signal that killed it (0 if alive).
  int deathSignal() {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return 0;
    pid_ = -1;
    return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
  }

 private:
  pid_t pid_ = -1;
};

}  // namespace

TEST_CASE("under memory pressure the bigger sliver is killed, the other survives",
          "[watchdog][root]") {
  plng::test::CgroupSandbox sandbox;
  std::unique_ptr<CgroupDriver> cgroups = makeCgroupDriver(sandbox.roots());
  cgroups->setUp(0);
  cgroups->create("site_big");
  cgroups->create("site_small");
  cgroups->create("site_empty");

  MemoryHog big(*cgroups, "site_big", 192 * kMiB);
  MemoryHog small(*cgroups, "site_small", 32 * kMiB);
  INFO("big uses " << cgroups->usage("site_big").memory_bytes << " small uses "
                   << cgroups->usage("site_small").memory_bytes);
  REQUIRE(cgroups->usage("site_big").memory_bytes > cgroups->usage("site_small").memory_bytes);

  ShortProbe probe;
  MemoryWatchdog watchdog(*cgroups, probe);
  std::optional<Victim> victim = watchdog.check();
  REQUIRE(victim);
  CHECK(victim->slice == "site_big");
  CHECK(victim->bytes >= 192 * kMiB);
  CHECK_THAT(victim->reason, Catch::Matchers::Contains("site_big"));

  // killAll waited for the cgroup to empty: the hog is dead (by SIGKILL) now.
  CHECK(cgroups->pids("site_big").empty());
  CHECK(big.deathSignal() == SIGKILL);
  CHECK(small.deathSignal() == 0);
  CHECK(::kill(small.pid(), 0) == 0);
  CHECK(cgroups->pids("site_small") == std::vector<pid_t>{small.pid()});

  // Next round: the small one is now the only running sliver.
  victim = watchdog.check();
  REQUIRE(victim);
  CHECK(victim->slice == "site_small");
  CHECK(small.deathSignal() == SIGKILL);
  // Nothing is left running: nothing to kill.
  CHECK_FALSE(watchdog.check());
}
