// plcctl as a function: argv in, exit code out. main() passes the real
// streams and environment; tests pass their own.
#pragma once

#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/client_config.h"

namespace plcctl {

// The options every command accepts.
std::vector<FlagSpec> globalFlags();

// Runs one command line (without the program name). Results go to `out`,
// diagnostics (errors, warnings, -v logs) to `err`. Returns the exit code:
// 0 success, 1 refused by PLC or a local failure, 2 usage error, 3 PLC
// unreachable.
int runPlcctl(std::span<const std::string> arguments, std::ostream& out, std::ostream& err,
              const EnvLookup& env);

}  // namespace plcctl
