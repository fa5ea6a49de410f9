// Errors and kernel handles shared by every part of node/.
//
// Libraries in node/ never log: they throw SysError (errno + what was being
// done) and let the daemon or tool at the top decide what to say.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace plng::node {

// A failed system call: errno as the error code, plus what was being attempted
// ("mount overlay on /var/lib/sliverd/slivers/x/rootfs").
class SysError : public std::system_error {
 public:
  SysError(int err, const std::string& context)
      : std::system_error(err, std::generic_category(), context) {}
  int err() const { return code().value(); }
};

// Throws SysError for the current errno.
[[noreturn]] inline void throwErrno(const std::string& context) { throw SysError(errno, context); }

// A move-only file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace plng::node
