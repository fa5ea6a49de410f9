// sliver-enter: the login shell of slice accounts. `ssh <slice>@<node>` runs it
// (sshd runs the login shell bare for an interactive login, or as
// `sliver-enter -c "<command>"`), and it puts the caller inside that slice's
// running sliver as the sliver's root, like PlanetLab's vsh.
//
// Installed setuid root (mode 4755): joining a sliver's user namespace needs
// CAP_SYS_ADMIN over it, which only host root has. Hence, before anything is
// trusted:
//   - the slice is the account name of the *real* uid, never an argument or the
//     environment, and the account must carry the slice tag (slice_accounts.h);
//   - the config and the sliver's init record must be root's (slice_login.h);
//     the environment is only read when not setuid (tests);
//   - inherited descriptors beyond stdio are closed, the process is not
//     dumpable, and host root is given up at setns: from there on the process
//     holds capabilities only inside the sliver's user namespace.
// Sequence: read <run_dir>/slivers/<slice>.init (pid, start_time, cgroup),
// pidfd_open the pid and check its start time (a reused pid is someone else),
// move into the sliver's cgroups (unified from the record, v1 from sliver-init's
// own /proc/<pid>/cgroup), install the sliver's seccomp filter with a listener
// of the login's own and hand a copy to sliverd's raw socket broker (this
// process keeps it for the session), setns(pidfd, user|mnt|pid|uts|ipc|cgroup)
// in one call, become uid/gid 0 inside, take sliver-init's bounding set,
// no_new_privs and RLIMIT_NOFILE, then fork (only children enter the pid
// namespace) and exec the sliver's shell; the parent relays signals and the
// exit status.
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/proc.h"
#include "base/strings.h"
#include "base/unix_socket.h"
#include "node/cgroup.h"
#include "node/kvfile.h"
#include "node/launch.h"
#include "node/security.h"
#include "node/sliver_name.h"
#include "sliverd/login/slice_accounts.h"
#include "sliverd/login/slice_login.h"

namespace {
namespace fs = std::filesystem;
using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
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

struct InitProcess {
  pid_t pid = 0;
  UniqueFd pidfd;
  std::map<std::string, std::string> v1_cgroups;  // "cpu,cpuacct" -> path
  std::string unified_cgroup;                     // "0::" path
  std::uint64_t cap_bounding = ~0ull;
  bool no_new_privs = false;
  bool seccomp_filter = false;
  rlimit nofile{RLIM_INFINITY, RLIM_INFINITY};  // RLIMIT_NOFILE
};

// The sliver-init named by the slice's record, verified to be that very
// process (pidfd + start time), with what we need to know about it.
InitProcess findSliverInit(const std::string& slice, const plng::node::KvMap& record) {
  InitProcess init;
  auto pid_it = record.find("pid");
  auto start_it = record.find("start_time");
  if (pid_it == record.end() || start_it == record.end()) {
    throw EnterError("init record of sliver " + slice + " lacks pid= or start_time=");
  }
  try {
    init.pid = static_cast<pid_t>(std::stol(pid_it->second));
  } catch (const std::exception&) {
    throw EnterError("init record of sliver " + slice + " has a malformed pid");
  }
  if (init.pid <= 1) throw EnterError("init record of sliver " + slice + " has a bad pid");
  init.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, init.pid, 0)));
  if (!init.pidfd) {
    if (errno == ESRCH) throw EnterError(notRunning(slice, "its sliver-init has exited"));
    throwErrno("pidfd_open " + std::to_string(init.pid));
  }
  // The pidfd pins the process we opened; a matching start time proves it is
  // the one the record describes and not a later process that got its pid.
  std::optional<plng::base::ProcStat> stat;
  try {
    stat = plng::base::readProcStat(init.pid);
  } catch (const SysError&) {
  }
  if (!stat || std::to_string(stat->start_time) != start_it->second) {
    throw EnterError(notRunning(slice, "its sliver-init has exited"));
  }
  std::string proc = "/proc/" + std::to_string(init.pid);
  for (auto& entry : plng::base::readProcCgroup(init.pid)) {
    if (entry.hierarchy_id == 0 && entry.controllers.empty()) {
      init.unified_cgroup = std::move(entry.path);
    } else if (!entry.controllers.empty()) {
      std::string controllers;
      for (const auto& c : entry.controllers) controllers += (controllers.empty() ? "" : ",") + c;
      init.v1_cgroups[controllers] = std::move(entry.path);
    }
  }
  std::istringstream status(plng::base::readFile(proc + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("CapBnd:", 0) == 0) {
      init.cap_bounding = std::stoull(line.substr(7), nullptr, 16);
    } else if (line.rfind("NoNewPrivs:", 0) == 0) {
      init.no_new_privs = std::stoi(line.substr(11)) != 0;
    } else if (line.rfind("Seccomp:", 0) == 0) {
      init.seccomp_filter = std::stoi(line.substr(8)) == 2;
    }
  }
  init.nofile = plng::node::nofileLimitOf(init.pid);
  // Everything above was read from the live process the pidfd refers to.
  if (::syscall(SYS_pidfd_send_signal, init.pidfd.get(), 0, nullptr, 0) != 0) {
    throw EnterError(notRunning(slice, "its sliver-init has exited"));
  }
  return init;
}

struct CgroupMount {
  fs::path root;  // the hierarchy's path shown at the mount point
  fs::path mountpoint;
  std::set<std::string> options;  // super options: controllers, name=...
  bool unified = false;
};

std::vector<CgroupMount> cgroupMounts() {
  std::vector<CgroupMount> mounts;
  for (const auto& entry : plng::base::readMountInfo()) {
    if (entry.fstype != "cgroup" && entry.fstype != "cgroup2") continue;
    CgroupMount mount;
    mount.root = entry.root;
    mount.mountpoint = entry.mount_point;
    mount.unified = entry.fstype == "cgroup2";
    for (auto& option : plng::base::split(entry.super_options, ',')) mount.options.insert(option);
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

void writeSelfToCgroup(const fs::path& dir, bool expect_unified) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) throwErrno("open cgroup " + dir.string());
  struct statfs fs_info {};
  if (::fstatfs(fd.get(), &fs_info) != 0) throwErrno("statfs " + dir.string());
  auto magic = static_cast<unsigned long>(fs_info.f_type);
  if (expect_unified ? magic != CGROUP2_SUPER_MAGIC : magic != CGROUP_SUPER_MAGIC) {
    throw EnterError(dir.string() + " is not a cgroup directory");
  }
  UniqueFd procs(::openat(fd.get(), "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!procs) throwErrno("open " + (dir / "cgroup.procs").string());
  std::string self = std::to_string(::getpid());
  if (::write(procs.get(), self.data(), self.size()) < 0) {
    throwErrno("join cgroup " + dir.string());
  }
}

// Joins the sliver's cgroup in every hierarchy, so the login is accounted and
// limited with the sliver: the unified directory named by the record, and on
// a hybrid host the v1 cgroups sliver-init is in.
void joinSliverCgroups(const std::string& slice, const plng::node::KvMap& record,
                       const InitProcess& init) {
  auto mounts = cgroupMounts();
  fs::path unified;
  auto cgroup_it = record.find("cgroup");
  if (cgroup_it != record.end() && !cgroup_it->second.empty()) {
    unified = cgroup_it->second;
  } else {
    for (const auto& mount : mounts) {
      if (mount.unified && mount.root == "/") {
        unified = mount.mountpoint / fs::path(init.unified_cgroup).relative_path();
      }
    }
  }
  if (unified.empty() || !unified.is_absolute()) {
    throw EnterError("cannot tell the cgroup of sliver " + slice);
  }
  for (const auto& [controllers, path] : init.v1_cgroups) {
    const CgroupMount* match = nullptr;
    for (const auto& mount : mounts) {
      if (mount.unified) continue;
      bool all = true;
      for (const auto& controller : plng::base::split(controllers, ','))
        all = all && mount.options.count(controller);
      if (all) match = &mount;
    }
    std::string relative = path;
    std::string root = match ? match->root.string() : "";
    if (match && root != "/") {
      if (relative.compare(0, root.size(), root) != 0) match = nullptr;
      relative = relative.substr(root.size());
    }
    if (!match) {
      // A named hierarchy (name=systemd) carries no limits; a controller we
      // cannot reach would let the login escape the sliver's limits.
      if (controllers.rfind("name=", 0) == 0) continue;
      throw EnterError("the " + controllers + " cgroup hierarchy of sliver " + slice +
                       " is not mounted here");
    }
    writeSelfToCgroup(match->mountpoint / fs::path(relative).relative_path(), false);
  }
  writeSelfToCgroup(unified, true);
}

struct SliverUser {
  std::string name = "root";
  fs::path home = "/root";
  fs::path shell;
};

bool isExecutable(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Root's entry in the sliver's own /etc/passwd (parsed here: NSS modules from
// the image must not be loaded into this process).
SliverUser sliverRoot() {
  SliverUser user;
  std::ifstream passwd("/etc/passwd");
  for (std::string line; std::getline(passwd, line);) {
    auto fields = plng::base::split(line, ':');
    if (fields.size() == 7 && fields[2] == "0") {
      user.name = fields[0];
      if (!fields[5].empty()) user.home = fields[5];
      user.shell = fields[6];
      break;
    }
  }
  if (user.shell.empty() || !isExecutable(user.shell)) {
    user.shell = isExecutable("/bin/bash") ? "/bin/bash" : "/bin/sh";
  }
  if (!isExecutable(user.shell)) throw EnterError("the sliver has no shell (/bin/sh)");
  return user;
}

std::string sliverLang() {
  std::ifstream locale("/etc/default/locale");
  for (std::string line; std::getline(locale, line);) {
    if (line.rfind("LANG=", 0) == 0) {
      std::string value = line.substr(5);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return value;
    }
  }
  return "";
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

void dropBoundingSet(std::uint64_t keep) {
  for (int cap = 0; cap < 64; ++cap) {
    if (keep & (1ull << cap)) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      throwErrno("drop capability " + std::to_string(cap));
    }
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

// Gives sliverd's raw socket broker a copy of the login's seccomp listener,
// so that the login's raw socket() calls are answered. Failing is no error: a
// sliverd that is down finds the login when it starts again, and until then the
// calls wait.
void handListenerToSliverd(const fs::path& socket_path, const std::string& slice, int listener) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string path = socket_path.string();
  if (!sock || path.size() >= sizeof address.sun_path) return;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return;
  timeval timeout{2, 0};
  ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  try {
    const int fds[] = {listener};
    plng::base::sendFds(sock.get(), slice, fds, "handing the login's listener to sliverd");
  } catch (const SysError&) {
    return;
  }
  char answer = 0;
  ssize_t ignored = ::recv(sock.get(), &answer, 1, 0);
  (void)ignored;
}

int relayUntilExit(pid_t child, const sigset_t& relayed) {
  for (;;) {
    siginfo_t info{};
    int sig = ::sigwaitinfo(&relayed, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      if (sig == SIGHUP || sig == SIGTERM) ::kill(child, sig);
      continue;
    }
    int status = 0;
    pid_t done = ::waitpid(child, &status, WNOHANG);
    if (done != child) continue;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    int term = WTERMSIG(status);
    // Die of the same signal, so sshd reports it to the client.
    ::signal(term, SIG_DFL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, term);
    ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
    ::prctl(PR_SET_DUMPABLE, 0);
    ::raise(term);
    return 128 + term;
  }
}

int run(int argc, char** argv) {
  // Nothing inherited from sshd besides stdio may reach the sliver (a host
  // directory descriptor would be a way out of its mount namespace).
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
  InitProcess init = findSliverInit(slice, record);

  // The sliver's filter, compiled before entering (libseccomp is host code).
  const plng::node::SeccompProgram* seccomp =
      init.seccomp_filter ? &plng::node::sliverSeccompProgram() : nullptr;

  joinSliverCgroups(slice, record, init);

  // The sliver's filter, with a listener of the login's own: the kernel allows
  // one per filter chain, and this process is not under sliver-init's. Installed
  // here, while still host root (CAP_SYS_ADMIN stands in for no_new_privs, set
  // below if the sliver has it), so that the listener can be handed to sliverd
  // on a socket only host root reaches; everything from here on runs under it.
  // This process keeps the listener for the whole session (it is not dumpable:
  // nothing in the sliver can copy it) and a restarted sliverd takes it again
  // from here (docs/vnet.md, "Raw sockets").
  UniqueFd listener;
  if (seccomp) {
    const int fd = plng::node::applySeccompWithListener(*seccomp, /*no_new_privs=*/false);
    if (fd < 0) throw SysError(-fd, "apply the sliver's seccomp filter");
    listener.reset(fd);
    handListenerToSliverd(config.paths.rawSocketLogins(), slice, listener.get());
  }

  // Supplementary groups of the host account must not follow us in; once in the
  // sliver's user namespace they could no longer be dropped if it denies setgroups.
  if (::setgroups(0, nullptr) != 0) throwErrno("setgroups");
  if (::setns(init.pidfd.get(), CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS |
                                    CLONE_NEWIPC | CLONE_NEWCGROUP) != 0) {
    if (errno == ESRCH) throw EnterError(notRunning(slice, "its sliver-init has exited"));
    throwErrno("setns into sliver " + slice);
  }
  // Root of the sliver: ids 0 inside are the slice's mapped root outside.
  if (::setresgid(0, 0, 0) != 0) throwErrno("setresgid 0 in sliver " + slice);
  if (::setresuid(0, 0, 0) != 0) throwErrno("setresuid 0 in sliver " + slice);
  gid_t root_group = 0;
  ::setgroups(1, &root_group);  // EPERM where the sliver denies setgroups: keep none
  ::prctl(PR_SET_DUMPABLE, 0);  // credential changes reset it
  dropBoundingSet(init.cap_bounding);
  if (init.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    throwErrno("no_new_privs");
  }
  // The sliver's open-file limit, not sshd's (launch.h): lowering needs no
  // privilege, and the login cannot raise it again.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) throwErrno("getrlimit RLIMIT_NOFILE");
  nofile.rlim_max = std::min(nofile.rlim_max, init.nofile.rlim_max);
  nofile.rlim_cur = std::min({nofile.rlim_cur, init.nofile.rlim_cur, nofile.rlim_max});
  if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) throwErrno("setrlimit RLIMIT_NOFILE");

  SliverUser user = sliverRoot();
  std::vector<std::string> env = {"HOME=" + user.home.string(), std::string("PATH=") + kPath,
                                  "USER=" + user.name, "LOGNAME=" + user.name,
                                  "SHELL=" + user.shell.string()};
  if (auto term = saneEnv("TERM", "-_.+")) env.push_back("TERM=" + *term);
  if (std::string lang = sliverLang(); !lang.empty()) env.push_back("LANG=" + lang);
  for (const char* name : {"SSH_CLIENT", "SSH_CONNECTION"}) {
    if (auto value = saneEnv(name, ".: ")) env.push_back(std::string(name) + "=" + *value);
  }
  if (::chdir(user.home.c_str()) != 0 && ::chdir("/") != 0) throwErrno("chdir /");

  std::string shell_name = user.shell.filename().string();
  std::vector<std::string> args;
  if (command) {
    args = {shell_name, "-c", *command};
  } else {
    args = {"-" + shell_name};
  }
  std::vector<char*> c_args, c_env;
  for (auto& arg : args) c_args.push_back(arg.data());
  c_args.push_back(nullptr);
  for (auto& var : env) c_env.push_back(var.data());
  c_env.push_back(nullptr);

  sigset_t relayed, previous;
  sigemptyset(&relayed);
  for (int sig : {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT}) sigaddset(&relayed, sig);
  ::sigprocmask(SIG_BLOCK, &relayed, &previous);
  std::fflush(nullptr);
  pid_t child = ::fork();
  if (child < 0) {
    if (errno == ENOMEM) throw EnterError(notRunning(slice, "it is stopping"));
    throwErrno("fork");
  }
  if (child == 0) {
    ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGHUP);
    // Nothing opened here on the host (even by libc, without O_CLOEXEC) may
    // reach the sliver's shell.
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    ::execve(user.shell.c_str(), c_args.data(), c_env.data());
    std::fprintf(stderr, "sliver-enter: exec %s: %s\n", user.shell.c_str(), std::strerror(errno));
    std::_Exit(127);
  }
  // The terminal's ^C and ^\ reach the shell directly; here they are ignored.
  return relayUntilExit(child, relayed);
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
