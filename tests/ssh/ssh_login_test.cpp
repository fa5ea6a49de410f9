// `ssh <slice>@<node>` lands inside the slice's sliver: a real sshd on a
// loopback port started by deploy/sshd/start-node-sshd.sh (the built
// sliver-enter installed setuid root, sliverd-keys as AuthorizedKeysCommand),
// slice accounts made by SliceAccounts in the real /etc/passwd (removed
// afterwards), and a running sliver with its init record.
//
// The sliver is a stand-in until LinuxSliverRuntime lands: a process in fresh
// user (root -> an unprivileged host id), mount, pid, uts (hostname = slice),
// ipc and cgroup namespaces, placed in a sliver cgroup in every hierarchy of a
// private CgroupSandbox, under the sliver seccomp filter and bounding set
// (node/security.h), running as "sliver-init" with its own /proc (the host's
// files otherwise); <run_dir>/slivers/<slice>.init is written as sliverd does.
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cgroup.h"
#include "error.h"
#include "kvfile.h"
#include "node_cgroup_sandbox.h"
#include "node_skip.h"
#include "security.h"
#include "slice_accounts.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// The stand-in sliver's root maps here: an id no host account or real slice uses.
constexpr unsigned long kSliverIdBase = 4000000000UL;

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void writeFile(const fs::path& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
  return os << "exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err;
}

// Runs argv with `input` as its stdin, capturing stdout and stderr; killed
// after `timeout`.
Result run(const std::vector<std::string>& argv, const std::string& input = "",
           std::chrono::seconds timeout = 60s) {
  int out[2], err[2], in[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
  // Small enough for the pipe buffer: written before the child starts.
  REQUIRE(input.size() < 4096);
  REQUIRE(::write(in[1], input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  ::close(in[1]);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  Result result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (auto& fd : fds) {
      if (fd.fd < 0 || !(fd.revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = ::read(fd.fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fd.fd);
        fd.fd = -1;
        --open_fds;
      } else {
        (fd.fd == out[0] ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// A scratch directory for sshd's files and the login tools. sshd refuses an
// AuthorizedKeysCommand under a directory others may write (/tmp), so it lives
// under /run, root's and 0755.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    char templ[] = "/run/plng-ssh-test-XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    path = templ;
    REQUIRE(::chmod(path.c_str(), 0755) == 0);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Slice accounts in the real /etc, removed (with the slice group, if it did
// not exist before) however the test ends.
struct TestAccounts {
  plng::sliverd::SliceAccounts accounts;
  std::vector<std::string> names;
  bool group_existed = ::getgrnam(std::string(plng::sliverd::kSliceGroup).c_str()) != nullptr;

  explicit TestAccounts(plng::sliverd::SliceAccountsConfig config) : accounts(std::move(config)) {
    // Accounts left by a test run that crashed (its pid is gone).
    for (const auto& account : accounts.listSliceAccounts()) {
      if (account.slice.rfind("plngtest_", 0) != 0) continue;
      pid_t owner = static_cast<pid_t>(std::atol(account.slice.c_str() + 9));
      if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) {
        accounts.removeSliceAccount(account.slice);
      }
    }
  }
  plng::sliverd::SliceAccount add(const std::string& slice) {
    names.push_back(slice);
    return accounts.ensureSliceAccount(slice);
  }
  ~TestAccounts() {
    for (const auto& name : names) accounts.removeSliceAccount(name);
    if (!group_existed) accounts.removeSliceGroupIfUnused();
  }
};

std::string startTimeOf(pid_t pid) {
  std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) fields >> field;
  return field;
}

// The stand-in sliver (see the top of this file).
class StandInSliver {
 public:
  StandInSliver(const std::string& slice, plng::node::CgroupDriver& cgroups,
                const plng::node::NodePaths& paths) {
    cgroups.create(slice);
    // Decided before clone, applied by the child just before exec, as the
    // launcher does: no_new_privs, the sliver seccomp filter, the default
    // capability bounding set.
    const plng::node::SeccompProgram& seccomp = plng::node::sliverSeccompProgram();
    const plng::node::CapabilityPlan capabilities = plng::node::capabilityPlanFromTag("");
    int go[2];
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    pid_ = static_cast<pid_t>(::syscall(
        SYS_clone,
        CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, nullptr,
        nullptr, nullptr, 0));
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(go[1]);
      char byte;
      if (::read(go[0], &byte, 1) != 1) ::_exit(1);
      // Placed in its cgroups by now: they become the root of its cgroup namespace.
      if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) ::_exit(2);
      if (::unshare(CLONE_NEWCGROUP) != 0) ::_exit(3);
      if (::sethostname(slice.data(), slice.size()) != 0) ::_exit(4);
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(5);
      if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        ::_exit(6);
      }
      if (plng::node::applySeccomp(seccomp) != 0) ::_exit(7);
      if (plng::node::applyCapabilityPlan(capabilities) != 0) ::_exit(8);
      const char* argv[] = {"sliver-init", "infinity", nullptr};
      ::execv("/bin/sleep", const_cast<char**>(argv));
      ::_exit(127);
    }
    ::close(go[0]);
    std::string map = "0 " + std::to_string(kSliverIdBase) + " 65536\n";
    for (const char* file : {"uid_map", "gid_map"}) {
      std::ofstream("/proc/" + std::to_string(pid_) + "/" + file) << map;
    }
    cgroups.attach(slice, pid_);
    std::ofstream(cgroups.unifiedDir(slice) / "cgroup.procs") << pid_;
    REQUIRE(::write(go[1], "g", 1) == 1);
    ::close(go[1]);
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (readFile("/proc/" + std::to_string(pid_) + "/cmdline").rfind("sliver-init", 0) != 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        FAIL("stand-in sliver failed at step " << WEXITSTATUS(status));
      }
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(10ms);
    }
    fs::create_directories(paths.sliverInit(slice).parent_path());
    plng::node::writeKvFileAtomic(paths.sliverInit(slice),
                                  {{"pid", std::to_string(pid_)},
                                   {"start_time", startTimeOf(pid_)},
                                   {"cgroup", cgroups.unifiedDir(slice).string()}});
  }
  ~StandInSliver() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = 0;
};

// start-node-sshd.sh in the background; stopped (and sshd with it) on scope exit.
class NodeSshd {
 public:
  NodeSshd(const fs::path& work_dir, const plng::node::NodePaths& paths) : log_(work_dir / "log") {
    port_ = freeLoopbackPort();
    std::vector<std::string> argv = {
        PLNG_START_NODE_SSHD,     "--port",     std::to_string(port_),       "--state-dir",
        paths.state_dir.string(), "--run-dir",  paths.run_dir.string(),      "--bin-dir",
        PLNG_LOGIN_BIN_DIR,       "--work-dir", (work_dir / "sshd").string()};
    std::vector<char*> args;
    for (auto& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int null = ::open("/dev/null", O_RDONLY);
      ::dup2(null, 0);
      ::dup2(log, 1);
      ::dup2(log, 2);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!accepting()) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        FAIL("start-node-sshd.sh exited:\n" << readFile(log_));
      }
      if (std::chrono::steady_clock::now() > deadline)
        FAIL("sshd never listened:\n" << readFile(log_));
      std::this_thread::sleep_for(50ms);
    }
  }
  ~NodeSshd() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  std::string log() const { return readFile(log_); }

 private:
  static int freeLoopbackPort() {
    plng::node::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    return ntohs(addr.sin_port);
  }
  bool accepting() const {
    plng::node::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }

  fs::path log_;
  int port_ = 0;
  pid_t pid_ = 0;
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("ssh <slice>@node lands in the slice's sliver", "[ssh][root]") {
  plng::test::requireRoot();
  plng::test::CgroupSandbox sandbox;
  auto cgroups = plng::node::makeCgroupDriver(sandbox.roots());
  cgroups->setUp(0);
  ScratchDir scratch;

  plng::node::NodePaths paths;
  paths.state_dir = scratch.path / "state";
  paths.run_dir = scratch.path / "run";
  const std::string pid = std::to_string(::getpid());
  const std::string slice = "plngtest_" + pid;
  const std::string stopped = "plngtest_" + pid + "_off";

  // Keys: two members and a stranger.
  fs::create_directories(scratch.path / "keys");
  for (const char* who : {"member", "member2", "stranger"}) {
    auto made =
        run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
             std::string(who) + "@plng-test", "-f", (scratch.path / "keys" / who).string()});
    REQUIRE(made.exit_code == 0);
  }
  const std::string member_keys =
      readFile(scratch.path / "keys/member.pub") + readFile(scratch.path / "keys/member2.pub");

  // sliverd's state: keys per slice, readable by sshd's AuthorizedKeysCommandUser
  // through directories it may traverse but not list.
  for (const fs::path& dir : {paths.state_dir, paths.state_dir / "slivers"}) {
    fs::create_directories(dir);
    ::chmod(dir.c_str(), 0711);
  }
  for (const auto& name : {slice, stopped}) {
    fs::create_directories(paths.sliverDir(name));
    ::chmod(paths.sliverDir(name).c_str(), 0711);
    writeFile(paths.authorizedKeys(name), member_keys, 0644);
  }
  fs::create_directories(paths.run_dir / "slivers");

  NodeSshd sshd(scratch.path, paths);
  const fs::path login_dir = scratch.path / "sshd/libexec";

  plng::sliverd::SliceAccountsConfig account_config;
  account_config.login_shell = login_dir / "sliver-enter";
  account_config.paths = paths;
  TestAccounts accounts(account_config);
  auto account = accounts.add(slice);
  accounts.add(stopped);
  CHECK(account.home == paths.sliverDir(slice));

  StandInSliver sliver(slice, *cgroups, paths);

  auto ssh = [&](const std::string& key, const std::string& user, const std::string& command) {
    return run({"/usr/bin/ssh",
                "-F",
                "/dev/null",
                "-i",
                (scratch.path / "keys" / key).string(),
                "-p",
                std::to_string(sshd.port()),
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "ConnectTimeout=20",
                user + "@127.0.0.1",
                command});
  };

  SECTION("sliverd-keys prints exactly the members' keys of slice accounts, nothing for others") {
    auto keys = run({(login_dir / "sliverd-keys").string(), slice});
    CHECK(keys.exit_code == 0);
    CHECK(keys.out == member_keys);
    for (const char* other : {"root", "nobody", "plngtest_no_such_account"}) {
      auto none = run({(login_dir / "sliverd-keys").string(), other});
      CHECK(none.exit_code == 0);
      CHECK(none.out.empty());
    }
  }

  SECTION("a member's key lands inside the sliver as its root") {
    for (const char* key : {"member", "member2"}) {
      auto login = ssh(key, slice,
                       "hostname; id -u; tr '\\0' ' ' < /proc/1/cmdline; echo; "
                       "cat /proc/self/cgroup; echo \"$HOME:$USER:$PATH\"");
      INFO(login << "\nsshd log:\n" << sshd.log());
      REQUIRE(login.exit_code == 0);
      auto out = lines(login.out);
      REQUIRE(out.size() >= 4);
      CHECK(out[0] == slice);                      // the sliver's uts namespace
      CHECK(out[1] == "0");                        // root inside
      CHECK(out[2].rfind("sliver-init", 0) == 0);  // its pid namespace: pid 1 is sliver-init
      // Joined the sliver's cgroup in every hierarchy: each is the root of the
      // sliver's cgroup namespace.
      for (std::size_t i = 3; i + 1 < out.size(); ++i) {
        CHECK(out[i].substr(out[i].rfind(':')) == ":/");
      }
      CHECK(out.back() ==
            "/root:root:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
    // The login is confined as the sliver is: same bounding set, no_new_privs
    // and a seccomp filter (bpf(2) refused).
    auto confined = ssh("member", slice,
                        "grep -E '^(CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
                        "grep -E '^(CapBnd|NoNewPrivs|Seccomp):' /proc/1/status");
    INFO(confined);
    auto status_lines = lines(confined.out);
    REQUIRE(status_lines.size() == 6);
    CHECK(status_lines[0] == status_lines[3]);
    CHECK(status_lines[1] == "NoNewPrivs:\t1");
    CHECK(status_lines[2] == "Seccomp:\t2");
    CHECK(status_lines[0] != "CapBnd:\t000001ffffffffff");

    // Root inside is an unprivileged id on the host, and the command's exit
    // status comes back through ssh.
    auto status = ssh("member", slice, "cat /proc/self/uid_map; exit 7");
    CHECK(status.exit_code == 7);
    CHECK(lines(status.out).at(0).find(std::to_string(kSliverIdBase)) != std::string::npos);
  }

  SECTION("without a command, a member gets an interactive login shell on a terminal") {
    auto login = run({"/usr/bin/ssh",
                      "-tt",
                      "-F",
                      "/dev/null",
                      "-i",
                      (scratch.path / "keys/member").string(),
                      "-p",
                      std::to_string(sshd.port()),
                      "-o",
                      "BatchMode=yes",
                      "-o",
                      "IdentitiesOnly=yes",
                      "-o",
                      "IdentityAgent=none",
                      "-o",
                      "StrictHostKeyChecking=no",
                      "-o",
                      "UserKnownHostsFile=/dev/null",
                      "-o",
                      "LogLevel=ERROR",
                      slice + "@127.0.0.1"},
                     "echo LOGIN:$0:$(hostname):$(tty); exit 3\n");
    INFO(login << "\nsshd log:\n" << sshd.log());
    CHECK(login.exit_code == 3);
    // A login shell ("-bash") in the sliver, with the session's terminal.
    CHECK(login.out.find("LOGIN:-bash:" + slice + ":/dev/pts/") != std::string::npos);
  }

  SECTION("a key that is not a member's is refused") {
    auto login = ssh("stranger", slice, "id");
    INFO(login);
    CHECK(login.exit_code == 255);
    CHECK(login.err.find("Permission denied (publickey)") != std::string::npos);
    CHECK(login.out.empty());
  }

  SECTION("a slice whose sliver is not running gets a clear error") {
    auto login = ssh("member", stopped, "id");
    INFO(login);
    CHECK(login.exit_code == 1);
    CHECK(login.err.find("sliver " + stopped + " is not running on this node") !=
          std::string::npos);
    CHECK(login.err.find("plcctl slice nodes add " + stopped) != std::string::npos);
    CHECK(login.out.empty());

    // A stale record whose pid now belongs to another process (here: this test).
    plng::node::writeKvFileAtomic(paths.sliverInit(stopped),
                                  {{"pid", pid}, {"start_time", "1"}, {"cgroup", "/nonexistent"}});
    auto stale = ssh("member", stopped, "id");
    INFO(stale);
    CHECK(stale.exit_code == 1);
    CHECK(stale.err.find("sliver " + stopped +
                         " is not running on this node (its sliver-init has exited") !=
          std::string::npos);
  }
}
