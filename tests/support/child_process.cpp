#include "tests/support/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "base/eintr.h"

using plng::base::UniqueFd;

extern char** environ;

namespace plng::test {

namespace {

// What the child reports through the exec-error pipe when a step fails.
struct ChildFailure {
  int step;
  int error;
};

constexpr const char* kStepNames[] = {"setgroups", "setgid", "setuid", "prctl",
                                      "dup2",      "fcntl",  "chdir",  "execve"};

[[noreturn]] void failInChild(int pipeFd, int step) {
  ChildFailure failure{step, errno};
  // Nothing useful can be done if this write fails: the parent then sees a child
  // that exited with 127 instead of a detailed error.
  ssize_t ignored = ::write(pipeFd, &failure, sizeof failure);
  (void)ignored;
  ::_exit(127);
}

// Makes `fd` the child's descriptor `target`, clearing close-on-exec even when
// fd == target (dup2 is then a no-op and would leave the flag set).
bool installFd(int fd, int target) {
  if (fd == target) return ::fcntl(fd, F_SETFD, 0) == 0;
  return ::dup2(fd, target) == target;
}

// Runs in the forked child: async-signal-safe calls only.
[[noreturn]] void execChild(char* const* argv, char* const* envp, int inFd, int outFd,
                            const RunAs* runAs, const char* workingDir, int parentDeathSignal,
                            bool newSession, pid_t parentPid, int errorPipe) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }

  if (newSession) ::setsid();
  if (runAs != nullptr) {
    if (::setgroups(1, &runAs->gid) != 0) failInChild(errorPipe, 0);
    if (::setgid(runAs->gid) != 0) failInChild(errorPipe, 1);
    if (::setuid(runAs->uid) != 0) failInChild(errorPipe, 2);
  }
  // Set after the credential change: changing credentials clears the death signal.
  if (parentDeathSignal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, parentDeathSignal) != 0) failInChild(errorPipe, 3);
    if (::getppid() != parentPid) ::_exit(127);  // the parent already died
  }
  if (!installFd(inFd, STDIN_FILENO)) failInChild(errorPipe, 4);
  if (!installFd(outFd, STDOUT_FILENO)) failInChild(errorPipe, 4);
  if (!installFd(outFd, STDERR_FILENO)) failInChild(errorPipe, 4);
  if (workingDir != nullptr && ::chdir(workingDir) != 0) failInChild(errorPipe, 6);
  ::execve(argv[0], argv, envp);
  failInChild(errorPipe, 7);
}

std::vector<char*> pointersTo(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const auto& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

ChildProcess ChildProcess::spawn(const SpawnOptions& options) {
  if (options.argv.empty()) throw std::invalid_argument("spawn: empty argv");
  const std::vector<std::string> env = options.env ? *options.env : currentEnvironment();
  const std::vector<char*> argv = pointersTo(options.argv);
  const std::vector<char*> envp = pointersTo(env);
  const std::string workingDir = options.workingDir.string();

  UniqueFd devNull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devNull) throw std::system_error(errno, std::generic_category(), "open /dev/null");
  const int inFd = options.stdinFd >= 0 ? options.stdinFd : devNull.get();
  const int outFd = options.outputFd >= 0 ? options.outputFd : devNull.get();

  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  UniqueFd errorRead(pipeFds[0]);
  UniqueFd errorWrite(pipeFds[1]);

  const pid_t parentPid = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    execChild(argv.data(), envp.data(), inFd, outFd, options.runAs ? &*options.runAs : nullptr,
              workingDir.empty() ? nullptr : workingDir.c_str(), options.parentDeathSignal,
              options.newSession, parentPid, errorWrite.get());
  }
  ChildProcess child(pid);
  errorWrite.reset();

  ChildFailure failure{};
  const ssize_t n =
      plng::base::retryOnEintr([&] { return ::read(errorRead.get(), &failure, sizeof failure); });
  if (n == static_cast<ssize_t>(sizeof failure)) {
    child.wait();
    throw std::system_error(
        failure.error, std::generic_category(),
        "cannot start " + options.argv[0] + " (" + kStepNames[failure.step] + " failed)");
  }
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
  other.status_.reset();
}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    killAndReap();
    pid_ = other.pid_;
    status_ = other.status_;
    other.pid_ = -1;
    other.status_.reset();
  }
  return *this;
}

ChildProcess::~ChildProcess() { killAndReap(); }

void ChildProcess::killAndReap() noexcept {
  if (pid_ <= 0 || status_) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  plng::base::retryOnEintr([&] { return ::waitpid(pid_, &status, 0); });
  status_ = status;
}

bool ChildProcess::running() {
  if (pid_ <= 0 || status_) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = status;
    return false;
  }
  return true;
}

std::optional<int> ChildProcess::waitFor(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(2);
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  return status_;
}

int ChildProcess::wait() {
  if (pid_ <= 0) throw std::logic_error("wait: no child");
  if (!status_) {
    int status = 0;
    if (plng::base::retryOnEintr([&] { return ::waitpid(pid_, &status, 0); }) < 0) {
      throw std::system_error(errno, std::generic_category(), "waitpid");
    }
    status_ = status;
  }
  return *status_;
}

void ChildProcess::signal(int sig) const {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

int ChildProcess::terminate(int sig, std::chrono::milliseconds grace) {
  if (pid_ <= 0) throw std::logic_error("terminate: no child");
  signal(sig);
  if (auto status = waitFor(grace)) return *status;
  signal(SIGKILL);
  return wait();
}

std::string describeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::sigdescr_np(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : "");
  }
  return "wait status " + std::to_string(status);
}

std::string fileTail(const std::filesystem::path& path, std::size_t maxBytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > static_cast<std::streamoff>(maxBytes)
                                   ? size - static_cast<std::streamoff>(maxBytes)
                                   : 0;
  in.seekg(start);
  std::string tail(static_cast<std::size_t>(size - start), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  tail.resize(static_cast<std::size_t>(in.gcount()));
  return tail;
}

std::vector<std::string> currentEnvironment(const std::vector<std::string>& dropPrefixes) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    bool drop = false;
    for (const auto& prefix : dropPrefixes) drop = drop || entry.starts_with(prefix);
    if (!drop) env.emplace_back(entry);
  }
  return env;
}

namespace {

bool searchableByAll(const std::filesystem::path& dir) {
  for (auto p = std::filesystem::absolute(dir);; p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return false;
    if (p == p.root_path()) return true;
  }
}

// Run by /bin/sh with the scratch directory as $1 and the read end of a pipe whose
// write end only this process holds as stdin: EOF means this process is gone.
constexpr const char* kWatchdogScript = R"sh(
while read -r _; do :; done
n=0
while [ "$n" -lt 300 ]; do
  alive=
  for f in "$1"/*/data/postmaster.pid; do
    [ -e "$f" ] || continue
    pid=
    read -r pid < "$f" 2>/dev/null
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
  done
  [ -z "$alive" ] && break
  sleep 0.1
  n=$((n + 1))
done
rm -rf -- "$1"
)sh";

std::filesystem::path createProcessScratchDir() {
  std::filesystem::path base = "/tmp";
  struct statfs shm {};
  if (const char* dir = std::getenv("PLNG_TEST_TMPDIR"); dir != nullptr && *dir != '\0') {
    base = dir;
  } else if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') {
    base = tmp;
  } else if (::statfs("/dev/shm", &shm) == 0 && shm.f_type == TMPFS_MAGIC &&
             ::access("/dev/shm", W_OK | X_OK) == 0) {
    // Memory is much faster than a virtual disk for initdb and throw-away clusters
    // (a cluster copy takes 0.1 s there, over 1 s on a busy VM's disk).
    base = "/dev/shm";
  }
  if (!searchableByAll(base)) base = "/tmp";
  std::string pattern = (base / "plng-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  if (::chmod(pattern.c_str(), 0711) != 0) {
    throw std::system_error(errno, std::generic_category(), "chmod " + pattern);
  }

  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  UniqueFd readEnd(pipeFds[0]);
  SpawnOptions watchdog;
  watchdog.argv = {"/bin/sh", "-c", kWatchdogScript, "plng-scratch-watchdog", pattern};
  watchdog.stdinFd = readEnd.get();
  watchdog.newSession = true;
  ChildProcess child = ChildProcess::spawn(watchdog);
  // Neither killed nor reaped by us: it must outlive this process. The write end
  // stays open (close-on-exec) until this process exits.
  child.detach();
  static_cast<void>(pipeFds[1]);
  return pattern;
}

}  // namespace

const std::filesystem::path& processScratchDir() {
  static const std::filesystem::path dir = createProcessScratchDir();
  return dir;
}

int pickFreePort() {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::system_error(errno, std::generic_category(), "bind 127.0.0.1:0");
  }
  socklen_t len = sizeof addr;
  if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::system_error(errno, std::generic_category(), "getsockname");
  }
  return ntohs(addr.sin_port);
}

}  // namespace plng::test
