// The cgroup drivers against temporary trees laid out as the kernel would lay
// them out (every knob file pre-created, since a plain mkdir makes none), and the
// tag -> knob translation. No privileges needed.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "base/file.h"
#include "base/proc.h"
#include "node/cgroup.h"
#include "node/resources.h"
#include "tests/support/scratch_dir.h"

namespace fs = std::filesystem;
using plng::base::SysError;
using plng::node::CgroupRoots;
using plng::node::Resources;
using plng::node::TagError;

namespace {

void put(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << content;
}

// The files a cgroup2 directory shows when cpu, io, memory and pids are enabled
// above it (io optional), with the kernel's defaults.
void makeV2Cgroup(const fs::path& dir, bool io = true) {
  for (const auto& [name, content] : std::map<std::string, std::string>{
           {"cgroup.procs", ""},
           {"cgroup.controllers", "cpu io memory pids"},
           {"cgroup.subtree_control", ""},
           {"cgroup.kill", ""},
           {"cpu.weight", "100\n"},
           {"cpu.max", "max 100000\n"},
           {"cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"},
           {"memory.high", "max\n"},
           {"memory.max", "max\n"},
           {"memory.current", "0\n"},
           {"pids.max", "max\n"},
           {"pids.current", "0\n"}})
    put(dir / name, content);
  if (io) put(dir / "io.weight", "default 100\n");
}

CgroupRoots v2Roots(const plng::test::ScratchDir& tree) {
  fs::path unified = tree.path() / "unified";
  put(unified / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  put(unified / "cgroup.subtree_control", "");
  put(unified / "cgroup.procs", "");
  makeV2Cgroup(unified / "daemon");
  makeV2Cgroup(unified / "slivers");
  return CgroupRoots{unified, {}};
}

// A hybrid host: v1 cpu, cpuacct, memory, pids, blkio hierarchies, and a cgroup2
// tree without controllers.
CgroupRoots hybridRoots(const plng::test::ScratchDir& tree) {
  CgroupRoots roots;
  roots.unified = tree.path() / "unified";
  put(roots.unified / "cgroup.controllers", "");
  put(roots.unified / "cgroup.procs", "");
  for (const char* c : {"cpu", "cpuacct", "memory", "pids", "blkio"}) {
    roots.v1[c] = tree.path() / c;
    put(roots.v1[c] / "cgroup.procs", "");
  }
  return roots;
}

void makeHybridSliver(const CgroupRoots& roots, const std::string& name,
                      const char* blkio_knob = "blkio.weight") {
  auto dir = [&](const char* c) { return roots.v1.at(c) / "slivers" / name; };
  put(roots.unified / "slivers" / name / "cgroup.procs", "");
  put(roots.unified / "slivers" / name / "cgroup.kill", "");
  for (const char* c : {"cpu", "cpuacct", "memory", "pids", "blkio"})
    put(dir(c) / "cgroup.procs", "");
  put(dir("cpu") / "cpu.shares", "1024\n");
  put(dir("cpu") / "cpu.cfs_period_us", "100000\n");
  put(dir("cpu") / "cpu.cfs_quota_us", "-1\n");
  put(dir("cpuacct") / "cpuacct.usage", "0\n");
  put(dir("memory") / "memory.soft_limit_in_bytes", "9223372036854771712\n");
  put(dir("memory") / "memory.limit_in_bytes", "9223372036854771712\n");
  put(dir("memory") / "memory.usage_in_bytes", "0\n");
  put(dir("pids") / "pids.max", "max\n");
  put(dir("pids") / "pids.current", "0\n");
  put(dir("blkio") / blkio_knob, "100\n");
}

// 96 shares (3x default), half a CPU, 128 MiB, 64 tasks, io weight 200.
Resources limited() {
  Resources r;
  r.cpu_share = 96;
  r.cpu_cap_pct = 50;
  r.mem_limit_bytes = 128ull << 20;
  r.tasks = 64;
  r.io_weight = 200;
  return r;
}

}  // namespace

TEST_CASE("resourcesFromTags reads canonical tag values") {
  CHECK(plng::node::resourcesFromTags({}) == Resources{});
  auto r = plng::node::resourcesFromTags({{"cpu_share", "96"},
                                          {"cpu_cap", "250"},
                                          {"mem_limit", "134217728"},
                                          {"tasks", "256"},
                                          {"io_weight", "500"},
                                          {"vref", "debian12"}});
  CHECK(r.cpu_share == 96);
  CHECK(r.cpu_cap_pct == 250);
  CHECK(r.mem_limit_bytes == 134217728);
  CHECK(r.tasks == 256);
  CHECK(r.io_weight == 500);
  // 0 means "no limit" for the limits.
  auto unlimited =
      plng::node::resourcesFromTags({{"cpu_cap", "0"}, {"mem_limit", "0"}, {"tasks", "0"}});
  CHECK(unlimited == Resources{});
}

TEST_CASE("resourcesFromTags names the tag and value it refuses") {
  auto refuses = [](const std::string& tag, const std::string& value, const std::string& why) {
    INFO(tag << "=" << value);
    CHECK_THROWS_AS(plng::node::resourcesFromTags({{tag, value}}), TagError);
    CHECK_THROWS_WITH(plng::node::resourcesFromTags({{tag, value}}),
                      Catch::Contains("tag " + tag) && Catch::Contains("\"" + value + "\"") &&
                          Catch::Contains(why));
  };
  refuses("cpu_share", "0", "out of range 1..1000000");
  refuses("cpu_share", "1000001", "out of range");
  refuses("cpu_share", "-5", "not a decimal integer");
  refuses("cpu_share", "12abc", "not a decimal integer");
  refuses("cpu_share", "", "not a decimal integer");
  refuses("cpu_share", " 32", "not a decimal integer");
  refuses("cpu_share", "3.5", "not a decimal integer");
  refuses("cpu_cap", "100001", "out of range 0 or 1..100000");
  refuses("mem_limit", "128M", "not a decimal integer");
  refuses("mem_limit", "4096", "out of range 0 or 1048576..");
  refuses("mem_limit", "99999999999999999999", "out of range");
  refuses("mem_limit", "9223372036854775808", "out of range");
  refuses("tasks", "4194305", "out of range");
  refuses("io_weight", "0", "out of range 1..10000");
  refuses("io_weight", "10001", "out of range 1..10000");
}

TEST_CASE("network tags: canonical bit/s and bytes, or TagError naming the tag") {
  auto n = plng::node::networkLimitsFromTags(
      {{"net_min_rate", "5000"}, {"net_max_rate", "10000000"}, {"net_daily_bytes", "0"}});
  CHECK(n.min_rate_bps == 5000);
  CHECK(n.max_rate_bps == 10000000);
  CHECK(n.daily_bytes == 0);
  CHECK(n.icmp_pps == 0);
  CHECK(plng::node::networkLimitsFromTags({{"net_icmp_pps", "10000"}}).icmp_pps == 10000);
  CHECK(plng::node::networkLimitsFromTags({}) == plng::node::NetworkLimits{});
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"net_min_rate", "5kbit"},           // units are PLC's to resolve
      {"net_max_rate", "-1"},              // no sign
      {"net_max_rate", "10000000000001"},  // above 10 Tbit/s
      {"net_daily_bytes", "9223372036854775808"},
      {"net_icmp_pps", "10001"},  // its class's rate is packets x 65535 bytes/s
      {"net_icmp_pps", "1.5"},
  };
  for (const auto& [tag, value] : bad) {
    INFO(tag << "=" << value);
    CHECK_THROWS_WITH(plng::node::networkLimitsFromTags({{tag, value}}),
                      Catch::Contains("tag " + tag) && Catch::Contains("\"" + value + "\""));
  }
}

TEST_CASE("net_node_cap: the site's limit of the node's uplink, when set") {
  CHECK(plng::node::nodeNetworkCapFromTags({}) == std::nullopt);
  CHECK(plng::node::nodeNetworkCapFromTags({{"arch", "x86_64"}}) == std::nullopt);
  CHECK(plng::node::nodeNetworkCapFromTags({{"net_node_cap", "20000000"}}) == 20000000u);
  for (const char* bad : {"0", "20mbit", "-5", "10000000000001"}) {
    INFO(bad);
    CHECK_THROWS_WITH(plng::node::nodeNetworkCapFromTags({{"net_node_cap", bad}}),
                      Catch::Contains("tag net_node_cap"));
  }
}

TEST_CASE("/proc/<pid>/cgroup: one parser, and the sliver a cgroup belongs to") {
  auto lines = plng::base::parseProcCgroup(
      "12:cpu,cpuacct:/x/slivers/pl_a\n1:name=systemd:/x\n0::/x/slivers/pl_a:odd (deleted)\n");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].controllers == std::vector<std::string>{"cpu", "cpuacct"});
  CHECK(lines[1].controllers == std::vector<std::string>{"name=systemd"});
  CHECK((lines[2].hierarchy_id == 0 && lines[2].controllers.empty()));
  CHECK(lines[2].path == "/x/slivers/pl_a:odd");  // ':' kept, " (deleted)" dropped
  CHECK_THROWS(plng::base::parseProcCgroup("garbage\n"));
  CHECK(plng::node::sliverOfCgroup(lines[2].path, "/x/slivers") == "pl_a:odd");
  CHECK(plng::node::unifiedCgroupPath("0::/\n") == "/");
  CHECK_FALSE(plng::node::sliverOfCgroup("/", "/x/slivers"));
}

TEST_CASE("cgroupIdOf is the id the kernel's file handle for the cgroup carries") {
  // On cgroup2 the kernel's file handle (FILEID_KERNFS) is the 64-bit cgroup id,
  // what bpf_get_current_cgroup_id() returns; cgroupIdOf must agree with it.
  fs::path dir;
  try {
    dir = CgroupRoots::ofProcess(::getpid()).unified;  // this process's cgroup2 directory
  } catch (const SysError& e) {
    WARN("SKIP: no cgroup2 mount shows this process's cgroup: " << e.what());
    return;
  }
  const std::uint64_t id = plng::node::cgroupIdOf(dir);
  alignas(file_handle) unsigned char buffer[sizeof(file_handle) + 64] = {};
  auto* handle = reinterpret_cast<file_handle*>(buffer);
  handle->handle_bytes = 64;
  int mount_id = 0;
  REQUIRE(::name_to_handle_at(AT_FDCWD, dir.c_str(), handle, &mount_id, 0) == 0);
  REQUIRE(handle->handle_bytes == sizeof(std::uint64_t));
  std::uint64_t from_handle = 0;
  std::memcpy(&from_handle, handle->f_handle, sizeof from_handle);
  CHECK(id == from_handle);
  CHECK_THROWS_AS(plng::node::cgroupIdOf("/proc"), SysError);
}

TEST_CASE("cpu shares map to kernel weights keeping their ratios") {
  using plng::node::cpuSharesV1Of;
  using plng::node::cpuWeightOf;
  // PlanetLab's default 32 shares is the kernel's default weight.
  CHECK(cpuWeightOf(32) == 100);
  CHECK(cpuSharesV1Of(32) == 1024);
  CHECK(cpuWeightOf(96) == 300);
  CHECK(cpuSharesV1Of(96) == 3072);
  CHECK(cpuWeightOf(1) == 3);
  CHECK(cpuWeightOf(3) == 9);
  CHECK(cpuSharesV1Of(1) == 32);
  CHECK(cpuWeightOf(0) == 1);
  CHECK(cpuSharesV1Of(0) == 2);
  CHECK(cpuWeightOf(3200) == 10000);
  CHECK(cpuWeightOf(1000000) == 10000);
  CHECK(cpuSharesV1Of(8192) == 262144);
  CHECK(cpuSharesV1Of(1000000) == 262144);
  for (std::uint32_t s = 8; 3 * s <= 3200; s += 8) {
    INFO("shares " << s);
    CHECK(cpuWeightOf(3 * s) == 3 * cpuWeightOf(s));
    CHECK(cpuSharesV1Of(3 * s) == 3 * cpuSharesV1Of(s));
  }
}

TEST_CASE("v2 driver sets up the tree and delegates the controllers it needs") {
  plng::test::ScratchDir tree("plng-cgroup-unit");
  auto roots = v2Roots(tree);
  auto driver = plng::node::makeV2Driver(roots);
  CHECK(driver->kind() == "v2");
  driver->setUp(0);
  CHECK(plng::base::readFile(roots.unified / "cgroup.subtree_control") == "+cpu +io +memory +pids");
  CHECK(plng::base::readFile(roots.unified / "slivers" / "cgroup.subtree_control") ==
        "+cpu +io +memory +pids");
  CHECK(plng::base::readFile(roots.unified / "daemon" / "cgroup.procs").empty());
  CHECK(driver->sliversDir() == roots.unified / "slivers");
  CHECK(driver->unifiedDir("alice_one") == roots.unified / "slivers" / "alice_one");

  driver->setUp(4242);  // idempotent; moves the daemon
  CHECK(plng::base::readFile(roots.unified / "daemon" / "cgroup.procs") == "4242");
}

TEST_CASE("v2 driver writes every knob and updates them in place") {
  plng::test::ScratchDir tree("plng-cgroup-unit");
  auto roots = v2Roots(tree);
  auto driver = plng::node::makeV2Driver(roots);
  driver->setUp(0);
  fs::path dir = roots.unified / "slivers" / "alice_one";
  makeV2Cgroup(dir);
  driver->create("alice_one");  // exists: fine

  driver->apply("alice_one", limited());
  CHECK(plng::base::readFile(dir / "cpu.weight") == "300");
  CHECK(plng::base::readFile(dir / "cpu.max") == "50000 100000");
  CHECK(plng::base::readFile(dir / "memory.high") == "120795956");  // max - max/10
  CHECK(plng::base::readFile(dir / "memory.max") == "134217728");
  CHECK(plng::base::readFile(dir / "pids.max") == "64");
  CHECK(plng::base::readFile(dir / "io.weight") == "default 200");

  driver->apply("alice_one", Resources{});
  CHECK(plng::base::readFile(dir / "cpu.weight") == "100");
  CHECK(plng::base::readFile(dir / "cpu.max") == "max 100000");
  CHECK(plng::base::readFile(dir / "memory.high") == "max");
  CHECK(plng::base::readFile(dir / "memory.max") == "max");
  CHECK(plng::base::readFile(dir / "pids.max") == "max");
  CHECK(plng::base::readFile(dir / "io.weight") == "default 100");

  Resources over_one_cpu;
  over_one_cpu.cpu_cap_pct = 150;
  driver->apply("alice_one", over_one_cpu);
  CHECK(plng::base::readFile(dir / "cpu.max") == "150000 100000");

  // Without the io controller there is no io.weight, and none is invented.
  fs::path no_io = roots.unified / "slivers" / "bob_two";
  makeV2Cgroup(no_io, /*io=*/false);
  driver->apply("bob_two", limited());
  CHECK_FALSE(fs::exists(no_io / "io.weight"));
  CHECK(plng::base::readFile(no_io / "pids.max") == "64");

  // A missing knob (controller not enabled) is an error naming file and value.
  fs::remove(no_io / "memory.max");
  CHECK_THROWS_AS(driver->apply("bob_two", limited()), SysError);
  CHECK_THROWS_WITH(driver->apply("bob_two", limited()),
                    Catch::Contains("write \"134217728\" to " + (no_io / "memory.max").string()));
  CHECK_THROWS_WITH(driver->apply("nobody", limited()), Catch::Contains("nobody"));
}

TEST_CASE("v2 driver: attach, pids, usage, list, killAll, remove") {
  plng::test::ScratchDir tree("plng-cgroup-unit");
  auto roots = v2Roots(tree);
  auto driver = plng::node::makeV2Driver(roots);
  driver->setUp(0);
  fs::path dir = roots.unified / "slivers" / "alice_one";
  makeV2Cgroup(dir);

  driver->attach("alice_one", 777);
  CHECK(plng::base::readFile(dir / "cgroup.procs") == "777");
  put(dir / "cgroup.procs", "12\n34\n");
  CHECK(driver->pids("alice_one") == std::vector<pid_t>{12, 34});

  put(dir / "memory.current", "1234\n");
  put(dir / "cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\n");
  put(dir / "pids.current", "7\n");
  auto u = driver->usage("alice_one");
  CHECK(u.memory_bytes == 1234);
  CHECK(u.cpu_usage_ns == 5000);
  CHECK(u.tasks == 7);

  auto fd = driver->openUnifiedDir("alice_one");
  CHECK(fd);

  driver->create("bob_two");
  CHECK(fs::is_directory(roots.unified / "slivers" / "bob_two"));
  put(roots.unified / "slivers" / "not-a-cgroup", "");
  CHECK(driver->list() == std::vector<std::string>{"alice_one", "bob_two"});

  // cgroup.kill is used where present.
  put(dir / "cgroup.procs", "");
  driver->killAll("alice_one", std::chrono::milliseconds(100));
  CHECK(plng::base::readFile(dir / "cgroup.kill") == "1");

  driver->remove("bob_two");
  CHECK_FALSE(fs::exists(roots.unified / "slivers" / "bob_two"));
  driver->remove("bob_two");                                  // idempotent
  driver->killAll("bob_two", std::chrono::milliseconds(10));  // nothing to kill
  CHECK(driver->list() == std::vector<std::string>{"alice_one"});
  // A directory that cannot be removed (here: not empty) is an error.
  CHECK_THROWS_AS(driver->remove("alice_one"), SysError);

  for (const char* bad : {"", ".", "..", "a/b", "../daemon"}) {
    INFO(bad);
    CHECK_THROWS_AS(driver->create(bad), TagError);
    CHECK_THROWS_AS(driver->remove(bad), TagError);
  }
}

TEST_CASE("killAll SIGKILLs listed processes and reports a cgroup that stays populated") {
  plng::test::ScratchDir tree("plng-cgroup-unit");
  auto roots = v2Roots(tree);
  auto driver = plng::node::makeV2Driver(roots);
  driver->setUp(0);
  fs::path dir = roots.unified / "slivers" / "alice_one";
  makeV2Cgroup(dir);
  fs::remove(dir / "cgroup.kill");  // a kernel before 5.14

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  put(dir / "cgroup.procs", std::to_string(child) + "\n");
  // The file never empties (it is not cgroupfs), so the deadline passes.
  CHECK_THROWS_WITH(driver->killAll("alice_one", std::chrono::milliseconds(50)),
                    Catch::Contains("processes left in " + dir.string()));
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}

TEST_CASE("hybrid driver writes v1 knobs and mirrors the layout in the unified tree") {
  plng::test::ScratchDir tree("plng-cgroup-unit");
  auto roots = hybridRoots(tree);
  auto driver = plng::node::makeHybridDriver(roots);
  CHECK(driver->kind() == "hybrid");
  driver->setUp(0);
  for (const auto& base : {roots.unified, roots.v1["cpu"], roots.v1["cpuacct"], roots.v1["memory"],
                           roots.v1["pids"], roots.v1["blkio"]}) {
    INFO(base);
    CHECK(fs::is_directory(base / "daemon"));
    CHECK(fs::is_directory(base / "slivers"));
  }
  CHECK(driver->sliversDir() == roots.unified / "slivers");

  driver->create("carol_x");
  for (const auto& [c, base] : roots.v1) CHECK(fs::is_directory(base / "slivers" / "carol_x"));
  CHECK(fs::is_directory(roots.unified / "slivers" / "carol_x"));
  driver->remove("carol_x");
  for (const auto& [c, base] : roots.v1) CHECK_FALSE(fs::exists(base / "slivers" / "carol_x"));
  CHECK_FALSE(fs::exists(roots.unified / "slivers" / "carol_x"));

  makeHybridSliver(roots, "alice_one");
  auto v1 = [&](const char* c) { return roots.v1.at(c) / "slivers" / "alice_one"; };
  driver->apply("alice_one", limited());
  CHECK(plng::base::readFile(v1("cpu") / "cpu.shares") == "3072");
  CHECK(plng::base::readFile(v1("cpu") / "cpu.cfs_period_us") == "100000");
  CHECK(plng::base::readFile(v1("cpu") / "cpu.cfs_quota_us") == "50000");
  CHECK(plng::base::readFile(v1("memory") / "memory.soft_limit_in_bytes") == "120795956");
  CHECK(plng::base::readFile(v1("memory") / "memory.limit_in_bytes") == "134217728");
  CHECK(plng::base::readFile(v1("pids") / "pids.max") == "64");
  CHECK(plng::base::readFile(v1("blkio") / "blkio.weight") == "200");

  driver->apply("alice_one", Resources{});
  CHECK(plng::base::readFile(v1("cpu") / "cpu.shares") == "1024");
  CHECK(plng::base::readFile(v1("cpu") / "cpu.cfs_quota_us") == "-1");
  CHECK(plng::base::readFile(v1("memory") / "memory.soft_limit_in_bytes") == "-1");
  CHECK(plng::base::readFile(v1("memory") / "memory.limit_in_bytes") == "-1");
  CHECK(plng::base::readFile(v1("pids") / "pids.max") == "max");
  CHECK(plng::base::readFile(v1("blkio") / "blkio.weight") == "100");

  Resources tiny_io;
  tiny_io.io_weight = 5;  // blkio.weight starts at 10
  driver->apply("alice_one", tiny_io);
  CHECK(plng::base::readFile(v1("blkio") / "blkio.weight") == "10");

  // With BFQ only blkio.bfq.weight exists (1..1000).
  makeHybridSliver(roots, "bob_two", "blkio.bfq.weight");
  driver->apply("bob_two", tiny_io);
  CHECK(plng::base::readFile(roots.v1.at("blkio") / "slivers" / "bob_two" / "blkio.bfq.weight") ==
        "5");
  CHECK_FALSE(fs::exists(roots.v1.at("blkio") / "slivers" / "bob_two" / "blkio.weight"));

  driver->attach("alice_one", 555);
  CHECK(plng::base::readFile(roots.unified / "slivers" / "alice_one" / "cgroup.procs") == "555");
  for (const char* c : {"cpu", "cpuacct", "memory", "pids", "blkio"}) {
    INFO(c);
    CHECK(plng::base::readFile(v1(c) / "cgroup.procs") == "555");
  }
  CHECK(driver->pids("alice_one") == std::vector<pid_t>{555});

  put(v1("memory") / "memory.usage_in_bytes", "4096\n");
  put(v1("cpuacct") / "cpuacct.usage", "987654321\n");
  put(v1("pids") / "pids.current", "3\n");
  auto u = driver->usage("alice_one");
  CHECK(u.memory_bytes == 4096);
  CHECK(u.cpu_usage_ns == 987654321);
  CHECK(u.tasks == 3);

  CHECK(driver->list() == std::vector<std::string>{"alice_one", "bob_two"});

  // killAll uses the unified tree's cgroup.kill, then checks every hierarchy.
  for (const char* c : {"cpu", "cpuacct", "memory", "pids", "blkio"})
    put(v1(c) / "cgroup.procs", "");
  put(roots.unified / "slivers" / "alice_one" / "cgroup.procs", "");
  driver->killAll("alice_one", std::chrono::milliseconds(100));
  CHECK(plng::base::readFile(roots.unified / "slivers" / "alice_one" / "cgroup.kill") == "1");
}

TEST_CASE("hybrid driver with cpu and cpuacct co-mounted") {
  plng::test::ScratchDir tree("plng-cgroup-unit");
  auto roots = hybridRoots(tree);
  roots.v1["cpuacct"] = roots.v1["cpu"];
  auto driver = plng::node::makeHybridDriver(roots);
  driver->setUp(0);
  makeHybridSliver(roots, "alice_one");
  fs::path cpu = roots.v1["cpu"] / "slivers" / "alice_one";
  driver->attach("alice_one", 99);
  CHECK(plng::base::readFile(cpu / "cgroup.procs") == "99");
  put(cpu / "cpuacct.usage", "42\n");
  driver->apply("alice_one", limited());
  CHECK(plng::base::readFile(cpu / "cpu.shares") == "3072");
  CHECK(driver->usage("alice_one").cpu_usage_ns == 42);
}

TEST_CASE("makeCgroupDriver probes which driver fits") {
  plng::test::ScratchDir tree("plng-cgroup-unit");
  auto v2 = v2Roots(tree);
  CHECK(plng::node::makeCgroupDriver(v2)->kind() == "v2");

  plng::test::ScratchDir tree2("plng-cgroup-unit");
  auto hybrid = hybridRoots(tree2);
  CHECK(plng::node::makeCgroupDriver(hybrid)->kind() == "hybrid");

  // v2 without delegated controllers and no v1: an actionable error.
  put(v2.unified / "cgroup.controllers", "cpu io\n");
  CHECK_THROWS_AS(plng::node::makeCgroupDriver(v2), SysError);
  CHECK_THROWS_WITH(plng::node::makeCgroupDriver(v2),
                    Catch::Contains("memory pids") && Catch::Contains("subtree_control"));

  hybrid.v1.erase("memory");
  CHECK_THROWS_AS(plng::node::makeHybridDriver(hybrid), SysError);
}

TEST_CASE("CgroupRoots::ofProcess finds this process's cgroup2 directory") {
  auto roots = CgroupRoots::ofProcess(::getpid());
  CHECK(fs::is_regular_file(roots.unified / "cgroup.procs"));
  CHECK(roots.unified.has_filename());  // no trailing slash, even for a hierarchy's root
  for (const auto& [controller, dir] : roots.v1) {
    INFO(controller);
    CHECK(fs::is_regular_file(dir / "cgroup.procs"));
    CHECK(dir.has_filename());
    CHECK(controller.find("name=") == std::string::npos);
  }
  CHECK_THROWS_AS(CgroupRoots::ofProcess(0x7ffffff0), SysError);
}

TEST_CASE("CgroupRoots::parse resolves cgroups against the mount table") {
  // This host: separate cpu and cpuacct, memory under a per-process cgroup, a named
  // hierarchy, an unmounted controller, and cgroup2 at /sys/fs/cgroup/unified.
  const char* hybrid_mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
      "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
  auto roots = CgroupRoots::parse(
      "10:net_cls:/\n9:name=systemd:/\n8:pids:/\n4:memory:/process_api/a53044\n2:cpuacct:/\n"
      "1:cpu:/\n0::/\n",
      hybrid_mountinfo);
  CHECK(roots.unified == "/sys/fs/cgroup/unified");
  CHECK(roots.v1 ==
        std::map<std::string, fs::path>{{"cpu", "/sys/fs/cgroup/cpu"},
                                        {"cpuacct", "/sys/fs/cgroup/cpuacct"},
                                        {"memory", "/sys/fs/cgroup/memory/process_api/a53044"},
                                        {"pids", "/sys/fs/cgroup/pids"}});

  // Co-mounted cpu,cpuacct; a v1 hierarchy and cgroup2 mounted from a subtree (a
  // container's view), and a mount point with a space (escaped as \040).
  auto nested = CgroupRoots::parse(
      "3:cpu,cpuacct:/lxc/c1/svc\n2:memory:/elsewhere\n0::/lxc/c1/svc:x\n",
      "50 1 0:40 /lxc/c1 /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "51 1 0:41 /lxc/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "52 1 0:42 /lxc/c1 /mnt/cg\\0402 rw shared:5 - cgroup2 cgroup2 rw,nsdelegate\n");
  CHECK(nested.unified == "/mnt/cg 2/svc:x");
  CHECK(nested.v1 ==
        std::map<std::string, fs::path>{{"cpu", "/sys/fs/cgroup/cpu,cpuacct/svc"},
                                        {"cpuacct", "/sys/fs/cgroup/cpu,cpuacct/svc"}});

  // A pure v2 node under systemd.
  auto v2 = CgroupRoots::parse("0::/system.slice/sliverd.service\n",
                               "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 "
                               "rw,nsdelegate,memory_recursiveprot\n");
  CHECK(v2.unified == "/sys/fs/cgroup/system.slice/sliverd.service");
  CHECK(v2.v1.empty());

  CHECK_THROWS_WITH(CgroupRoots::parse("1:cpu:/\n", hybrid_mountinfo),
                    Catch::Contains("mount cgroup2"));
}
