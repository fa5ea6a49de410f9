#include "sliverd/login/slice_login.h"

#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>

#include "base/error.h"
#include "base/fd.h"
#include "node/kvfile.h"

namespace plng::sliverd {
namespace fs = std::filesystem;

SliceLoginConfig readSliceLoginConfig(const fs::path& file) {
  SliceLoginConfig config;
  config.source = file;
  for (const auto& [key, value] : node::readKvFile(file)) {
    fs::path path(value);
    if (!path.is_absolute()) {
      throw std::runtime_error(file.string() + ": " + key + " must be an absolute path");
    }
    if (key == "state_dir") {
      config.paths.state_dir = path;
    } else if (key == "run_dir") {
      config.paths.run_dir = path;
    } else {
      throw std::runtime_error(file.string() + ": unknown key \"" + key +
                               "\" (known: state_dir, run_dir)");
    }
  }
  return config;
}

void requireRootOwnedPath(const fs::path& path) {
  if (!path.is_absolute()) throw std::runtime_error(path.string() + " is not an absolute path");
  fs::path current = path.lexically_normal();
  bool leaf = true;
  for (;;) {
    struct stat st {};
    if (::lstat(current.c_str(), &st) != 0) base::throwErrno("stat " + current.string());
    if (S_ISLNK(st.st_mode)) {
      throw std::runtime_error(current.string() + " is a symbolic link; refusing it");
    }
    bool sticky_dir = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) && !leaf;
    if (st.st_uid != 0 || ((st.st_mode & 022) != 0 && !sticky_dir)) {
      throw std::runtime_error(current.string() +
                               " must belong to root and be writable by root only");
    }
    if (current == current.root_path()) return;
    current = current.parent_path();
    leaf = false;
  }
}

SliceLoginConfig findSliceLoginConfig(const fs::path& exe, bool trusted_only) {
  for (const fs::path& candidate :
       {exe.parent_path() / kSliceLoginConfigName, fs::path(kSliceLoginConfigPath)}) {
    struct stat st {};
    if (::lstat(candidate.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      base::throwErrno("stat " + candidate.string());
    }
    if (trusted_only) requireRootOwnedPath(candidate);
    return readSliceLoginConfig(candidate);
  }
  return SliceLoginConfig{};
}

}  // namespace plng::sliverd
