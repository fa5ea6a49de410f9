// Running a shell command from a test and taking what it printed.
#pragma once

#include <string>

namespace plng::test {

// Runs `command` with /bin/sh and returns its standard output. Throws
// std::runtime_error naming the command, its exit status and its output when
// it does not exit 0.
std::string shellOutput(const std::string& command);

}  // namespace plng::test
