// The sliver storage is shared: real slivers on a small btrfs volume (TestNode,
// 1 GiB), writing from inside. One sliver without a quota (or with PLC's 5 GiB
// default) writing until it cannot must leave the others room to write; when
// several fill the volume together, the disk watchdog stops the largest one
// still writing, keeps it stopped and says why where its users look. Files
// (inodes) count against the quota too.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "sliverd/core/rcaps.h"
#include "sliverd/core/reconciler.h"
#include "sliverd/daemon/node_watchdogs.h"
#include "sliverd/local/local_service.h"
#include "tests/support/node_sliver_exec.h"
#include "tests/support/node_test_node.h"
#include "tests/support/skip.h"

namespace v1 = planetlab::v1;
using namespace std::chrono_literals;
using plng::node::SliverConfig;
using plng::node::SliverPhase;

namespace {

constexpr std::uint64_t kMiB = 1ull << 20;

struct Node : plng::test::TestNode {
  Node()
      : TestNode("plng-shared-volume",
                 {PLNG_BUILD_IMAGE_SCRIPT, PLNG_TEST_IMAGES_DIR, PLNG_SLIVER_INIT_PATH}),
        rt(runtime()) {}

  void add(const std::string& slice, std::uint32_t xid, std::uint64_t quota) {
    SliverConfig c;
    c.slice = slice;
    c.xid = xid;
    c.vref = "busybox";
    c.disk_quota_bytes = quota;
    rt.create(c);
    rt.start(slice);
  }
  plng::test::SliverExecResult sh(const std::string& slice, const std::string& script) {
    plng::base::UniqueFd init = rt.openInit(slice);
    REQUIRE(init);
    return plng::test::shInSliver(init.get(), script);
  }

  plng::node::LinuxSliverRuntime rt;
};

}  // namespace

TEST_CASE("one sliver writing until it cannot leaves another room to write", "[root][storage]") {
  plng::test::requireRoot();
  Node node;
  // No quota at all, and PLC's default on a volume smaller than it: both get
  // the volume less the reserve, 768 MiB of 1 GiB.
  node.add("pl_fill", 801, 0);
  node.add("pl_default", 802, 5ull << 30);
  node.add("pl_small", 803, 64 * kMiB);
  REQUIRE(node.storage->maxSliverQuota() == 768 * kMiB);

  auto fill = node.sh("pl_fill", "dd if=/dev/zero of=/fill bs=1M count=2000 2>&1; sync");
  INFO(fill.output);
  CHECK_THAT(fill.output, Catch::Contains("Disk quota exceeded"));
  node.storage->sync();
  CHECK(node.storage->usedBytes("pl_fill") <= 768 * kMiB);
  CHECK(node.storage->usedBytes("pl_fill") >= 700 * kMiB);

  auto hello = node.sh("pl_small", "echo hello > /hello && cat /hello");
  CHECK(hello.exit_code == 0);
  CHECK(hello.output == "hello\n");
  // Not only a line: its own quota's worth of data still fits.
  auto data = node.sh("pl_small", "dd if=/dev/zero of=/data bs=1M count=32 2>&1 && sync");
  INFO(data.output);
  CHECK(data.exit_code == 0);
  // And the other big one, though the volume cannot hold two at their ceiling,
  // writes a line too.
  CHECK(node.sh("pl_default", "echo hello > /hello && cat /hello").output == "hello\n");
}

TEST_CASE("inodes are charged to the quota: a sliver making empty files stops at it",
          "[root][storage]") {
  plng::test::requireRoot();
  Node node;
  node.add("pl_files", 821, 2 * kMiB);
  node.add("pl_other", 822, 64 * kMiB);
  // btrfs has no inode table to run out of: each file's metadata counts
  // against the subvolume's qgroup (~360 bytes per empty file measured here).
  auto files =
      node.sh("pl_files",
              "i=0; while [ $i -lt 100000 ] && true 2>/dev/null > /f$i; do i=$((i+1)); done; "
              "echo made=$i; true > /one-more");
  INFO(files.output);
  CHECK(files.exit_code != 0);
  CHECK_THAT(files.output, Catch::Contains("Disk quota exceeded"));
  const auto at = files.output.find("made=");
  REQUIRE(at != std::string::npos);
  const long made = std::stol(files.output.substr(at + 5));
  CHECK(made > 100);
  CHECK(made < 100000);
  node.storage->sync();
  CHECK(node.storage->usedBytes("pl_files") <= 2 * kMiB);
  CHECK(node.sh("pl_other", "echo hello > /hello && cat /hello").output == "hello\n");
}

TEST_CASE("the disk watchdog stops the largest sliver still writing, which stays stopped",
          "[root][storage]") {
  plng::test::requireRoot();
  Node node;
  node.add("pl_idle", 811, 600 * kMiB);
  node.add("pl_writer", 812, 0);
  node.add("pl_slow", 813, 64 * kMiB);
  REQUIRE(node.sh("pl_idle", "dd if=/dev/zero of=/big bs=1M count=500 2>&1 && sync").exit_code ==
          0);

  // pl_writer writes 4 MiB every 100 ms, pl_slow 1 MiB every 200 ms: the volume
  // fills while the watchdog looks every 250 ms.
  plng::base::UniqueFd writer_init = node.rt.openInit("pl_writer");
  plng::base::UniqueFd slow_init = node.rt.openInit("pl_slow");
  REQUIRE(writer_init);
  REQUIRE(slow_init);
  plng::test::SliverExecResult writer_result, slow_result;
  std::thread writer([&, fd = writer_init.get()] {
    writer_result = plng::test::shInSliver(
        fd,
        "i=0; while [ $i -lt 200 ]; do dd if=/dev/zero of=/w.$i bs=1M count=4 2>/dev/null || "
        "exit 1; i=$((i+1)); sleep 0.1; done");
  });
  std::thread slow([&, fd = slow_init.get()] {
    slow_result = plng::test::shInSliver(
        fd,
        "i=0; while [ $i -lt 100 ]; do dd if=/dev/zero of=/s.$i bs=1M count=1 2>/dev/null; "
        "i=$((i+1)); sleep 0.2; done");
  });

  boost::asio::io_context io;  // not run: the test calls the checks itself
  plng::sliverd::NodeWatchdogs watchdogs(
      io, *node.cgroups, *node.storage,
      plng::sliverd::NodeWatchdogs::Options{.paths = node.paths, .memory = false});
  std::optional<plng::node::Victim> victim;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!victim && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(250ms);
    victim = watchdogs.checkDisk();
  }
  writer.join();
  REQUIRE(victim);
  CHECK(victim->slice == "pl_writer");
  CHECK_THAT(victim->reason,
             Catch::Contains("sliver storage nearly full") && Catch::Contains("stopped pl_writer"));
  // It stopped before the volume ran out: the others still write.
  CHECK(node.sh("pl_idle", "echo hello > /hello && cat /hello").output == "hello\n");
  CHECK(node.rt.get("pl_writer")->phase == SliverPhase::kStopped);
  CHECK(node.rt.get("pl_idle")->phase == SliverPhase::kRunning);

  // Held: the reconciler leaves it stopped, and the local API says why.
  auto held = plng::sliverd::heldBy(node.paths, "pl_writer");
  REQUIRE(held);
  CHECK_THAT(*held, Catch::StartsWith("the disk watchdog (sliver storage nearly full"));
  plng::sliverd::DesiredMap desired;
  for (const char* slice : {"pl_idle", "pl_writer", "pl_slow"}) {
    plng::sliverd::DesiredSliver d;
    d.config = node.rt.get(slice)->config;
    desired[slice] = d;
  }
  const auto actual = node.rt.list();
  for (const auto& action : plng::sliverd::plan(desired, actual, {}, 0, 3600,
                                                plng::sliverd::heldSlivers(node.paths, actual))) {
    CHECK_FALSE(action.slice == "pl_writer");
  }
  plng::sliverd::GrantedSliversFrom granted(
      [](const std::string& slice) -> std::optional<plng::sliverd::GrantedSliver> {
        plng::sliverd::GrantedSliver g;
        g.source = "plc";
        (void)slice;
        return g;
      },
      [] {
        return std::vector<std::string>{"pl_idle", "pl_writer", "pl_slow"};
      });
  plng::sliverd::RcapTable rcaps(node.dir / "rcaps", plng::sliverd::ResourceSpec{}, nullptr);
  plng::sliverd::LocalService service(node.rt, granted, rcaps, node.paths);
  auto info = service.describe("pl_writer");
  REQUIRE(info);
  CHECK(info->state() == "stopped");
  CHECK_THAT(info->message(),
             Catch::StartsWith("stopped by the disk watchdog (sliver storage nearly full") &&
                 Catch::EndsWith("start it with sliverctl start"));
  node.cgroups->killAll("pl_slow", 5s);
  slow.join();
}
