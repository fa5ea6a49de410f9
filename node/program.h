// Running a host program for the node (mkfs.btrfs, btrfs, ...) from a daemon
// that may have many threads, listening sockets and a terminal.
#pragma once

#include <string>
#include <vector>

namespace plng::node {

// Runs `argv` (argv[0] an absolute path; no shell) and returns its exit status
// (128 + n when killed by signal n); its stdout and stderr are collected into
// `output` (at most 64 KiB kept). The program gets only what it needs: stdin
// /dev/null, stdout and stderr the pipe, no other descriptor of the caller's
// (not even one lacking close-on-exec, as Boost.Asio's sockets do), a session
// of its own (no controlling terminal), default signal actions and an empty
// mask, PATH and LC_ALL=C. Throws SysError when it cannot be started.
int runProgram(const std::vector<std::string>& argv, std::string& output);

}  // namespace plng::node
