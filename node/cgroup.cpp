// CgroupRoots::ofProcess and the probe that picks a driver.
#include "node/cgroup.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>
#include <sstream>

#include "base/file.h"
#include "base/proc.h"
#include "base/strings.h"
#include "node/cgroup_fs.h"

using plng::base::SysError;
using plng::base::throwErrno;

namespace plng::node {

namespace {

struct CgroupMount {
  std::string root;  // the path within the hierarchy that is mounted
  std::filesystem::path mount_point;
  bool v2 = false;
  std::vector<std::string> options;  // super options: "rw", "cpu", "name=systemd", ...
};

std::vector<CgroupMount> cgroupMounts(std::string_view mountinfo) {
  std::vector<CgroupMount> out;
  for (const auto& mount : base::parseMountInfo(mountinfo)) {
    if (mount.fstype != "cgroup" && mount.fstype != "cgroup2") continue;
    out.push_back(CgroupMount{mount.root, mount.mount_point, mount.fstype == "cgroup2",
                              base::split(mount.super_options, ',')});
  }
  return out;
}

// The directory of cgroup `path` in a mount of its hierarchy, if the mount shows it.
std::optional<std::filesystem::path> resolve(const CgroupMount& mount, const std::string& path) {
  if (mount.root == "/") {
    auto relative = std::filesystem::path(path).relative_path();
    // No trailing slash for the hierarchy's root: callers compare these paths.
    return relative.empty() ? mount.mount_point : mount.mount_point / relative;
  }
  if (path == mount.root) return mount.mount_point;
  if (path.size() > mount.root.size() && path.compare(0, mount.root.size(), mount.root) == 0 &&
      path[mount.root.size()] == '/')
    return mount.mount_point / std::filesystem::path(path.substr(mount.root.size() + 1));
  return std::nullopt;
}

// `path` is `dir` or lies below it (both normalised, absolute).
bool below(std::string_view path, std::string_view dir) {
  if (dir == "/") return !path.empty() && path.front() == '/';
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

}  // namespace

std::optional<std::string> unifiedCgroupPath(std::string_view proc_pid_cgroup) {
  for (auto& entry : base::parseProcCgroup(proc_pid_cgroup)) {
    if (entry.hierarchy_id == 0 && entry.controllers.empty()) return std::move(entry.path);
  }
  return std::nullopt;
}

std::string cgroupPathOfDir(const std::filesystem::path& dir, std::string_view mountinfo) {
  const std::string target = dir.lexically_normal().string();
  const CgroupMount* holder = nullptr;
  const auto mounts = cgroupMounts(mountinfo);
  for (const auto& mount : mounts) {
    // The deepest cgroup2 mount holding `dir`; of equal ones, the last mounted.
    if (mount.v2 && below(target, mount.mount_point.string()) &&
        (!holder || mount.mount_point.string().size() >= holder->mount_point.string().size())) {
      holder = &mount;
    }
  }
  if (!holder) throw SysError(ENOENT, "find the cgroup2 mount holding " + target);
  const std::string mount_point = holder->mount_point.string();
  std::string rest = mount_point == "/" ? target : target.substr(mount_point.size());
  if (holder->root == "/") return rest.empty() ? "/" : rest;
  return holder->root + rest;
}

std::optional<std::string> sliverOfCgroup(std::string_view cgroup_path,
                                          std::string_view slivers_path) {
  if (!below(cgroup_path, slivers_path) || cgroup_path.size() == slivers_path.size()) {
    return std::nullopt;
  }
  std::size_t start = slivers_path == "/" ? 1 : slivers_path.size() + 1;
  std::size_t end = cgroup_path.find('/', start);
  std::string sliver(cgroup_path.substr(start, end == std::string_view::npos ? end : end - start));
  if (sliver.empty()) return std::nullopt;
  return sliver;
}

std::uint64_t cgroupIdOf(const std::filesystem::path& dir) {
  struct statfs fs_info {};
  if (::statfs(dir.c_str(), &fs_info) != 0) throwErrno("statfs " + dir.string());
  if (static_cast<unsigned long>(fs_info.f_type) != CGROUP2_SUPER_MAGIC) {
    throw SysError(EINVAL, dir.string() + " is not a cgroup2 directory");
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throwErrno("stat " + dir.string());
  return static_cast<std::uint64_t>(st.st_ino);
}

CgroupRoots CgroupRoots::ofProcess(pid_t pid) {
  std::string file = "/proc/" + std::to_string(pid) + "/cgroup";
  return parse(base::readFile(file), base::readFile("/proc/self/mountinfo"));
}

CgroupRoots CgroupRoots::parse(std::string_view proc_cgroup, std::string_view mountinfo) {
  auto mounts = cgroupMounts(mountinfo);
  CgroupRoots roots;
  bool have_unified = false;
  for (const auto& [id, controllers, path] : base::parseProcCgroup(proc_cgroup)) {
    if (id == 0 && controllers.empty()) {
      for (const auto& mount : mounts) {
        if (!mount.v2) continue;
        if (auto dir = resolve(mount, path)) {
          roots.unified = *dir;
          have_unified = true;
          break;
        }
      }
      continue;
    }
    auto names = controllers;
    // Named hierarchies (name=systemd) carry no controller.
    names.erase(std::remove_if(names.begin(), names.end(),
                               [](const std::string& n) { return n.rfind("name=", 0) == 0; }),
                names.end());
    if (names.empty()) continue;
    for (const auto& mount : mounts) {
      if (mount.v2) continue;
      bool all = std::all_of(names.begin(), names.end(), [&](const std::string& n) {
        return std::find(mount.options.begin(), mount.options.end(), n) != mount.options.end();
      });
      if (!all) continue;
      if (auto dir = resolve(mount, path)) {
        for (const auto& n : names) roots.v1[n] = *dir;
        break;
      }
    }
  }
  if (!have_unified)
    throw SysError(ENOENT,
                   "no cgroup2 mount shows the process's cgroup2 directory: mount cgroup2 "
                   "(e.g. at /sys/fs/cgroup/unified) first");
  return roots;
}

std::unique_ptr<CgroupDriver> makeCgroupDriver(const CgroupRoots& roots) {
  auto dir = cgroupfs::openDir(roots.unified);
  auto available = cgroupfs::words(cgroupfs::readKnob(dir, "cgroup.controllers"));
  auto has = [&](const char* c) {
    return std::find(available.begin(), available.end(), c) != available.end();
  };
  if (has("cpu") && has("memory") && has("pids")) return makeV2Driver(roots);
  if (roots.v1.count("cpu") && roots.v1.count("memory") && roots.v1.count("pids"))
    return makeHybridDriver(roots);
  std::string missing;
  for (const char* c : {"cpu", "memory", "pids"})
    if (!has(c)) missing += std::string(missing.empty() ? "" : " ") + c;
  throw SysError(ENOTSUP, "no usable cgroup controllers: " + roots.unified.string() + " lacks {" +
                              missing +
                              "} in cgroup.controllers (enable them in the parent's "
                              "cgroup.subtree_control, e.g. systemd Delegate=yes) and no v1 cpu, "
                              "memory and pids hierarchies are mounted");
}

}  // namespace plng::node
