#include "sliverd/login/slice_login.h"

#include <sys/stat.h>

#include <algorithm>
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
    } else if (key == "netns") {
      config.netns = path;
    } else {
      throw std::runtime_error(file.string() + ": unknown key \"" + key +
                               "\" (known: state_dir, run_dir, netns)");
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

std::vector<SliceLoginConfig> readSliceLoginInstances(const fs::path& dir, bool trusted_only) {
  if (trusted_only) requireRootOwnedPath(dir);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".conf") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<SliceLoginConfig> instances;
  for (const auto& file : files) {
    if (trusted_only) requireRootOwnedPath(file);
    SliceLoginConfig config = readSliceLoginConfig(file);
    if (config.netns.empty()) {
      throw std::runtime_error(file.string() +
                               ": an instance in a sliver-enter.d names its netns= (the network "
                               "namespace its sshd serves)");
    }
    instances.push_back(std::move(config));
  }
  return instances;
}

bool isOwnNetworkNamespace(const fs::path& netns) {
  struct stat theirs {};
  struct stat own {};
  if (::stat(netns.c_str(), &theirs) != 0) return false;
  if (::stat("/proc/thread-self/ns/net", &own) != 0)
    base::throwErrno("stat /proc/thread-self/ns/net");
  return theirs.st_dev == own.st_dev && theirs.st_ino == own.st_ino;
}

namespace {

bool pathExists(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  base::throwErrno("stat " + path.string());
}

}  // namespace

SliceLoginConfig findSliceLoginConfig(const fs::path& exe, bool trusted_only) {
  for (const fs::path& dir : {exe.parent_path(), fs::path(kSliceLoginConfigDir)}) {
    if (fs::path instances = dir / kSliceLoginInstancesName; pathExists(instances)) {
      std::vector<SliceLoginConfig> own;
      for (auto& instance : readSliceLoginInstances(instances, trusted_only)) {
        if (isOwnNetworkNamespace(instance.netns)) own.push_back(std::move(instance));
      }
      if (own.size() == 1) return std::move(own.front());
      throw std::runtime_error(own.empty()
                                   ? "no node instance in " + instances.string() +
                                         " serves this network namespace (each names its netns=)"
                                   : "several node instances in " + instances.string() +
                                         " name this network namespace: " + own[0].source.string() +
                                         ", " + own[1].source.string());
    }
    if (fs::path file = dir / kSliceLoginConfigName; pathExists(file)) {
      if (trusted_only) requireRootOwnedPath(file);
      return readSliceLoginConfig(file);
    }
  }
  return SliceLoginConfig{};
}

}  // namespace plng::sliverd
