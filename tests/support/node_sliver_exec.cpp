#include "tests/support/node_sliver_exec.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

#include "base/eintr.h"
#include "base/unix_socket.h"
#include "node/launch.h"

namespace plng::test {
namespace {

constexpr int kEnterFailed = 125;
constexpr int kExecFailed = 127;

void writeAll(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = plng::base::retryOnEintr([&] { return ::write(fd, p, n); });
    if (w < 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void childMessage(int fd, const char* what) {
  const char* err = std::strerror(errno);  // static strings in glibc for known errnos
  writeAll(fd, "runInSliver: ", 13);
  writeAll(fd, what, std::strlen(what));
  writeAll(fd, ": ", 2);
  writeAll(fd, err, std::strlen(err));
  writeAll(fd, "\n", 1);
}

}  // namespace

SliverExecResult runInSliver(int pidfd, const std::vector<std::string>& argv,
                             const SliverExecOptions& options) {
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env = options.env;
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int out[2];
  int in[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "runInSliver: pipe");
  }
  // The command's seccomp listener, when the caller wants it.
  int listener_pair[2] = {-1, -1};
  const bool wants_listener = options.restricted && options.seccomp_listener;
  if (wants_listener &&
      ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, listener_pair) != 0) {
    throw std::system_error(errno, std::generic_category(), "runInSliver: socketpair");
  }
  const bool has_input = !options.input.empty();
  const node::SeccompProgram* seccomp = nullptr;
  node::CapabilityPlan capabilities;
  if (options.restricted) {
    seccomp = &node::sliverSeccompProgram(wants_listener ? node::RawSockets::kBrokered
                                                         : node::RawSockets::kKernel);
    capabilities = options.capabilities ? *options.capabilities : node::capabilityPlanFromTag("");
  }

  // The sliver's open-file limit (its init's), as every process of it has.
  rlimit nofile{RLIM_INFINITY, RLIM_INFINITY};
  {
    std::ifstream fdinfo("/proc/self/fdinfo/" + std::to_string(pidfd));
    for (std::string line; std::getline(fdinfo, line);) {
      if (line.rfind("Pid:", 0) == 0) {
        pid_t init = static_cast<pid_t>(std::stol(line.substr(4)));
        if (init > 0) nofile = node::nofileLimitOf(init);
      }
    }
  }

  pid_t helper = ::fork();
  if (helper < 0) {
    int err = errno;
    for (int fd : {out[0], out[1], in[0], in[1]}) ::close(fd);
    throw std::system_error(err, std::generic_category(), "runInSliver: fork");
  }
  if (helper == 0) {
    // Async-signal-safe from here on (the test process may have threads).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // Into the sliver's cgroup while still host root: once in the sliver's user
    // namespace the cgroup is not ours to write (clone3's CLONE_INTO_CGROUP
    // would fail with EACCES there). The command forked below inherits it.
    if (options.cgroup_fd >= 0) {
      int procs = ::openat(options.cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
      if (procs < 0 || ::write(procs, "0", 1) != 1) {
        childMessage(out[1], "join the sliver's cgroup");
        ::_exit(kEnterFailed);
      }
      ::close(procs);
    }
    if (options.join_cgroups) {
      try {
        options.join_cgroups();
      } catch (...) {
        errno = EIO;
        childMessage(out[1], "joining the sliver's cgroups");
        ::_exit(kEnterFailed);
      }
    }
    // A fork from a threaded test inherits every descriptor other threads had
    // open at that moment (their pipes included, close-on-exec or not): keep only
    // ours, or another runInSliver waiting for EOF on its pipe waits as long as
    // this command runs.
    {
      int keep[] = {pidfd, out[1], in[0], in[1], options.exec_fd, listener_pair[1]};
      std::sort(std::begin(keep), std::end(keep));
      unsigned next = 3;
      for (int fd : keep) {
        if (fd < static_cast<int>(next)) continue;
        if (static_cast<unsigned>(fd) > next) ::syscall(SYS_close_range, next, fd - 1u, 0u);
        next = static_cast<unsigned>(fd) + 1;
      }
      ::syscall(SYS_close_range, next, ~0u, 0u);
    }
    if (::setns(pidfd, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
                           CLONE_NEWCGROUP) != 0) {
      childMessage(out[1], "setns");
      ::_exit(kEnterFailed);
    }
    if (::setresgid(0, 0, 0) != 0 || ::setgroups(0, nullptr) != 0 || ::setresuid(0, 0, 0) != 0) {
      childMessage(out[1], "becoming root of the sliver");
      ::_exit(kEnterFailed);
    }
    pid_t cmd = ::fork();
    if (cmd < 0) {
      childMessage(out[1], "fork into the sliver");
      ::_exit(kEnterFailed);
    }
    if (cmd == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::setsid();
      int stdin_fd = has_input ? in[0] : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (stdin_fd < 0 || ::dup2(stdin_fd, 0) != 0 || ::dup2(out[1], 1) != 1 ||
          ::dup2(out[1], 2) != 2 || ::chdir("/") != 0) {
        childMessage(out[1], "stdio");
        ::_exit(kExecFailed);
      }
      rlimit limit{};
      if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_max = std::min(limit.rlim_max, nofile.rlim_max);
        limit.rlim_cur = std::min({limit.rlim_cur, nofile.rlim_cur, limit.rlim_max});
        ::setrlimit(RLIMIT_NOFILE, &limit);
      }
      ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
      if (wants_listener) {
        const int listener = node::applySeccompWithListener(*seccomp);
        if (listener < 0) {
          errno = -listener;
          childMessage(out[1], "seccomp with a listener");
          ::_exit(kExecFailed);
        }
        try {
          const int fds[] = {listener};
          plng::base::sendFds(listener_pair[1], "l", fds, "handing over the seccomp listener");
        } catch (const std::exception&) {
          childMessage(out[1], "handing over the seccomp listener");
          ::_exit(kExecFailed);
        }
        ::close(listener);
        ::close(listener_pair[1]);
        if (node::applyCapabilityPlan(capabilities) != 0) {
          childMessage(out[1], "capabilities");
          ::_exit(kExecFailed);
        }
      } else if (seccomp != nullptr && (node::applySeccomp(*seccomp) != 0 ||
                                        node::applyCapabilityPlan(capabilities) != 0)) {
        childMessage(out[1], "seccomp or capabilities");
        ::_exit(kExecFailed);
      }
      if (options.exec_fd >= 0) {
        ::syscall(SYS_execveat, options.exec_fd, "", cargv.data(), cenv.data(), AT_EMPTY_PATH);
      } else {
        ::execve(cargv[0], cargv.data(), cenv.data());
      }
      childMessage(2, "exec");
      ::_exit(kExecFailed);
    }
    ::close(out[1]);
    ::close(in[0]);
    ::close(in[1]);
    if (listener_pair[1] >= 0) ::close(listener_pair[1]);
    int status = 0;
    plng::base::retryOnEintr([&] { return ::waitpid(cmd, &status, 0); });
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }

  ::close(out[1]);
  ::close(in[0]);
  if (wants_listener) {
    ::close(listener_pair[1]);
    plng::base::UniqueFd pair(listener_pair[0]);
    auto message = plng::base::receiveFds(pair.get(), 1, 1, "runInSliver: seccomp listener");
    if (message.fds.size() == 1) options.seccomp_listener(std::move(message.fds[0]));
  }
  if (has_input) {
    ::signal(SIGPIPE, SIG_IGN);
    writeAll(in[1], options.input.data(), options.input.size());
  }
  ::close(in[1]);
  SliverExecResult result;
  char buf[4096];
  for (;;) {
    const ssize_t n = plng::base::retryOnEintr([&] { return ::read(out[0], buf, sizeof buf); });
    if (n <= 0) break;
    result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  plng::base::retryOnEintr([&] { return ::waitpid(helper, &status, 0); });
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

SliverExecResult shInSliver(int pidfd, const std::string& script,
                            const SliverExecOptions& options) {
  return runInSliver(pidfd, {"/bin/sh", "-c", script}, options);
}

std::map<std::string, std::string> keyValues(const std::string& output) {
  std::map<std::string, std::string> values;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
}

}  // namespace plng::test
