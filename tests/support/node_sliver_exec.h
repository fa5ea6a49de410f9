// Running a command inside a running sliver, for tests and benchmarks.
//
// A forked helper joins every namespace of the sliver's init at once
// (setns(pidfd, ...)), becomes root of its user namespace (host uid ids.first)
// and forks the command with the open-file limit of the sliver's init, which is
// then a process of the sliver's pid namespace with the sliver's root, mounts
// and hostname. Nothing is installed in the sliver; sliver-init stays the only
// process that belongs to it otherwise. The command is not in the sliver's
// Landlock domain (docs/vnet.md, "Abstract unix sockets"): ssh logins, which
// must be, are started by sliver-init instead.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"
#include "node/security.h"

namespace plng::test {

struct SliverExecOptions {
  // The sliver's unified cgroup directory: the command is cloned into it
  // (CLONE_INTO_CGROUP) so that the sliver's limits apply. -1 = the caller's.
  int cgroup_fd = -1;
  // Written to the command's stdin (then closed); empty = /dev/null.
  std::string input;
  // Restrictions of the command, as a sliver's processes have them: no_new_privs,
  // the node's seccomp filter and this bounding set (nullopt = the default
  // capabilityPlanFromTag("")). With `restricted` false, only no_new_privs.
  bool restricted = true;
  std::optional<node::CapabilityPlan> capabilities;
  // A descriptor (O_PATH will do) of a static host program to run instead of
  // argv[0] (execveat with AT_EMPTY_PATH: nothing is copied into the sliver).
  // -1 = argv[0], a path inside the sliver.
  int exec_fd = -1;
  // Called in the forked helper before it enters the sliver, e.g. to place it
  // in the sliver's cgroups in every hierarchy (CgroupDriver::attach, which a
  // hybrid host's v1 controllers need; cgroup_fd covers only the unified one).
  std::function<void()> join_cgroups;
  // When set (with `restricted`), the command runs under the sliver filter that
  // hands raw socket() calls to user space (RawSockets::kBrokered), installed
  // with a listener of the command's own; the listener is passed here before
  // runInSliver waits for the command, e.g. to a RawSocketBroker. Unset: raw
  // sockets are left to the kernel, which refuses them (EPERM).
  std::function<void(base::UniqueFd listener)> seccomp_listener;
  // Environment of the command.
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"};
};

struct SliverExecResult {
  // The command's exit code; 128 + n when killed by signal n; 125 when the
  // helper could not enter the sliver, 127 when the command could not be run.
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

// Runs `argv` (argv[0] an absolute path inside the sliver) in the sliver whose
// init is `pidfd`, and waits for it and for its output to close (a command that
// leaves a background process holding stdout open must redirect it). Throws std::system_error when
// the helper cannot be forked.
SliverExecResult runInSliver(int pidfd, const std::vector<std::string>& argv,
                             const SliverExecOptions& options = {});

// The `key=value` lines of a command's output (probes print them), by key.
std::map<std::string, std::string> keyValues(const std::string& output);

// runInSliver({"/bin/sh", "-c", script}).
SliverExecResult shInSliver(int pidfd, const std::string& script,
                            const SliverExecOptions& options = {});

}  // namespace plng::test
