// The one error type of the project's own code: a failed system call (or a
// condition reported like one) with errno and what was being attempted.
//
// Libraries never log: they throw SysError and let the daemon or tool at the
// top decide what to say (systemd's rule; crun's error objects).
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace plng::base {

// errno as the error code, plus what was being attempted
// ("mount overlay on /var/lib/sliverd/slivers/x/rootfs").
class SysError : public std::system_error {
 public:
  SysError(int err, const std::string& context)
      : std::system_error(err, std::generic_category(), context) {}
  int err() const { return code().value(); }
};

// Throws SysError for the current errno.
[[noreturn]] inline void throwErrno(const std::string& context) { throw SysError(errno, context); }

}  // namespace plng::base
