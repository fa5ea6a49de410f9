// Where the login tools (sliver-enter, sliverd-keys) find the node's directories.
//
// Both read a small key=value file (node/kvfile.h) with `state_dir=` and
// `run_dir=` (either may be omitted: NodePaths' defaults). They look for it
//   1. next to their own binary, as `sliver-enter.conf` (one installation per
//      node instance: the local planet and tests install the tools in a
//      directory of their own), else
//   2. at kSliceLoginConfigPath, else
//   3. use NodePaths' defaults.
// sliver-enter runs setuid root, so there it trusts a file only when the file
// and every directory above it belong to root and nobody else can write them
// (requireRootOwnedPath); the environment is never consulted when setuid.
#pragma once

#include <filesystem>
#include <string_view>

#include "node/paths.h"

namespace plng::sliverd {

inline constexpr std::string_view kSliceLoginConfigPath = "/etc/planetlab/sliver-enter.conf";
inline constexpr std::string_view kSliceLoginConfigName = "sliver-enter.conf";

struct SliceLoginConfig {
  node::NodePaths paths;
  std::filesystem::path source;  // the file read; empty = built-in defaults
};

// Reads `file`. Throws SysError (ENOENT when missing) or std::runtime_error for
// a malformed line, an unknown key or a relative path.
SliceLoginConfig readSliceLoginConfig(const std::filesystem::path& file);

// Throws std::runtime_error naming the culprit unless `path` and each directory
// above it is owned by root and not writable by group or others (a directory
// with the sticky bit, like /tmp, is accepted: others cannot replace root's
// entries in it). Symbolic links are refused.
void requireRootOwnedPath(const std::filesystem::path& path);

// The configuration for a tool whose binary is `exe` (steps 1-3 above). With
// `trusted_only`, a candidate file must pass requireRootOwnedPath or the call
// throws (it never silently falls back to another file).
SliceLoginConfig findSliceLoginConfig(const std::filesystem::path& exe, bool trusted_only);

}  // namespace plng::sliverd
