// sliver-init: PID 1 inside every sliver.
//
//   sliver-init [--stop-grace-ms N] [--initscript PATH] [--log PATH]
//
// At every start it runs the slice's initscript (/etc/plng/initscript, written
// by sliverd into the sliver's upper layer) with /bin/sh, in the background.
// Its own messages and the initscript's output go to /var/log/sliver-init.log
// inside the sliver (truncated at each start): a file under the sliver's disk
// quota, never a host file the sliver could grow without bound (root inside
// could always get at PID 1's descriptors).
// Then it reaps orphans — every process of the sliver whose parent died is
// re-parented to it — until asked to stop: on SIGTERM (or SIGINT, SIGPWR) it
// sends SIGTERM to every process of the sliver, waits up to the grace period
// (default 3 s) for them to exit, SIGKILLs the rest, reaps them and exits 0.
//
// It holds the sliver's seccomp listener (sliverd's raw socket broker answers
// the sliver's raw socket() calls there) and never closes it or passes it on.
//
// Built static (no shared libraries from the host reach into the image) and
// kept small: no iostreams, no heap on the main path.
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "base/eintr.h"

extern char** environ;

namespace {

constexpr const char* kDefaultInitscript = "/etc/plng/initscript";
constexpr const char* kDefaultLog = "/var/log/sliver-init.log";
constexpr long kDefaultGraceMs = 3000;

// PID 1 of a pid namespace gets signals from outside only for those it has a
// handler for (SIG_DFL ones are dropped), so each handled signal gets one that
// does nothing; they are blocked and collected with sigtimedwait.
void ignoreHandler(int) {}

void logMessage(const char* what, const char* detail) {
  std::fprintf(stderr, "sliver-init: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  std::fflush(stderr);
}

// Reaps every exited child; returns false once there are no children left.
bool reapAll() {
  for (;;) {
    int status;
    const pid_t pid = plng::base::retryOnEintr([&] { return ::waitpid(-1, &status, WNOHANG); });
    if (pid > 0) continue;
    if (pid == 0) return true;
    return errno != ECHILD;
  }
}

void runInitscript(const char* path) {
  if (::access(path, F_OK) != 0) return;
  pid_t pid = ::fork();
  if (pid < 0) {
    logMessage("fork for the initscript", std::strerror(errno));
    return;
  }
  if (pid == 0) {
    // Default actions first, then an empty mask (not the one sliver-init was
    // exec'd with: sliverd blocks the signals handled here, so that none sent
    // before the handlers exist is lost). In this order a SIGTERM already
    // pending (a stop right after start) ends the child instead of reaching
    // sliver-init's do-nothing handler.
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPWR}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::setsid();
    if (::chdir("/") != 0) ::_exit(127);
    char* const argv[] = {const_cast<char*>("sh"), const_cast<char*>(path), nullptr};
    ::execve("/bin/sh", argv, environ);
    logMessage("exec /bin/sh for the initscript", std::strerror(errno));
    ::_exit(127);
  }
}

// Points stdout and stderr at `path` (creating its directory), stdin at
// /dev/null. Keeps the inherited ones if the file cannot be opened.
void redirectOutput(const char* path) {
  char dir[256];
  std::size_t len = std::strlen(path);
  if (len >= sizeof dir) return;
  std::memcpy(dir, path, len + 1);
  for (char* p = dir + 1; *p != '\0'; ++p) {
    if (*p != '/') continue;
    *p = '\0';
    ::mkdir(dir, 0755);  // EEXIST is fine; a real failure shows at open
    *p = '/';
  }
  int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    logMessage("open log", std::strerror(errno));
    return;
  }
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
  ::close(fd);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::close(null_fd);
  }
}

long msUntil(const timespec& deadline) {
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return (deadline.tv_sec - now.tv_sec) * 1000 + (deadline.tv_nsec - now.tv_nsec) / 1000000;
}

[[noreturn]] void stopSliver(const sigset_t& waited, long grace_ms) {
  ::kill(-1, SIGTERM);  // every process of the pid namespace but this one
  timespec deadline;
  ::clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += grace_ms / 1000;
  deadline.tv_nsec += (grace_ms % 1000) * 1000000;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000;
  }
  while (reapAll()) {
    long left = msUntil(deadline);
    if (left <= 0) break;
    timespec wait{left / 1000, (left % 1000) * 1000000};
    ::sigtimedwait(&waited, nullptr, &wait);
  }
  ::kill(-1, SIGKILL);
  while (reapAll()) {
    timespec wait{0, 50 * 1000000};
    ::sigtimedwait(&waited, nullptr, &wait);
  }
  std::exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  // What sliverd left open for us, the seccomp filter's listener among them,
  // stays ours: kept open for the sliver's lifetime (sliverd takes a copy from
  // here after every restart, docs/vnet.md "Raw sockets") and never passed to a
  // child. Only the flag changes, so nothing is closed.
  ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
  long grace_ms = kDefaultGraceMs;
  const char* initscript = kDefaultInitscript;
  const char* log = kDefaultLog;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--stop-grace-ms") == 0 && i + 1 < argc) {
      grace_ms = std::strtol(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--initscript") == 0 && i + 1 < argc) {
      initscript = argv[++i];
    } else if (std::strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
      log = argv[++i];
    } else {
      logMessage("unknown argument", argv[i]);
      return 2;
    }
  }

  sigset_t waited;
  sigemptyset(&waited);
  struct sigaction sa {};
  sa.sa_handler = ignoreHandler;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPWR}) {
    sigaddset(&waited, sig);
    ::sigaction(sig, &sa, nullptr);
  }
  ::sigprocmask(SIG_BLOCK, &waited, nullptr);

  if (::chdir("/") != 0) logMessage("chdir /", std::strerror(errno));
  redirectOutput(log);
  runInitscript(initscript);

  for (;;) {
    siginfo_t info;
    int sig = ::sigwaitinfo(&waited, &info);
    if (sig < 0) continue;
    switch (sig) {
      case SIGCHLD:
        reapAll();
        break;
      case SIGTERM:
      case SIGINT:
      case SIGPWR:
        stopSliver(waited, grace_ms);
      default:  // SIGHUP: nothing to reload
        break;
    }
  }
}
