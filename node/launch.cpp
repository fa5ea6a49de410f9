#include "node/launch.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/eintr.h"
#include "base/file.h"
#include "base/landlock.h"
#include "base/unix_socket.h"
#include "node/raw_socket.h"
#include "node/rootfs.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node {
namespace {

// What the child was doing when it failed; reported to the parent with errno.
enum Step : int {
  kStepReceive = 1,
  kStepSession,
  kStepCgroupNs,
  kStepSetIds,
  kStepMountSlave,
  kStepMoveRootfs,
  kStepChdirRootfs,
  kStepMkdir,
  kStepMountProc,
  kStepMountDev,
  kStepBindDevNode,
  kStepMountDevPts,
  kStepMountDevShm,
  kStepDevLinks,
  kStepMountSys,
  kStepMountCgroupTmpfs,
  kStepMountCgroup,
  kStepMountLocalApi,
  kStepPivotRoot,
  kStepUnmountOldRoot,
  kStepSetHostname,
  kStepStdio,
  kStepCloseFds,
  kStepNofile,
  kStepSeccomp,
  kStepLandlock,
  kStepInheritFd,
  kStepCapabilities,
  kStepExec,
};

// Host device nodes bind-mounted into the sliver's /dev (mknod is not allowed in
// a user namespace, and these are harmless to share). No terminal of the host:
// "tty" (5:0) is not one, it opens the caller's own controlling terminal, and no
// process of a sliver has one of the host's — sliver-init starts a session of
// its own before anything, and an ssh login's terminal is that login's
// (docs/security.md, "Node: what a sliver shares with the host"). The sliver's
// ptys come from its own devpts instance (/dev/ptmx -> pts/ptmx).
constexpr const char* kDevNodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
constexpr const char* kDevMountDirs[] = {"proc", "dev", "sys"};
// Symlinks of the sliver's /dev: {target, name}.
constexpr const char* kDevLinks[][2] = {{"pts/ptmx", "dev/ptmx"},
                                        {"/proc/self/fd", "dev/fd"},
                                        {"/proc/self/fd/0", "dev/stdin"},
                                        {"/proc/self/fd/1", "dev/stdout"},
                                        {"/proc/self/fd/2", "dev/stderr"}};

std::string stepName(int step, int detail) {
  auto at = [&](auto& table) -> std::string {
    constexpr int n = static_cast<int>(sizeof table / sizeof table[0]);
    return detail >= 0 && detail < n ? std::string(table[detail]) : "?";
  };
  switch (step) {
    case kStepReceive:
      return "waiting for the parent";
    case kStepSession:
      return "setsid (a session of its own)";
    case kStepCgroupNs:
      return "unshare of the cgroup namespace";
    case kStepSetIds:
      return "becoming root of the user namespace (setresuid/setgroups)";
    case kStepMountSlave:
      return "making / a slave mount";
    case kStepMoveRootfs:
      return "move_mount of the overlay";
    case kStepChdirRootfs:
      return "chdir into the overlay";
    case kStepMkdir:
      return "mkdir /" + at(kDevMountDirs);
    case kStepMountProc:
      return "mount /proc";
    case kStepMountDev:
      return "mount tmpfs on /dev";
    case kStepBindDevNode:
      return "bind /dev/" + at(kDevNodes);
    case kStepMountDevPts:
      return "mount /dev/pts";
    case kStepMountDevShm:
      return "mount /dev/shm";
    case kStepDevLinks: {
      constexpr int n = static_cast<int>(sizeof kDevLinks / sizeof kDevLinks[0]);
      return "symlink /" + std::string(detail >= 0 && detail < n ? kDevLinks[detail][1] : "?");
    }
    case kStepMountSys:
      return "read-only /sys";
    case kStepMountCgroupTmpfs:
      return "tmpfs on /sys/fs/cgroup";
    case kStepMountCgroup:
      return "mount of the sliver's own cgroup view #" + std::to_string(detail) +
             " under /sys/fs/cgroup";
    case kStepMountLocalApi:
      return "read-only bind of the local API directory at /run/sliverd";
    case kStepPivotRoot:
      return "pivot_root";
    case kStepUnmountOldRoot:
      return "unmounting the old root";
    case kStepSetHostname:
      return "sethostname";
    case kStepStdio:
      return "setting up stdin/stdout/stderr";
    case kStepCloseFds:
      return "close_range";
    case kStepNofile:
      return "setrlimit RLIMIT_NOFILE";
    case kStepSeccomp:
      return "seccomp";
    case kStepLandlock:
      return "landlock domain scoping abstract unix sockets";
    case kStepInheritFd:
      return "descriptor " + std::to_string(detail) + " for sliver-init";
    case kStepCapabilities:
      return "capability bounding set";
    case kStepExec:
      return "exec sliver-init";
  }
  return "step " + std::to_string(step);
}

struct ChildReport {
  int step = 0;
  int err = 0;
  int detail = -1;
};

// One CgroupView as the child mounts it: paths relative to the new root.
struct ChildCgroupView {
  const char* target = nullptr;   // "sys/fs/cgroup" or "sys/fs/cgroup/<dir>"
  const char* fstype = nullptr;   // "cgroup2" or "cgroup"
  const char* options = nullptr;  // nullptr for none
};

// Everything the child uses, prepared by the parent before clone3. The child
// reads it from its copy of the parent's memory and allocates nothing.
struct ChildPlan {
  int sync_fd = -1;   // receives "go" and the overlay's mount fd
  int error_fd = -1;  // close-on-exec: EOF at exec means success
  int init_fd = -1;   // O_PATH fd of sliver-init
  int null_fd = -1;   // the host's /dev/null, for unset stdio
  int sys_fd = -1;    // detached read-only clone of the host's /sys
  int stdio[3] = {-1, -1, -1};
  int landlock_fd = -1;  // the abstract unix scope ruleset, or -1
  const int* inherit_fds = nullptr;
  std::size_t inherit_count = 0;
  // The descriptors above, sorted and unique: the child closes every other
  // one before it waits for the parent.
  const int* keep_fds = nullptr;
  std::size_t keep_count = 0;
  // /sys/fs/cgroup: one view mounted right there (pure v2), or a tmpfs holding
  // each view in a directory of its own.
  const ChildCgroupView* cgroup_views = nullptr;
  std::size_t cgroup_view_count = 0;
  bool cgroup_view_at_top = false;
  bool set_nofile = false;
  rlimit nofile{};
  const char* mountpoint = nullptr;
  const char* local_api_dir = nullptr;  // host path, or nullptr
  const char* hostname = nullptr;
  std::size_t hostname_len = 0;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const SeccompProgram* seccomp = nullptr;
  const CapabilityPlan* capabilities = nullptr;
  bool set_mask = false;
  sigset_t mask{};  // set_mask: the mask sliver-init is exec'd with
};

[[noreturn]] void childFail(const ChildPlan& plan, int step, int detail = -1, int err = 0) {
  ChildReport report{step, err != 0 ? err : errno, detail};
  ssize_t ignored = ::write(plan.error_fd, &report, sizeof report);
  (void)ignored;
  ::_exit(127);
}

// Creates a mount point the overlay's image may lack. An existing one must be a
// real directory: before pivot_root a symlink planted by the sliver's root
// would resolve against the host's tree (only in this mount namespace, which
// loses it at pivot_root, but there is no reason to follow it at all).
bool ensureDir(const char* path, mode_t mode) {
  if (::mkdir(path, mode) == 0) return true;
  if (errno != EEXIST) return false;
  struct stat st;
  if (::lstat(path, &st) != 0) return false;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return false;
  }
  return true;
}

// The child between clone3 and exec: async-signal-safe calls only (raw syscalls
// where glibc would consult its thread list, e.g. setresuid's broadcast to every
// thread of the parent, which the child does not have).
[[noreturn]] void runChild(const ChildPlan& plan) {
  // 0. Host root with every capability over fresh namespaces, waiting for a
  // parent that may be killed at any moment: die with it. (getppid() cannot
  // tell whether the parent died before this line — it reads 0 in a new pid
  // namespace — but the sync socket can: once the descriptors below are
  // closed, the parent's end of it is the only one left, and its death is EOF.)
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Nothing of the parent that the child does not need: no copy of sliverd's
  // listening sockets or clients may outlive sliverd here, and the parent's end
  // of the sync socket must not stay open in the child, or EOF never comes.
  {
    unsigned next = 0;
    for (std::size_t i = 0; i < plan.keep_count; ++i) {
      unsigned keep = static_cast<unsigned>(plan.keep_fds[i]);
      if (keep > next) ::syscall(SYS_close_range, next, keep - 1, 0u);
      next = keep + 1;
    }
    ::syscall(SYS_close_range, next, ~0u, 0u);
  }
  // A session of its own: no controlling terminal (sliverd's, if it had one,
  // would be reachable through /dev/tty), no process group of sliverd's.
  if (::setsid() < 0) childFail(plan, kStepSession);

  // 1. Wait for the parent: id maps written, v1 cgroups set, overlay built.
  int overlay_fd = -1;
  {
    char byte = 0;
    std::size_t fds = 0;
    const ssize_t n = base::receiveFdsInto(plan.sync_fd, {&byte, 1}, {&overlay_fd, 1}, fds);
    if (n < 0 && errno == EPROTO) childFail(plan, kStepReceive, -1, EPROTO);
    // EOF: the parent died (or gave up, and reports why itself).
    if (n != 1) ::_exit(127);
    if (fds != 1) childFail(plan, kStepReceive, -1, EPROTO);
  }
  // From "go" on this is the sliver, which outlives sliverd by design (the
  // change of credentials below would clear the signal anyway).
  ::prctl(PR_SET_PDEATHSIG, 0);

  // 1b. The cgroup namespace, now that the parent has placed the child in the
  // sliver's cgroup in every hierarchy (a v1 one only after clone3): its root
  // is the sliver's own cgroup everywhere, and /proc/self/cgroup shows "/".
  if (::unshare(CLONE_NEWCGROUP) != 0) childFail(plan, kStepCgroupNs);

  // 2. Nothing mounted here may propagate back to the host.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    childFail(plan, kStepMountSlave);
  }

  // 3. The overlay, attached in this mount namespace only. Still as host uid 0
  // (unmapped here, but the owner of the host directories on the way), since
  // root of the user namespace has no search permission in host directories
  // that are not world-searchable. The mount point is looked up by path: an fd
  // opened before clone3 would name the parent's mount namespace.
  if (::move_mount(overlay_fd, "", AT_FDCWD, plan.mountpoint, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    childFail(plan, kStepMoveRootfs);
  }
  if (::fchdir(overlay_fd) != 0) childFail(plan, kStepChdirRootfs);
  ::close(overlay_fd);

  // sliverd's local API directory, cloned from this namespace's copy of the
  // host's tree while the child still has the host's root uid (which owns the
  // directories on the way; as the slice's root it may not search them).
  int local_api_fd = -1;
  if (plan.local_api_dir != nullptr) {
    local_api_fd = static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, plan.local_api_dir,
                                              OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if (local_api_fd < 0 ||
        ::mount_setattr(local_api_fd, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
      childFail(plan, kStepMountLocalApi);
    }
  }

  // 4. Root of the new user namespace (host uid/gid ids.first) before creating
  // anything: a file created by an unmapped uid could not be owned inside.
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setgroups, 0, nullptr) != 0 ||
      ::syscall(SYS_setresuid, 0, 0, 0) != 0) {
    childFail(plan, kStepSetIds);
  }
  for (int i = 0; i < static_cast<int>(sizeof kDevMountDirs / sizeof kDevMountDirs[0]); ++i) {
    if (!ensureDir(kDevMountDirs[i], 0755)) childFail(plan, kStepMkdir, i);
  }

  // 5. /proc of the new pid namespace.
  if (::mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    childFail(plan, kStepMountProc);
  }

  // 6. A minimal /dev: tmpfs, a few host device nodes, a private devpts.
  if (::mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=4m") != 0) {
    childFail(plan, kStepMountDev);
  }
  {
    char target[32];
    char source[32];
    for (int i = 0; i < static_cast<int>(sizeof kDevNodes / sizeof kDevNodes[0]); ++i) {
      // "dev/<name>" and "/dev/<name>", built without the heap.
      std::size_t len = std::strlen(kDevNodes[i]);
      std::memcpy(source, "/dev/", 5);
      std::memcpy(source + 5, kDevNodes[i], len + 1);
      std::memcpy(target, source + 1, len + 5);
      int fd = ::open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
      if (fd < 0) childFail(plan, kStepBindDevNode, i);
      ::close(fd);
      if (::mount(source, target, nullptr, MS_BIND, nullptr) != 0) {
        childFail(plan, kStepBindDevNode, i);
      }
    }
  }
  if (!ensureDir("dev/pts", 0755) || ::mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                                             "newinstance,ptmxmode=0666,mode=0620,gid=5") != 0) {
    childFail(plan, kStepMountDevPts);
  }
  if (!ensureDir("dev/shm", 01777) ||
      ::mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
    childFail(plan, kStepMountDevShm);
  }
  for (int i = 0; i < static_cast<int>(sizeof kDevLinks / sizeof kDevLinks[0]); ++i) {
    if (::symlink(kDevLinks[i][0], kDevLinks[i][1]) != 0 && errno != EEXIST) {
      childFail(plan, kStepDevLinks, i);
    }
  }

  // 7. /sys, read-only: the parent's clone of the host's sysfs (a fresh sysfs
  // needs the network namespace's owner, and we share the node's), without
  // the mounts beneath it — the host's cgroup hierarchies, bpffs, debugfs.
  if (::move_mount(plan.sys_fd, "", AT_FDCWD, "sys", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    childFail(plan, kStepMountSys);
  }
  ::close(plan.sys_fd);

  // 7a. /sys/fs/cgroup shows the sliver's own cgroups only: fresh cgroup
  // mounts made in its cgroup namespace, read-only.
  {
    constexpr unsigned long kFlags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (plan.cgroup_view_at_top) {
      const ChildCgroupView& view = plan.cgroup_views[0];
      if (::mount(view.fstype, view.target, view.fstype, kFlags, view.options) != 0) {
        childFail(plan, kStepMountCgroup, 0);
      }
    } else {
      if (::mount("tmpfs", "sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=755,size=64k") != 0) {
        childFail(plan, kStepMountCgroupTmpfs);
      }
      for (std::size_t i = 0; i < plan.cgroup_view_count; ++i) {
        const ChildCgroupView& view = plan.cgroup_views[i];
        if (!ensureDir(view.target, 0755) ||
            ::mount(view.fstype, view.target, view.fstype, kFlags, view.options) != 0) {
          childFail(plan, kStepMountCgroup, static_cast<int>(i));
        }
      }
      mount_attr attr{};
      attr.attr_set = MOUNT_ATTR_RDONLY;
      if (::mount_setattr(AT_FDCWD, "sys/fs/cgroup", 0, &attr, sizeof attr) != 0) {
        childFail(plan, kStepMountCgroupTmpfs);
      }
    }
  }

  // 7b. sliverd's local API at /run/sliverd: its directory, not the socket,
  // which sliverd recreates at restart. Read-only, and not recursive: nothing
  // mounted below it comes along.
  if (local_api_fd >= 0) {
    if (!ensureDir("run", 0755) || !ensureDir("run/sliverd", 0755) ||
        ::move_mount(local_api_fd, "", AT_FDCWD, "run/sliverd", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      childFail(plan, kStepMountLocalApi);
    }
    ::close(local_api_fd);
  }

  // 8. Into the overlay for good; the host's tree is detached from this
  // namespace, so no path leads back to it.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) childFail(plan, kStepPivotRoot);
  if (::umount2(".", MNT_DETACH) != 0) childFail(plan, kStepUnmountOldRoot);
  if (::chdir("/") != 0) childFail(plan, kStepUnmountOldRoot);

  if (::sethostname(plan.hostname, plan.hostname_len) != 0) childFail(plan, kStepSetHostname);

  // 9. stdio: first above 2, so that sources among 0..2 are not overwritten.
  {
    int moved[3];
    for (int i = 0; i < 3; ++i) {
      int src = plan.stdio[i] >= 0 ? plan.stdio[i] : plan.null_fd;
      moved[i] = ::fcntl(src, F_DUPFD_CLOEXEC, 3);
      if (moved[i] < 0) childFail(plan, kStepStdio, i);
    }
    for (int i = 0; i < 3; ++i) {
      if (::dup2(moved[i], i) != i) childFail(plan, kStepStdio, i);
    }
  }
  // Nothing the parent had open besides stdio and `inherit_fds` reaches
  // sliver-init.
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) childFail(plan, kStepCloseFds);
  for (std::size_t i = 0; i < plan.inherit_count; ++i) {
    if (::fcntl(plan.inherit_fds[i], F_SETFD, 0) != 0) {
      childFail(plan, kStepInheritFd, plan.inherit_fds[i]);
    }
  }

  // The sliver's open-file limit, which its root cannot raise again.
  if (plan.set_nofile && ::setrlimit(RLIMIT_NOFILE, &plan.nofile) != 0)
    childFail(plan, kStepNofile);

  // 10. Security, last: no_new_privs, the filter and the bounding set stay for
  // good.
  // With a listener: sliver-init keeps it open for good (exec'd without
  // close-on-exec here; sliver-init marks it close-on-exec for its children),
  // so that the sliver's raw socket() calls wait, rather than fail, while no
  // sliverd holds a copy, and a restarted sliverd takes one again
  // (takeSeccompListener).
  int rc = 0;
  const int listener = applySeccompWithListener(*plan.seccomp, /*no_new_privs=*/true);
  if (listener < 0) childFail(plan, kStepSeccomp, -1, -listener);
  if (::fcntl(listener, F_SETFD, 0) != 0) childFail(plan, kStepSeccomp);
  // The sliver's one Landlock domain (no_new_privs is set): sliver-init and
  // everything it starts, logins included, share it, so they reach each
  // other's abstract unix sockets and nobody else's.
  if (plan.landlock_fd >= 0) {
    rc = applyLandlockRuleset(plan.landlock_fd);
    if (rc != 0) childFail(plan, kStepLandlock, -1, -rc);
  }
  rc = applyCapabilityPlan(*plan.capabilities);
  if (rc != 0) childFail(plan, kStepCapabilities, -1, -rc);

  // Last, so no signal is held back before the exec.
  if (plan.set_mask) ::sigprocmask(SIG_SETMASK, &plan.mask, nullptr);
  ::syscall(SYS_execveat, plan.init_fd, "", plan.argv, plan.envp, AT_EMPTY_PATH);
  childFail(plan, kStepExec);
}

// Kills and reaps the child unless released (every failure after clone3).
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    base::retryOnEintr([&] { return ::waitpid(pid_, &status, 0); });
  }
  void release() { pid_ = -1; }

 private:
  pid_t pid_;
};

void writeIdMap(pid_t pid, const char* file, const IdRange& ids) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  std::string line = "0 " + std::to_string(ids.first) + " " + std::to_string(ids.count) + "\n";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) throwErrno("open " + path);
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    throwErrno("write " + path);
  }
}

void sendGo(int sock, int fd) {
  const int fds[] = {fd};
  base::sendFds(sock, "g", fds, "handing the overlay to the sliver");
}

// A detached, read-only clone of the host's /sys for the sliver. Without the
// mounts beneath it where the kernel allows (it refuses to leave out mounts that
// are locked, i.e. when this process itself runs in a user namespace's mount
// namespace): there the whole tree comes along, and /sys/fs/cgroup is still
// covered in the child.
UniqueFd cloneSys() {
  UniqueFd tree(::open_tree(AT_FDCWD, "/sys", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  unsigned int recursive = 0;
  if (!tree && errno == EINVAL) {
    recursive = AT_RECURSIVE;
    tree.reset(::open_tree(AT_FDCWD, "/sys", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  }
  if (!tree) throwErrno("open_tree /sys");
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | recursive, &attr, sizeof attr) != 0) {
    throwErrno("read-only clone of /sys");
  }
  return tree;
}

// The child's report, if it failed before the parent could read it the usual
// way (it has exited, so the pipe holds all it will ever hold; non-blocking in
// case another process still has a copy of the write end).
std::optional<ChildReport> pendingReport(int error_read) {
  int flags = ::fcntl(error_read, F_GETFL);
  if (flags < 0 || ::fcntl(error_read, F_SETFL, flags | O_NONBLOCK) != 0) return std::nullopt;
  ChildReport report;
  const ssize_t n = base::retryOnEintr([&] { return ::read(error_read, &report, sizeof report); });
  ::fcntl(error_read, F_SETFL, flags);
  if (n != static_cast<ssize_t>(sizeof report)) return std::nullopt;
  return report;
}

}  // namespace

std::string hostLimitHint(int err) {
  switch (err) {
    case ENOSPC:
      // clone3 of a new namespace past the creator's ucounts limit.
      return "a namespace count limit was reached: raise the user.max_user_namespaces, "
             "max_mnt_namespaces, max_pid_namespaces, max_uts_namespaces or "
             "max_ipc_namespaces sysctl (docs/node.md, \"Many slivers on one node\")";
    case EAGAIN:
      return "no new process: raise the kernel.pid_max or kernel.threads-max sysctl, or "
             "pids.max of a cgroup above the sliver's (docs/node.md, \"Many slivers on one "
             "node\")";
    default:
      return {};
  }
}

LaunchedSliver launchSliver(const LaunchSpec& spec) {
  const std::string who = "sliver " + spec.name;
  for (int i = 0; i < 3; ++i) {
    if (spec.stdio[i] >= 0 && ::isatty(spec.stdio[i])) {
      throw SysError(EINVAL, who + ": stdio " + std::to_string(i) +
                                 " is a terminal; a sliver shares no terminal with the host");
    }
  }
  // Everything the child needs, before it exists.
  UniqueFd init_fd(::open(spec.init_path.c_str(), O_PATH | O_CLOEXEC));
  if (!init_fd) throwErrno(who + ": open " + spec.init_path.string());
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) throwErrno(who + ": open /dev/null");
  UniqueFd sys_fd;
  try {
    sys_fd = cloneSys();
  } catch (const SysError& e) {
    throw SysError(e.err(), who + ": " + e.what());
  }
  struct stat st {};
  if (::stat(spec.image.c_str(), &st) != 0) throwErrno(who + ": image " + spec.image.string());
  if (::stat(spec.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw SysError(errno != 0 ? errno : ENOTDIR, who + ": mount point " + spec.mountpoint.string());
  }
  std::string mountpoint = spec.mountpoint.string();

  std::vector<std::string> arg_strings{"sliver-init"};
  arg_strings.insert(arg_strings.end(), spec.init_args.begin(), spec.init_args.end());
  std::vector<char*> argv;
  for (auto& a : arg_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = spec.env;
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    throwErrno(who + ": socketpair");
  }
  UniqueFd sync_parent(sv[0]);
  UniqueFd sync_child(sv[1]);
  int ep[2];
  if (::pipe2(ep, O_CLOEXEC) != 0) throwErrno(who + ": pipe");
  UniqueFd error_read(ep[0]);
  UniqueFd error_write(ep[1]);

  ChildPlan plan;
  plan.sync_fd = sync_child.get();
  plan.error_fd = error_write.get();
  plan.init_fd = init_fd.get();
  plan.null_fd = null_fd.get();
  plan.sys_fd = sys_fd.get();
  for (int i = 0; i < 3; ++i) plan.stdio[i] = spec.stdio[i];
  std::vector<int> keep_fds = {plan.sync_fd, plan.error_fd, plan.init_fd, plan.null_fd,
                               plan.sys_fd};
  for (int fd : spec.stdio) {
    if (fd >= 0) keep_fds.push_back(fd);
  }
  UniqueFd landlock;
  if (spec.scope_abstract_unix_sockets && base::landlockScopesAbstractUnixSockets()) {
    try {
      landlock = abstractUnixScopeRuleset();
    } catch (const SysError& e) {
      throw SysError(e.err(), who + ": " + e.what());
    }
    plan.landlock_fd = landlock.get();
    keep_fds.push_back(plan.landlock_fd);
  }
  for (int fd : spec.inherit_fds) {
    if (fd < 3) throw SysError(EBADF, who + ": descriptor " + std::to_string(fd) + " to inherit");
    keep_fds.push_back(fd);
  }
  plan.inherit_fds = spec.inherit_fds.data();
  plan.inherit_count = spec.inherit_fds.size();
  std::sort(keep_fds.begin(), keep_fds.end());
  keep_fds.erase(std::unique(keep_fds.begin(), keep_fds.end()), keep_fds.end());
  plan.keep_fds = keep_fds.data();
  plan.keep_count = keep_fds.size();

  std::vector<std::string> view_targets;
  std::vector<ChildCgroupView> views;
  view_targets.reserve(spec.cgroup_views.size());
  for (const CgroupView& view : spec.cgroup_views) {
    if (view.fstype != "cgroup" && view.fstype != "cgroup2") {
      throw SysError(EINVAL, who + ": cgroup view of type '" + view.fstype + "'");
    }
    if (view.dir.find('/') != std::string::npos || view.dir == "." || view.dir == ".." ||
        (view.dir.empty() && spec.cgroup_views.size() != 1)) {
      throw SysError(EINVAL, who + ": cgroup view directory '" + view.dir + "'");
    }
    view_targets.push_back(view.dir.empty() ? "sys/fs/cgroup" : "sys/fs/cgroup/" + view.dir);
  }
  for (std::size_t i = 0; i < spec.cgroup_views.size(); ++i) {
    const CgroupView& view = spec.cgroup_views[i];
    views.push_back({view_targets[i].c_str(), view.fstype.c_str(),
                     view.options.empty() ? nullptr : view.options.c_str()});
  }
  plan.cgroup_views = views.data();
  plan.cgroup_view_count = views.size();
  plan.cgroup_view_at_top = views.size() == 1 && spec.cgroup_views[0].dir.empty();
  if (spec.nofile) {
    // Raising a hard limit takes CAP_SYS_RESOURCE in the host's user namespace,
    // which the child no longer has: clamp to ours.
    rlimit ours{};
    if (::getrlimit(RLIMIT_NOFILE, &ours) != 0) throwErrno(who + ": getrlimit RLIMIT_NOFILE");
    plan.set_nofile = true;
    plan.nofile.rlim_max = std::min(spec.nofile->rlim_max, ours.rlim_max);
    plan.nofile.rlim_cur = std::min(spec.nofile->rlim_cur, plan.nofile.rlim_max);
  }
  plan.mountpoint = mountpoint.c_str();
  const std::string local_api_dir = spec.local_api_dir.string();
  if (!local_api_dir.empty()) plan.local_api_dir = local_api_dir.c_str();
  plan.hostname = spec.name.c_str();
  plan.hostname_len = spec.name.size();
  plan.argv = argv.data();
  plan.envp = envp.data();
  const CapabilityPlan capabilities =
      spec.capabilities ? *spec.capabilities : capabilityPlanFromTag("");
  plan.seccomp = spec.seccomp != nullptr ? spec.seccomp : &sliverSeccompProgram();
  plan.capabilities = &capabilities;
  if (!spec.blocked_signals.empty()) {
    plan.set_mask = true;
    sigemptyset(&plan.mask);
    for (int sig : spec.blocked_signals) sigaddset(&plan.mask, sig);
  }

  int pidfd = -1;
  clone_args args{};
  // No CLONE_NEWCGROUP: the child unshares it once it is in all its cgroups.
  args.flags =
      CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<std::uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (spec.cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<std::uint64_t>(spec.cgroup_fd);
  }
  long rc = ::syscall(SYS_clone3, &args, sizeof args);
  if (rc < 0) {
    const int err = errno;
    const std::string hint = hostLimitHint(err);
    throw SysError(err, who + ": clone3" + (hint.empty() ? "" : " (" + hint + ")"));
  }
  if (rc == 0) runChild(plan);

  pid_t pid = static_cast<pid_t>(rc);
  LaunchedSliver launched;
  launched.pid = pid;
  launched.pidfd.reset(pidfd);
  ChildGuard guard(pid);
  sync_child.reset();
  error_write.reset();
  sys_fd.reset();

  try {
    writeIdMap(pid, "uid_map", spec.ids);
    writeIdMap(pid, "gid_map", spec.ids);
    if (spec.attach) spec.attach(pid);
    // The idmapped lower layer uses the sliver's own user namespace: its maps
    // are the slice's, and no helper process is needed to hold one.
    std::string userns_path = "/proc/" + std::to_string(pid) + "/ns/user";
    UniqueFd userns(::open(userns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!userns) throwErrno("open " + userns_path);
    // The mount point doubles as the staging directory old kernels need: the
    // child's copy of this mount namespace was made before, so it never sees
    // the staged layer, and it is gone again before the child looks.
    UniqueFd overlay = makeSliverOverlay(spec.image, spec.dirs, userns.get(), spec.mountpoint);
    sendGo(sync_parent.get(), overlay.get());
  } catch (const SysError& e) {
    // Context without the strerror suffix system_error appended to what().
    std::string context = e.what();
    std::string suffix = ": " + e.code().message();
    if (context.size() >= suffix.size() &&
        context.compare(context.size() - suffix.size(), suffix.size(), suffix) == 0) {
      context.resize(context.size() - suffix.size());
    }
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid) {
      // A child that failed before "go" said why.
      if (auto report = pendingReport(error_read.get())) {
        throw SysError(report->err, who + ": " + stepName(report->step, report->detail));
      }
      context += info.si_code == CLD_EXITED ? " (the sliver's first process exited with " +
                                                  std::to_string(info.si_status) + ")"
                                            : " (the sliver's first process was killed by signal " +
                                                  std::to_string(info.si_status) + ")";
    }
    throw SysError(e.err(), who + ": " + context);
  }

  ChildReport report;
  const ssize_t n =
      base::retryOnEintr([&] { return ::read(error_read.get(), &report, sizeof report); });
  if (n < 0) throwErrno(who + ": reading the child's report");
  if (n > 0) {
    if (n != sizeof report) throw SysError(EPROTO, who + ": short report from the child");
    throw SysError(report.err, who + ": " + stepName(report.step, report.detail));
  }
  // sliverd's copy of the listener sliver-init now holds.
  launched.seccomp_listener = takeSeccompListener(launched.pidfd.get(), pid);
  if (!launched.seccomp_listener) {
    throw SysError(ENOENT, who + ": sliver-init holds no seccomp listener");
  }
  guard.release();
  return launched;
}

rlimit parseNofileLimit(std::string_view proc_limits) {
  // "Max open files            1024                 4096                 files"
  constexpr std::string_view kName = "Max open files";
  std::istringstream lines{std::string(proc_limits)};
  for (std::string line; std::getline(lines, line);) {
    if (line.compare(0, kName.size(), kName) != 0) continue;
    std::istringstream fields(line.substr(kName.size()));
    std::string soft, hard;
    fields >> soft >> hard;
    auto number = [&](const std::string& text) -> rlim_t {
      if (text == "unlimited") return RLIM_INFINITY;
      if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
        throw SysError(EINVAL, "malformed limit '" + text + "' of open files");
      }
      return static_cast<rlim_t>(std::stoull(text));
    };
    return rlimit{number(soft), number(hard)};
  }
  throw SysError(EINVAL, "no \"Max open files\" line in the process's limits");
}

rlimit nofileLimitOf(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/limits";
  const std::string text = base::readFile(path);
  try {
    return parseNofileLimit(text);
  } catch (const SysError& e) {
    throw SysError(e.err(), path + ": " + e.what());
  }
}

}  // namespace plng::node
