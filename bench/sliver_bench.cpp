// sliver_bench: a sliver's whole life (create, start, stop, destroy) through
// LinuxSliverRuntime — user namespace, idmapped overlay, cgroup, quota'd
// storage, seccomp and capabilities all on — beside `runc run` and `crun run`
// of /bin/true in the same busybox root filesystem, measured in the same run.
// With --idle N: N idle slivers on this node, and what each costs in disk and
// memory. See docs/benchmarks.md, "sliver_bench".
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/proc.h"
#include "bench/sliver_bench_peers.h"
#include "node/cgroup.h"
#include "node/paths.h"
#include "node/runtime.h"
#include "node/sliver_runtime.h"
#include "node/storage.h"
#include "node/watchdog.h"
#include "proto/plc.pb.h"
#include "sliverd/core/desired_state.h"
#include "sliverd/core/reconciler.h"
#include "tests/support/node_cgroup_sandbox.h"
#include "tests/support/node_image.h"

namespace {

namespace fs = std::filesystem;
using namespace plng;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kUsage = R"(Usage: sliver_bench [OPTIONS]

Times a sliver's create + start + stop + destroy through LinuxSliverRuntime
(userns, idmapped overlay, cgroup, disk quota, seccomp, capabilities), beside
`runc run` of /bin/true in the same busybox root filesystem and `crun run`
(in a private mount namespace with its own cgroup2 mount, cgroup manager off),
and prints medians and ratios. Runs as root; creates everything under
--work-dir and beneath its own cgroups, and removes it all at the end.

  --iterations N   runs per contender, after one warm-up each (default 20)
  --idle N         instead: start N idle slivers and print their disk and memory
                   cost per sliver (then stop and destroy them)
  --work-dir DIR   where state, storage volume and bundles go
                   (default: a fresh /var/tmp/plng-sliver-bench-XXXXXX)
  --no-peers       skip runc and crun
  --help
)";

struct Options {
  int iterations = 20;
  int idle = 0;
  fs::path work_dir;
  bool peers = true;
};

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Bytes really allocated on disk under `dir`, on its own filesystem only (the
// storage volume is a sparse file here; what is mounted from it is not walked).
std::uint64_t diskBytes(const fs::path& dir) {
  struct stat top {};
  if (::lstat(dir.c_str(), &top) != 0) return 0;
  std::uint64_t total = 0;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (st.st_dev != top.st_dev) {
      if (S_ISDIR(st.st_mode)) it.disable_recursion_pending();
      continue;
    }
    total += static_cast<std::uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

// Detaches whatever is still mounted below `dir` (deepest first), so removing
// the work directory never reaches into a mounted volume.
void unmountBelow(const fs::path& dir) {
  std::vector<std::string> below;
  const std::string prefix = dir.string() + "/";
  for (const auto& mount : base::readMountInfo()) {
    if (mount.mount_point.starts_with(prefix)) below.push_back(mount.mount_point);
  }
  std::sort(below.begin(), below.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& mountpoint : below) ::umount2(mountpoint.c_str(), MNT_DETACH);
}

// One /proc/meminfo field in bytes (Slab, KernelStack, PageTables, ...).
std::uint64_t meminfoBytes(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string name;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> name >> kib) {
    std::getline(in, unit);
    if (name == field + ":") return kib * 1024;
  }
  return 0;
}

// Kernel memory that namespaces, mounts, cgroups and processes cost.
std::uint64_t kernelBytes() {
  return meminfoBytes("Slab") + meminfoBytes("KernelStack") + meminfoBytes("PageTables");
}

std::string describeHost() {
  utsname u{};
  ::uname(&u);
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  node::NodeMemory memory = node::ProcMeminfoProbe().read();
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %s, %ld CPUs, %.1f GiB", u.sysname, u.release, cpus,
                static_cast<double>(memory.mem_total) / (1 << 30));
  return buf;
}

node::SliverConfig benchConfig(int n) {
  node::SliverConfig config;
  config.slice = "bench_s" + std::to_string(n);
  config.xid = 50000 + static_cast<std::uint32_t>(n);
  config.vref = "busybox";
  // The /bin/true of runc's run: sliver-init runs it through /bin/sh at start.
  config.initscript = "/bin/true\n";
  config.disk_quota_bytes = 1ULL << 30;             // quota on: the storage driver sets it
  config.resources.mem_limit_bytes = 256ULL << 20;  // every knob written
  config.resources.tasks = 256;
  config.resources.cpu_cap_pct = 50;
  return config;
}

struct Node {
  plng::test::CgroupSandbox sandbox;
  std::unique_ptr<node::CgroupDriver> cgroups;
  std::unique_ptr<node::SliverStorage> storage;
  std::unique_ptr<node::LinuxSliverRuntime> runtime;
  node::NodePaths paths;
  node::StorageOptions storage_options;

  Node(const fs::path& work, const fs::path& image) {
    paths.state_dir = work / "state";
    paths.run_dir = work / "run";
    paths.images_dir = image.parent_path();
    fs::create_directories(paths.state_dir);
    fs::create_directories(paths.run_dir);
    cgroups = node::makeCgroupDriver(sandbox.roots());
    cgroups->setUp(0);
    storage_options.state_dir = paths.state_dir;
    storage = node::openSliverStorage(storage_options);
    runtime = std::make_unique<node::LinuxSliverRuntime>(paths, *cgroups, *storage,
                                                         PLNG_BENCH_SLIVER_INIT_PATH);
  }
  ~Node() {
    runtime.reset();
    storage.reset();
    try {
      // The loop-mounted volume (btrfs qgroups): the work directory goes next.
      node::unmountSliverStorage(storage_options);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "sliver_bench: unmount storage: %s\n", e.what());
    }
  }
};

struct Lifecycle {
  std::vector<double> create, start, stop, destroy, total;
};

void timeSliver(Node& node, int n, Lifecycle* out) {
  node::SliverConfig config = benchConfig(n);
  auto t0 = Clock::now();
  node.runtime->create(config);
  auto t1 = Clock::now();
  node.runtime->start(config.slice);
  auto t2 = Clock::now();
  node.runtime->stop(config.slice, 5s);
  auto t3 = Clock::now();
  node.runtime->destroy(config.slice);
  auto t4 = Clock::now();
  if (!out) return;
  out->create.push_back(seconds(t1 - t0));
  out->start.push_back(seconds(t2 - t1));
  out->stop.push_back(seconds(t3 - t2));
  out->destroy.push_back(seconds(t4 - t3));
  out->total.push_back(seconds(t4 - t0));
}

void printRow(const char* name, const std::vector<double>& v, const char* note = "") {
  std::printf("  %-44s %9.2f %9.2f %9.2f  %s\n", name, median(v) * 1e3, percentile(v, 0.9) * 1e3,
              *std::min_element(v.begin(), v.end()) * 1e3, note);
}

int runLifecycle(const Options& options, const fs::path& work, const fs::path& image) {
  Node node(work, image);
  std::printf("cgroup driver %s, storage %s\n", std::string(node.cgroups->kind()).c_str(),
              std::string(node.storage->kind()).c_str());
  std::optional<plng::bench::OciBundle> bundle, userns_bundle;
  std::optional<plng::bench::CrunRunner> crun_runner;
  bool have_runc = false;
  std::string crun_note;
  if (options.peers) {
    bundle.emplace(work / "bundle", image, /*userns=*/false);
    userns_bundle.emplace(work / "bundle-userns", image, /*userns=*/true);
    have_runc = plng::bench::haveTool("runc");
    if (plng::bench::haveTool("crun")) {
      crun_runner.emplace(*bundle);
    } else {
      crun_note = "crun not installed";
    }
  }

  // Round-robin, one run of each contender per round (round 0 is a warm-up), so
  // that load from elsewhere on the machine falls on all of them alike.
  Lifecycle sliver;
  std::vector<double> runc, runc_userns, crun;
  for (int round = 0; round <= options.iterations; ++round) {
    bool record = round > 0;
    timeSliver(node, round, record ? &sliver : nullptr);
    if (have_runc) {
      double t = plng::bench::timeRuncRun(*bundle, 2 * round);
      if (record) runc.push_back(t);
      t = plng::bench::timeRuncRun(*userns_bundle, 2 * round + 1);
      if (record) runc_userns.push_back(t);
    }
    if (crun_runner && crun_note.empty()) {
      try {
        double t = crun_runner->timeRun();
        if (record) crun.push_back(t);
      } catch (const std::exception& e) {
        crun_note = e.what();
        crun.clear();
      }
    }
  }

  std::printf("\n%d rounds of one run each (after a warm-up round), milliseconds:\n",
              options.iterations);
  std::printf("  %-44s %9s %9s %9s\n", "", "median", "p90", "min");
  printRow("sliver create (storage, quota, cgroup, state)", sliver.create);
  printRow("sliver start (clone3, idmapped overlay, init)", sliver.start);
  printRow("sliver stop (SIGTERM to sliver-init, wait)", sliver.stop);
  printRow("sliver destroy (cgroup, storage, state)", sliver.destroy);
  printRow("sliver total", sliver.total);
  if (!runc.empty()) printRow("runc run /bin/true (runc spec: cgroupfs)", runc);
  if (!runc_userns.empty()) printRow("runc run /bin/true, + user namespace", runc_userns);
  if (!crun.empty()) {
    printRow("crun run /bin/true (private cgroup2 mount,", crun);
    std::printf("  %-44s\n", "   --cgroup-manager=disabled)");
  }
  if (!crun_note.empty()) std::printf("  crun: not measured: %s\n", crun_note.c_str());

  std::printf("\nratios of medians (lower is faster):\n");
  if (!runc.empty()) {
    double r = median(sliver.total) / median(runc);
    std::printf("  sliver total / runc run = %.3f  (target <= 0.25: %s)\n", r,
                r <= 0.25 ? "met" : "NOT met");
  }
  if (!runc_userns.empty()) {
    std::printf("  sliver total / runc run with userns = %.3f\n",
                median(sliver.total) / median(runc_userns));
  }
  if (!crun.empty()) {
    std::printf("  sliver total / crun run (cgroup manager off) = %.3f\n",
                median(sliver.total) / median(crun));
  }
  return 0;
}

// Resident memory of this process (the runtime and reconciler: sliverd's own
// per-sliver cost) and its open descriptors.
std::uint64_t selfRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::size_t selfOpenFds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// sliverd holds a pidfd for each sliver-init it started (LinuxSliverRuntime's
// children, which it reaps), as this bench does: N slivers need N descriptors
// besides its own. sliverd.service sets LimitNOFILE=1048576; a shell's 1024 is
// too few for --idle 1000.
void raiseOpenFileLimit(int slivers) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  const rlim_t need = static_cast<rlim_t>(slivers) + 1024;
  if (limit.rlim_cur >= need) return;
  if (limit.rlim_max < need) {
    throw std::runtime_error("RLIMIT_NOFILE hard limit " + std::to_string(limit.rlim_max) +
                             " is below the " + std::to_string(need) + " descriptors " +
                             std::to_string(slivers) +
                             " slivers need (one pidfd each): raise it (ulimit -Hn, "
                             "LimitNOFILE=)");
  }
  limit.rlim_cur = need;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) plng::base::throwErrno("setrlimit RLIMIT_NOFILE");
}

// The slices' tags as PLC would send them, so that DesiredState derives the
// same configs the slivers are created with, and a reconcile pass over them
// has nothing to do but look (sliverd's steady state).
planetlab::v1::NodeState idleNodeState(int count) {
  planetlab::v1::NodeState state;
  state.set_version(1);
  state.set_hostname("bench.example.org");
  for (int i = 0; i <= count; ++i) {
    node::SliverConfig config = benchConfig(i);
    planetlab::v1::SliverSpec* spec = state.add_slivers();
    spec->set_slice_name(config.slice);
    spec->set_xid(config.xid);
    auto& tags = *spec->mutable_tags();
    tags["vref"] = config.vref;
    tags["initscript"] = config.initscript;
    tags["disk_quota"] = std::to_string(config.disk_quota_bytes);
    tags["mem_limit"] = std::to_string(config.resources.mem_limit_bytes);
    tags["tasks"] = std::to_string(config.resources.tasks);
    tags["cpu_cap"] = std::to_string(config.resources.cpu_cap_pct);
  }
  return state;
}

struct ReconcileTimes {
  std::vector<double> list, pass;
  std::size_t actions = 0;
};

// sliverd's steady state over the idle slivers: runtime.list() (what every
// pass and the API's listings read) and a whole reconcile pass, three times
// each.
ReconcileTimes timeReconcile(Node& node, int count) {
  sliverd::DesiredState desired(node.paths, "bench.example.org");
  if (!desired.setPlcState(idleNodeState(count))) {
    throw std::runtime_error("desired state not taken");
  }
  sliverd::Reconciler::Options reconcile_options;
  reconcile_options.paths = node.paths;
  sliverd::Reconciler reconciler(*node.runtime, desired, reconcile_options);
  ReconcileTimes out;
  for (int round = 0; round < 3; ++round) {
    auto t0 = Clock::now();
    std::vector<node::SliverStatus> all = node.runtime->list();
    out.list.push_back(seconds(Clock::now() - t0));
    t0 = Clock::now();
    sliverd::Reconciler::Result result = reconciler.reconcileOnce();
    out.pass.push_back(seconds(Clock::now() - t0));
    out.actions += result.applied.size() + result.failed.size();
    for (const sliverd::Action& a : result.failed) {
      std::fprintf(stderr, "reconcile: %s %s failed: %s\n", sliverd::toString(a.kind),
                   a.slice.c_str(), reconciler.failure(a.slice).value_or("?").c_str());
    }
  }
  return out;
}

int runIdle(const Options& options, const fs::path& work, const fs::path& image) {
  raiseOpenFileLimit(options.idle + 1);
  Node node(work, image);
  std::printf("cgroup driver %s, storage %s\n", std::string(node.cgroups->kind()).c_str(),
              std::string(node.storage->kind()).c_str());
  // Every sliver made so far is stopped and destroyed on the way out, whatever
  // broke, so a failed run leaves no slivers behind.
  std::vector<std::string> made;
  auto teardown = [&] {
    std::size_t failures = 0;
    for (auto it = made.rbegin(); it != made.rend(); ++it) {
      try {
        node.runtime->destroy(*it);
      } catch (const std::exception& e) {
        if (failures++ < 5) std::fprintf(stderr, "destroy %s: %s\n", it->c_str(), e.what());
      }
    }
    made.clear();
    return failures;
  };
  try {
    // A first sliver outside the count, so one-time costs (storage volume,
    // compiled filter, image page cache) are not charged to the others.
    node::SliverConfig first = benchConfig(0);
    made.push_back(first.slice);
    node.runtime->create(first);
    node.runtime->start(first.slice);
    std::this_thread::sleep_for(1s);

    node::ProcMeminfoProbe probe;
    node::NodeMemory before = probe.read();
    std::uint64_t kernel_before = kernelBytes();
    std::uint64_t disk_before = diskBytes(node.paths.state_dir);
    std::uint64_t rss_before = selfRssBytes();
    std::size_t fds_before = selfOpenFds();
    std::vector<double> per_sliver;
    auto t0 = Clock::now();
    for (int i = 1; i <= options.idle; ++i) {
      node::SliverConfig config = benchConfig(i);
      auto s0 = Clock::now();
      made.push_back(config.slice);
      try {
        node.runtime->create(config);
        node.runtime->start(config.slice);
      } catch (const std::exception& e) {
        throw std::runtime_error("sliver " + std::to_string(i) + " of " +
                                 std::to_string(options.idle) + ": " + e.what());
      }
      per_sliver.push_back(seconds(Clock::now() - s0));
      if (i % 500 == 0) {
        std::fprintf(stderr, "%d slivers started (last 500: median %.1f ms)\n", i,
                     median({per_sliver.end() - 500, per_sliver.end()}) * 1e3);
      }
    }
    double start_all = seconds(Clock::now() - t0);
    std::this_thread::sleep_for(2s);  // let sliver-inits settle
    node::NodeMemory after = probe.read();
    std::uint64_t kernel_after = kernelBytes();
    std::uint64_t disk_after = diskBytes(node.paths.state_dir);
    std::uint64_t rss_after = selfRssBytes();
    std::size_t fds_after = selfOpenFds();
    std::uint64_t charged = 0, used = 0;
    for (std::size_t i = 1; i < made.size(); ++i) {
      charged += node.cgroups->usage(made[i]).memory_bytes;
      used += node.storage->usedBytes(made[i]);
    }
    std::size_t running = 0;
    for (const node::SliverStatus& s : node.runtime->list()) {
      running += s.phase == node::SliverPhase::kRunning;
    }
    ReconcileTimes reconcile = timeReconcile(node, options.idle);

    double n = options.idle;
    std::size_t tenth = std::max<std::size_t>(1, per_sliver.size() / 10);
    std::printf("\n%d idle slivers (busybox image, sliver-init waiting), %zu running:\n",
                options.idle, running);
    std::printf("  created and started in %.1f s (%.1f ms per sliver)\n", start_all,
                start_all * 1e3 / n);
    std::printf("  create + start, median of the first / last tenth: %.1f / %.1f ms\n",
                median({per_sliver.begin(), per_sliver.begin() + static_cast<long>(tenth)}) * 1e3,
                median({per_sliver.end() - static_cast<long>(tenth), per_sliver.end()}) * 1e3);
    std::printf("  node memory (MemAvailable drop) per sliver:   %8.1f KiB\n",
                static_cast<double>(before.mem_available -
                                    std::min(before.mem_available, after.mem_available)) /
                    n / 1024);
    std::printf(
        "  kernel (Slab + KernelStack + PageTables) per sliver: %8.1f KiB\n",
        static_cast<double>(kernel_after - std::min(kernel_before, kernel_after)) / n / 1024);
    std::printf("  charged to the sliver's cgroup per sliver:    %8.1f KiB\n",
                static_cast<double>(charged) / n / 1024);
    std::printf("  host disk (state dir + storage volume) per sliver: %8.1f KiB\n",
                static_cast<double>(disk_after - std::min(disk_before, disk_after)) / n / 1024);
    std::printf("  storage driver's used bytes per sliver:       %8.1f KiB\n",
                static_cast<double>(used) / n / 1024);
    std::printf("  runtime's own RSS per sliver (sliverd's side): %8.2f KiB, %zu fds for %d\n",
                static_cast<double>(rss_after - std::min(rss_before, rss_after)) / n / 1024,
                fds_after - fds_before, options.idle);
    std::printf("  runtime list() of %d slivers (median of 3):    %8.1f ms\n", options.idle + 1,
                median(reconcile.list) * 1e3);
    std::printf("  reconcile pass, nothing to change (median of 3): %8.1f ms  (%zu actions)\n",
                median(reconcile.pass) * 1e3, reconcile.actions);

    auto t1 = Clock::now();
    std::size_t failures = teardown();
    std::printf("  stopped and destroyed in %.1f s\n", seconds(Clock::now() - t1));
    return running == static_cast<std::size_t>(options.idle) + 1 && failures == 0 &&
                   reconcile.actions == 0
               ? 0
               : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sliver_bench: %s\nstopping and destroying the %zu slivers made\n",
                 e.what(), made.size());
    teardown();
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n%s", arg.c_str(), kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--iterations") {
      options.iterations = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--idle") {
      options.idle = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--work-dir") {
      options.work_dir = value();
    } else if (arg == "--no-peers") {
      options.peers = false;
    } else if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      std::fprintf(stderr, "unknown option %s\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "sliver_bench: run as root (namespaces, cgroups, mounts)\n");
    return 1;
  }

  bool own_work_dir = options.work_dir.empty();
  if (own_work_dir) {
    char tmpl[] = "/var/tmp/plng-sliver-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      return 1;
    }
    options.work_dir = tmpl;
  }
  int rc = 1;
  try {
    fs::path image = plng::test::busyboxImage(PLNG_BENCH_BUILD_IMAGE_SCRIPT,
                                              fs::path(PLNG_BENCH_IMAGES_DIR) / "busybox");
    std::time_t now = std::time(nullptr);
    char when[64];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
    std::printf("sliver_bench %s on %s, build %s\n", when, describeHost().c_str(),
                PLNG_BENCH_BUILD_TYPE);
    rc = options.idle > 0 ? runIdle(options, options.work_dir, image)
                          : runLifecycle(options, options.work_dir, image);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sliver_bench: %s\n", e.what());
    rc = 1;
  }
  unmountBelow(options.work_dir);
  if (own_work_dir) {
    std::error_code ec;
    fs::remove_all(options.work_dir, ec);
  }
  return rc;
}
