// The two cgroup drivers: "v2" (pure cgroup v2) and "hybrid" (v1 controllers plus a
// controller-less cgroup2 tree). The knob mapping is documented in docs/node.md
// ("## Cgroups").
#include <fcntl.h>

#include <algorithm>
#include <optional>

#include "node/cgroup.h"
#include "node/cgroup_fs.h"
#include "node/sliver_name.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node {

namespace {

namespace fs = std::filesystem;
using cgroupfs::Dir;

constexpr char kDaemon[] = "daemon";
constexpr char kSlivers[] = "slivers";
// The CFS period every cap is expressed in (the kernel's default).
constexpr std::uint64_t kCpuPeriodUs = 100'000;

// CFS quota for a cap in percent of one CPU; 1 % is the kernel's 1 ms minimum.
std::uint64_t cpuQuotaUs(const Resources& r) {
  return static_cast<std::uint64_t>(r.cpu_cap_pct) * kCpuPeriodUs / 100;
}

// The soft limit (v2 memory.high, v1 memory.soft_limit_in_bytes) sits 10 % under
// the hard one: the kernel reclaims and throttles a sliver there first, so it can
// shed page cache before the OOM killer has to act at the hard limit.
std::uint64_t memorySoftLimit(const Resources& r) {
  return r.mem_limit_bytes - r.mem_limit_bytes / 10;
}

// What both drivers share: a list of trees (the unified one first), each with the
// <root>/daemon, <root>/slivers, <root>/slivers/<name> layout.
class TreeDriver : public CgroupDriver {
 public:
  explicit TreeDriver(fs::path unified) { trees_.push_back(std::move(unified)); }

  fs::path sliversDir() const override { return trees_.front() / kSlivers; }
  fs::path unifiedDir(std::string_view sliver) const override {
    checkSliverName(sliver);
    return sliversDir() / std::string(sliver);
  }

  void create(std::string_view sliver) override {
    checkSliverName(sliver);
    for (const auto& tree : trees_) cgroupfs::makeChild(cgroupfs::openDir(tree / kSlivers), sliver);
  }

  UniqueFd openUnifiedDir(std::string_view sliver) const override {
    fs::path path = unifiedDir(sliver);
    // O_PATH suffices: clone3 takes the cgroup fd with fget_raw().
    int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throwErrno("open cgroup directory " + path.string());
    return UniqueFd(fd);
  }

  void attach(std::string_view sliver, pid_t pid) override {
    // The unified tree too: a fork()ed process (not cloned into its cgroup) must
    // land there as well for BPF to see it.
    std::string value = std::to_string(pid);
    for (const auto& dir : sliverDirs(sliver)) cgroupfs::writeKnob(dir, "cgroup.procs", value);
  }

  std::vector<pid_t> pids(std::string_view sliver) const override {
    // The unified tree alone: every process of a sliver is cloned into its
    // unified cgroup, and the v1 ones (hybrid) hold the same processes. One read
    // instead of six per sliver in every list(), i.e. every reconcile pass.
    std::vector<pid_t> out = cgroupfs::procs(sliverDir(trees_.front(), sliver));
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<std::string> list() const override {
    auto root = cgroupfs::openDir(trees_.front());
    auto slivers = cgroupfs::openChild(root, kSlivers);
    if (!slivers) return {};
    return cgroupfs::subdirs(*slivers);
  }

  void killAll(std::string_view sliver, std::chrono::milliseconds timeout) override {
    checkSliverName(sliver);
    // A hierarchy without the sliver's directory (never created, or removed) has
    // nothing to kill.
    std::vector<std::optional<Dir>> dirs;
    for (const auto& tree : trees_)
      dirs.push_back(cgroupfs::openChild(cgroupfs::openDir(tree / kSlivers), sliver));
    std::vector<const Dir*> present;
    for (const auto& dir : dirs)
      if (dir) present.push_back(&*dir);
    // cgroup.kill (Linux 5.14+) exists in cgroup2 directories even without
    // controllers, so the hybrid driver gets it through the unified tree.
    cgroupfs::killUntilEmpty(present, dirs.front() ? &*dirs.front() : nullptr, timeout);
  }

  void remove(std::string_view sliver) override {
    checkSliverName(sliver);
    for (const auto& tree : trees_) {
      auto root = cgroupfs::openDir(tree);
      if (auto slivers = cgroupfs::openChild(root, kSlivers))
        cgroupfs::removeChild(*slivers, sliver);
    }
  }

 protected:
  // Creates <root>/daemon and <root>/slivers in every tree and moves `pid` into
  // every daemon directory.
  void setUpTrees(pid_t pid) {
    for (const auto& tree : trees_) {
      auto root = cgroupfs::openDir(tree);
      cgroupfs::makeChild(root, kDaemon);
      cgroupfs::makeChild(root, kSlivers);
      if (pid != 0)
        cgroupfs::writeKnob(*cgroupfs::openChild(root, kDaemon), "cgroup.procs",
                            std::to_string(pid));
    }
  }

  // The sliver's directory in every tree (unified first); throws if one is missing.
  std::vector<Dir> sliverDirs(std::string_view sliver) const {
    checkSliverName(sliver);
    std::vector<Dir> out;
    for (const auto& tree : trees_)
      out.push_back(cgroupfs::openDir(tree / kSlivers / std::string(sliver)));
    return out;
  }

  Dir sliverDir(const fs::path& tree, std::string_view sliver) const {
    checkSliverName(sliver);
    return cgroupfs::openDir(tree / kSlivers / std::string(sliver));
  }

  std::vector<fs::path> trees_;
};

// cgroup v2 memory and pids knobs, for a sliver and for sliverd's own leaf alike.
// memory.high first: when a limit is lowered the kernel then reclaims and
// throttles down to it before memory.max would OOM-kill.
void writeMemoryAndTasksV2(const Dir& dir, const Resources& r) {
  bool limited = r.mem_limit_bytes != 0;
  cgroupfs::writeKnob(dir, "memory.high",
                      limited ? std::to_string(memorySoftLimit(r)) : std::string("max"));
  cgroupfs::writeKnob(dir, "memory.max",
                      limited ? std::to_string(r.mem_limit_bytes) : std::string("max"));
  cgroupfs::writeKnob(dir, "pids.max", r.tasks != 0 ? std::to_string(r.tasks) : "max");
}

class V2Driver final : public TreeDriver {
 public:
  explicit V2Driver(const CgroupRoots& roots) : TreeDriver(roots.unified) {}

  std::string_view kind() const override { return "v2"; }
  std::vector<CgroupView> sliverViews() const override { return {{"", "cgroup2", ""}}; }

  void setUp(pid_t daemon_pid) override {
    // The daemon leaves <root> first: a cgroup with processes cannot delegate
    // controllers to its children (the "no internal processes" rule).
    setUpTrees(daemon_pid);
    auto root = cgroupfs::openDir(trees_.front());
    enableControllers(root);
    enableControllers(*cgroupfs::openChild(root, kSlivers));
  }

  void limitDaemon(const Resources& r) override {
    auto dir = cgroupfs::openDir(trees_.front() / kDaemon);
    writeMemoryAndTasksV2(dir, r);
  }

  void apply(std::string_view sliver, const Resources& r) override {
    auto dir = sliverDir(trees_.front(), sliver);
    cgroupfs::writeKnob(dir, "cpu.weight", std::to_string(cpuWeightOf(r.cpu_share)));
    cgroupfs::writeKnob(dir, "cpu.max",
                        (r.cpu_cap_pct == 0 ? std::string("max") : std::to_string(cpuQuotaUs(r))) +
                            " " + std::to_string(kCpuPeriodUs));
    writeMemoryAndTasksV2(dir, r);
    // io.weight exists only where the io controller is enabled above the sliver.
    if (cgroupfs::hasFile(dir, "io.weight"))
      cgroupfs::writeKnob(dir, "io.weight", "default " + std::to_string(r.io_weight));
  }

  CgroupUsage usage(std::string_view sliver) const override {
    auto dir = sliverDir(trees_.front(), sliver);
    CgroupUsage u;
    u.memory_bytes = cgroupfs::readKnobU64(dir, "memory.current");
    u.cpu_usage_ns = cgroupfs::readKeyedU64(dir, "cpu.stat", "usage_usec").value_or(0) * 1000;
    u.tasks = static_cast<std::uint32_t>(cgroupfs::readKnobU64(dir, "pids.current"));
    return u;
  }

 private:
  static void enableControllers(const Dir& dir) {
    auto available = cgroupfs::words(cgroupfs::readKnob(dir, "cgroup.controllers"));
    std::string enable;
    for (const char* c : {"cpu", "io", "memory", "pids"})
      if (std::find(available.begin(), available.end(), c) != available.end())
        enable += std::string(enable.empty() ? "+" : " +") + c;
    if (!enable.empty()) cgroupfs::writeKnob(dir, "cgroup.subtree_control", enable);
  }
};

class HybridDriver final : public TreeDriver {
 public:
  explicit HybridDriver(const CgroupRoots& roots) : TreeDriver(roots.unified) {
    for (const char* required : {"cpu", "memory", "pids"})
      if (!roots.v1.count(required))
        throw SysError(ENOENT, std::string("hybrid cgroup driver: no v1 ") + required +
                                   " hierarchy among the process's cgroups");
    auto tree = [&](const char* controller) -> std::optional<fs::path> {
      auto it = roots.v1.find(controller);
      if (it == roots.v1.end()) return std::nullopt;
      // Co-mounted controllers (cpu,cpuacct) share one directory: list it once.
      if (std::find(trees_.begin(), trees_.end(), it->second) == trees_.end())
        trees_.push_back(it->second);
      return it->second;
    };
    roots_v1_ = roots.v1;
    cpu_ = *tree("cpu");
    memory_ = *tree("memory");
    pids_ = *tree("pids");
    cpuacct_ = tree("cpuacct");
    blkio_ = tree("blkio");
  }

  std::string_view kind() const override { return "hybrid"; }

  std::vector<CgroupView> sliverViews() const override {
    std::vector<CgroupView> views{{"unified", "cgroup2", ""}};
    // A v1 hierarchy is mounted by naming exactly its controllers: the ones of
    // roots_.v1 that share one directory (co-mounted, e.g. cpu,cpuacct).
    for (std::size_t i = 1; i < trees_.size(); ++i) {  // trees_[0] is the unified one
      const fs::path& tree = trees_[i];
      std::string controllers;
      for (const auto& [name, dir] : roots_v1_) {
        if (dir != tree) continue;
        controllers += (controllers.empty() ? "" : ",") + name;
      }
      views.push_back({controllers, "cgroup", controllers});
    }
    return views;
  }

  void setUp(pid_t daemon_pid) override { setUpTrees(daemon_pid); }

  void limitDaemon(const Resources& r) override {
    auto memory = cgroupfs::openDir(memory_ / kDaemon);
    bool limited = r.mem_limit_bytes != 0;
    // The soft limit first, as in apply().
    cgroupfs::writeKnob(memory, "memory.soft_limit_in_bytes",
                        limited ? std::to_string(memorySoftLimit(r)) : std::string("-1"));
    cgroupfs::writeKnob(memory, "memory.limit_in_bytes",
                        limited ? std::to_string(r.mem_limit_bytes) : std::string("-1"));
    cgroupfs::writeKnob(cgroupfs::openDir(pids_ / kDaemon), "pids.max",
                        r.tasks != 0 ? std::to_string(r.tasks) : "max");
  }

  void apply(std::string_view sliver, const Resources& r) override {
    auto cpu = sliverDir(cpu_, sliver);
    cgroupfs::writeKnob(cpu, "cpu.shares", std::to_string(cpuSharesV1Of(r.cpu_share)));
    cgroupfs::writeKnob(cpu, "cpu.cfs_period_us", std::to_string(kCpuPeriodUs));
    cgroupfs::writeKnob(cpu, "cpu.cfs_quota_us",
                        r.cpu_cap_pct == 0 ? std::string("-1") : std::to_string(cpuQuotaUs(r)));

    // The soft limit first, as memory.high in v2. memory.memsw.* is left alone:
    // swap accounting is often off, and nodes are expected to run without swap.
    auto memory = sliverDir(memory_, sliver);
    bool limited = r.mem_limit_bytes != 0;
    cgroupfs::writeKnob(memory, "memory.soft_limit_in_bytes",
                        limited ? std::to_string(memorySoftLimit(r)) : std::string("-1"));
    cgroupfs::writeKnob(memory, "memory.limit_in_bytes",
                        limited ? std::to_string(r.mem_limit_bytes) : std::string("-1"));

    cgroupfs::writeKnob(sliverDir(pids_, sliver), "pids.max",
                        r.tasks != 0 ? std::to_string(r.tasks) : "max");

    // blkio.weight (CFQ, 10..1000) or, with the BFQ scheduler, blkio.bfq.weight
    // (1..1000); both default to 100 like io.weight, whose scale is clamped into theirs.
    if (blkio_) {
      auto blkio = sliverDir(*blkio_, sliver);
      if (cgroupfs::hasFile(blkio, "blkio.weight"))
        cgroupfs::writeKnob(blkio, "blkio.weight",
                            std::to_string(std::clamp<std::uint32_t>(r.io_weight, 10, 1000)));
      else if (cgroupfs::hasFile(blkio, "blkio.bfq.weight"))
        cgroupfs::writeKnob(blkio, "blkio.bfq.weight",
                            std::to_string(std::clamp<std::uint32_t>(r.io_weight, 1, 1000)));
    }
  }

  CgroupUsage usage(std::string_view sliver) const override {
    CgroupUsage u;
    u.memory_bytes = cgroupfs::readKnobU64(sliverDir(memory_, sliver), "memory.usage_in_bytes");
    if (cpuacct_)
      u.cpu_usage_ns = cgroupfs::readKnobU64(sliverDir(*cpuacct_, sliver), "cpuacct.usage");
    u.tasks =
        static_cast<std::uint32_t>(cgroupfs::readKnobU64(sliverDir(pids_, sliver), "pids.current"));
    return u;
  }

 private:
  std::map<std::string, fs::path> roots_v1_;
  fs::path cpu_, memory_, pids_;
  std::optional<fs::path> cpuacct_, blkio_;
};

}  // namespace

std::unique_ptr<CgroupDriver> makeV2Driver(const CgroupRoots& roots) {
  return std::make_unique<V2Driver>(roots);
}

std::unique_ptr<CgroupDriver> makeHybridDriver(const CgroupRoots& roots) {
  return std::make_unique<HybridDriver>(roots);
}

}  // namespace plng::node
