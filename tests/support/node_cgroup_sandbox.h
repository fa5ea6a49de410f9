// A private cgroup subtree for one test, in every hierarchy.
//
// Tests never touch the host's cgroups: CgroupSandbox creates
// `plng-test-<pid>-<n>` beneath the test process's own cgroup in the cgroup2
// tree and in each mounted v1 hierarchy (CgroupRoots::ofProcess(getpid())) and
// hands out CgroupRoots pointing there, ready for makeCgroupDriver(). On a pure v2
// host it enables cpu, memory, pids and io in the sandbox's subtree_control where
// the parent already delegates them (it never changes directories above itself:
// see unifiedControllers()). The destructor kills every process left inside and
// removes the subtree depth-first; sandboxes left by a test that crashed (their
// pid is gone) are swept by the next one.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "node/cgroup.h"

namespace plng::test {

class CgroupSandbox {
 public:
  // Skips the test (requireRoot) when not root; throws SysError when a
  // directory cannot be created.
  CgroupSandbox();
  ~CgroupSandbox();
  CgroupSandbox(const CgroupSandbox&) = delete;
  CgroupSandbox& operator=(const CgroupSandbox&) = delete;

  const node::CgroupRoots& roots() const { return roots_; }
  // "plng-test-<pid>-<n>"
  const std::string& name() const { return name_; }
  // The controllers the sandbox's unified directory can use (its
  // cgroup.controllers); empty on a hybrid host, where they come from v1.
  std::vector<std::string> unifiedControllers() const;

 private:
  void removeAll();

  std::string name_;
  node::CgroupRoots roots_;
  std::vector<std::filesystem::path> created_;  // one per hierarchy, deduplicated
};

}  // namespace plng::test
