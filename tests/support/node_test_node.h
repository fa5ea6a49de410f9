// A node's sliver machinery in temporary places, for root tests that need real
// slivers: cgroups beneath the test's own (CgroupSandbox), state and run
// directories, a 1 GiB btrfs volume for upper layers, the busybox image,
// sliver-init. Torn down in reverse order whatever happened.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "node/cgroup.h"
#include "node/paths.h"
#include "node/sliver_runtime.h"
#include "node/storage.h"
#include "tests/support/node_cgroup_sandbox.h"
#include "tests/support/scratch_dir.h"

namespace plng::test {

// Where a test's build put what a node needs (compile definitions of the test).
struct TestNodeFiles {
  std::filesystem::path build_image_script;  // deploy/images/build-image.sh
  std::filesystem::path images_dir;          // cache of built images (build tree)
  std::filesystem::path sliver_init;         // the built sliver-init
};

class TestNode {
 public:
  // `prefix` names the temporary directory (/tmp/<prefix>-XXXXXX). With
  // `traversable`, it is mode 0711 so unprivileged readers (sshd's
  // AuthorizedKeysCommandUser) can walk down to files inside. `volume_bytes`:
  // the size of the btrfs volume holding the slivers' upper layers (less where
  // /tmp has not that much free: 80% of what it has).
  TestNode(const std::string& prefix, const TestNodeFiles& files, bool traversable = false,
           std::uint64_t volume_bytes = 1ull << 30);
  ~TestNode();
  TestNode(const TestNode&) = delete;
  TestNode& operator=(const TestNode&) = delete;

  plng::node::LinuxSliverRuntime runtime() {
    return plng::node::LinuxSliverRuntime(paths, *cgroups, *storage, options);
  }

  CgroupSandbox sandbox;  // first: skips when not root
  ScratchDir scratch;     // removed last, after the volume is unmounted
  std::filesystem::path dir;
  plng::node::NodePaths paths;
  plng::node::StorageOptions storage_options;
  std::unique_ptr<plng::node::CgroupDriver> cgroups;
  std::unique_ptr<plng::node::SliverStorage> storage;
  plng::node::SliverRuntimeOptions options;
};

}  // namespace plng::test
