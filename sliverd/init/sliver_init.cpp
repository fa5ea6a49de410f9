// sliver-init: PID 1 inside every sliver.
//
//   sliver-init [--stop-grace-ms N] [--initscript PATH] [--log PATH]
//               [--logins-fd N]
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
// With --logins-fd it starts the sliver's ssh logins (login_request.h): the
// descriptor is a listening socket that only host root can reach (sliverd
// binds it in its own run directory), on which sliver-enter asks for a login
// and hands over its terminal or pipes. Each login is a child of sliver-init,
// so it has everything the sliver's processes have — the pid and mount
// namespaces, the cgroups, the seccomp filter whose listener sliverd serves,
// the bounding set, the limits and the sliver's one Landlock domain (its
// abstract unix sockets are the sliver's: node/launch.h). sliver-init never
// waits for one login: connections are non-blocking and served between the
// signals; a login whose connection closes is hung up (SIGHUP to its process
// group), and the shell's exit status goes back over the connection.
//
// Built static (no shared libraries from the host reach into the image) and
// kept small: no iostreams, no heap on the main path.
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
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
#include <optional>
#include <string>
#include <vector>

#include "base/eintr.h"
#include "base/file.h"
#include "base/strings.h"
#include "base/unix_socket.h"
#include "sliverd/init/login_request.h"

extern char** environ;

namespace {

constexpr const char* kDefaultInitscript = "/etc/plng/initscript";
constexpr const char* kDefaultLog = "/var/log/sliver-init.log";
constexpr long kDefaultGraceMs = 3000;
constexpr const char* kLoginPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// More logins at once than anyone types in; one more is refused (closed).
constexpr std::size_t kMaxLogins = 64;

namespace logins = plng::sliverd::logins;

// A connection from sliver-enter: waiting for its request (pid 0), or the
// login it started.
struct Login {
  int connection = -1;  // -1: a free slot
  pid_t pid = 0;        // the login's shell, leader of its session and group
};
Login g_logins[kMaxLogins];

// PID 1 of a pid namespace gets signals from outside only for those it has a
// handler for (SIG_DFL ones are dropped), so each handled signal gets one that
// does nothing; they are blocked and collected with sigtimedwait.
void ignoreHandler(int) {}

void logMessage(const char* what, const char* detail) {
  std::fprintf(stderr, "sliver-init: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  std::fflush(stderr);
}

void closeLogin(Login& login) {
  if (login.connection >= 0) ::close(login.connection);
  login = Login{};
}

// A login's shell exited: its status goes to sliver-enter, which exits with it.
void loginExited(pid_t pid, int status) {
  for (Login& login : g_logins) {
    if (login.connection < 0 || login.pid != pid) continue;
    char message[logins::kExitedSize] = {logins::kExited};
    const std::int32_t wire = status;
    std::memcpy(message + 1, &wire, sizeof wire);
    ssize_t ignored =
        ::send(login.connection, message, sizeof message, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
    closeLogin(login);
    return;
  }
}

// Reaps every exited child; returns false once there are no children left.
bool reapAll() {
  for (;;) {
    int status;
    const pid_t pid = plng::base::retryOnEintr([&] { return ::waitpid(-1, &status, WNOHANG); });
    if (pid > 0) {
      loginExited(pid, status);
      continue;
    }
    if (pid == 0) return true;
    return errno != ECHILD;
  }
}

// In a forked child: the signal dispositions and mask every process sliver-init
// starts gets. Default actions first, then an empty mask (not the one
// sliver-init was exec'd with: sliverd blocks the signals handled here, so that
// none sent before the handlers exist is lost). In this order a SIGTERM already
// pending (a stop right after start) ends the child instead of reaching
// sliver-init's do-nothing handler.
void resetSignalsForChild() {
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPWR}) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

void runInitscript(const char* path) {
  if (::access(path, F_OK) != 0) return;
  pid_t pid = ::fork();
  if (pid < 0) {
    logMessage("fork for the initscript", std::strerror(errno));
    return;
  }
  if (pid == 0) {
    resetSignalsForChild();
    ::setsid();
    if (::chdir("/") != 0) ::_exit(127);
    char* const argv[] = {const_cast<char*>("sh"), const_cast<char*>(path), nullptr};
    ::execve("/bin/sh", argv, environ);
    logMessage("exec /bin/sh for the initscript", std::strerror(errno));
    ::_exit(127);
  }
}

// Root's account in the sliver's own /etc/passwd, and the language of
// /etc/default/locale: what a login gets, read inside the sliver (the host
// never parses the sliver's files).
struct LoginAccount {
  std::string name = "root";
  std::string home = "/root";
  std::string shell;
  std::string lang;
};

bool isExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

LoginAccount loginAccount() {
  LoginAccount account;
  try {
    for (const std::string& line :
         plng::base::split(plng::base::readFileIfExists("/etc/passwd").value_or(""), '\n')) {
      auto fields = plng::base::split(line, ':');
      if (fields.size() == 7 && fields[2] == "0") {
        account.name = fields[0];
        if (!fields[5].empty()) account.home = fields[5];
        account.shell = fields[6];
        break;
      }
    }
    for (const std::string& line : plng::base::split(
             plng::base::readFileIfExists("/etc/default/locale").value_or(""), '\n')) {
      if (line.rfind("LANG=", 0) != 0) continue;
      account.lang = line.substr(5);
      if (account.lang.size() >= 2 && account.lang.front() == '"' && account.lang.back() == '"') {
        account.lang = account.lang.substr(1, account.lang.size() - 2);
      }
    }
  } catch (const std::exception&) {
    // An unreadable file: root with the defaults.
  }
  if (account.shell.empty() || !isExecutableFile(account.shell)) {
    account.shell = isExecutableFile("/bin/bash") ? "/bin/bash" : "/bin/sh";
  }
  return account;
}

[[noreturn]] void loginFailed(const char* what, const char* detail) {
  // stderr is the login's now: the user sees it.
  std::fprintf(stderr, "sliver: %s: %s\n", what, detail);
  std::fflush(stderr);
  ::_exit(127);
}

// The forked login: its own session (the terminal, if stdin is one, becomes
// its controlling terminal: sliver-enter gave it up), the caller's stdio, and
// root's shell as a login shell, or `<shell> -c <command>`.
[[noreturn]] void runLogin(const logins::Request& request, const int (&stdio)[3]) {
  resetSignalsForChild();
  ::setsid();
  for (int i = 0; i < 3; ++i) {
    if (::dup2(stdio[i], i) != i) ::_exit(127);
  }
  if (::isatty(STDIN_FILENO)) {
    // EPERM when the terminal is still another session's (a sliver-enter not
    // its session leader): the login then runs without a controlling one.
    ::ioctl(STDIN_FILENO, TIOCSCTTY, 0);
  }
  ::syscall(SYS_close_range, 3u, ~0u, 0u);
  LoginAccount account = loginAccount();
  if (!isExecutableFile(account.shell)) loginFailed("no shell", account.shell.c_str());

  std::string shell_name = account.shell.substr(account.shell.rfind('/') + 1);
  std::vector<std::string> args = {request.arg_count == 0 ? "-" + shell_name : shell_name};
  for (std::size_t i = 0; i < request.arg_count; ++i) args.emplace_back(request.args[i]);
  std::vector<std::string> env = {"HOME=" + account.home, std::string("PATH=") + kLoginPath,
                                  "USER=" + account.name, "LOGNAME=" + account.name,
                                  "SHELL=" + account.shell};
  if (!account.lang.empty()) env.push_back("LANG=" + account.lang);
  const std::size_t own = env.size();
  for (std::size_t i = 0; i < request.env_count; ++i) {
    std::string entry = request.env[i];
    std::string name = entry.substr(0, entry.find('=') + 1);
    bool ours = false;
    for (std::size_t j = 0; j < own; ++j) ours = ours || env[j].rfind(name, 0) == 0;
    if (!ours) env.push_back(std::move(entry));
  }
  if (::chdir(account.home.c_str()) != 0 && ::chdir("/") != 0) {
    loginFailed("chdir /", std::strerror(errno));
  }
  std::vector<char*> c_args, c_env;
  for (auto& arg : args) c_args.push_back(arg.data());
  c_args.push_back(nullptr);
  for (auto& entry : env) c_env.push_back(entry.data());
  c_env.push_back(nullptr);
  ::execve(account.shell.c_str(), c_args.data(), c_env.data());
  loginFailed(("exec " + account.shell).c_str(), std::strerror(errno));
}

// The request of a connection that has not sent one yet: the login starts, or
// the connection is closed (a malformed request, or no fork).
void startLogin(Login& login) {
  static char request_bytes[logins::kMaxRequest];
  int stdio[3] = {-1, -1, -1};
  std::size_t fd_count = 0;
  const ssize_t n = plng::base::receiveFdsInto(login.connection, request_bytes, stdio, fd_count);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  logins::Request request;
  const bool valid = n > 0 && fd_count == 3 &&
                     logins::parseRequest(request_bytes, static_cast<std::size_t>(n), request);
  pid_t pid = -1;
  if (valid) {
    std::fflush(nullptr);
    pid = ::fork();
    if (pid == 0) runLogin(request, stdio);
    if (pid < 0) logMessage("fork for a login", std::strerror(errno));
  } else if (n != 0) {
    logMessage("refused a malformed login request", nullptr);
  }
  for (std::size_t i = 0; i < fd_count; ++i) ::close(stdio[i]);
  if (pid > 0) {
    login.pid = pid;
  } else {
    closeLogin(login);
  }
}

// A message from a running login's sliver-enter: a signal to relay, or the end
// of the connection, which hangs the login up.
void serveLogin(Login& login) {
  char message[8];
  const ssize_t n = ::recv(login.connection, message, sizeof message, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    ::kill(-login.pid, SIGHUP);
    ::kill(-login.pid, SIGCONT);
    closeLogin(login);
    return;
  }
  if (n == 2 && message[0] == logins::kSignal && logins::relayedSignal(message[1])) {
    ::kill(login.pid, message[1]);
  }
}

void acceptLogins(int listener) {
  for (;;) {
    const int connection = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (connection < 0) return;  // EAGAIN: no more waiting
    Login* free_slot = nullptr;
    for (Login& login : g_logins) {
      if (login.connection < 0) {
        free_slot = &login;
        break;
      }
    }
    if (free_slot == nullptr) {
      logMessage("too many logins at once; refused one", nullptr);
      ::close(connection);
      continue;
    }
    free_slot->connection = connection;
    free_slot->pid = 0;
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
  int login_listener = -1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--stop-grace-ms") == 0 && i + 1 < argc) {
      grace_ms = std::strtol(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--initscript") == 0 && i + 1 < argc) {
      initscript = argv[++i];
    } else if (std::strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
      log = argv[++i];
    } else if (std::strcmp(argv[i], "--logins-fd") == 0 && i + 1 < argc) {
      login_listener = static_cast<int>(std::strtol(argv[++i], nullptr, 10));
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

  // The signals (still blocked, so none is lost) arrive on a descriptor, to be
  // waited for together with the logins.
  const int signals = ::signalfd(-1, &waited, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signals < 0) {
    logMessage("signalfd", std::strerror(errno));
    return 1;
  }
  if (login_listener >= 0 && ::fcntl(login_listener, F_SETFL, O_NONBLOCK) != 0) {
    logMessage("the login socket", std::strerror(errno));
    login_listener = -1;
  }
  for (;;) {
    pollfd fds[2 + kMaxLogins];
    Login* polled[kMaxLogins];
    std::size_t count = 0;
    fds[count++] = {signals, POLLIN, 0};
    fds[count++] = {login_listener, POLLIN, 0};  // -1: ignored by poll
    for (Login& login : g_logins) {
      if (login.connection < 0) continue;
      polled[count - 2] = &login;
      fds[count++] = {login.connection, POLLIN, 0};
    }
    if (::poll(fds, count, -1) < 0) continue;  // EINTR
    for (std::size_t i = 2; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      Login& login = *polled[i - 2];
      if (login.pid == 0) {
        startLogin(login);
      } else {
        serveLogin(login);
      }
    }
    if (fds[1].revents != 0) acceptLogins(login_listener);
    if (fds[0].revents == 0) continue;
    signalfd_siginfo info;
    while (::read(signals, &info, sizeof info) == sizeof info) {
      switch (info.ssi_signo) {
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
}
