#include "tests/support/node_image.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace plng::test {

std::filesystem::path busyboxImage(const std::filesystem::path& build_script,
                                   const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir.parent_path());
  std::filesystem::path lock = dir.string() + ".lock";
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + lock.string());
  ::flock(fd, LOCK_EX);
  std::string cmd = "'" + build_script.string() + "' busybox '" + dir.string() + "'";
  int rc = std::system(cmd.c_str());
  ::close(fd);
  if (rc != 0) throw std::runtime_error(cmd + " failed (status " + std::to_string(rc) + ")");
  return dir;
}

}  // namespace plng::test
