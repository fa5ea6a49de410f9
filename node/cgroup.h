// Cgroup drivers: one interface, two real implementations chosen by probing.
//
// sliverd manages cgroups only beneath the cgroup it was started in, in every
// hierarchy (what systemd's Delegate=yes hands a service). Beneath each of those
// roots the layout is:
//
//   <root>/daemon            sliverd itself (cgroup v2 forbids processes in an
//                            inner node that delegates controllers)
//   <root>/slivers           the one directory above all slivers: vnet-bpf
//                            attaches its cgroup programs here
//   <root>/slivers/<name>    one per sliver
//
// "v2" drives a pure cgroup v2 host (cpu.weight, cpu.max, memory.max/high,
// pids.max, io.weight). "hybrid" drives a host with v1 controllers mounted and
// cgroup2 (usually at /sys/fs/cgroup/unified) without controllers: the knobs go to
// v1 (cpu.shares, cpu.cfs_quota_us, memory.limit_in_bytes, pids.max,
// blkio.weight) while the unified tree still gets the same directories, for BPF
// and for clone3(CLONE_INTO_CGROUP).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "node/resources.h"

namespace plng::node {

// The directories a driver may write, one per hierarchy.
struct CgroupRoots {
  std::filesystem::path unified;                    // the cgroup2 directory
  std::map<std::string, std::filesystem::path> v1;  // controller name -> directory
                                                    // (empty on a pure v2 host)

  // The cgroups `pid` is in (/proc/<pid>/cgroup), resolved against the mount
  // table (/proc/self/mountinfo). Throws SysError when cgroup2 is not mounted.
  static CgroupRoots ofProcess(pid_t pid);
  // The same from the texts of /proc/<pid>/cgroup and /proc/self/mountinfo.
  static CgroupRoots parse(std::string_view proc_cgroup, std::string_view mountinfo);
};

// Which sliver a cgroup, or a process, belongs to. All paths here are hierarchy
// paths as /proc/<pid>/cgroup shows them ("/system.slice/sliverd.service/
// slivers/pl_a"), not mount paths. The sliver of a process is
// sliverOfCgroup(unifiedCgroupPath(text of /proc/<pid>/cgroup), path of the
// driver's sliversDir()).

// The cgroup2 path in such a text, or nullopt when the process is in no cgroup2 hierarchy.
std::optional<std::string> unifiedCgroupPath(std::string_view proc_pid_cgroup);
// The hierarchy path of a directory on a cgroup2 mount, from a
// /proc/self/mountinfo text. Throws SysError (ENOENT) when no cgroup2 mount holds `dir`.
std::string cgroupPathOfDir(const std::filesystem::path& dir, std::string_view mountinfo);
// The sliver whose cgroup holds `cgroup_path` (it or a cgroup below it): the
// first component below `slivers_path`; nullopt when it lies elsewhere.
std::optional<std::string> sliverOfCgroup(std::string_view cgroup_path,
                                          std::string_view slivers_path);
// The cgroup id of a cgroup2 directory: what bpf_get_current_cgroup_id() gives
// for its processes (the directory's inode number). A sliver's cgroup is made
// anew at each start (docs/node.md), so its id changes with every start: read
// it after start(), never keep it across one. Throws SysError (EINVAL when
// `dir` is not on cgroup2).
std::uint64_t cgroupIdOf(const std::filesystem::path& dir);

struct CgroupUsage {
  std::uint64_t memory_bytes = 0;  // current memory use (incl. page cache)
  std::uint64_t cpu_usage_ns = 0;  // cumulative CPU time
  std::uint32_t tasks = 0;         // processes and threads
};

// One cgroup hierarchy as a sliver sees it under /sys/fs/cgroup: a fresh mount
// made inside the sliver's cgroup namespace, whose root there is the sliver's
// own cgroup, so nothing above or beside it (other slivers, the node) shows.
struct CgroupView {
  std::string dir;      // below /sys/fs/cgroup; empty = /sys/fs/cgroup itself
  std::string fstype;   // "cgroup2" or "cgroup" (v1)
  std::string options;  // v1: the hierarchy's controllers ("cpu,cpuacct"); "" for cgroup2
  bool operator==(const CgroupView&) const = default;
};

class CgroupDriver {
 public:
  virtual ~CgroupDriver() = default;

  virtual std::string_view kind() const = 0;  // "v2" or "hybrid"

  // Creates <root>/daemon and <root>/slivers in every hierarchy, enables the
  // controllers slivers need (v2: subtree_control) and moves `daemon_pid` into
  // <root>/daemon. Idempotent. Pass 0 to leave processes where they are (tests).
  virtual void setUp(pid_t daemon_pid) = 0;

  // Bounds sliverd itself (<root>/daemon) as apply() bounds a sliver:
  // memory.max/memory.high (v1: memory.limit_in_bytes and the soft limit, 10%
  // under) and pids.max; 0 = no limit. CPU and io are left alone. Only this
  // leaf is limited: a limit on <root> (systemd's MemoryMax= on the unit) would
  // bound every sliver together with the daemon.
  virtual void limitDaemon(const Resources& resources) = 0;

  // The unified directory above all slivers (BPF attach point).
  virtual std::filesystem::path sliversDir() const = 0;
  // The sliver's unified directory.
  virtual std::filesystem::path unifiedDir(std::string_view sliver) const = 0;

  // Creates the sliver's cgroup in every hierarchy. Idempotent.
  virtual void create(std::string_view sliver) = 0;
  // Writes every knob; changing a running sliver's knobs is allowed.
  virtual void apply(std::string_view sliver, const Resources& resources) = 0;
  // An O_PATH|O_DIRECTORY fd of the sliver's unified directory, for
  // clone3(CLONE_INTO_CGROUP).
  virtual base::UniqueFd openUnifiedDir(std::string_view sliver) const = 0;
  // Moves `pid` into the sliver's cgroup in the hierarchies clone3 could not
  // place it in (v1). No-op for v2 once the child was cloned into its cgroup.
  virtual void attach(std::string_view sliver, pid_t pid) = 0;
  // The hierarchies a sliver is placed in, as it sees them (launch.h mounts
  // them): v2 the cgroup2 tree at /sys/fs/cgroup; hybrid cgroup2 at "unified"
  // and each v1 hierarchy the driver places slivers in under its controllers'
  // name. The default, none, leaves /sys/fs/cgroup empty.
  virtual std::vector<CgroupView> sliverViews() const { return {}; }

  // The processes in the sliver's cgroup (its unified one: clone3 places every
  // process of a sliver there), sorted.
  virtual std::vector<pid_t> pids(std::string_view sliver) const = 0;
  virtual CgroupUsage usage(std::string_view sliver) const = 0;
  // The slivers that have a cgroup (names of <root>/slivers/* in the unified tree).
  virtual std::vector<std::string> list() const = 0;

  // SIGKILLs every process of the sliver (cgroup.kill where the kernel has it)
  // and waits up to `timeout` for the cgroup to empty. A sliver without a cgroup
  // has nothing to kill.
  virtual void killAll(std::string_view sliver, std::chrono::milliseconds timeout) = 0;
  // Removes the sliver's cgroup in every hierarchy; it must be empty. Idempotent.
  virtual void remove(std::string_view sliver) = 0;
};

// Probes the hierarchies in `roots` and returns the matching driver: "v2" when
// the unified directory has the cpu, memory and pids controllers available,
// "hybrid" when they come from v1. Throws SysError with an actionable message
// when neither works.
std::unique_ptr<CgroupDriver> makeCgroupDriver(const CgroupRoots& roots);

// The two drivers without probing, so tests can aim them at a temporary tree
// that mimics a kernel's layout. makeHybridDriver throws SysError when `roots`
// lacks a v1 cpu, memory or pids hierarchy.
std::unique_ptr<CgroupDriver> makeV2Driver(const CgroupRoots& roots);
std::unique_ptr<CgroupDriver> makeHybridDriver(const CgroupRoots& roots);

}  // namespace plng::node
