#include "node/program.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/eintr.h"
#include "base/error.h"
#include "base/fd.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node {

int runProgram(const std::vector<std::string>& argv, std::string& output) {
  if (argv.empty()) throw SysError(EINVAL, "run: no program");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char path_env[] = "PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin";
  char lang_env[] = "LC_ALL=C";
  char* envp[] = {path_env, lang_env, nullptr};

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throwErrno("pipe for " + argv[0]);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  // Everything else goes, close-on-exec or not: a helper that outlives a killed
  // daemon must not keep its listening sockets alive.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // The daemon may block or catch signals; the program starts with defaults,
  // in a session of its own.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  // posix_spawn (vfork-like) is safe from a multi-threaded daemon.
  int err = ::posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) throw SysError(err, "run " + argv[0]);
  write_end.reset();
  char buf[4096];
  for (;;) {
    const ssize_t n = base::retryOnEintr([&] { return ::read(read_end.get(), buf, sizeof buf); });
    if (n <= 0) break;
    if (output.size() < 64 * 1024) output.append(buf, static_cast<std::size_t>(n));
  }
  int status = 0;
  if (base::retryOnEintr([&] { return ::waitpid(pid, &status, 0); }) < 0) {
    throwErrno("wait for " + argv[0]);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace plng::node
