// How plcctl fails: the error types its layers throw and the exit codes that
// main() turns them into. Scripts rely on the codes, so they never change.
#pragma once

#include <stdexcept>
#include <string>

namespace plcctl {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // PLC refused the call, or a local file could not be used
  kExitUsage = 2,        // plcctl was invoked wrongly; nothing was sent
  kExitUnreachable = 3,  // no connection to PLC
};

// A mistake on the command line (unknown option, missing argument, malformed
// value). Reported with a pointer to the command's --help.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Something on this machine failed: a file that cannot be read or written, a
// config file that does not parse, no token to authenticate with.
class LocalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace plcctl
