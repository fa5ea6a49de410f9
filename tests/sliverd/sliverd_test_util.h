// Small helpers shared by the sliverd tests.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "node/paths.h"
#include "sliverd/core/desired_state.h"
#include "tests/support/scratch_dir.h"

namespace plng::test {

// A scratch directory (ScratchDir) that also names a node's state and run
// directories below it.
class TempDir : public ScratchDir {
 public:
  TempDir() : ScratchDir("sliverd-test") {}

  plng::node::NodePaths nodePaths() const {
    plng::node::NodePaths p;
    p.state_dir = path() / "state";
    p.run_dir = path() / "run";
    return p;
  }
};

// The config of a sliverd run standalone by a root test in `dir` (no PLC to
// reach, no slice accounts, no storage volume, no watchdogs, a throwaway node
// key written there): the lines every such test shares; the test appends its own.
inline std::string standaloneSliverdConfig(const std::filesystem::path& dir,
                                           const std::filesystem::path& images_dir,
                                           const std::string& sliver_init) {
  std::ofstream(dir / "node.key") << std::string(64, 'a') << "\n";
  return "state_dir = " + (dir / "state").string() + "\n" + "run_dir = " + (dir / "run").string() +
         "\n" + "images_dir = " + images_dir.string() + "\n" + "sliver_init = " + sliver_init +
         "\n" + "node_key_file = " + (dir / "node.key").string() + "\n" +
         "hostname = node1.test\n"
         "listen = 127.0.0.1:0\n"
         "plc_address = 127.0.0.1:1\n"
         "slice_accounts = false\n"
         "storage_kind = none\n"
         "watchdog = false\n"
         "disk_watchdog = false\n"
         "disable_legacy_tiocsti = false\n";
}

// A desired sliver built the way DesiredState builds one.
inline plng::sliverd::DesiredSliver wanted(const std::string& slice, std::uint32_t xid,
                                           std::map<std::string, std::string> tags = {},
                                           std::int64_t expires_at = 0,
                                           std::vector<std::string> keys = {}) {
  return plng::sliverd::desiredFromTags(slice, xid, tags, std::move(keys), expires_at, "plc");
}

// Polls `condition` every 50 ms for up to `timeout`.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

}  // namespace plng::test
