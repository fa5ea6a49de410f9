// Child processes for the test harness: fork/exec from prepared argv vectors, with
// an RAII guard that kills and reaps.
//
// Test binaries are multi-threaded (gRPC starts threads), so everything the child
// needs is prepared before fork() and the child only makes async-signal-safe calls
// (setgroups/setgid/setuid, prctl, dup2, chdir, execve, _exit).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"

namespace plng::test {

// The identity a child switches to before exec (the `postgres` user when the
// test runs as root, since PostgreSQL refuses to run as root).
struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  // Complete environment of the child; nullopt inherits the parent's.
  std::optional<std::vector<std::string>> env;
  int stdinFd = -1;   // -1: /dev/null
  int outputFd = -1;  // stdout and stderr; -1: /dev/null
  std::optional<RunAs> runAs;
  std::filesystem::path workingDir;  // empty: unchanged
  // Signal the child receives when the thread that spawned it dies (so a crashed
  // test does not leave servers behind); 0 for none.
  int parentDeathSignal = 0;
  // Runs the child in a session of its own, out of reach of a terminal's ^C.
  bool newSession = false;
};

// A running (or exited but not yet reaped) child. Move-only; the destructor sends
// SIGKILL if it still runs and reaps it.
class ChildProcess {
 public:
  // Throws std::system_error when fork or exec fails (exec errors come back
  // through a close-on-exec pipe, so a missing binary is reported here).
  static ChildProcess spawn(const SpawnOptions& options);

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // True while spawned and not yet reaped.
  bool valid() const { return pid_ > 0 && !status_; }
  // Reaps the child if it has exited; true while it still runs.
  bool running();
  // Waits up to `timeout` for the child to exit; its wait status, or nullopt if it
  // still runs. After it returns a status the child is reaped.
  std::optional<int> waitFor(std::chrono::milliseconds timeout);
  int wait();
  void signal(int sig) const;
  // Sends `sig`, waits `grace`, then SIGKILLs; returns the wait status.
  int terminate(int sig, std::chrono::milliseconds grace);
  // Gives up ownership: the child is neither killed nor reaped by this object.
  void detach() { pid_ = -1; }
  // The wait status of the reaped child, if it was reaped.
  std::optional<int> exitStatus() const { return status_; }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  void killAndReap() noexcept;

  pid_t pid_ = -1;
  std::optional<int> status_;
};

// "exited with code 3", "killed by signal 9 (Killed)".
std::string describeWaitStatus(int status);

// The last `maxBytes` bytes of a file ("" if it cannot be read).
std::string fileTail(const std::filesystem::path& path, std::size_t maxBytes = 4000);

// The parent's environment minus variables whose names start with one of `dropPrefixes`.
std::vector<std::string> currentEnvironment(const std::vector<std::string>& dropPrefixes = {});

// This process's scratch directory, plng-test-XXXXXX (mode 0711) under
// $PLNG_TEST_TMPDIR, else $TMPDIR, else /dev/shm when it is a tmpfs, else /tmp; /tmp
// too when the choice is not searchable by everyone (the `postgres` user must reach
// into it). Created on first call. Temporary server directories and logs go there.
// A watchdog process removes it once this process has exited, however it exited,
// after waiting (up to 30 s) for the PostgreSQL servers inside to shut down.
const std::filesystem::path& processScratchDir();

// A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0 and
// released). Another process may take it before it is used: callers retry on a
// bind failure.
int pickFreePort();

}  // namespace plng::test
