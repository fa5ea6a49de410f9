#include "tests/support/node_test_node.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>

#include "tests/support/node_image.h"

namespace plng::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TestNode::TestNode(const std::string& prefix, const TestNodeFiles& files, bool traversable,
                   std::uint64_t volume_bytes)
    : scratch(prefix, traversable ? 0711 : 0700, "/tmp"), dir(scratch.path()) {
  paths.state_dir = dir / "state";
  paths.run_dir = dir / "run";
  fs::path image = busyboxImage(files.build_image_script, files.images_dir / "busybox");
  paths.images_dir = image.parent_path();
  storage_options.state_dir = paths.state_dir;
  // sliverd refuses a volume larger than the space free (it would let slivers
  // fill the host's disk): where /tmp is small (the v2vm guest's is a ~1 GiB
  // tmpfs) the volume is what fits.
  struct statvfs st {};
  REQUIRE(::statvfs(dir.c_str(), &st) == 0);
  const std::uint64_t fits = std::uint64_t(st.f_bavail) * st.f_frsize / 100 * 80 >> 20 << 20;
  storage_options.volume_bytes = std::min(volume_bytes, fits);
  cgroups = plng::node::makeCgroupDriver(sandbox.roots());
  cgroups->setUp(0);
  storage = plng::node::openSliverStorage(storage_options);
  options.sliver_init = files.sliver_init;
  options.default_vref = "busybox";
  options.init_stop_grace = 500ms;
  options.destroy_grace = 1000ms;
}

TestNode::~TestNode() {
  // Slivers die with their cgroups (the sandbox kills what is left); the volume
  // can go once no overlay uses it.
  if (cgroups) {
    for (const auto& name : cgroups->list()) {
      try {
        cgroups->killAll(name, 5s);
      } catch (...) {
      }
    }
  }
  for (int i = 0; i < 50; ++i) {  // reap our sliver-inits
    if (::waitpid(-1, nullptr, WNOHANG) <= 0) break;
  }
  storage.reset();
  try {
    plng::node::unmountSliverStorage(storage_options);
  } catch (...) {
  }
}

}  // namespace plng::test
