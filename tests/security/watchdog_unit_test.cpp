// MemoryWatchdog against a fake memory probe and a fake cgroup driver.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "error.h"
#include "watchdog.h"

using namespace plng::node;
using Catch::Matchers::Contains;

namespace {

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kGiB = 1ULL << 30;

class FakeProbe : public MemoryProbe {
 public:
  NodeMemory memory;
  NodeMemory read() override { return memory; }
};

// Slivers with a fixed usage; records what was killed.
class FakeCgroups : public CgroupDriver {
 public:
  std::map<std::string, CgroupUsage> slivers;
  std::vector<std::string> killed;
  std::vector<std::chrono::milliseconds> timeouts;
  std::string vanished;  // listed, but usage() says ENOENT (destroyed meanwhile)

  std::string_view kind() const override { return "fake"; }
  void setUp(pid_t) override {}
  std::filesystem::path sliversDir() const override { return "/fake"; }
  std::filesystem::path unifiedDir(std::string_view s) const override {
    return std::filesystem::path("/fake") / s;
  }
  void create(std::string_view) override {}
  void apply(std::string_view, const Resources&) override {}
  UniqueFd openUnifiedDir(std::string_view) const override { return UniqueFd(); }
  void attach(std::string_view, pid_t) override {}
  std::vector<pid_t> pids(std::string_view) const override { return {}; }
  CgroupUsage usage(std::string_view s) const override {
    if (s == vanished) throw SysError(ENOENT, "read memory.current");
    return slivers.at(std::string(s));
  }
  std::vector<std::string> list() const override {
    std::vector<std::string> names;
    for (const auto& [name, usage] : slivers) names.push_back(name);
    if (!vanished.empty()) names.push_back(vanished);
    return names;
  }
  void killAll(std::string_view s, std::chrono::milliseconds timeout) override {
    killed.emplace_back(s);
    timeouts.push_back(timeout);
  }
  void remove(std::string_view) override {}
};

CgroupUsage running(std::uint64_t bytes) { return CgroupUsage{bytes, 0, 3}; }

}  // namespace

TEST_CASE("plenty of memory: nobody is killed", "[watchdog]") {
  FakeProbe probe;
  probe.memory = {16 * kGiB, 8 * kGiB, 4 * kGiB, 4 * kGiB};
  FakeCgroups cgroups;
  cgroups.slivers = {{"a_big", running(6 * kGiB)}, {"b_small", running(kGiB)}};
  MemoryWatchdog watchdog(cgroups, probe);
  CHECK_FALSE(watchdog.check());
  CHECK(cgroups.killed.empty());
}

TEST_CASE("low available memory kills the biggest running sliver", "[watchdog]") {
  FakeProbe probe;
  probe.memory = {16 * kGiB, 1 * kGiB, 0, 0};  // 6.25% < 10%, no swap
  FakeCgroups cgroups;
  cgroups.slivers = {{"a_small", running(kGiB)},
                     {"b_big", running(9 * kGiB)},
                     {"c_idle_cache", CgroupUsage{12 * kGiB, 0, 0}},  // no processes
                     {"d_mid", running(3 * kGiB)}};
  cgroups.vanished = "e_gone";
  WatchdogThresholds thresholds;
  thresholds.kill_timeout = std::chrono::milliseconds(1234);
  MemoryWatchdog watchdog(cgroups, probe, thresholds);
  std::optional<Victim> victim = watchdog.check();
  REQUIRE(victim);
  CHECK(victim->slice == "b_big");
  CHECK(victim->bytes == 9 * kGiB);
  CHECK(cgroups.killed == std::vector<std::string>{"b_big"});
  CHECK(cgroups.timeouts == std::vector<std::chrono::milliseconds>{thresholds.kill_timeout});
  CHECK_THAT(victim->reason, Contains("node memory low") && Contains("1024 MiB of 16384 MiB") &&
                                 Contains("6.2% < 10.0%") && Contains("b_big") &&
                                 Contains("9216 MiB"));
}

TEST_CASE("swap use above 85% kills even with memory available", "[watchdog]") {
  FakeProbe probe;
  probe.memory = {16 * kGiB, 4 * kGiB, 4 * kGiB, 512 * kMiB};  // 87.5% swap used
  FakeCgroups cgroups;
  cgroups.slivers = {{"a_big", running(2 * kGiB)}, {"b_small", running(kGiB)}};
  MemoryWatchdog watchdog(cgroups, probe);
  std::optional<Victim> victim = watchdog.check();
  REQUIRE(victim);
  CHECK(victim->slice == "a_big");
  CHECK_THAT(victim->reason, Contains("swap") && Contains("87.5% > 85.0%"));

  // At exactly the thresholds nothing happens.
  probe.memory = {10 * kGiB, 1 * kGiB, 100 * kMiB, 15 * kMiB};
  cgroups.killed.clear();
  CHECK_FALSE(watchdog.check());
  CHECK(cgroups.killed.empty());
}

TEST_CASE("under pressure with no running sliver there is nothing to kill", "[watchdog]") {
  FakeProbe probe;
  probe.memory = {16 * kGiB, 100 * kMiB, 0, 0};
  FakeCgroups cgroups;
  cgroups.slivers = {{"a_cache_only", CgroupUsage{4 * kGiB, 0, 0}}};
  MemoryWatchdog watchdog(cgroups, probe);
  CHECK_FALSE(watchdog.check());
  CHECK(cgroups.killed.empty());
}

TEST_CASE("thresholds are configurable", "[watchdog]") {
  FakeProbe probe;
  probe.memory = {16 * kGiB, 3 * kGiB, 0, 0};  // 18.75% available
  FakeCgroups cgroups;
  cgroups.slivers = {{"a", running(kGiB)}};
  CHECK_FALSE(MemoryWatchdog(cgroups, probe).check());
  WatchdogThresholds strict;
  strict.min_available_fraction = 0.25;
  std::optional<Victim> victim = MemoryWatchdog(cgroups, probe, strict).check();
  REQUIRE(victim);
  CHECK(victim->slice == "a");
}

TEST_CASE("meminfo is parsed in bytes; missing fields are errors", "[watchdog]") {
  const char* text =
      "MemTotal:       24589412 kB\n"
      "MemFree:         1000000 kB\n"
      "MemAvailable:   20000000 kB\n"
      "SwapCached:            0 kB\n"
      "SwapTotal:       2097148 kB\n"
      "SwapFree:        1048576 kB\n"
      "HugePages_Total:       0\n";
  NodeMemory memory = parseMeminfo(text);
  CHECK(memory ==
        NodeMemory{24589412ULL * 1024, 20000000ULL * 1024, 2097148ULL * 1024, 1048576ULL * 1024});
  CHECK_THROWS_WITH(parseMeminfo("MemTotal: 1 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n"),
                    Contains("MemAvailable"));
  CHECK_THROWS_AS(parseMeminfo("MemTotal: x kB\nMemAvailable: 1 kB\nSwapTotal: 0 kB\n"
                               "SwapFree: 0 kB\n"),
                  SysError);
}

TEST_CASE("the /proc/meminfo probe reads this node", "[watchdog]") {
  NodeMemory memory = ProcMeminfoProbe().read();
  CHECK(memory.mem_total > 0);
  CHECK(memory.mem_available <= memory.mem_total);
  CHECK(memory.swap_free <= memory.swap_total);
  CHECK_THROWS_AS(ProcMeminfoProbe("/nonexistent/meminfo").read(), SysError);
}
