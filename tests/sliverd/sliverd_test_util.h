// Small helpers shared by the sliverd tests.
#pragma once

#include <chrono>
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
