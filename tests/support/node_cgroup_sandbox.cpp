#include "tests/support/node_cgroup_sandbox.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>
#include <string_view>

#include "node/cgroup_fs.h"
#include "tests/support/skip.h"

namespace plng::test {

namespace fs = std::filesystem;
namespace cgfs = node::cgroupfs;

namespace {

std::atomic<int> sandbox_counter{0};

// Kills what is left in `dir` and beneath, then removes it depth-first.
void removeTree(const fs::path& parent, const std::string& name) {
  auto top = cgfs::openDir(parent);
  auto dir = cgfs::openChild(top, name);
  if (!dir) return;
  for (const auto& child : cgfs::subdirs(*dir)) removeTree(dir->path, child);
  cgfs::killUntilEmpty({&*dir}, &*dir, std::chrono::seconds(5));
  // A memory cgroup may stay busy for a moment after its last process died.
  for (int attempt = 0;; ++attempt) {
    try {
      cgfs::removeChild(top, name);
      return;
    } catch (const base::SysError& e) {
      if (e.err() != EBUSY || attempt >= 200) throw;
      ::usleep(10'000);
    }
  }
}

// The test pid in a sandbox name "plng-test-<pid>-<n>"; 0 for any other name.
pid_t sandboxOwner(std::string_view name) {
  constexpr std::string_view kPrefix = "plng-test-";
  if (name.substr(0, kPrefix.size()) != kPrefix) return 0;
  name.remove_prefix(kPrefix.size());
  auto dash = name.find('-');
  if (dash == std::string_view::npos || dash + 1 == name.size()) return 0;
  auto digits = [](std::string_view s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  if (!digits(name.substr(0, dash)) || !digits(name.substr(dash + 1))) return 0;
  long pid = 0;
  auto [end, ec] = std::from_chars(name.data(), name.data() + dash, pid);
  return ec == std::errc() && pid > 0 && pid <= std::numeric_limits<pid_t>::max()
             ? static_cast<pid_t>(pid)
             : 0;
}

// Removes sandboxes of test processes that no longer exist (a crashed test).
void sweepStale(const fs::path& parent) {
  auto dir = cgfs::openDir(parent);
  for (const auto& name : cgfs::subdirs(dir)) {
    pid_t pid = sandboxOwner(name);
    if (pid == 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    try {
      removeTree(parent, name);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "CgroupSandbox: could not sweep stale %s: %s\n", (parent / name).c_str(),
                   e.what());
    }
  }
}

}  // namespace

CgroupSandbox::CgroupSandbox() {
  requireRoot();
  auto own = node::CgroupRoots::ofProcess(::getpid());
  name_ = "plng-test-" + std::to_string(::getpid()) + "-" + std::to_string(sandbox_counter++);

  auto create = [&](const fs::path& parent) {
    fs::path dir = parent / name_;
    if (std::find(created_.begin(), created_.end(), dir) != created_.end()) return dir;
    sweepStale(parent);
    auto parent_dir = cgfs::openDir(parent);
    cgfs::makeChild(parent_dir, name_);
    created_.push_back(dir);
    // A v1 cpuset starts with no CPUs and no memory nodes unless the parent has
    // clone_children set; copy the parent's so a process can be placed here. (A v2
    // root cgroup has no cpuset.cpus, and an empty one in v2 means "the parent's".)
    auto child = cgfs::openDir(dir);
    for (const char* knob : {"cpuset.cpus", "cpuset.mems"})
      if (cgfs::hasFile(child, knob) && cgfs::hasFile(parent_dir, knob) &&
          cgfs::readKnob(child, knob).empty())
        cgfs::writeKnob(child, knob, cgfs::readKnob(parent_dir, knob));
    return dir;
  };

  try {
    roots_.unified = create(own.unified);
    for (const auto& [controller, parent] : own.v1) roots_.v1[controller] = create(parent);

    auto unified = cgfs::openDir(roots_.unified);
    std::string enable;
    for (const auto& c : unifiedControllers())
      if (c == "cpu" || c == "memory" || c == "pids" || c == "io")
        enable += (enable.empty() ? "+" : " +") + c;
    if (!enable.empty()) cgfs::writeKnob(unified, "cgroup.subtree_control", enable);
  } catch (...) {
    removeAll();
    throw;
  }
}

CgroupSandbox::~CgroupSandbox() { removeAll(); }

void CgroupSandbox::removeAll() {
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
    try {
      removeTree(it->parent_path(), name_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "CgroupSandbox: could not remove %s: %s\n", it->c_str(), e.what());
    }
  }
  created_.clear();
}

std::vector<std::string> CgroupSandbox::unifiedControllers() const {
  auto dir = cgfs::openDir(roots_.unified);
  return cgfs::words(cgfs::readKnob(dir, "cgroup.controllers"));
}

}  // namespace plng::test
