// Where the login tools (sliver-enter, sliverd-keys) find the node's directories.
//
// Both read a small key=value file (node/kvfile.h) with `state_dir=` and
// `run_dir=` (either may be omitted: NodePaths' defaults). They look for it
//   1. next to their own binary: a directory `sliver-enter.d` (several node
//      instances on one host, below), else a file `sliver-enter.conf` (one
//      installation per node instance: tests install the tools in a directory
//      of their own), else
//   2. the same two at /etc/planetlab (kSliceLoginConfigDir), else
//   3. use NodePaths' defaults.
// sliver-enter runs setuid root, so there it trusts a file only when the file
// and every directory above it belong to root and nobody else can write them
// (requireRootOwnedPath); the environment is never consulted when setuid.
//
// Several node instances on one host (the local planet's nodes, each in its own
// network namespace with its own sshd) share the host's slice accounts, and so
// one login shell. `sliver-enter.d/<instance>.conf` then holds one file per
// instance, each also naming with `netns=` the network namespace that instance's
// sshd serves (a path such as /run/netns/<name>); the tools take the instance
// whose namespace is their own. A login cannot choose its namespace: sshd's
// child inherits it, and the slice account runs nothing before sliver-enter. So
// a login through node2's sshd lands in node2's sliver, and nothing the client
// sends (arguments, environment) can steer it elsewhere (docs/vnet.md, "Local
// planet").
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include "node/paths.h"

namespace plng::sliverd {

inline constexpr std::string_view kSliceLoginConfigDir = "/etc/planetlab";
inline constexpr std::string_view kSliceLoginConfigName = "sliver-enter.conf";
inline constexpr std::string_view kSliceLoginInstancesName = "sliver-enter.d";

struct SliceLoginConfig {
  node::NodePaths paths;
  std::filesystem::path netns;   // the instance's network namespace; empty = any
  std::filesystem::path source;  // the file read; empty = built-in defaults
};

// Reads `file`. Throws SysError (ENOENT when missing) or std::runtime_error for
// a malformed line, an unknown key or a relative path.
SliceLoginConfig readSliceLoginConfig(const std::filesystem::path& file);

// Every `*.conf` in a sliver-enter.d directory, by file name. Each must name its
// netns (std::runtime_error otherwise). With `trusted_only`, each file must pass
// requireRootOwnedPath.
std::vector<SliceLoginConfig> readSliceLoginInstances(const std::filesystem::path& dir,
                                                      bool trusted_only);

// True when `netns` (a namespace file: /run/netns/<name>, /proc/<pid>/ns/net) is
// the calling thread's network namespace; false when it differs or is missing.
bool isOwnNetworkNamespace(const std::filesystem::path& netns);

// Throws std::runtime_error naming the culprit unless `path` and each directory
// above it is owned by root and not writable by group or others (a directory
// with the sticky bit, like /tmp, is accepted: others cannot replace root's
// entries in it). Symbolic links are refused.
void requireRootOwnedPath(const std::filesystem::path& path);

// The configuration for a tool whose binary is `exe` (steps 1-3 above). With
// `trusted_only`, a candidate file must pass requireRootOwnedPath or the call
// throws (it never silently falls back to another file). With a sliver-enter.d,
// throws std::runtime_error unless exactly one instance's netns is the caller's.
SliceLoginConfig findSliceLoginConfig(const std::filesystem::path& exe, bool trusted_only);

}  // namespace plng::sliverd
