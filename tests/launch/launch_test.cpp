// A sliver started by launchSliver, seen from inside and from the host.
#include "node/launch.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "base/file.h"
#include "node/rootfs.h"
#include "tests/support/node_image.h"
#include "tests/support/node_sliver_exec.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/skip.h"

namespace fs = std::filesystem;
using plng::base::SysError;
using plng::node::IdRange;
using plng::node::launchSliver;
using plng::node::LaunchSpec;
using plng::test::runInSliver;
using plng::test::shInSliver;

namespace {

// A range far from any a real node hands out first, so a leftover file of a
// crashed test is recognisable.
constexpr IdRange kIds{(1u << 30) + 65536u * 999u, 65536u};

fs::path testImage() {
  static fs::path image =
      plng::test::busyboxImage(PLNG_BUILD_IMAGE_SCRIPT, fs::path(PLNG_TEST_IMAGES_DIR) / "busybox");
  return image;
}

// A scratch sliver: upper/work/mount point in a temporary directory, sliver-init
// killed and reaped, directory removed, whatever happens.
class TestSliver {
 public:
  explicit TestSliver(std::string name, const std::string& initscript = "")
      : name_(std::move(name)) {
    plng::test::requireRoot();
    dir_.emplace("plng-launch");
    upper_ = dir() / "upper";
    fs::create_directories(upper_);
    fs::create_directories(dir() / "work");
    fs::create_directories(dir() / "rootfs");
    plng::node::chownUpperRoot(upper_, testImage(), kIds);
    if (!initscript.empty()) {
      plng::node::writeUpperFile(upper_, testImage(), kIds, "etc/plng/initscript", initscript,
                                 0755);
    }
  }
  TestSliver(const TestSliver&) = delete;
  TestSliver& operator=(const TestSliver&) = delete;
  ~TestSliver() { kill(); }

  LaunchSpec spec() const {
    LaunchSpec spec;
    spec.name = name_;
    spec.ids = kIds;
    spec.image = testImage();
    spec.dirs = {upper_, dir() / "work"};
    spec.mountpoint = dir() / "rootfs";
    spec.init_path = PLNG_SLIVER_INIT_PATH;
    spec.init_args = {"--stop-grace-ms", "500"};
    // The test's stderr, unless it is a terminal (refused: a sliver shares none).
    if (!::isatty(STDERR_FILENO)) spec.stdio[1] = spec.stdio[2] = STDERR_FILENO;
    spec.local_api_dir = local_api_dir;
    return spec;
  }
  void start() {
    auto launched = launchSliver(spec());
    pid_ = launched.pid;
    pidfd_ = std::move(launched.pidfd);
  }
  // SIGKILL to init kills the whole pid namespace; the overlay goes with it.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    pidfd_.reset();
  }
  // Waits for init to exit on its own; its wait status.
  int waitExit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        pidfd_.reset();
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  fs::path local_api_dir;  // LaunchSpec::local_api_dir

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  const fs::path& upper() const { return upper_; }
  const fs::path& dir() const { return dir_->path(); }

 private:
  std::string name_;
  std::optional<plng::test::ScratchDir> dir_;  // made once requireRoot() has passed
  fs::path upper_;
  pid_t pid_ = -1;
  plng::base::UniqueFd pidfd_;
};

// "Uid:\t<real>\t<effective>\t<saved>\t<fs>" of a host pid.
std::string statusLine(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return line;
  }
  return "";
}

}  // namespace

TEST_CASE("a sliver sees only its own processes", "[root][launch]") {
  TestSliver sliver("pl_procs");
  sliver.start();

  auto r = shInSliver(sliver.pidfd(), "ls /proc | grep -E '^[0-9]+$'");
  REQUIRE(r.exit_code == 0);
  std::set<int> pids;
  std::istringstream in(r.output);
  for (int p; in >> p;) pids.insert(p);
  // sliver-init (1), the shell and ls: nothing of the host.
  CHECK(pids.count(1) == 1);
  CHECK(pids.size() <= 4);
  CHECK(pids.size() >= 2);

  auto cmdline = runInSliver(sliver.pidfd(), {"/bin/cat", "/proc/1/cmdline"});
  CHECK(cmdline.output.rfind("sliver-init", 0) == 0);
  // The host's init is not pid 1 in there, and host pids do not exist.
  auto host = shInSliver(sliver.pidfd(), "test -e /proc/" + std::to_string(::getpid()));
  CHECK(host.exit_code != 0);
}

TEST_CASE("a sliver's hostname is its slice name", "[root][launch]") {
  TestSliver sliver("pl_hostname");
  sliver.start();
  auto r = runInSliver(sliver.pidfd(), {"/bin/hostname"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.output == "pl_hostname\n");

  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  // Root inside, even with every capability of its user namespace (not the
  // default bounding set, which lacks CAP_SYS_ADMIN), may rename its own
  // sliver, never the node.
  plng::test::SliverExecOptions unrestricted;
  unrestricted.restricted = false;
  auto w = shInSliver(sliver.pidfd(), "hostname renamed && hostname", unrestricted);
  CHECK(w.output == "renamed\n");
  shInSliver(sliver.pidfd(), "echo renamed2 > /proc/sys/kernel/hostname", unrestricted);
  CHECK(shInSliver(sliver.pidfd(), "hostname other").exit_code != 0);
  char after[256] = {};
  ::gethostname(after, sizeof after - 1);
  CHECK(std::string(after) == host);
}

TEST_CASE("root inside a sliver is the slice's first id on the host", "[root][launch]") {
  TestSliver sliver("pl_ids");
  sliver.start();
  std::string first = std::to_string(kIds.first);
  CHECK(statusLine(sliver.pid(), "Uid") ==
        "Uid:\t" + first + "\t" + first + "\t" + first + "\t" + first);
  CHECK(statusLine(sliver.pid(), "Gid") ==
        "Gid:\t" + first + "\t" + first + "\t" + first + "\t" + first);

  auto r = shInSliver(sliver.pidfd(), "id -u; id -g; cat /proc/self/uid_map");
  REQUIRE(r.exit_code == 0);
  std::istringstream in(r.output);
  std::string uid, gid, inside, outside, count;
  in >> uid >> gid >> inside >> outside >> count;
  CHECK(uid == "0");
  CHECK(gid == "0");
  CHECK(outside == first);
  CHECK(count == "65536");
  // The image, owned by host root on disk, is root's inside.
  auto owner = shInSliver(sliver.pidfd(), "stat -c '%u:%g' /bin/busybox /etc/passwd /");
  CHECK(owner.output == "0:0\n0:0\n0:0\n");
}

TEST_CASE("a sliver writes to its upper layer, never to the reference image", "[root][launch]") {
  TestSliver sliver("pl_cow");
  sliver.start();
  std::string before = plng::base::readFileIfExists(testImage() / "etc/passwd").value_or("");

  auto r = shInSliver(sliver.pidfd(),
                      "echo 'eve:x:1000:1000::/home/eve:/bin/sh' >> /etc/passwd && "
                      "mkdir -p /home/eve && echo hi > /home/eve/file && chown 1000:1000 "
                      "/home/eve/file && rm /bin/cat && tail -n 1 /etc/passwd");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output == "eve:x:1000:1000::/home/eve:/bin/sh\n");

  // The image is unchanged; the copies are in the upper layer, owned by the
  // slice's ids on the host.
  CHECK(plng::base::readFileIfExists(testImage() / "etc/passwd").value_or("") == before);
  CHECK(fs::exists(testImage() / "bin/cat"));
  CHECK(plng::base::readFileIfExists(sliver.upper() / "etc/passwd").value_or("") ==
        before + "eve:x:1000:1000::/home/eve:/bin/sh\n");
  struct stat st {};
  REQUIRE(::stat((sliver.upper() / "etc/passwd").c_str(), &st) == 0);
  CHECK(st.st_uid == kIds.first);
  CHECK(st.st_gid == kIds.first);
  REQUIRE(::stat((sliver.upper() / "home/eve/file").c_str(), &st) == 0);
  CHECK(st.st_uid == kIds.first + 1000);
  CHECK(st.st_gid == kIds.first + 1000);
  REQUIRE(::stat((sliver.upper() / "home/eve").c_str(), &st) == 0);
  CHECK(st.st_uid == kIds.first);
}

TEST_CASE("a sliver cannot reach or change the host", "[root][launch]") {
  TestSliver sliver("pl_host");
  fs::path marker = sliver.dir() / "host-marker";
  std::ofstream(marker) << "host\n";
  sliver.start();

  // Both with the sliver's restrictions and with every capability of its user
  // namespace: the kernel itself keeps root inside away from the host.
  plng::test::SliverExecOptions unrestricted;
  unrestricted.restricted = false;
  for (const auto& options : {plng::test::SliverExecOptions{}, unrestricted}) {
    INFO("restricted: " << options.restricted);
    auto run = [&](const std::string& script) {
      return shInSliver(sliver.pidfd(), script, options).exit_code;
    };
    // No path leads back to the host's tree.
    CHECK(run("cat " + marker.string()) != 0);
    CHECK(run("ls /proc/1/root" + marker.string()) != 0);
    // Node-wide sysctls and devices are out of reach.
    std::string before = plng::base::readFileIfExists("/proc/sys/vm/overcommit_ratio").value_or("");
    CHECK(run("echo 77 > /proc/sys/vm/overcommit_ratio") != 0);
    CHECK(plng::base::readFileIfExists("/proc/sys/vm/overcommit_ratio").value_or("") == before);
    CHECK(run("mknod /tmp/disk b 254 0") != 0);
    CHECK(run("mkdir -p /mnt && mount -t ext4 /dev/vda /mnt") != 0);
    CHECK(run("mount -t sysfs sysfs /mnt") != 0);
    // /sys is read-only.
    CHECK(run("touch /sys/kernel/x") != 0);
    CHECK(run("echo never > /sys/kernel/mm/transparent_hugepage/enabled") != 0);
    CHECK(run("mount -o remount,rw /sys") != 0);
  }
  // /dev has only the harmless nodes.
  auto dev = shInSliver(sliver.pidfd(), "ls /dev | tr '\\n' ' '");
  CHECK(dev.output == "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero ");
  CHECK(
      shInSliver(sliver.pidfd(), "echo ok > /dev/null && head -c 4 /dev/urandom | wc -c").output ==
      "4\n");
  // A fresh /proc of its own pid namespace is mounted; /dev/pts is private.
  CHECK(shInSliver(sliver.pidfd(), "ls /dev/pts | tr '\\n' ' '").output == "ptmx ");
}

TEST_CASE("sliver-init runs the initscript at every start and reaps orphans", "[root][launch]") {
  TestSliver sliver("pl_init",
                    "#!/bin/sh\n"
                    "echo started >> /var/starts\n"
                    "( sleep 0.2 & ) \n"  // an orphan for init to reap
                    "sleep 1000 > /dev/null 2>&1 &\n");
  for (int start = 1; start <= 2; ++start) {
    sliver.start();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    std::string starts;
    while (std::chrono::steady_clock::now() < deadline) {
      starts = plng::base::readFileIfExists(sliver.upper() / "var/starts").value_or("");
      if (std::count(starts.begin(), starts.end(), '\n') == start) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(std::count(starts.begin(), starts.end(), '\n') == start);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    auto zombies = shInSliver(sliver.pidfd(), "ps -o stat,comm | grep '^Z' || true");
    CHECK(zombies.output.empty());

    // SIGTERM: everything is told to stop, init exits 0 and the namespace is gone.
    REQUIRE(::kill(sliver.pid(), SIGTERM) == 0);
    int status = sliver.waitExit(std::chrono::seconds(5));
    REQUIRE(status != -1);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
}

TEST_CASE("sliver-init runs under no_new_privs, the seccomp filter and the bounding set",
          "[root][launch]") {
  TestSliver sliver("pl_security");
  LaunchSpec spec = sliver.spec();
  spec.capabilities = plng::node::capabilityPlanFromTag("CAP_NET_RAW");
  auto launched = launchSliver(spec);
  pid_t pid = launched.pid;
  auto reap = [&] {
    ::kill(pid, SIGKILL);
    int status;
    ::waitpid(pid, &status, 0);
  };
  CHECK(statusLine(pid, "NoNewPrivs") == "NoNewPrivs:\t1");
  CHECK(statusLine(pid, "Seccomp") == "Seccomp:\t2");
  std::uint64_t expected =
      plng::node::defaultSliverCapabilities() | (std::uint64_t{1} << 13 /*CAP_NET_RAW*/);
  char hex[32];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(expected));
  CHECK(statusLine(pid, "CapBnd") == std::string("CapBnd:\t") + hex);
  CHECK(statusLine(pid, "CapEff") == std::string("CapEff:\t") + hex);
  reap();
}

TEST_CASE("launch failures name the sliver and the step", "[root][launch]") {
  TestSliver sliver("pl_fail");
  // A mount point the sliver's root replaced by a symlink is refused, not
  // followed.
  {
    TestSliver planted("pl_planted");
    fs::create_symlink("/tmp", planted.upper() / "proc");
    ::lchown((planted.upper() / "proc").c_str(), kIds.first, kIds.first);
    try {
      planted.start();
      FAIL("started with /proc a symlink");
    } catch (const SysError& e) {
      CHECK(e.err() == ENOTDIR);
      CHECK(std::string(e.what()).find("sliver pl_planted: mkdir /proc") != std::string::npos);
    }
  }

  LaunchSpec spec = sliver.spec();
  spec.image = sliver.dir() / "no-such-image";
  try {
    launchSliver(spec);
    FAIL("launch without an image succeeded");
  } catch (const SysError& e) {
    CHECK(e.err() == ENOENT);
    CHECK(std::string(e.what()).find("sliver pl_fail: image") != std::string::npos);
  }

  // A terminal as stdio is refused before anything starts.
  {
    plng::base::UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    REQUIRE(master);
    REQUIRE(::grantpt(master.get()) == 0);
    REQUIRE(::unlockpt(master.get()) == 0);
    plng::base::UniqueFd pty(::open(::ptsname(master.get()), O_RDWR | O_NOCTTY | O_CLOEXEC));
    REQUIRE(pty);
    spec = sliver.spec();
    spec.stdio[0] = pty.get();
    try {
      launchSliver(spec);
      FAIL("launched with a terminal as stdin");
    } catch (const SysError& e) {
      CHECK(e.err() == EINVAL);
      CHECK_THAT(e.what(), Catch::Contains("sliver pl_fail: stdio 0 is a terminal"));
    }
  }

  // A failure inside the child comes back with its step and errno.
  spec = sliver.spec();
  fs::path not_exec = sliver.dir() / "not-executable";
  std::ofstream(not_exec) << "#!/bin/sh\n";
  spec.init_path = not_exec;
  try {
    launchSliver(spec);
    FAIL("exec of a non-executable init succeeded");
  } catch (const SysError& e) {
    CHECK(e.err() == EACCES);
    CHECK(std::string(e.what()).find("sliver pl_fail: exec sliver-init") != std::string::npos);
  }
}

TEST_CASE("the local API's directory is bound read-only at /run/sliverd", "[root][launch]") {
  TestSliver sliver("pl_api");
  const fs::path api = sliver.dir() / "api";
  fs::create_directories(api);
  ::chmod(api.c_str(), 0755);  // sliver.dir() stays 0700: the bind needs no path to it
  // A real listening socket, as sliverd leaves it (mode 0666).
  plng::base::UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(listener.get() >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string socket_path = (api / "sliverd.sock").string();
  REQUIRE(socket_path.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener.get(), 4) == 0);
  ::chmod(socket_path.c_str(), 0666);
  sliver.local_api_dir = api;
  sliver.start();

  auto ls = shInSliver(
      sliver.pidfd(),
      "ls /run/sliverd | tr '\\n' ' '; test -S /run/sliverd/sliverd.sock && echo socket");
  CHECK(ls.output == "sliverd.sock socket\n");
  auto touch =
      shInSliver(sliver.pidfd(), "touch /run/sliverd/x 2>&1; rm -f /run/sliverd/sliverd.sock 2>&1");
  INFO(touch.output);
  CHECK(touch.exit_code != 0);
  CHECK((touch.output.find("Read-only file system") != std::string::npos ||
         touch.output.find("Permission denied") != std::string::npos));
  CHECK(fs::exists(api / "sliverd.sock"));
  CHECK_FALSE(fs::exists(api / "x"));
  // Without a directory nothing is bound.
  TestSliver plain("pl_noapi");
  plain.start();
  CHECK(shInSliver(plain.pidfd(), "test -e /run/sliverd/sliverd.sock").exit_code != 0);
}

namespace {

// The inode of a socket ("socket:[<ino>]" in /proc/<pid>/fd).
std::string socketName(int fd) {
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  return "socket:[" + std::to_string(st.st_ino) + "]";
}

// What /proc/<pid>/fd's links name.
std::vector<std::string> openFiles(pid_t pid) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    out.push_back(fs::read_symlink(entry.path(), link_ec).string());
  }
  return out;
}

// Every process on the host that holds `name` open.
std::vector<pid_t> holdersOf(const std::string& name) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& proc : fs::directory_iterator("/proc", ec)) {
    const std::string pid = proc.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    for (const auto& file : openFiles(std::stoi(pid))) {
      if (file == name) out.push_back(std::stoi(pid));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("a sliver child whose launcher is killed before the go-ahead dies and holds nothing",
          "[root][launch][fault]") {
  TestSliver sliver("pl_orphan");
  // Orphans are re-parented to this process, so it can see how they end.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  struct NoSubreaper {
    ~NoSubreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
  } no_subreaper;

  // The launcher stands in for sliverd: it holds listening sockets without
  // close-on-exec (as Boost.Asio opens its acceptors) and is SIGKILLed while
  // its clone3 child waits for the go-ahead.
  plng::base::UniqueFd unix_listener(::socket(AF_UNIX, SOCK_STREAM, 0));
  REQUIRE(unix_listener);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = (sliver.dir() / "api.sock").string();
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  REQUIRE(::bind(unix_listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(unix_listener.get(), 8) == 0);
  plng::base::UniqueFd tcp_listener(::socket(AF_INET, SOCK_STREAM, 0));
  REQUIRE(tcp_listener);
  sockaddr_in tcp{};
  tcp.sin_family = AF_INET;
  tcp.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(tcp_listener.get(), reinterpret_cast<sockaddr*>(&tcp), sizeof tcp) == 0);
  REQUIRE(::listen(tcp_listener.get(), 8) == 0);
  const std::set<std::string> listeners = {socketName(unix_listener.get()),
                                           socketName(tcp_listener.get())};

  int report[2];
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  pid_t launcher = ::fork();
  REQUIRE(launcher >= 0);
  if (launcher == 0) {
    ::close(report[0]);
    LaunchSpec spec = sliver.spec();
    spec.attach = [&](pid_t child) {
      ssize_t ignored = ::write(report[1], &child, sizeof child);
      (void)ignored;
      for (;;) ::pause();  // killed here, between clone3 and the go-ahead
    };
    try {
      launchSliver(spec);
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(report[1]);
  pid_t child = 0;
  ssize_t n = ::read(report[0], &child, sizeof child);
  ::close(report[0]);
  REQUIRE(n == static_cast<ssize_t>(sizeof child));
  unix_listener.reset();  // the launcher's copies are all that is left
  tcp_listener.reset();
  // The hook runs as soon as clone3 returns: wait until the child sits in
  // recvmsg for the go-ahead (its set-up before that is done by then).
  bool waiting = false;
  for (int i = 0; i < 500 && !waiting; ++i) {
    std::ifstream syscall_file("/proc/" + std::to_string(child) + "/syscall");
    long nr = -1;
    waiting = (syscall_file >> nr) && nr == SYS_recvmsg;
    if (!waiting) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(waiting);

  // While it waits: only what it needs, in a session of its own.
  std::vector<std::string> files = openFiles(child);
  INFO("the waiting child holds: " << [&] {
    std::string all;
    for (const auto& f : files) all += f + " ";
    return all;
  }());
  for (const auto& file : files) CHECK(listeners.count(file) == 0);
  CHECK(files.size() <= 8);
  CHECK(::getsid(child) == child);

  REQUIRE(::kill(launcher, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(launcher, &status, 0) == launcher);

  // Gone within a couple of seconds (reaped here, its new parent).
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    pid_t r = ::waitpid(child, &status, WNOHANG);
    gone = r == child || (r < 0 && errno == ECHILD && ::kill(child, 0) != 0);
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!gone) {  // leave nothing behind either way
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  CHECK(gone);
  for (const auto& name : listeners) {
    INFO(name);
    CHECK(holdersOf(name).empty());
  }
}
