// LinuxSliverRuntime end to end on the real kernel: a private cgroup subtree, a
// btrfs loop volume for upper layers, the busybox image, sliver-init.
#include "sliver_runtime.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "idrange.h"
#include "kvfile.h"
#include "node_cgroup_sandbox.h"
#include "node_image.h"
#include "node_skip.h"
#include "node_sliver_exec.h"
#include "node_test_node.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using plng::node::LinuxSliverRuntime;
using plng::node::NodePaths;
using plng::node::SliverConfig;
using plng::node::SliverPhase;
using plng::node::SliverRuntimeOptions;
using plng::node::SysError;
using plng::test::shInSliver;

namespace {

// Everything a node has, in temporary places: cgroups beneath the test's own,
// state and run directories, a 1 GiB btrfs volume; torn down in reverse order
// whatever happened.
struct Node : plng::test::TestNode {
  Node()
      : TestNode("plng-runtime",
                 {PLNG_BUILD_IMAGE_SCRIPT, PLNG_TEST_IMAGES_DIR, PLNG_SLIVER_INIT_PATH}) {}
};

SliverConfig config(const std::string& slice, std::uint64_t quota = 64ull << 20) {
  SliverConfig c;
  c.slice = slice;
  c.xid = 500;
  c.vref = "busybox";
  c.disk_quota_bytes = quota;
  return c;
}

plng::test::SliverExecResult sh(LinuxSliverRuntime& rt, const std::string& slice,
                                const std::string& script) {
  plng::node::UniqueFd init = rt.openInit(slice);
  REQUIRE(init);
  return shInSliver(init.get(), script);
}

}  // namespace

TEST_CASE("a sliver is created, started, stopped and destroyed", "[root][runtime]") {
  Node node;
  auto rt = node.runtime();
  SliverConfig c = config("pl_life");
  c.resources.tasks = 200;
  rt.create(c);
  rt.create(c);  // idempotent
  auto status = rt.get("pl_life");
  REQUIRE(status);
  CHECK(status->config == c);
  CHECK(status->phase == SliverPhase::kStopped);
  CHECK_FALSE(rt.get("pl_never"));
  CHECK_THROWS_AS(rt.start("pl_never"), SysError);

  rt.start("pl_life");
  status = rt.get("pl_life");
  REQUIRE(status->phase == SliverPhase::kRunning);
  pid_t init = status->init_pid;
  CHECK(init > 0);
  auto pids = node.cgroups->pids("pl_life");
  CHECK(std::find(pids.begin(), pids.end(), init) != pids.end());
  // In the sliver's cgroup in every hierarchy: cloned into the unified one,
  // attached to the v1 ones (hybrid) before it ran.
  {
    std::ifstream in("/proc/" + std::to_string(init) + "/cgroup");
    std::string line;
    int hierarchies = 0;
    while (std::getline(in, line)) {
      bool relevant = line.rfind("0::", 0) == 0 || line.find(":pids:") != std::string::npos ||
                      line.find(":memory:") != std::string::npos ||
                      line.find(":cpu:") != std::string::npos ||
                      line.find(":cpu,cpuacct:") != std::string::npos;
      if (!relevant) continue;
      INFO(line);
      CHECK(line.size() >= 16);
      CHECK(line.compare(line.size() - 16, 16, "/slivers/pl_life") == 0);
      ++hierarchies;
    }
    CHECK(hierarchies >= (node.cgroups->kind() == "hybrid" ? 2 : 1));
  }
  auto record = plng::node::readKvFile(node.paths.sliverInit("pl_life"));
  CHECK(record["pid"] == std::to_string(init));
  CHECK(record["cgroup"] == node.cgroups->unifiedDir("pl_life").string());
  rt.start("pl_life");  // already running: no-op
  CHECK(rt.get("pl_life")->init_pid == init);

  auto inside = sh(rt, "pl_life", "hostname; id -u; cat /proc/1/cmdline | tr '\\0' ' '");
  CHECK(inside.output == "pl_life\n0\nsliver-init --stop-grace-ms 500 ");
  auto ids = plng::node::IdRangeAllocator(node.paths.idRanges()).find("pl_life");
  REQUIRE(ids);
  CHECK(sh(rt, "pl_life", "touch /made-inside").exit_code == 0);

  rt.stop("pl_life", 2s);
  CHECK(rt.get("pl_life")->phase == SliverPhase::kStopped);
  CHECK(node.cgroups->pids("pl_life").empty());
  CHECK_FALSE(fs::exists(node.paths.sliverInit("pl_life")));
  CHECK_FALSE(rt.openInit("pl_life"));
  rt.stop("pl_life", 2s);  // stopped: no-op

  // Files survive a stop; a new start is a new init.
  rt.start("pl_life");
  status = rt.get("pl_life");
  REQUIRE(status->phase == SliverPhase::kRunning);
  CHECK(status->init_pid != init);
  CHECK(sh(rt, "pl_life", "ls /made-inside").exit_code == 0);

  rt.destroy("pl_life");
  CHECK_FALSE(rt.get("pl_life"));
  CHECK(rt.list().empty());
  auto left = node.cgroups->list();
  CHECK(std::find(left.begin(), left.end(), "pl_life") == left.end());
  CHECK_FALSE(fs::exists(node.paths.sliverDir("pl_life")));
  CHECK_FALSE(plng::node::IdRangeAllocator(node.paths.idRanges()).find("pl_life"));
  rt.destroy("pl_life");  // idempotent
}

TEST_CASE("a restarted runtime re-adopts running slivers without touching them",
          "[root][runtime]") {
  Node node;
  pid_t init = 0;
  {
    auto first = node.runtime();
    first.create(config("pl_adopt"));
    first.create(config("pl_idle"));
    first.start("pl_adopt");
    init = first.get("pl_adopt")->init_pid;
    REQUIRE(sh(first, "pl_adopt", "echo before > /root/mark").exit_code == 0);
  }  // "sliverd exits": the sliver keeps running

  auto second = node.runtime();
  auto all = second.list();
  REQUIRE(all.size() == 2);
  CHECK(all[0].config.slice == "pl_adopt");
  CHECK(all[0].phase == SliverPhase::kRunning);
  CHECK(all[0].init_pid == init);
  CHECK(all[1].config.slice == "pl_idle");
  CHECK(all[1].phase == SliverPhase::kStopped);
  CHECK(::kill(init, 0) == 0);
  CHECK(sh(second, "pl_adopt", "cat /root/mark").output == "before\n");
  second.start("pl_adopt");  // running: not started twice
  CHECK(second.get("pl_adopt")->init_pid == init);

  // The adopted sliver is stopped by the new runtime (it is not its child).
  second.stop("pl_adopt", 2s);
  CHECK(second.get("pl_adopt")->phase == SliverPhase::kStopped);
  CHECK(node.cgroups->pids("pl_adopt").empty());
  int status = 0;
  CHECK(::waitpid(init, &status, 0) == init);  // our own zombie, since we launched it

  // A record naming a live process that is not the sliver's init is not adopted.
  plng::node::writeKvFileAtomic(node.paths.sliverInit("pl_idle"),
                                {{"pid", std::to_string(::getpid())}, {"start_time", "1"}});
  CHECK(second.get("pl_idle")->phase == SliverPhase::kStopped);
  CHECK_FALSE(fs::exists(node.paths.sliverInit("pl_idle")));
}

TEST_CASE("writing past disk_quota fails inside the sliver and harms no other", "[root][runtime]") {
  Node node;
  auto rt = node.runtime();
  rt.create(config("pl_full", 16ull << 20));
  rt.create(config("pl_other", 16ull << 20));
  rt.start("pl_full");
  rt.start("pl_other");

  auto full = sh(rt, "pl_full", "dd if=/dev/zero of=/root/big bs=1M count=64 && sync");
  INFO(full.output);
  CHECK(full.exit_code != 0);
  CHECK((full.output.find("Disk quota exceeded") != std::string::npos ||
         full.output.find("No space left") != std::string::npos));
  auto other = sh(rt, "pl_other", "dd if=/dev/zero of=/root/some bs=1M count=8 2>&1 && sync");
  INFO(other.output);
  CHECK(other.exit_code == 0);

  // Raising the quota in place lets the full sliver write again, while running.
  SliverConfig bigger = config("pl_full", 256ull << 20);
  rt.update(bigger);
  CHECK(rt.get("pl_full")->config.disk_quota_bytes == 256ull << 20);
  CHECK(rt.get("pl_full")->phase == SliverPhase::kRunning);
  auto again = sh(rt, "pl_full", "rm -f /root/big; dd if=/dev/zero of=/root/big bs=1M count=64");
  INFO(again.output);
  CHECK(again.exit_code == 0);
}

TEST_CASE("the initscript runs at every start and follows the config", "[root][runtime]") {
  Node node;
  auto rt = node.runtime();
  SliverConfig c = config("pl_script");
  c.initscript = "#!/bin/sh\necho one >> /var/starts\necho said one\n";
  rt.create(c);
  auto waitLines = [&](std::size_t lines) {
    plng::node::IdRange ids =
        *plng::node::IdRangeAllocator(node.paths.idRanges()).find("pl_script");
    (void)ids;
    for (int i = 0; i < 250; ++i) {
      auto out = sh(rt, "pl_script", "cat /var/starts 2>/dev/null").output;
      if (static_cast<std::size_t>(std::count(out.begin(), out.end(), '\n')) >= lines) return out;
      std::this_thread::sleep_for(20ms);
    }
    return sh(rt, "pl_script", "cat /var/starts 2>/dev/null").output;
  };
  rt.start("pl_script");
  CHECK(waitLines(1) == "one\n");
  // Its output is logged inside the sliver, under the sliver's quota.
  CHECK(sh(rt, "pl_script", "cat /var/log/sliver-init.log").output == "said one\n");
  rt.stop("pl_script", 2s);
  rt.start("pl_script");
  CHECK(waitLines(2) == "one\none\n");

  // A changed initscript takes effect at the next start; the file in the
  // sliver is root's inside.
  c.initscript = "#!/bin/sh\necho two >> /var/starts\n";
  rt.update(c);
  rt.stop("pl_script", 2s);
  rt.start("pl_script");
  CHECK(waitLines(3) == "one\none\ntwo\n");
  CHECK(sh(rt, "pl_script", "stat -c '%u %a' /etc/plng/initscript").output == "0 755\n");

  // No initscript: none runs.
  c.initscript.clear();
  rt.update(c);
  rt.stop("pl_script", 2s);
  rt.start("pl_script");
  std::this_thread::sleep_for(300ms);
  CHECK(sh(rt, "pl_script", "cat /var/starts; test -e /etc/plng/initscript || echo gone").output ==
        "one\none\ntwo\ngone\n");
}

TEST_CASE("a stop right after start is prompt; the initscript runs with no signal blocked",
          "[root][runtime]") {
  Node node;
  auto rt = node.runtime();
  SliverConfig c = config("pl_quick");
  c.initscript = "#!/bin/sh\ngrep SigBlk /proc/self/status > /var/sigblk\nsleep 30\n";
  rt.create(c);
  // start() returns before sliver-init has installed its handlers; a SIGTERM
  // sent then must wait for them, not be dropped (stop would sit out its grace).
  for (int round = 0; round < 5; ++round) {
    rt.start("pl_quick");
    auto began = std::chrono::steady_clock::now();
    rt.stop("pl_quick", 20s);
    auto took = std::chrono::steady_clock::now() - began;
    INFO("round " << round << ": stop took "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(took < 10s);
    CHECK(rt.get("pl_quick")->phase == SliverPhase::kStopped);
  }
  // The initscript (and so every process it starts) gets an empty signal mask,
  // not the one sliverd starts sliver-init with; SIGTERM ends its `sleep 30`.
  rt.start("pl_quick");
  std::string blocked;
  for (int i = 0; i < 250 && blocked.empty(); ++i) {
    blocked = sh(rt, "pl_quick", "cat /var/sigblk 2>/dev/null").output;
    if (blocked.empty()) std::this_thread::sleep_for(20ms);
  }
  CHECK(blocked == "SigBlk:\t0000000000000000\n");
  auto began = std::chrono::steady_clock::now();
  rt.stop("pl_quick", 20s);
  CHECK(std::chrono::steady_clock::now() - began < 10s);
  rt.destroy("pl_quick");
}

TEST_CASE("a config left empty by a crash reads as absent; create makes it again",
          "[root][runtime]") {
  Node node;
  auto rt = node.runtime();
  SliverConfig c = config("pl_crash");
  rt.create(c);
  // The config is written without fsync: after a machine crash it may be empty.
  { std::ofstream(node.paths.sliverConfig("pl_crash"), std::ios::trunc); }
  CHECK_FALSE(rt.get("pl_crash"));
  CHECK(rt.list().empty());
  rt.create(c);  // what the reconciler does for a wanted sliver it does not see
  auto status = rt.get("pl_crash");
  REQUIRE(status);
  CHECK(status->config == c);
  rt.start("pl_crash");
  CHECK(rt.get("pl_crash")->phase == SliverPhase::kRunning);
  rt.destroy("pl_crash");
  CHECK_FALSE(rt.get("pl_crash"));
}

TEST_CASE("an idle sliver costs little memory", "[root][runtime]") {
  Node node;
  auto rt = node.runtime();
  rt.create(config("pl_idle"));
  rt.start("pl_idle");
  std::this_thread::sleep_for(200ms);
  auto usage = rt.get("pl_idle")->usage;
  // Printed for docs/node.md; bounded so a regression shows.
  std::printf("idle sliver: memory %llu KiB (cgroup, incl. page cache), %u tasks\n",
              static_cast<unsigned long long>(usage.memory_bytes / 1024), usage.tasks);
  CHECK(usage.tasks == 1);
  CHECK(usage.memory_bytes < 8ull << 20);
}

TEST_CASE("the runtime refuses bad names and configs", "[root][runtime]") {
  Node node;
  auto rt = node.runtime();
  CHECK_THROWS_AS(rt.create(config("../etc")), plng::node::TagError);
  CHECK_THROWS_AS(rt.create(config(std::string(64, 'a'))), plng::node::TagError);
  SliverConfig bad_vref = config("pl_vref");
  bad_vref.vref = "../../etc";
  CHECK_THROWS_AS(rt.create(bad_vref), plng::node::TagError);
  SliverConfig bad_caps = config("pl_caps");
  bad_caps.capabilities = "CAP_SYS_MODULE";
  CHECK_THROWS_AS(rt.create(bad_caps), plng::node::TagError);
  CHECK(rt.list().empty());

  // A create that fails half-way (here: storage cannot make the sliver's
  // subvolume, a file is in the way) leaves nothing behind.
  std::ofstream(node.paths.state_dir / "storage" / "pl_blocked") << "in the way\n";
  CHECK_THROWS(rt.create(config("pl_blocked")));
  CHECK_FALSE(rt.get("pl_blocked"));
  CHECK_FALSE(fs::exists(node.paths.sliverDir("pl_blocked")));
  CHECK_FALSE(plng::node::IdRangeAllocator(node.paths.idRanges()).find("pl_blocked"));
  auto groups = node.cgroups->list();
  CHECK(std::find(groups.begin(), groups.end(), "pl_blocked") == groups.end());
  fs::remove(node.paths.state_dir / "storage" / "pl_blocked");
  rt.create(config("pl_blocked"));  // and works once the obstacle is gone
  CHECK(rt.get("pl_blocked"));

  SliverConfig missing = config("pl_missing");
  missing.vref = "no-such-image";
  rt.create(missing);
  try {
    rt.start("pl_missing");
    FAIL("started without an image");
  } catch (const SysError& e) {
    CHECK(e.err() == ENOENT);
    CHECK_THAT(e.what(), Catch::Contains("no-such-image"));
  }
  CHECK(rt.get("pl_missing")->phase == SliverPhase::kStopped);
  CHECK_THROWS_AS(rt.update(config("pl_unknown")), SysError);
}
