// The node's one reading (sliverd/observe): /proc parsed as the kernel writes
// it and read for real, slivers and failures as the runtime and reconciler
// give them, and its three renderings — the sensor pages' CSV, the health
// report's fields, and the metrics, which promtool must accept.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "app/version.h"
#include "base/error.h"
#include "base/file.h"
#include "sliverd/observe/node_health.h"
#include "sliverd/observe/node_metrics.h"
#include "sliverd/observe/node_reading.h"
#include "sliverd/observe/sensors.h"
#include "tests/sliverd/fake_runtime.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/shell_command.h"
#include "tests/support/skip.h"

using namespace plng::sliverd;

namespace {

plng::node::SliverStatus sliver(const std::string& slice, std::uint32_t xid, bool running,
                                std::uint64_t memory, std::uint64_t cpu_ns, std::uint32_t tasks) {
  plng::node::SliverStatus status;
  status.config.slice = slice;
  status.config.xid = xid;
  status.phase = running ? plng::node::SliverPhase::kRunning : plng::node::SliverPhase::kStopped;
  status.usage = {.memory_bytes = memory, .cpu_usage_ns = cpu_ns, .tasks = tasks};
  return status;
}

// MemTotal from /proc/meminfo, in bytes, read here without the code under test.
std::uint64_t memTotal() {
  std::ifstream in("/proc/meminfo");
  std::string name;
  std::uint64_t kib = 0;
  in >> name >> kib;
  REQUIRE(name == "MemTotal:");
  return kib * 1024;
}

}  // namespace

TEST_CASE("procfs files are parsed as the kernel writes them") {
  const auto meminfo = parseMeminfo(
      "MemTotal:       16318480 kB\nMemAvailable:    9000000 kB\nHugePages_Total:       0\n");
  REQUIRE(meminfo.size() == 3);
  CHECK(meminfo[0] == std::pair<std::string, std::uint64_t>{"MemTotal", 16318480ull * 1024});
  CHECK(meminfo[2] == std::pair<std::string, std::uint64_t>{"HugePages_Total", 0});
  const LoadAverage load = parseLoadavg("0.52 1.25 2.00 3/812 12345\n");
  CHECK(load.load1 == 0.52);
  CHECK(load.load5 == 1.25);
  CHECK(load.load15 == 2.00);
  CHECK(parseUptime("3605.47 7100.12\n") == 3605.47);
  CHECK_THROWS_WITH(parseMeminfo("MemTotal: lots kB\n"),
                    Catch::Contains("meminfo: cannot parse \"MemTotal: lots kB\""));
  CHECK_THROWS_AS(parseLoadavg("0.5\n"), plng::base::SysError);
  CHECK_THROWS_AS(parseUptime(""), plng::base::SysError);
}

TEST_CASE("the node's reading is this machine's, and each rendering shows it") {
  plng::test::FakeRuntime runtime;
  runtime.put(sliver("pl_web", 1001, /*running=*/true, 64ull << 20, 2'500'000'000ull, 7));
  runtime.put(sliver("pl_idle", 1002, /*running=*/false, 0, 0, 0));
  std::int64_t now = 1'800'000'000;
  NodeObserver observer(NodeObserver::Sources{
      .runtime = &runtime,
      .plc_stream = [] { return std::string("stream"); },
      .features = {{"cgroup", "v2"}, {"vnet", "off"}},
      .clock = [&now] { return now; },
  });

  // A pass with one sliver failed, then a later one: its since stays the first.
  observer.recordPass(/*listed=*/true, {{"pl_idle", "start failed: no image"}});
  now += 30;
  observer.recordPass(/*listed=*/true, {{"pl_idle", "start failed: no image"},
                                        {"pl_gone", "create failed: disk full"}});
  const NodeReading reading = observer.read();
  INFO(reading.errors.size());
  CHECK(reading.errors.empty());

  // /proc for real: MemTotal exact, uptime and load plausible against ours.
  CHECK(reading.system.memory_total_bytes == memTotal());
  CHECK(reading.system.memory_available_bytes > 0);
  CHECK(reading.system.memory_available_bytes <= reading.system.memory_total_bytes);
  const double uptime =
      parseUptime(plng::base::readFile("/proc/uptime"));  // read after: not smaller
  CHECK(reading.system.uptime_s <= uptime);
  CHECK(reading.system.uptime_s > uptime - 5);

  REQUIRE(reading.slivers.size() == 3);
  CHECK(reading.slivers[0].slice == "pl_gone");  // failed before it existed
  CHECK(reading.slivers[0].state == "failed");
  CHECK(reading.slivers[1].slice == "pl_idle");
  CHECK(reading.slivers[1].state == "failed");
  CHECK(reading.slivers[1].failed_since == 1'800'000'000);
  CHECK(reading.slivers[2].slice == "pl_web");
  CHECK(reading.slivers[2].state == "running");
  CHECK(reading.reconcile.runs == 2);
  CHECK(reading.reconcile.failures == 2);
  CHECK_FALSE(reading.reconcile.last_ok);
  CHECK(reading.reconcile.last_at == 1'800'000'030);

  SECTION("the health report") {
    const planetlab::v1::NodeHealth health = toNodeHealth(reading);
    CHECK(health.memory_total_bytes() == memTotal());
    CHECK(health.uptime_s() == static_cast<std::uint64_t>(std::floor(reading.system.uptime_s)));
    CHECK(health.load5() == reading.system.load.load5);
    CHECK(health.software_version() == plng::app::versionText());
    CHECK(health.last_reconcile_at() == 1'800'000'030);
    CHECK_FALSE(health.last_reconcile_ok());
    CHECK(health.slivers_running() == 1);
    REQUIRE(health.slivers_failed_size() == 2);
    CHECK(health.slivers_failed(1).slice_name() == "pl_idle");
    CHECK(health.slivers_failed(1).reason() == "start failed: no image");
    CHECK(health.slivers_failed(1).since() == 1'800'000'000);
    CHECK(health.slivers_failed(0).since() == 1'800'000'030);
    CHECK(health.features().at("cgroup") == "v2");
    CHECK(health.plc_stream() == "open");
    // A pass without failures clears them.
    observer.recordPass(/*listed=*/true, {});
    const planetlab::v1::NodeHealth healed = toNodeHealth(observer.read());
    CHECK(healed.last_reconcile_ok());
    CHECK(healed.slivers_failed_size() == 0);
    CHECK(healed.slivers_running() == 1);
  }

  SECTION("the sensor pages") {
    const SensorPages pages(observer);
    auto index = pages.get("/");
    CHECK(index.status == 200);
    CHECK(index.content_type == std::string(SensorPages::kContentType));
    CHECK(index.body.starts_with("sensor,description\n"));
    CHECK(index.body.find("\n/slivers,") != std::string::npos);
    auto meminfo = pages.get("/meminfo");
    CHECK(meminfo.body.starts_with("field,bytes\nMemTotal," + std::to_string(memTotal()) + "\n"));
    CHECK(pages.get("/load").body.starts_with("load1\n"));
    CHECK(pages.get("/load5?x=1").body.starts_with("load5\n"));
    CHECK(pages.get("/uptime").body.starts_with("uptime_seconds\n"));
    const std::string slivers = pages.get("/slivers").body;
    INFO(slivers);
    CHECK(slivers.starts_with(
        "slice,state,cpu_seconds,memory_bytes,tasks,disk_bytes,bytes_in,bytes_out\n"));
    CHECK(slivers.find("\npl_web,running,2.500,67108864,7,0,0,0\n") != std::string::npos);
    CHECK(slivers.find("\npl_idle,failed,0.000,0,0,0,0,0\n") != std::string::npos);
    CHECK(pages.get("/ports").body == "slice,protocol,first_port,last_port,kind,sockets\n");
    auto unknown = pages.get("/nosuch");
    CHECK(unknown.status == 404);
    CHECK(unknown.body == "no sensor /nosuch on this node; GET / lists them\n");
    auto no_slice = pages.get("/bandwidth/pl_nobody");
    CHECK(no_slice.status == 404);
    CHECK(no_slice.body.find("no sliver of slice \"pl_nobody\"") != std::string::npos);
    auto unshaped = pages.get("/bandwidth/pl_web");
    CHECK(unshaped.status == 404);
    CHECK(unshaped.body.find("has no bandwidth class") != std::string::npos);
  }

  SECTION("the metrics, as promtool and the Python client read them") {
    plng::app::MetricsRegistry registry;
    addNodeMetrics(registry, observer);
    const std::string text = registry.exposition();
    INFO(text);
    CHECK(text.find("plng_slice_memory_bytes{slice=\"pl_web\"} 67108864\n") != std::string::npos);
    CHECK(text.find("plng_slice_cpu_seconds_total{slice=\"pl_web\"} 2.5\n") != std::string::npos);
    CHECK(text.find("plng_node_slivers{state=\"failed\"} 2\n") != std::string::npos);
    CHECK(text.find("plng_sliverd_reconcile_failures_total 2\n") != std::string::npos);
    CHECK(text.find("plng_sliverd_plc_connection{state=\"stream\"} 1\n") != std::string::npos);
    CHECK(text.find("plng_sliverd_plc_connection{state=\"offline\"} 0\n") != std::string::npos);
    CHECK(text.find("plng_node_memory_total_bytes " + std::to_string(memTotal())) !=
          std::string::npos);
    plng::test::ScratchDir dir("observe-metrics");
    const auto file = dir.path() / "metrics.txt";
    std::ofstream(file) << text;
    if (access("/usr/bin/promtool", X_OK) != 0)
      plng::test::skipTest("no /usr/bin/promtool (Debian's prometheus; deploy/install-deps.sh)");
    CHECK(plng::test::shellOutput("promtool check metrics < " + file.string() + " 2>&1").empty());
  }
}

TEST_CASE("a node that cannot be read says so instead of inventing figures") {
  plng::test::FakeRuntime runtime;
  runtime.failList("cgroup tree gone");
  plng::test::ScratchDir proc("observe-proc");
  NodeObserver observer(NodeObserver::Sources{.proc = proc.path(), .runtime = &runtime});
  const NodeReading reading = observer.read();
  CHECK(reading.errors.size() == 2);
  CHECK(reading.slivers.empty());
  const SensorPages pages(observer);
  CHECK_THROWS_WITH(pages.get("/meminfo"), Catch::Contains("cannot read the node"));
}
