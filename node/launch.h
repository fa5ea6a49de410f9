// Starting a sliver: its first process (sliver-init) in fresh namespaces.
//
// Sequence (docs/node.md, "Slivers"):
//   parent: opens everything the child needs (including a detached read-only
//           clone of /sys without the mounts beneath it), then
//           clone3(CLONE_NEWUSER | NEWNS | NEWPID | NEWUTS | NEWIPC | CLONE_PIDFD
//           [| CLONE_INTO_CGROUP]) — the node's network namespace is shared.
//   child:  first of all asks for SIGKILL when its parent dies, closes every
//           descriptor it does not need (the parent's listening sockets among
//           them) and starts a session of its own (no controlling terminal);
//           then blocks until the parent says go. EOF there means the parent
//           is gone: it exits.
//   parent: writes uid_map/gid_map (0 -> ids.first, 65536 ids; setgroups stays
//           allowed, since host root writes the map), places the child in its
//           v1 cgroups (`attach`), builds the overlay detached with the idmapped
//           image through the child's own user namespace (rootfs.h) and hands it
//           over a socket (SCM_RIGHTS) together with "go".
//   child:  from here on outlives the parent; unshares its cgroup namespace
//           (rooted at the sliver's own cgroups, now that it is in all of them),
//           becomes root of its namespace, makes / a slave, moves the overlay onto
//           `mountpoint`, mounts /proc, a minimal /dev with its own devpts, the
//           /sys clone with only its own cgroups under /sys/fs/cgroup
//           (`cgroup_views`), binds `local_api_dir` read-only at /run/sliverd,
//           pivot_root, sethostname, sets RLIMIT_NOFILE, then no_new_privs,
//           seccomp (with a listener, which sliver-init keeps open for the
//           sliver's lifetime), the sliver's Landlock domain scoping abstract
//           unix sockets (where the kernel has it) and the capability
//           bounding set, and execs
//           sliver-init by file descriptor.
//   parent: takes a copy of the seccomp listener from sliver-init (pidfd_getfd).
// After clone3 the child makes only async-signal-safe calls; everything it needs
// was decided and allocated before. A failing step is reported over a
// close-on-exec pipe (step, errno), and launchSliver throws
// SysError("sliver <name>: pivot_root: ...").
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "node/cgroup.h"
#include "node/idrange.h"
#include "node/security.h"
#include "node/storage.h"

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
  // stdin, stdout, stderr of sliver-init; -1 = /dev/null. A terminal is
  // refused (EINVAL): a sliver shares no terminal with the host.
  int stdio[3] = {-1, -1, -1};
  // What the sliver sees under /sys/fs/cgroup (CgroupDriver::sliverViews):
  // mounted inside its cgroup namespace, read-only. Empty: an empty read-only
  // tmpfs covers /sys/fs/cgroup.
  std::vector<CgroupView> cgroup_views;
  // RLIMIT_NOFILE of sliver-init, inherited by every process of the sliver;
  // root inside cannot raise the hard limit (that takes CAP_SYS_RESOURCE in the
  // host's user namespace). Clamped to the caller's own hard limit, which
  // launchSliver cannot raise either. nullopt: the caller's limits.
  std::optional<rlimit> nofile;
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
  // Descriptors (>= 3) sliver-init inherits under the same numbers, e.g. its
  // login listener (named to it in init_args). Everything else the caller has
  // open is closed in the child.
  std::vector<int> inherit_fds;
  // Every process of the sliver in one Landlock domain scoping abstract unix
  // sockets (node/security.h), where base::landlockScopesAbstractUnixSockets():
  // they reach the sliver's own abstract sockets, not the host's nor another
  // sliver's. A kernel that claims the ABI and still fails is an error. false:
  // no domain (tests of what an unscoped sliver can reach).
  bool scope_abstract_unix_sockets = true;
};

struct LaunchedSliver {
  pid_t pid = 0;         // host pid of sliver-init (a child of the caller)
  base::UniqueFd pidfd;  // pidfd of sliver-init
  // A copy of the sliver's seccomp listener (raw_socket.h), which sliver-init
  // holds for as long as it lives: the sliver's raw socket() calls arrive here.
  base::UniqueFd seccomp_listener;
};

// Starts sliver-init as described above. On any failure the child is killed and
// reaped, and SysError says which step failed and why.
LaunchedSliver launchSliver(const LaunchSpec& spec);

// What the node operator can raise when starting a sliver fails with `err` for
// want of a host-wide resource (ENOSPC: a namespace count; EAGAIN: pids), as
// launchSliver's error says; empty for other errors.
std::string hostLimitHint(int err);

// The RLIMIT_NOFILE of a running process (/proc/<pid>/limits, readable by
// anyone: no CAP_SYS_RESOURCE needed). A process that enters a sliver with
// setns (the tests' runInSliver) takes its init's, or it would bring its own,
// larger, limit in.
// Throws SysError.
rlimit nofileLimitOf(pid_t pid);
// The same from the text of /proc/<pid>/limits; throws SysError(EINVAL).
rlimit parseNofileLimit(std::string_view proc_limits);

}  // namespace plng::node
