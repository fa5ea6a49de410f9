// CgroupSandbox: a private subtree in every hierarchy, gone afterwards with the
// processes left in it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "node/cgroup.h"
#include "tests/support/node_cgroup_sandbox.h"
#include "tests/support/skip.h"

namespace fs = std::filesystem;
using plng::node::CgroupRoots;
using plng::test::CgroupSandbox;

TEST_CASE("CgroupSandbox lives beneath the process's own cgroups and cleans up", "[root]") {
  plng::test::requireRoot();
  auto own = CgroupRoots::ofProcess(::getpid());
  fs::path unified;
  pid_t child = -1;
  {
    CgroupSandbox sandbox;
    const auto& roots = sandbox.roots();
    unified = roots.unified;
    CHECK(roots.unified == own.unified / sandbox.name());
    CHECK(fs::is_regular_file(roots.unified / "cgroup.procs"));
    REQUIRE(roots.v1.size() == own.v1.size());
    for (const auto& [controller, dir] : roots.v1) {
      CHECK(dir == own.v1.at(controller) / sandbox.name());
      CHECK(fs::is_directory(dir));
    }
    // A process left inside a nested cgroup is killed by the destructor.
    fs::create_directory(roots.unified / "nested");
    child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::pause();
      ::_exit(0);
    }
    std::ofstream(roots.unified / "nested" / "cgroup.procs") << child << "\n";
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK_FALSE(fs::exists(unified));
}

TEST_CASE("CgroupRoots::ofProcess resolves every hierarchy to an existing directory", "[root]") {
  auto roots = CgroupRoots::ofProcess(::getpid());
  CHECK(fs::is_regular_file(roots.unified / "cgroup.procs"));
  for (const auto& [controller, dir] : roots.v1) {
    INFO(controller);
    CHECK(fs::is_regular_file(dir / "cgroup.procs"));
  }
}
