// Small helpers shared by the sliverd tests.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>

#include "node/paths.h"
#include "sliverd/core/desired_state.h"

namespace plng::test {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/sliverd-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

  plng::node::NodePaths nodePaths() const {
    plng::node::NodePaths p;
    p.state_dir = path_ / "state";
    p.run_dir = path_ / "run";
    return p;
  }

 private:
  std::filesystem::path path_;
};

// A desired sliver built the way DesiredState builds one.
inline plng::sliverd::DesiredSliver wanted(const std::string& slice, std::uint32_t xid,
                                           std::map<std::string, std::string> tags = {},
                                           std::int64_t expires_at = 0,
                                           std::vector<std::string> keys = {}) {
  return plng::sliverd::desiredFromTags(slice, xid, tags, std::move(keys), expires_at, "plc");
}

}  // namespace plng::test
