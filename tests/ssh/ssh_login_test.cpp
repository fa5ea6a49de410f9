// `ssh <slice>@<node>` lands inside the slice's sliver: a real sshd on a
// loopback port started by deploy/sshd/start-node-sshd.sh (the built
// sliver-enter installed setuid root, sliverd-keys as AuthorizedKeysCommand),
// slice accounts made by SliceAccounts in the real /etc/passwd (removed
// afterwards), and a real sliver: LinuxSliverRuntime with the busybox image,
// sliver-init, a private cgroup subtree and a btrfs loop volume, as in
// tests/launch/sliver_runtime_test.cpp.
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
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/landlock.h"
#include "node/cgroup.h"
#include "node/idrange.h"
#include "node/kvfile.h"
#include "node/sliver_runtime.h"
#include "node/storage.h"
#include "sliverd/core/raw_socket_broker.h"
#include "sliverd/core/raw_socket_runtime.h"
#include "sliverd/login/slice_accounts.h"
#include "tests/support/node_cgroup_sandbox.h"
#include "tests/support/node_image.h"
#include "tests/support/node_test_node.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/skip.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
  return os << "exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err;
}

// The ids a program runs with (a slice account's, as sshd would give them).
struct RunAs {
  uid_t uid = 0;
  gid_t gid = 0;
};

// In a forked child: becomes `as` (no supplementary groups).
void becomeAccount(const RunAs& as) {
  if (::setgroups(0, nullptr) != 0 || ::setresgid(as.gid, as.gid, as.gid) != 0 ||
      ::setresuid(as.uid, as.uid, as.uid) != 0) {
    ::_exit(126);
  }
}

// Runs argv with `input` as its stdin, capturing stdout and stderr; killed
// after `timeout`. With `as`, under those ids.
Result run(const std::vector<std::string>& argv, const std::string& input = "",
           std::chrono::seconds timeout = 60s, std::optional<RunAs> as = std::nullopt) {
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
    if (as) becomeAccount(*as);
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

// A node's sliver machinery in temporary places: cgroups beneath the test's
// own, state and run directories, a 1 GiB btrfs volume, the busybox image;
// torn down in reverse order whatever happened.
struct SliverNode : plng::test::TestNode {
  SliverNode()
      : TestNode("plng-ssh-node",
                 {PLNG_BUILD_IMAGE_SCRIPT, PLNG_TEST_IMAGES_DIR, PLNG_SLIVER_INIT_PATH},
                 /*traversable=*/true) {}
};

plng::node::SliverConfig sliverConfig(const std::string& slice,
                                      const std::string& initscript = "") {
  plng::node::SliverConfig config;
  config.slice = slice;
  config.initscript = initscript;
  config.xid = 900;
  config.vref = "busybox";
  config.disk_quota_bytes = 64ull << 20;
  return config;
}

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
        FAIL("start-node-sshd.sh exited:\n" << plng::base::readFileIfExists(log_).value_or(""));
      }
      if (std::chrono::steady_clock::now() > deadline)
        FAIL("sshd never listened:\n" << plng::base::readFileIfExists(log_).value_or(""));
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
  std::string log() const { return plng::base::readFileIfExists(log_).value_or(""); }

 private:
  static int freeLoopbackPort() {
    plng::base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    return ntohs(addr.sin_port);
  }
  bool accepting() const {
    plng::base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
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

// sliver-enter started as `as` without sshd, stdout and stderr on one pipe
// (stdin /dev/null); the caller reads `output` and reaps `pid`.
struct RunningEnter {
  pid_t pid = -1;
  plng::base::UniqueFd output;
};
RunningEnter startEnter(const fs::path& sliver_enter, const RunAs& as, const std::string& command) {
  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  RunningEnter enter;
  enter.output.reset(pipe_fds[0]);
  enter.pid = ::fork();
  REQUIRE(enter.pid >= 0);
  if (enter.pid == 0) {
    int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    becomeAccount(as);
    ::execl(sliver_enter.c_str(), "sliver-enter", "-c", command.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  return enter;
}

// Reads `fd` until `text` has come (true) or 10 s have passed.
bool waitForOutput(int fd, const std::string& text, std::string& seen) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (seen.find(text) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pfd{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    seen.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

// The wait status of `pid`, or nullopt when it has not ended within 10 s.
std::optional<int> waitStatus(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return std::nullopt;
    }
    std::this_thread::sleep_for(20ms);
  }
}

// The address of the abstract unix socket `name`; returns its length.
socklen_t abstractAddress(const std::string& name, sockaddr_un& address) {
  address = sockaddr_un{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());  // sun_path[0] = '\0'
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

// An abstract unix stream socket of this (host) process, listening.
plng::base::UniqueFd listenAbstract(const std::string& name) {
  plng::base::UniqueFd server(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address;
  const socklen_t length = abstractAddress(name, address);
  REQUIRE(::bind(server.get(), reinterpret_cast<sockaddr*>(&address), length) == 0);
  REQUIRE(::listen(server.get(), 8) == 0);
  return server;
}

// Copies the abstract-unix-probe into the root of `slice`'s running sliver
// (host root writes through its init's /proc/<pid>/root).
void installProbe(const plng::node::NodePaths& paths, const std::string& slice) {
  auto record = plng::node::readKvFile(paths.sliverInit(slice));
  const fs::path target = fs::path("/proc") / record.at("pid") / "root/abstract-unix-probe";
  fs::copy_file(PLNG_ABSTRACT_UNIX_PROBE_PATH, target, fs::copy_options::overwrite_existing);
  fs::permissions(target, fs::perms(0755));
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("ssh <slice>@node lands in the slice's sliver", "[ssh][root]") {
  plng::test::requireRoot();
  SliverNode node;
  // sshd's files and the login tools. sshd refuses an AuthorizedKeysCommand under
  // a directory others may write (/tmp), so it lives under /run, root's and 0755.
  plng::test::ScratchDir scratch("plng-ssh-test", 0755, "/run");

  const plng::node::NodePaths& paths = node.paths;
  const std::string pid = std::to_string(::getpid());
  const std::string slice = "plngtest_" + pid;
  const std::string stopped = "plngtest_" + pid + "_off";
  // One sliver running, one created but never started.
  auto runtime = node.runtime();
  runtime.create(sliverConfig(slice));
  runtime.create(sliverConfig(stopped));
  runtime.start(slice);

  // Keys: two members and a stranger.
  fs::create_directories(scratch / "keys");
  for (const char* who : {"member", "member2", "stranger"}) {
    auto made = run({"/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                     std::string(who) + "@plng-test", "-f", (scratch / "keys" / who).string()});
    REQUIRE(made.exit_code == 0);
  }
  const std::string member_keys =
      plng::base::readFileIfExists(scratch / "keys/member.pub").value_or("") +
      plng::base::readFileIfExists(scratch / "keys/member2.pub").value_or("");

  // The members' keys, as sliverd keeps them: readable by sshd's
  // AuthorizedKeysCommandUser (nobody) through the directories the runtime made.
  for (const auto& name : {slice, stopped}) {
    plng::sliverd::writeSliceAuthorizedKeys(paths, name, lines(member_keys));
  }

  NodeSshd sshd(scratch.path(), paths);
  const fs::path login_dir = scratch / "sshd/libexec";

  plng::sliverd::SliceAccountsConfig account_config;
  account_config.login_shell = login_dir / "sliver-enter";
  account_config.paths = paths;
  TestAccounts accounts(account_config);
  auto account = accounts.add(slice);
  accounts.add(stopped);
  CHECK(account.home == paths.sliverDir(slice));

  auto ssh = [&](const std::string& key, const std::string& user, const std::string& command) {
    return run({"/usr/bin/ssh",
                "-F",
                "/dev/null",
                "-i",
                (scratch / "keys" / key).string(),
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
                       "echo \"$HOME:$USER:$PATH\"; cat /proc/self/cgroup; echo ---; "
                       "cat /proc/1/cgroup");
      INFO(login << "\nsshd log:\n" << sshd.log());
      REQUIRE(login.exit_code == 0);
      auto out = lines(login.out);
      REQUIRE(out.size() >= 6);
      CHECK(out[0] == slice);                      // the sliver's uts namespace
      CHECK(out[1] == "0");                        // root inside
      CHECK(out[2].rfind("sliver-init", 0) == 0);  // its pid namespace: pid 1 is sliver-init
      CHECK(out[3] == "/root:root:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
      // Joined the sliver's cgroup in every hierarchy: the same as sliver-init's.
      auto separator = std::find(out.begin(), out.end(), "---");
      REQUIRE(separator != out.end());
      std::vector<std::string> own(out.begin() + 4, separator), init(separator + 1, out.end());
      CHECK(own.size() >= 2);
      CHECK(own == init);
    }
    // The login is confined as the sliver is: same bounding set, no_new_privs
    // and the sliver's seccomp filter.
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
    auto range = plng::node::IdRangeAllocator(paths.idRanges()).find(slice);
    REQUIRE(range);
    CHECK(lines(status.out).at(0).find(" 0 " + std::to_string(range->first) + " ") !=
          std::string::npos);
    CHECK(range->first > 0);

    // The sliver's open-file limits, not sshd's (which a login would otherwise
    // bring in: sliver-enter takes sliver-init's).
    auto limits = ssh("member", slice, "ulimit -n; ulimit -Hn");
    INFO(limits.err);
    CHECK(limits.out == "1024\n4096\n");
  }

  SECTION("without a command, a member gets an interactive login shell on a terminal") {
    auto login = run({"/usr/bin/ssh",
                      "-tt",
                      "-F",
                      "/dev/null",
                      "-i",
                      (scratch / "keys/member").string(),
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
                     "echo LOGIN:$0:$(hostname):$([ -t 0 ] && echo tty); "
                     "echo PTS:$(ls /dev/pts | tr '\\n' ' '); exit 3\n");
    INFO(login << "\nsshd log:\n" << sshd.log());
    CHECK(login.exit_code == 3);
    // A login shell ("-sh": root's shell in the busybox image is /bin/sh) in the
    // sliver, on the session's terminal.
    CHECK(login.out.find("LOGIN:-sh:" + slice + ":tty") != std::string::npos);
    // That terminal is sshd's pty in the host's devpts: the sliver's /dev/pts is
    // its own instance and lists none of the host's ptys, this one included.
    CHECK(login.out.find("PTS:ptmx\r\n") != std::string::npos);
  }

  SECTION("a login's raw sockets come from sliverd's broker, also after it restarts") {
    // sliverd's broker, watching sliver-init's listener: a login is sliver-init's
    // child, under the same filter (docs/vnet.md, "Raw sockets"). Traffic only
    // on the host's loopback.
    std::atomic<bool> right{true};
    auto broker =
        std::make_unique<plng::sliverd::RawSocketBroker>(plng::sliverd::RawSocketBroker::Options{
            .has_right = [&](const std::string&) { return right.load(); },
            .in_flight_file = paths.rawSocketCall(),
        });
    auto brokered =
        std::make_unique<plng::sliverd::RawSocketRuntime>(runtime, *node.cgroups, *broker);
    brokered->list();  // watches the sliver, as a running sliverd does
    const std::string traceroute = "traceroute -n -I -m 1 -q 1 -w 1 127.0.0.1 2>&1; echo exit=$?";
    auto granted = ssh("member", slice, traceroute);
    INFO(granted);
    CHECK(granted.out.find(" 127.0.0.1 ") != std::string::npos);
    CHECK(granted.out.find("exit=0") != std::string::npos);
    CHECK(broker->counters(slice).granted == 1);  // traceroute -I: one raw ICMP socket
    right = false;
    auto refused = ssh("member", slice, traceroute);
    INFO(refused);
    CHECK(refused.out.find("Operation not permitted") != std::string::npos);
    CHECK(refused.out.find("exit=0") == std::string::npos);

    // sliverd stops while a login waits to open its raw socket; the next one
    // takes the listener from sliver-init again and answers.
    right = true;
    Result later;
    std::thread login([&] { later = ssh("member", slice, "sleep 2; " + traceroute); });
    std::this_thread::sleep_for(1s);
    brokered.reset();
    broker.reset();
    broker =
        std::make_unique<plng::sliverd::RawSocketBroker>(plng::sliverd::RawSocketBroker::Options{
            .has_right = [&](const std::string&) { return right.load(); },
            .in_flight_file = paths.rawSocketCall(),
        });
    std::this_thread::sleep_for(2s);  // the login's socket() waits meanwhile
    brokered = std::make_unique<plng::sliverd::RawSocketRuntime>(runtime, *node.cgroups, *broker);
    brokered->list();
    login.join();
    INFO(later);
    CHECK(later.out.find("exit=0") != std::string::npos);
    CHECK(broker->counters(slice).granted == 1);
  }

  SECTION("a login's exit status and signals pass through sliver-enter; a hangup ends it") {
    const fs::path sliver_enter = login_dir / "sliver-enter";
    const RunAs as{account.uid, account.gid};
    // Without sshd: the installed sliver-enter, run as the slice account.
    auto status = run({sliver_enter.string(), "-c", "echo $$; exit 7"}, "", 30s, as);
    INFO(status);
    CHECK(status.exit_code == 7);
    // A shell killed by a signal: sliver-enter dies of the same one.
    auto killed = run({sliver_enter.string(), "-c", "kill -TERM $$"}, "", 30s, as);
    INFO(killed);
    CHECK(killed.exit_code == 128 + SIGTERM);

    // sshd's SIGTERM (or SIGHUP) to sliver-enter reaches the login's shell.
    {
      RunningEnter enter = startEnter(sliver_enter, as, "echo started; exec sleep 30");
      std::string seen;
      REQUIRE(waitForOutput(enter.output.get(), "started", seen));
      ::kill(enter.pid, SIGTERM);
      auto ended = waitStatus(enter.pid);
      REQUIRE(ended);
      CHECK(WIFSIGNALED(*ended));
      CHECK(WTERMSIG(*ended) == SIGTERM);
    }
    // sliver-enter killed outright (the ssh connection's process gone): its
    // connection to sliver-init closes, which hangs the login up.
    {
      RunningEnter enter = startEnter(sliver_enter, as, "echo started; exec sleep 31");
      std::string seen;
      REQUIRE(waitForOutput(enter.output.get(), "started", seen));
      // The shell has printed; its exec of sleep may still be under way.
      pid_t sleeper = 0;
      for (int attempt = 0; attempt < 200 && sleeper == 0; ++attempt) {
        for (pid_t candidate : node.cgroups->pids(slice)) {
          auto cmdline =
              plng::base::readFileIfExists("/proc/" + std::to_string(candidate) + "/cmdline");
          if (cmdline && *cmdline == std::string("sleep\0"
                                                 "31\0",
                                                 9))
            sleeper = candidate;
        }
        if (sleeper == 0) std::this_thread::sleep_for(20ms);
      }
      REQUIRE(sleeper > 0);
      ::kill(enter.pid, SIGKILL);
      ::waitpid(enter.pid, nullptr, 0);
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (::kill(sleeper, 0) == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
      }
      CHECK(::kill(sleeper, 0) != 0);  // gone, and reaped by sliver-init
    }
  }

  SECTION(
      "abstract unix sockets: a sliver's processes and logins reach each other's, not the "
      "host's nor another sliver's") {
    if (!plng::base::landlockScopesAbstractUnixSockets()) {
      WARN("Landlock ABI " << plng::base::landlockAbiVersion()
                           << ": no abstract unix socket scoping; only the allowed side runs");
    }
    const bool scoped = plng::base::landlockScopesAbstractUnixSockets();
    const fs::path sliver_enter = login_dir / "sliver-enter";
    const std::string own = "plng-own-" + pid;
    const std::string boot = "plng-boot-" + pid;
    const std::string host = "plng-host-" + pid;
    // A second slice, whose initscript (a child of its sliver-init, not a
    // login) serves an abstract socket once the probe is there.
    const std::string other = "plngtest_" + pid + "_b";
    runtime.create(sliverConfig(other,
                                "while [ ! -x /abstract-unix-probe ]; do sleep 1; done\n"
                                "exec /abstract-unix-probe serve " +
                                    boot + "\n"));
    runtime.start(other);
    auto other_account = accounts.add(other);
    installProbe(paths, slice);
    installProbe(paths, other);
    plng::base::UniqueFd host_server = listenAbstract(host);

    const RunAs as{account.uid, account.gid};
    const RunAs other_as{other_account.uid, other_account.gid};
    auto enter = [&](const RunAs& who, const std::string& command) {
      return run({sliver_enter.string(), "-c", command}, "", 30s, who);
    };

    // One login serves; another login of the slice (a sibling session)
    // connects: both are sliver-init's children, in the sliver's one domain.
    auto serving = enter(as, "/abstract-unix-probe serve " + own);
    INFO(serving);
    REQUIRE(serving.exit_code == 0);
    auto reached = enter(as, "/abstract-unix-probe connect " + own);
    INFO(reached);
    CHECK(reached.exit_code == 0);
    CHECK(reached.out == "reply " + own + "\n");

    // The other sliver's boot service is reached by its own logins...
    Result boot_reached;
    for (int attempt = 0; attempt < 50; ++attempt) {
      boot_reached = enter(other_as, "/abstract-unix-probe connect " + boot);
      if (boot_reached.exit_code == 0) break;
      std::this_thread::sleep_for(200ms);
    }
    INFO(boot_reached);
    CHECK(boot_reached.out == "reply " + boot + "\n");

    // ... and the host reaches both (it is not restricted).
    for (const std::string& name : {own, boot}) {
      plng::base::UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un address;
      const socklen_t length = abstractAddress(name, address);
      CHECK(::connect(client.get(), reinterpret_cast<sockaddr*>(&address), length) == 0);
    }

    // Across slivers, and from a sliver to the host: refused by the kernel.
    auto across = enter(as, "/abstract-unix-probe connect " + boot);
    auto across_back = enter(other_as, "/abstract-unix-probe connect " + own);
    auto to_host = enter(as, "/abstract-unix-probe connect " + host);
    INFO(across << "\n" << across_back << "\n" << to_host);
    if (scoped) {
      CHECK(across.exit_code == 1);
      CHECK(across.out == "refused " + boot + ": EPERM\n");
      CHECK(across_back.out == "refused " + own + ": EPERM\n");
      CHECK(to_host.out == "refused " + host + ": EPERM\n");
    }
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
