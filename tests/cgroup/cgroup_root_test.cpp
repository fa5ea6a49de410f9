// The cgroup driver the probe picks, against the real kernel, inside a private
// CgroupSandbox: pids.max stops a fork bomb, mem_limit OOM-kills a hog and only
// it, cpu shares 1:3 split one contended CPU 25/75, killAll empties a cgroup,
// setUp moves the daemon, clone3(CLONE_INTO_CGROUP) lands in the sliver's
// unified directory.
//
// Runs on this hybrid host and, by the v2vm helper, in a pure cgroup v2 guest:
// PLNG_EXPECT_CGROUP_DRIVER=v2|hybrid makes the test fail unless the probe picked
// that driver (so a guest that lost its controllers cannot pass by skipping).
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <thread>

#include "node/cgroup.h"
#include "tests/support/node_cgroup_sandbox.h"
#include "tests/support/skip.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using plng::node::CgroupDriver;
using plng::node::CgroupRoots;
using plng::node::Resources;
using plng::test::CgroupSandbox;

namespace {

// The driver makeCgroupDriver picks for the sandbox, checked against
// PLNG_EXPECT_CGROUP_DRIVER.
std::unique_ptr<CgroupDriver> driverUnderTest(const CgroupSandbox& sandbox) {
  const char* expected = std::getenv("PLNG_EXPECT_CGROUP_DRIVER");
  std::unique_ptr<CgroupDriver> driver;
  try {
    driver = plng::node::makeCgroupDriver(sandbox.roots());
  } catch (const plng::base::SysError& e) {
    if (expected == nullptr)
      plng::test::skipTest(std::string("no cgroup driver fits: ") + e.what());
    FAIL("PLNG_EXPECT_CGROUP_DRIVER=" << expected << " but no driver fits: " << e.what());
  }
  static bool printed = false;
  if (!printed) {
    std::printf("cgroup driver: %.*s\n", static_cast<int>(driver->kind().size()),
                driver->kind().data());
    std::fflush(stdout);
    printed = true;
  }
  if (expected != nullptr) REQUIRE(driver->kind() == std::string_view(expected));
  driver->setUp(0);
  return driver;
}

// A fork()ed child that waits on a pipe until released, so the test can place it
// in its cgroups first. Killed and reaped on destruction.
class Child {
 public:
  explicit Child(const std::function<void()>& body) {
    int go[2];
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(go[1]);
      char c;
      if (::read(go[0], &c, 1) != 1) ::_exit(120);
      ::close(go[0]);
      body();
      ::_exit(0);
    }
    ::close(go[0]);
    go_ = go[1];
  }
  ~Child() {
    if (go_ >= 0) ::close(go_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void release() {
    REQUIRE(::write(go_, "x", 1) == 1);
    ::close(go_);
    go_ = -1;
  }
  // The wait status, or nullopt if still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int status = 0;
      pid_t got = ::waitpid(pid_, &status, WNOHANG);
      if (got == pid_) {
        reaped_ = true;
        return status;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }
  bool running() {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == 0) return true;
    reaped_ = true;
    return false;
  }
  void markReaped() { reaped_ = true; }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
  bool reaped_ = false;
};

bool killedBy(const std::optional<int>& status, int sig) {
  return status && WIFSIGNALED(*status) && WTERMSIG(*status) == sig;
}

// Reads one int from `fd`, waiting up to `timeout`.
std::optional<int> readInt(int fd, std::chrono::milliseconds timeout) {
  struct pollfd p {
    fd, POLLIN, 0
  };
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  int value = 0;
  if (::read(fd, &value, sizeof value) != sizeof value) return std::nullopt;
  return value;
}

// How long fork + exec of /bin/true + wait takes from the test process.
std::chrono::milliseconds spawnTrue() {
  auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execl("/bin/true", "true", nullptr);
    ::_exit(127);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

std::chrono::milliseconds medianSpawnTrue(int runs) {
  std::vector<std::chrono::milliseconds> times;
  for (int i = 0; i < runs; ++i) times.push_back(spawnTrue());
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

TEST_CASE("a fork bomb stops at pids.max and the node stays responsive", "[root]") {
  plng::test::requireRoot();
  CgroupSandbox sandbox;
  auto driver = driverUnderTest(sandbox);
  // Orphans of the bomb are reparented to us, so we can reap them.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);

  auto baseline = medianSpawnTrue(3);

  Resources r;
  r.tasks = 16;
  driver->create("bomb");
  driver->apply("bomb", r);

  int result[2];
  REQUIRE(::pipe2(result, O_CLOEXEC) == 0);
  int report_fd = result[1];
  Child leader([report_fd] {
    // Every process forks for ever; the first failure the leader sees is reported.
    bool reported = false;
    pid_t leader_pid = ::getpid();
    for (;;) {
      pid_t pid = ::fork();
      if (pid < 0) {
        int err = errno;
        if (!reported && ::getpid() == leader_pid) {
          reported = ::write(report_fd, &err, sizeof err) == sizeof err;
        }
        ::usleep(1000);
      }
    }
  });
  ::close(result[1]);
  driver->attach("bomb", leader.pid());
  leader.release();

  auto err = readInt(result[0], 20s);
  ::close(result[0]);
  REQUIRE(err.has_value());
  CHECK(*err == EAGAIN);
  auto usage = driver->usage("bomb");
  CHECK(usage.tasks <= 16);
  CHECK(usage.tasks >= 8);
  CHECK(driver->pids("bomb").size() <= 16);

  // The node is not starved: we still fork and exec promptly. "Promptly" is
  // relative to this machine (a TCG guest is ~20x slower than the host).
  // Medians, since one exec may wait on a slow disk (virtiofs in the guest).
  auto during = medianSpawnTrue(5);
  std::printf("fork+exec of /bin/true: median %lld ms before the bomb, %lld ms during it\n",
              static_cast<long long>(baseline.count()), static_cast<long long>(during.count()));
  CHECK(during <= std::max<std::chrono::milliseconds>(500ms, 10 * baseline));

  driver->killAll("bomb", 5s);
  CHECK(driver->pids("bomb").empty());
  // Reap the leader and every orphan it left us.
  int status = 0;
  pid_t got;
  while ((got = ::waitpid(-1, &status, 0)) > 0)
    if (got == leader.pid()) leader.markReaped();
  CHECK(::prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
  driver->remove("bomb");
  CHECK(driver->list().empty());
}

TEST_CASE("a memory hog is OOM-killed inside its sliver only", "[root]") {
  plng::test::requireRoot();
  CgroupSandbox sandbox;
  auto driver = driverUnderTest(sandbox);

  Resources hog_limits;
  hog_limits.mem_limit_bytes = 64ull << 20;
  driver->create("hog");
  driver->apply("hog", hog_limits);
  Resources neighbour_limits;
  neighbour_limits.mem_limit_bytes = 64ull << 20;
  driver->create("neighbour");
  driver->apply("neighbour", neighbour_limits);

  constexpr size_t kChunk = 8 << 20;
  Child neighbour([] {
    // Holds 16 MiB of its own, well inside its limit, and waits.
    void* mem =
        ::mmap(nullptr, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) ::_exit(2);
    std::memset(mem, 1, 16 << 20);
    for (;;) ::pause();
  });
  driver->attach("neighbour", neighbour.pid());
  neighbour.release();

  Child hog([] {
    // Up to 1 GiB, touched page by page; exits 0 only if nothing stopped it.
    for (size_t total = 0; total < (1ull << 30); total += kChunk) {
      void* mem =
          ::mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mem == MAP_FAILED) ::_exit(3);
      std::memset(mem, 1, kChunk);
    }
    ::_exit(0);
  });
  driver->attach("hog", hog.pid());
  hog.release();

  // memory.high (90 % of the limit) throttles the hog before memory.max kills it.
  auto status = hog.wait(60s);
  REQUIRE(status.has_value());
  CHECK(killedBy(status, SIGKILL));
  CHECK(neighbour.running());
  CHECK(driver->usage("neighbour").memory_bytes >= (16u << 20));
  CHECK(driver->pids("neighbour") == std::vector<pid_t>{neighbour.pid()});
  CHECK(driver->pids("hog").empty());

  driver->killAll("neighbour", 5s);
  CHECK(killedBy(neighbour.wait(5s), SIGKILL));
  driver->remove("hog");
  driver->remove("neighbour");
}

TEST_CASE("cpu shares 1:3 split one contended CPU 25/75", "[root]") {
  plng::test::requireRoot();
  CgroupSandbox sandbox;
  auto driver = driverUnderTest(sandbox);

  cpu_set_t allowed;
  REQUIRE(::sched_getaffinity(0, sizeof allowed, &allowed) == 0);
  int cpu = 0;
  while (!CPU_ISSET(cpu, &allowed)) ++cpu;

  auto spinner = [cpu] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (::sched_setaffinity(0, sizeof one, &one) != 0) ::_exit(4);
    volatile std::uint64_t spins = 0;
    for (;;) spins = spins + 1;
  };
  Resources light;
  light.cpu_share = 32;
  Resources heavy;
  heavy.cpu_share = 96;
  driver->create("light");
  driver->apply("light", light);
  driver->create("heavy");
  driver->apply("heavy", heavy);
  Child a(spinner);
  Child b(spinner);
  driver->attach("light", a.pid());
  driver->attach("heavy", b.pid());
  a.release();
  b.release();

  std::this_thread::sleep_for(500ms);
  auto light0 = driver->usage("light").cpu_usage_ns;
  auto heavy0 = driver->usage("heavy").cpu_usage_ns;
  std::this_thread::sleep_for(3s);
  auto light1 = driver->usage("light").cpu_usage_ns;
  auto heavy1 = driver->usage("heavy").cpu_usage_ns;

  double dl = static_cast<double>(light1 - light0);
  double dh = static_cast<double>(heavy1 - heavy0);
  double heavy_share = dh / (dl + dh);
  std::printf("cpu shares 32:96 on CPU %d: %.1f ms : %.1f ms, heavy got %.1f %%\n", cpu, dl / 1e6,
              dh / 1e6, heavy_share * 100);
  // The two must have competed for a meaningful time for the ratio to mean anything.
  REQUIRE(dl + dh > 0.3e9);
  CHECK(heavy_share >= 0.70);
  CHECK(heavy_share <= 0.80);

  driver->killAll("light", 5s);
  driver->killAll("heavy", 5s);
  CHECK(killedBy(a.wait(5s), SIGKILL));
  CHECK(killedBy(b.wait(5s), SIGKILL));
}

TEST_CASE("killAll empties a cgroup, children and grandchildren", "[root]") {
  plng::test::requireRoot();
  CgroupSandbox sandbox;
  auto driver = driverUnderTest(sandbox);
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  driver->create("crowd");
  driver->apply("crowd", Resources{});

  std::vector<std::unique_ptr<Child>> children;
  for (int i = 0; i < 3; ++i) {
    children.push_back(std::make_unique<Child>([] {
      if (::fork() == 0) {
        // The grandchild ignores SIGTERM: only SIGKILL stops it.
        ::signal(SIGTERM, SIG_IGN);
        for (;;) ::pause();
      }
      for (;;) ::pause();
    }));
    driver->attach("crowd", children.back()->pid());
    children.back()->release();
  }
  // Wait until the grandchildren exist.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (driver->pids("crowd").size() < 6 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  REQUIRE(driver->pids("crowd").size() == 6);

  driver->killAll("crowd", 5s);
  CHECK(driver->pids("crowd").empty());
  CHECK(driver->usage("crowd").tasks <= 6);  // zombies count until reaped
  for (auto& child : children) CHECK(killedBy(child->wait(5s), SIGKILL));
  int status = 0;
  while (::waitpid(-1, &status, 0) > 0) {
  }
  CHECK(::prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
  CHECK(driver->usage("crowd").tasks == 0);

  driver->remove("crowd");
  CHECK_FALSE(fs::exists(driver->unifiedDir("crowd")));
  driver->remove("crowd");  // idempotent
}

TEST_CASE("setUp moves the daemon into <root>/daemon in every hierarchy", "[root]") {
  plng::test::requireRoot();
  CgroupSandbox sandbox;
  auto driver = driverUnderTest(sandbox);
  Child daemon([] {
    for (;;) ::pause();
  });
  driver->setUp(daemon.pid());
  auto where = CgroupRoots::ofProcess(daemon.pid());
  CHECK(where.unified == sandbox.roots().unified / "daemon");
  if (driver->kind() == "hybrid") {
    for (const char* c : {"cpu", "cpuacct", "memory", "pids", "blkio"}) {
      if (!sandbox.roots().v1.count(c)) continue;
      INFO(c);
      CHECK(where.v1.at(c) == sandbox.roots().v1.at(c) / "daemon");
    }
  }
  driver->setUp(daemon.pid());  // idempotent
  CHECK(CgroupRoots::ofProcess(daemon.pid()).unified == sandbox.roots().unified / "daemon");
}

TEST_CASE("limitDaemon bounds the daemon's own leaf, not the slivers beside it", "[root]") {
  plng::test::requireRoot();
  CgroupSandbox sandbox;
  auto driver = driverUnderTest(sandbox);
  Resources own;
  own.mem_limit_bytes = 64ull << 20;
  own.tasks = 100;
  driver->limitDaemon(own);
  // pids.max where the driver keeps it: the unified leaf (v2) or the v1 pids tree.
  const fs::path pids_dir =
      driver->kind() == "hybrid" ? sandbox.roots().v1.at("pids") : sandbox.roots().unified;
  std::ifstream pids_max(pids_dir / "daemon" / "pids.max");
  std::string pids;
  pids_max >> pids;
  CHECK(pids == "100");

  constexpr size_t kChunk = 8 << 20;
  auto grow = [](size_t bytes) {
    for (size_t total = 0; total < bytes; total += kChunk) {
      void* mem =
          ::mmap(nullptr, kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mem == MAP_FAILED) ::_exit(3);
      std::memset(mem, 1, kChunk);
    }
  };
  // A "daemon" that grows past its limit is killed in its own cgroup...
  Child daemon([&] {
    grow(1ull << 30);
    ::_exit(0);
  });
  driver->setUp(daemon.pid());
  daemon.release();
  CHECK(killedBy(daemon.wait(60s), SIGKILL));
  // ... while a sliver without a memory limit beside it takes more than that.
  driver->create("roomy");
  driver->apply("roomy", Resources{});
  Child sliver([&] {
    grow(128ull << 20);
    ::_exit(0);
  });
  driver->attach("roomy", sliver.pid());
  sliver.release();
  auto status = sliver.wait(60s);
  REQUIRE(status.has_value());
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  driver->remove("roomy");
  // 0 lifts the limits again.
  driver->limitDaemon(Resources{});
  std::ifstream lifted(pids_dir / "daemon" / "pids.max");
  lifted >> pids;
  CHECK(pids == "max");
}

TEST_CASE("clone3 into openUnifiedDir starts the child in the sliver's cgroup", "[root]") {
  plng::test::requireRoot();
  CgroupSandbox sandbox;
  auto driver = driverUnderTest(sandbox);
  driver->create("born");
  driver->apply("born", Resources{});
  auto dir = driver->openUnifiedDir("born");

  struct clone_args args;
  std::memset(&args, 0, sizeof args);
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<std::uint64_t>(dir.get());
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (;;) ::pause();
  }
  auto where = CgroupRoots::ofProcess(static_cast<pid_t>(pid));
  CHECK(where.unified == driver->unifiedDir("born"));
  // v1 membership cannot be set at clone time: attach completes it.
  driver->attach("born", static_cast<pid_t>(pid));
  CHECK(driver->pids("born") == std::vector<pid_t>{static_cast<pid_t>(pid)});
  if (driver->kind() == "hybrid")
    CHECK(CgroupRoots::ofProcess(static_cast<pid_t>(pid)).v1.at("memory") ==
          sandbox.roots().v1.at("memory") / "slivers" / "born");
  driver->killAll("born", 5s);
  int status = 0;
  REQUIRE(::waitpid(static_cast<pid_t>(pid), &status, 0) == pid);
  CHECK(WIFSIGNALED(status));
  driver->remove("born");
}
