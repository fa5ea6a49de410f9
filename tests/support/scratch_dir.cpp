#include "tests/support/scratch_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>

namespace plng::test {

ScratchDir::ScratchDir(std::string_view prefix, mode_t mode, const std::filesystem::path& parent) {
  std::string pattern = (parent / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  path_ = pattern;
  if (mode != 0700 && ::chmod(path_.c_str(), mode) != 0) {
    const int err = errno;
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
    throw std::system_error(err, std::generic_category(), "chmod " + pattern);
  }
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace plng::test
