// Starting a sliver: its first process (sliver-init) in fresh namespaces.
//
// Sequence (docs/node.md, "Slivers"):
//   parent: opens everything the child needs, then clone3(CLONE_NEWUSER | NEWNS |
//           NEWPID | NEWUTS | NEWIPC | NEWCGROUP | CLONE_PIDFD [| CLONE_INTO_CGROUP])
//           — the node's network namespace is shared.
//   child:  blocks until the parent says go.
//   parent: writes uid_map/gid_map (0 -> ids.first, 65536 ids; setgroups stays
//           allowed, since host root writes the map), places the child in its
//           v1 cgroups (`attach`), builds the overlay detached with the idmapped
//           image through the child's own user namespace (rootfs.h) and hands it
//           over a socket (SCM_RIGHTS) together with "go".
//   child:  becomes root of its namespace, makes / a slave, moves the overlay onto
//           `mountpoint`, mounts /proc, a minimal /dev and read-only /sys in it,
//           binds `local_api_dir` read-only at /run/sliverd, pivot_root, sethostname, then
//           no_new_privs, seccomp and the capability bounding set, and execs sliver-init by file
//           descriptor.
// After clone3 the child makes only async-signal-safe calls; everything it needs
// was decided and allocated before. A failing step is reported over a
// close-on-exec pipe (step, errno), and launchSliver throws
// SysError("sliver <name>: pivot_root: ...").
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "error.h"
#include "idrange.h"
#include "security.h"
#include "storage.h"

namespace plng::node {

struct LaunchSpec {
  std::string name;  // the slice: hostname inside, and named in errors
  IdRange ids;
  std::filesystem::path image;  // reference image directory (lower layer)
  SliverDirs dirs;              // upper/work (SliverStorage::prepare)
  // An existing empty directory on the host; the child attaches the overlay
  // there inside its own mount namespace before pivot_root (NodePaths::rootfs).
  std::filesystem::path mountpoint;
  // An existing host directory holding sliverd's local API socket (and nothing
  // a sliver must not see: NodePaths::localApiDir), bound read-only at
  // /run/sliverd inside. The directory, not the socket: sliverd recreates the
  // socket at restart. Empty = nothing bound.
  std::filesystem::path local_api_dir;
  // The sliver's unified cgroup directory (CgroupDriver::openUnifiedDir), for
  // CLONE_INTO_CGROUP; -1 leaves the child in the caller's cgroup.
  int cgroup_fd = -1;
  // Called in the parent with the child's host pid while the child waits, e.g.
  // CgroupDriver::attach for the v1 hierarchies of a hybrid host. May throw.
  std::function<void(pid_t)> attach;
  // The host's sliver-init binary (a static ELF: it runs in any image); exec'd
  // by file descriptor, so nothing is copied into the sliver.
  std::filesystem::path init_path;
  std::vector<std::string> init_args;  // argv[1..]
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
      "TERM=dumb"};
  // stdin, stdout, stderr of sliver-init; -1 = the sliver's /dev/null.
  int stdio[3] = {-1, -1, -1};
  // Applied in the child just before exec, after no_new_privs (security.h).
  // nullptr = sliverSeccompProgram(), the node's filter (compiled once); every
  // sliver gets a filter.
  const SeccompProgram* seccomp = nullptr;
  // The bounding set root keeps inside; nullopt = capabilityPlanFromTag(""),
  // the default set.
  std::optional<CapabilityPlan> capabilities;
  // If not empty, sliver-init's signal mask (it survives exec): exactly these
  // are blocked. PID 1 of a pid namespace drops signals from outside it has no
  // handler for, but a blocked signal stays pending until it has one. Empty:
  // the caller's mask, as it is.
  std::vector<int> blocked_signals;
};

struct LaunchedSliver {
  pid_t pid = 0;   // host pid of sliver-init (a child of the caller)
  UniqueFd pidfd;  // pidfd of sliver-init
};

// Starts sliver-init as described above. On any failure the child is killed and
// reaped, and SysError says which step failed and why.
LaunchedSliver launchSliver(const LaunchSpec& spec);

}  // namespace plng::node
