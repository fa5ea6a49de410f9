// MemoryWatchdog against a fake memory probe and a fake cgroup driver.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "base/error.h"
#include "base/fd.h"
#include "node/watchdog.h"

using plng::base::SysError;
using plng::base::UniqueFd;

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
  void limitDaemon(const Resources&) override {}
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

// --- the disk watchdog -----------------------------------------------------------

namespace {

// Storage whose figures the test sets; sync() counts.
class FakeStorage : public SliverStorage {
 public:
  StorageSpace figures{kGiB, kGiB};
  std::map<std::string, std::uint64_t> used;
  int syncs = 0;
  std::string_view kind() const override { return "fake"; }
  SliverDirs prepare(const std::string&, const IdRange&, std::uint64_t) override { return {}; }
  void setQuota(const std::string&, std::uint64_t) override {}
  std::uint64_t usedBytes(const std::string& s) const override {
    auto it = used.find(s);
    if (it == used.end()) throw SysError(ENOENT, "no storage for sliver " + s);
    return it->second;
  }
  void destroy(const std::string&) override {}
  StorageSpace space() const override { return figures; }
  std::uint64_t maxSliverQuota() const override { return figures.total_bytes / 2; }
  void sync() override { ++syncs; }
};

}  // namespace

TEST_CASE("disk watchdog: plenty of space, nobody is stopped and nothing is synced", "[watchdog]") {
  FakeCgroups cgroups;
  cgroups.slivers = {{"a_big", running(kMiB)}};
  FakeStorage storage;
  storage.figures = {kGiB, 500 * kMiB};
  storage.used = {{"a_big", 400 * kMiB}};
  DiskWatchdog watchdog(cgroups, storage);
  for (int i = 0; i < 3; ++i) {
    storage.used["a_big"] += 10 * kMiB;
    CHECK_FALSE(watchdog.check());
  }
  CHECK(cgroups.killed.empty());
  CHECK(storage.syncs == 0);
}

TEST_CASE("disk watchdog: near full, the largest sliver still writing is stopped", "[watchdog]") {
  FakeCgroups cgroups;
  cgroups.slivers = {{"a_idle", running(kMiB)},
                     {"b_writer", running(kMiB)},
                     {"c_slow", running(kMiB)},
                     {"d_stopped", CgroupUsage{0, 0, 0}}};
  FakeStorage storage;
  storage.figures = {kGiB, 40 * kMiB};  // 3.9%: below max(5%, 64 MiB)
  storage.used = {{"a_idle", 600 * kMiB},
                  {"b_writer", 300 * kMiB},
                  {"c_slow", 10 * kMiB},
                  {"d_stopped", 700 * kMiB}};
  DiskWatchdog watchdog(cgroups, storage);
  std::vector<std::string> told;
  auto note = [&](const Victim& v) {
    CHECK(cgroups.killed.size() == told.size());  // told before the kill
    told.push_back(v.slice);
  };
  // The first look under pressure only samples: growth needs two.
  CHECK_FALSE(watchdog.check(note));
  CHECK(storage.syncs == 1);
  storage.used["b_writer"] += 20 * kMiB;
  storage.used["c_slow"] += kMiB;
  std::optional<Victim> victim = watchdog.check(note);
  REQUIRE(victim);
  // Not a_idle (bigger, but stopping it frees nothing), not d_stopped (no
  // processes), not c_slow (smaller).
  CHECK(victim->slice == "b_writer");
  CHECK(victim->bytes == 320 * kMiB);
  CHECK(told == std::vector<std::string>{"b_writer"});
  CHECK(cgroups.killed == std::vector<std::string>{"b_writer"});
  CHECK_THAT(victim->reason,
             Contains("sliver storage nearly full: 40 MiB of 1024 MiB available (3.9%, below "
                      "64 MiB)") &&
                 Contains("stopped b_writer, the sliver using the most of it among those still "
                          "writing (320 MiB)"));

  // Nobody writes any more: no one else is stopped, although space stays short.
  cgroups.slivers["b_writer"] = CgroupUsage{0, 0, 0};
  CHECK_FALSE(watchdog.check(note));
  // c_slow keeps writing: it is next.
  storage.used["c_slow"] += kMiB;
  victim = watchdog.check(note);
  REQUIRE(victim);
  CHECK(victim->slice == "c_slow");
}

TEST_CASE("disk watchdog: the sample is dropped once space is back", "[watchdog]") {
  FakeCgroups cgroups;
  cgroups.slivers = {{"a", running(kMiB)}};
  FakeStorage storage;
  storage.used = {{"a", 100 * kMiB}};
  DiskWatchdog watchdog(cgroups, storage, DiskThresholds{.min_free_pct = 10});
  storage.figures = {kGiB, 50 * kMiB};
  CHECK_FALSE(watchdog.check());  // sample
  storage.figures = {kGiB, 500 * kMiB};
  CHECK_FALSE(watchdog.check());  // relieved: forgotten
  storage.figures = {kGiB, 50 * kMiB};
  storage.used["a"] += kMiB;
  CHECK_FALSE(watchdog.check());  // a new episode starts with a sample again
  CHECK(cgroups.killed.empty());
  CHECK(watchdog.pressure({kGiB, 100 * kMiB}));  // 9.8% < 10%
  CHECK_FALSE(watchdog.pressure({kGiB, 110 * kMiB}));
  CHECK(watchdog.pressure({512 * kMiB, 60 * kMiB}));  // the 64 MiB floor
}
