// A test's private scratch directory, removed with everything in it.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

namespace plng::test {

class ScratchDir {
 public:
  // Makes <parent>/<prefix>-XXXXXX (mkdtemp) with permissions `mode`; `parent`
  // defaults to $TMPDIR or /tmp. A mode wider than mkdtemp's 0700 lets other
  // users in: a sliver's root or sshd's AuthorizedKeysCommandUser reaching a
  // file below, or PostgreSQL run as `postgres`. Throws std::system_error.
  explicit ScratchDir(std::string_view prefix, mode_t mode = 0700,
                      const std::filesystem::path& parent = std::filesystem::temp_directory_path());
  ~ScratchDir();  // removes the tree; a failure to is ignored
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace plng::test
