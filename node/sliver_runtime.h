// LinuxSliverRuntime: slivers made of namespaces, cgroups, an idmapped overlay
// and a quota'd upper layer (docs/node.md, "Slivers").
//
// Everything it knows lives on disk and in the kernel, never only in memory, so
// a restarted sliverd (a new LinuxSliverRuntime over the same NodePaths)
// re-adopts running slivers without touching them:
//   <state_dir>/idranges                 the slice's host ids (IdRangeAllocator)
//   <state_dir>/slivers/<slice>/config   the SliverConfig last created/updated
//   <state_dir>/slivers/<slice>/rootfs   empty; the overlay's mount point inside
//                                        the sliver's own mount namespace
//   <run_dir>/slivers/<slice>.init       pid=, start_time=, cgroup= of sliver-init
// A sliver is running iff its .init record names a live process with the same
// start time (field 22 of /proc/<pid>/stat) that is in the sliver's cgroup: a
// reused pid never passes for a sliver.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "node/cgroup.h"
#include "node/idrange.h"
#include "node/paths.h"
#include "node/rootfs_release.h"
#include "node/runtime.h"
#include "node/storage.h"

namespace plng::node {

// Tells one version of a file from another (LinuxSliverRuntime's id ranges).
struct FileVersion {
  dev_t dev = 0;
  ino_t ino = 0;
  std::int64_t ctime_s = 0, ctime_ns = 0;
  off_t size = 0;
  bool operator==(const FileVersion&) const = default;
};

struct SliverRuntimeOptions {
  std::filesystem::path sliver_init = "/usr/lib/planetlab/sliver-init";
  // The image of a sliver whose config names none (no vref tag).
  std::string default_vref = "debian12";
  // How long sliver-init lets the sliver's processes finish after SIGTERM
  // before it SIGKILLs them itself (stop()'s grace is the outer bound).
  std::chrono::milliseconds init_stop_grace{2000};
  // stop()'s grace when destroy() finds the sliver running.
  std::chrono::milliseconds destroy_grace{3000};
  // RLIMIT_NOFILE of every process of a sliver (launch.h): the soft limit a
  // process starts with, and the hard one it may raise it to and never beyond
  // (docs/node.md, "Open files").
  rlim_t nofile_soft = 1024;
  rlim_t nofile_hard = 4096;
  // Called at every start once the sliver's fresh cgroup exists and before its
  // first process runs, with the sliver's unified cgroup directory: policy keyed
  // by that cgroup (vnet-bpf's cgroup -> slice map) is in place before the
  // sliver can open a socket. May throw; the start then fails.
  std::function<void(const SliverConfig&, const std::filesystem::path& unified_cgroup)>
      before_launch = {};
};

class LinuxSliverRuntime : public SliverRuntime {
 public:
  LinuxSliverRuntime(NodePaths paths, CgroupDriver& cgroups, SliverStorage& storage,
                     SliverRuntimeOptions options);
  LinuxSliverRuntime(NodePaths paths, CgroupDriver& cgroups, SliverStorage& storage,
                     const std::filesystem::path& sliver_init)
      : LinuxSliverRuntime(std::move(paths), cgroups, storage,
                           SliverRuntimeOptions{.sliver_init = sliver_init}) {}

  std::vector<SliverStatus> list() override;
  std::optional<SliverStatus> get(std::string_view slice) override;
  // Throws TagError for a config that cannot be applied (capabilities, vref, a
  // slice name that is no hostname), SysError for the kernel's refusals.
  void create(const SliverConfig& config) override;
  // Throws SysError(ENOENT) for a sliver that was never created, and
  // SysError("sliver <x>: <step>: ...") when it cannot be started.
  void start(std::string_view slice) override;
  void stop(std::string_view slice, std::chrono::milliseconds grace) override;
  void update(const SliverConfig& config) override;
  void destroy(std::string_view slice) override;

  // A pidfd of the running sliver's init (for setns into the sliver: tests), or
  // an empty UniqueFd when it is not running.
  base::UniqueFd openInit(std::string_view slice);

 private:
  struct InitRecord {
    pid_t pid = 0;
    std::uint64_t start_time = 0;
  };

  std::optional<SliverConfig> readConfig(const std::string& slice) const;
  void writeConfig(const SliverConfig& config) const;
  // The running init, or nullopt (a stale record is removed; an init that is
  // our child and has exited is reaped).
  std::optional<InitRecord> runningInit(const std::string& slice);
  SliverStatus statusOf(const SliverConfig& config);
  void stopLocked(const std::string& slice, std::chrono::milliseconds grace);
  std::filesystem::path imageOf(const SliverConfig& config) const;
  // The node's id ranges, read from disk again only when the file changed
  // under us (with mutex_ held).
  IdRangeAllocator& idRanges();
  // After ids_ wrote the file: that version is ours.
  void idRangesWritten();

  NodePaths paths_;
  CgroupDriver& cgroups_;
  SliverStorage& storage_;
  SliverRuntimeOptions options_;
  std::mutex mutex_;
  // pidfds of the inits this process started (its children, which it reaps).
  std::map<std::string, base::UniqueFd> children_;
  // Slivers whose cgroup this process made in create() and no process has used
  // yet: start() may clone into it as it is instead of making it afresh. Only in
  // memory, so after a sliverd restart every start makes a fresh cgroup.
  std::set<std::string> unused_cgroups_;
  // Kept between calls and written through on every change. Reading and
  // checking the whole file at every create, start and destroy cost O(slivers)
  // each (4 ms per load at 10,000 slivers: 40 s over their creation). The file
  // stays the truth: a version this runtime did not write is read again.
  std::optional<IdRangeAllocator> ids_;
  std::optional<FileVersion> ids_version_;
  // Stopped slivers' roots, unmounted (and their storage synced) off stop()'s
  // path. Last: destroyed first, so every pin is dropped before the rest goes.
  RootfsReleaser releaser_;
};

}  // namespace plng::node
