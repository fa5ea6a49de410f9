// sliver-enter: the login shell of slice accounts. `ssh <slice>@<node>` runs it
// (sshd runs the login shell bare for an interactive login, or as
// `sliver-enter -c "<command>"`), and it starts a login inside that slice's
// running sliver as the sliver's root, like PlanetLab's vsh.
//
// The login is started by the sliver's own sliver-init (sliverd/init/
// login_request.h): a child of sliver-init has everything every process of the
// sliver has — namespaces, cgroups, seccomp filter (whose listener sliverd's
// raw socket broker already serves), bounding set, limits and the sliver's one
// Landlock domain, so that it reaches the sliver's abstract unix sockets and
// the sliver's processes reach its (a login entering with setns would be in a
// domain of its own, or none). sliver-enter only asks and relays.
//
// Installed setuid root (mode 4755): the sliver's login socket is host root's
// (mode 0600). Hence, before anything is trusted:
//   - the slice is the account name of the *real* uid, never an argument or the
//     environment, and the account must carry the slice tag (slice_accounts.h);
//   - the config, the sliver's init record and its login socket must be root's
//     (slice_login.h); the environment is only read when not setuid (tests);
//   - inherited descriptors beyond stdio are closed and the process is not
//     dumpable; host root is given up as soon as the socket is connected.
// Sequence: read <run_dir>/slivers/<slice>.init (pid, start_time), pidfd_open
// the pid and check its start time (a reused pid is someone else), connect to
// <run_dir>/slivers/<slice>.logins, drop to the caller's ids, give up the
// controlling terminal (the login's shell takes it as its own), send the
// request with stdin, stdout and stderr; then relay SIGHUP, SIGTERM, SIGINT and
// SIGQUIT to the login and exit with its status (or die of its signal).
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/proc.h"
#include "base/unix_socket.h"
#include "node/kvfile.h"
#include "node/sliver_name.h"
#include "sliverd/init/login_request.h"
#include "sliverd/login/slice_accounts.h"
#include "sliverd/login/slice_login.h"

namespace {
namespace fs = std::filesystem;
namespace logins = plng::sliverd::logins;
using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

constexpr const char* kConfigEnv = "PLNG_SLIVER_ENTER_CONF";

// An error the user sees as "sliver-enter: <message>".
class EnterError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string notRunning(const std::string& slice, const std::string& why) {
  return "sliver " + slice + " is not running on this node (" + why +
         "; start it with `plcctl slice nodes add " + slice +
         " <node>` at PLC, or through this node's sliverd)";
}

// A running sliver without a login socket: started by a sliverd from before
// logins went through sliver-init (or stopping right now).
std::string noLoginSocket(const std::string& slice, const fs::path& path) {
  return "sliver " + slice + " takes no logins: " + path.string() +
         " is missing (a sliver started by an older sliverd needs a restart)";
}

// Checks that the sliver-init named by the slice's record is that very
// process (pidfd + start time), i.e. that the sliver runs.
void requireSliverInit(const std::string& slice, const plng::node::KvMap& record) {
  auto pid_it = record.find("pid");
  auto start_it = record.find("start_time");
  if (pid_it == record.end() || start_it == record.end()) {
    throw EnterError("init record of sliver " + slice + " lacks pid= or start_time=");
  }
  pid_t pid = 0;
  try {
    pid = static_cast<pid_t>(std::stol(pid_it->second));
  } catch (const std::exception&) {
    throw EnterError("init record of sliver " + slice + " has a malformed pid");
  }
  if (pid <= 1) throw EnterError("init record of sliver " + slice + " has a bad pid");
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    if (errno == ESRCH) throw EnterError(notRunning(slice, "its sliver-init has exited"));
    throwErrno("pidfd_open " + std::to_string(pid));
  }
  // The pidfd pins the process we opened; a matching start time proves it is
  // the one the record describes and not a later process that got its pid.
  std::optional<plng::base::ProcStat> stat;
  try {
    stat = plng::base::readProcStat(pid);
  } catch (const SysError&) {
  }
  if (!stat || std::to_string(stat->start_time) != start_it->second ||
      ::syscall(SYS_pidfd_send_signal, pidfd.get(), 0, nullptr, 0) != 0) {
    throw EnterError(notRunning(slice, "its sliver-init has exited"));
  }
}

UniqueFd connectLoginSocket(const std::string& slice, const fs::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof address.sun_path) {
    throw EnterError("the login socket path " + path.string() + " is too long");
  }
  std::memcpy(address.sun_path, path.c_str(), path.string().size() + 1);
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock) throwErrno("socket");
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    if (errno == ENOENT) throw EnterError(noLoginSocket(slice, path));
    if (errno == ECONNREFUSED) throw EnterError(notRunning(slice, "its sliver-init has exited"));
    throwErrno("connect " + path.string());
  }
  return sock;
}

// A value from sshd's environment, passed on only when it is short and made
// of harmless characters.
std::optional<std::string> saneEnv(const char* name, const char* allowed) {
  const char* value = std::getenv(name);
  if (!value || std::strlen(value) > 128) return std::nullopt;
  std::string text(value);
  for (char c : text) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr(allowed, c)) {
      return std::nullopt;
    }
  }
  return text;
}

// Gives up the controlling terminal, so that the login's shell can make it its
// own (a terminal belongs to one session). Only when this process leads the
// terminal's session, as under sshd: the kernel then sends SIGHUP to the
// foreground group (this process), ignored meanwhile.
void releaseTerminal() {
  if (!::isatty(STDIN_FILENO) || ::tcgetsid(STDIN_FILENO) != ::getpid()) return;
  struct sigaction ignore {
  }, previous{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGHUP, &ignore, &previous);
  ::sigaction(SIGCONT, &ignore, nullptr);
  if (::ioctl(STDIN_FILENO, TIOCNOTTY) != 0) throwErrno("giving up the terminal");
  ::sigaction(SIGHUP, &previous, nullptr);
  ::signal(SIGCONT, SIG_DFL);
}

// Relays signals until sliver-init reports the login's end; returns its exit
// code or dies of its signal.
int relayUntilExit(const std::string& slice, int connection, int signals) {
  for (;;) {
    pollfd fds[2] = {{signals, POLLIN, 0}, {connection, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throwErrno("poll");
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo info{};
      while (::read(signals, &info, sizeof info) == sizeof info) {
        const char message[2] = {logins::kSignal, static_cast<char>(info.ssi_signo)};
        ssize_t ignored = ::send(connection, message, sizeof message, MSG_NOSIGNAL);
        (void)ignored;
      }
    }
    if (fds[1].revents == 0) continue;
    char message[logins::kExitedSize + 1];
    const ssize_t n = ::recv(connection, message, sizeof message, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(logins::kExitedSize) || message[0] != logins::kExited) {
      throw EnterError("sliver " + slice + " stopped during the login");
    }
    std::int32_t status = 0;
    std::memcpy(&status, message + 1, sizeof status);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (!WIFSIGNALED(status)) return 1;
    // Die of the same signal, so sshd reports it to the client.
    const int term = WTERMSIG(status);
    ::signal(term, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, term);
    ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
    ::raise(term);
    return 128 + term;
  }
}

int run(int argc, char** argv) {
  // Nothing inherited from sshd besides stdio may reach the sliver.
  ::syscall(SYS_close_range, 3u, ~0u, 0u);
  ::prctl(PR_SET_DUMPABLE, 0);
  ::umask(022);
  const bool setuid_mode = ::getauxval(AT_SECURE) != 0;

  std::optional<std::string> command;
  if (argc == 3 && std::strcmp(argv[1], "-c") == 0) {
    command = argv[2];
  } else if (argc != 1) {
    throw EnterError("usage: sliver-enter [-c command] (the login shell of slice accounts)");
  }

  const uid_t uid = ::getuid();
  struct passwd* pw = ::getpwuid(uid);
  if (!pw || !plng::sliverd::isSliceAccountGecos(pw->pw_gecos ? pw->pw_gecos : "") ||
      !plng::node::isValidSliverName(pw->pw_name)) {
    throw EnterError("uid " + std::to_string(uid) +
                     " is not a PlanetLab NG slice account; sliver-enter is the login shell of "
                     "slice accounts");
  }
  const std::string slice = pw->pw_name;

  plng::sliverd::SliceLoginConfig config;
  const char* config_env = setuid_mode ? nullptr : std::getenv(kConfigEnv);
  if (config_env && *config_env) {
    config = plng::sliverd::readSliceLoginConfig(config_env);
  } else {
    config = plng::sliverd::findSliceLoginConfig(fs::read_symlink("/proc/self/exe"), setuid_mode);
  }

  fs::path record_path = config.paths.sliverInit(slice);
  plng::node::KvMap record;
  try {
    if (setuid_mode) plng::sliverd::requireRootOwnedPath(record_path);
    record = plng::node::readKvFile(record_path);
  } catch (const SysError& e) {
    if (e.err() == ENOENT) throw EnterError(notRunning(slice, "no " + record_path.string()));
    throw;
  }
  requireSliverInit(slice, record);

  const fs::path socket_path = config.paths.sliverLogins(slice);
  if (setuid_mode) {
    try {
      plng::sliverd::requireRootOwnedPath(socket_path);
    } catch (const SysError& e) {
      if (e.err() == ENOENT) throw EnterError(noLoginSocket(slice, socket_path));
      throw;
    }
  }
  UniqueFd connection = connectLoginSocket(slice, socket_path);
  // Host root was needed for the connection only.
  if (::setresgid(::getgid(), ::getgid(), ::getgid()) != 0) throwErrno("setresgid");
  if (::setresuid(uid, uid, uid) != 0) throwErrno("setresuid");
  ::prctl(PR_SET_DUMPABLE, 0);  // credential changes reset it

  std::vector<std::string> args;
  if (command) args = {"-c", *command};
  std::vector<std::string> env;
  if (auto term = saneEnv("TERM", "-_.+")) env.push_back("TERM=" + *term);
  for (const char* name : {"SSH_CLIENT", "SSH_CONNECTION"}) {
    if (auto value = saneEnv(name, ".: ")) env.push_back(std::string(name) + "=" + *value);
  }
  const std::string request = logins::encodeRequest(args, env);
  if (request.size() > logins::kMaxRequest) throw EnterError("the command is too long");

  releaseTerminal();
  sigset_t relayed;
  sigemptyset(&relayed);
  for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGQUIT}) sigaddset(&relayed, sig);
  ::sigprocmask(SIG_BLOCK, &relayed, nullptr);
  UniqueFd signals(::signalfd(-1, &relayed, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signals) throwErrno("signalfd");

  const int stdio[] = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO};
  plng::base::sendFds(connection.get(), request, stdio, "asking sliver " + slice + " for a login");
  return relayUntilExit(slice, connection.get(), signals.get());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sliver-enter: %s\n", e.what());
    return 1;
  }
}
