// sliver-probe: what a hostile slice tries from inside its sliver, for the root
// tests (run there by runInSliver's exec_fd, so nothing is installed in the
// image). Static, like sliver-init: it runs in any image. Prints `key=value`
// lines; errno values are numbers (0 = the call succeeded).
//
//   sliver-probe tty       the host's terminal: /dev/tty, TIOCSTI on fds 0-2,
//                          PID 1's session and terminal — also from inside PID 1,
//                          by ptrace (the attack of issue 7, item 11) — the
//                          device nodes under /dev and the sliver's own devpts
//   sliver-probe sockets   socket() of every family and type, netlink protocols,
//                          socketpair, netlink multicast membership; never
//                          connects or sends anything
//   sliver-probe nofile    RLIMIT_NOFILE, raising it, and how many files one
//                          process can hold, with the memory cgroup's usage before
//                          and after (the sliver's own /sys/fs/cgroup)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

void put(const char* key, long value) { std::printf("%s=%ld\n", key, value); }
void put(const std::string& key, long value) { put(key.c_str(), value); }
int err(long rc) { return rc < 0 ? errno : 0; }

// Fields 6 (session) and 7 (tty_nr) of /proc/<pid>/stat.
void statFields(const char* pid, const char* prefix) {
  std::string path = std::string("/proc/") + pid + "/stat";
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    put(std::string(prefix) + "_stat", errno);
    return;
  }
  char buf[1024] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  long state_ppid_pgrp_session_tty[5] = {};
  if (p != nullptr) {
    char state = 0;
    std::sscanf(p + 1, " %c %ld %ld %ld %ld", &state, &state_ppid_pgrp_session_tty[1],
                &state_ppid_pgrp_session_tty[2], &state_ppid_pgrp_session_tty[3],
                &state_ppid_pgrp_session_tty[4]);
  }
  put(std::string(prefix) + "_session", state_ppid_pgrp_session_tty[3]);
  put(std::string(prefix) + "_tty_nr", state_ppid_pgrp_session_tty[4]);
}

#if defined(__x86_64__)
// Runs syscalls inside another process by ptrace: the tracee is stopped, its
// registers pointed at a `syscall` instruction it already has, and resumed up
// to the syscall's exit, once per call; then its registers are put back.
class Injector {
 public:
  explicit Injector(pid_t pid) : pid_(pid) {}
  // 0 or errno (attach, stop, no syscall instruction found: ENOEXEC).
  int attach() {
    if (::ptrace(PTRACE_SEIZE, pid_, nullptr, PTRACE_O_TRACESYSGOOD) != 0) return errno;
    attached_ = true;
    if (::ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr) != 0) return errno;
    if (!waitStop()) return ECHILD;
    if (::ptrace(PTRACE_GETREGS, pid_, nullptr, &saved_) != 0) return errno;
    // The tracee sits in a syscall (sliver-init in sigwaitinfo): the two bytes
    // before its instruction pointer are that `syscall` (0f 05).
    syscall_at_ = saved_.rip - 2;
    errno = 0;
    long word = ::ptrace(PTRACE_PEEKTEXT, pid_, reinterpret_cast<void*>(syscall_at_), nullptr);
    if (errno != 0) return errno;
    if ((word & 0xffff) != 0x050f) return ENOEXEC;
    scratch_ = (saved_.rsp - 1024) & ~0xfUL;
    return 0;
  }
  // Writes `len` bytes at the scratch area (below the tracee's red zone);
  // returns its address in the tracee.
  unsigned long poke(const void* data, size_t len) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (size_t off = 0; off < len; off += sizeof(long)) {
      long word = 0;
      std::memcpy(&word, bytes + off, std::min(sizeof(long), len - off));
      ::ptrace(PTRACE_POKEDATA, pid_, reinterpret_cast<void*>(scratch_ + off),
               reinterpret_cast<void*>(word));
    }
    return scratch_;
  }
  // The syscall's return value in the tracee (-errno on failure); -ECHILD when
  // the tracee could not be driven.
  long call(long nr, long a0 = 0, long a1 = 0, long a2 = 0) {
    user_regs_struct regs = saved_;
    regs.rip = syscall_at_;
    regs.rax = static_cast<unsigned long>(nr);
    regs.orig_rax = static_cast<unsigned long>(-1);  // no syscall restart on resume
    regs.rdi = static_cast<unsigned long>(a0);
    regs.rsi = static_cast<unsigned long>(a1);
    regs.rdx = static_cast<unsigned long>(a2);
    if (::ptrace(PTRACE_SETREGS, pid_, nullptr, &regs) != 0) return -ECHILD;
    for (int stop = 0; stop < 2; ++stop) {  // syscall entry, then exit
      if (::ptrace(PTRACE_SYSCALL, pid_, nullptr, nullptr) != 0 || !waitStop()) return -ECHILD;
    }
    if (::ptrace(PTRACE_GETREGS, pid_, nullptr, &regs) != 0) return -ECHILD;
    return static_cast<long>(regs.rax);
  }
  ~Injector() {
    if (!attached_) return;
    user_regs_struct regs = saved_;
    long rax = static_cast<long>(saved_.rax);
    // Interrupted where the kernel would have restarted the call: restart it.
    if (rax == -512 || rax == -513 || rax == -514) {
      regs.rax = saved_.orig_rax;
      regs.rip = saved_.rip - 2;
    }
    regs.orig_rax = static_cast<unsigned long>(-1);
    ::ptrace(PTRACE_SETREGS, pid_, nullptr, &regs);
    ::ptrace(PTRACE_DETACH, pid_, nullptr, nullptr);
  }

 private:
  bool waitStop() {
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, __WALL);
      if (r == pid_) break;
      if (r < 0 && errno != EINTR) return false;
    }
    return WIFSTOPPED(status);
  }

  pid_t pid_;
  bool attached_ = false;
  user_regs_struct saved_{};
  unsigned long syscall_at_ = 0;
  unsigned long scratch_ = 0;
};
#endif

void walkDevices(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return;
  }
  std::vector<std::string> subdirs;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      std::printf("dev=%s %c %u:%u\n", path.c_str(), S_ISCHR(st.st_mode) ? 'c' : 'b',
                  major(st.st_rdev), minor(st.st_rdev));
    } else if (S_ISDIR(st.st_mode)) {
      subdirs.push_back(path);
    }
  }
  ::closedir(d);
  for (const auto& sub : subdirs) walkDevices(sub);
}

int tty() {
  // This process: no controlling terminal, and stdio is no terminal.
  int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  put("self_open_tty", fd < 0 ? errno : 0);
  if (fd >= 0) {
    char c = '#';
    put("self_tiocsti_tty", err(::ioctl(fd, TIOCSTI, &c)));
    ::close(fd);
  }
  for (int i = 0; i < 3; ++i) {
    char c = '#';
    put("self_tiocsti_fd" + std::to_string(i), err(::ioctl(i, TIOCSTI, &c)));
  }
  statFields("self", "self");
  statFields("1", "pid1");

  // PID 1 of the sliver, sliver-init, driven by ptrace: whatever terminal it has
  // is one the slice can use.
#if defined(__x86_64__)
  {
    Injector pid1(1);
    int attach = pid1.attach();
    put("ptrace_pid1", attach);
    if (attach == 0) {
      const char path[] = "/dev/tty";
      unsigned long at = pid1.poke(path, sizeof path);
      long tty_fd = pid1.call(SYS_openat, AT_FDCWD, static_cast<long>(at), O_RDWR | O_NOCTTY);
      put("pid1_open_tty", tty_fd < 0 ? -tty_fd : 0);
      const char c = '#';
      unsigned long ch = pid1.poke(&c, 1);
      if (tty_fd >= 0) {
        long rc = pid1.call(SYS_ioctl, tty_fd, TIOCSTI, static_cast<long>(ch));
        put("pid1_tiocsti_tty", rc < 0 ? -rc : 0);
        pid1.call(SYS_close, tty_fd);
      }
      for (int i = 0; i < 3; ++i) {
        long rc = pid1.call(SYS_ioctl, i, TIOCSTI, static_cast<long>(ch));
        put("pid1_tiocsti_fd" + std::to_string(i), rc < 0 ? -rc : 0);
      }
    }
  }
#else
  put("ptrace_pid1", ENOSYS);
#endif

  // Device nodes: only the harmless ones; a pty of the sliver's own devpts.
  walkDevices("/dev");
  int master = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  put("open_ptmx", master < 0 ? errno : 0);
  if (master >= 0) {
    unsigned index = 0;
    put("tiocgptn", err(::ioctl(master, TIOCGPTN, &index)));
    put("ptmx_index", index);
    struct stat pts {
    }, ptmx{};
    std::string slave = "/dev/pts/" + std::to_string(index);
    put("own_pts_exists", ::stat(slave.c_str(), &pts) == 0 ? 1 : 0);
    put("own_pts_same_devpts",
        ::stat("/dev/pts/ptmx", &ptmx) == 0 && pts.st_dev == ptmx.st_dev ? 1 : 0);
    walkDevices("/dev/pts");  // now with the sliver's own pty
    ::close(master);
  }
  return 0;
}

int sockets() {
  const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW};
  for (int family = 0; family < 64; ++family) {
    std::printf("family=%d", family);
    for (int type : types) {
      int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
      std::printf(" %d", fd < 0 ? errno : 0);
      if (fd >= 0) ::close(fd);
    }
    std::printf("\n");
  }
  for (int protocol = 0; protocol < 32; ++protocol) {
    int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    std::printf("netlink=%d %d\n", protocol, fd < 0 ? errno : 0);
    if (fd >= 0) ::close(fd);
  }
  int pair[2];
  int rc = ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
  put("socketpair_unix", err(rc));
  if (rc == 0) {
    ::close(pair[0]);
    ::close(pair[1]);
  }
  put("socketpair_inet", err(::socketpair(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, pair)));

  int nl = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  put("netlink_route", nl < 0 ? errno : 0);
  if (nl >= 0) {
    int group = RTNLGRP_LINK;
    put("nl_add_membership",
        err(::setsockopt(nl, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group)));
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = RTMGRP_LINK;
    put("nl_bind_groups", err(::bind(nl, reinterpret_cast<sockaddr*>(&addr), sizeof addr)));
    ::close(nl);
  }
  return 0;
}

// The memory cgroup of the sliver's own cgroup view: its usage file and its
// memory.stat, both opened before the descriptors run out.
struct CgroupMemory {
  int usage = -1;
  int stat = -1;
  const char* cache_key = "";  // memory.stat's page cache line
};

CgroupMemory openCgroupMemory() {
  CgroupMemory m;
  if ((m.usage = ::open("/sys/fs/cgroup/memory.current", O_RDONLY | O_CLOEXEC)) >= 0) {
    m.stat = ::open("/sys/fs/cgroup/memory.stat", O_RDONLY | O_CLOEXEC);
    m.cache_key = "file";
  } else if ((m.usage = ::open("/sys/fs/cgroup/memory/memory.usage_in_bytes",
                               O_RDONLY | O_CLOEXEC)) >= 0) {
    m.stat = ::open("/sys/fs/cgroup/memory/memory.stat", O_RDONLY | O_CLOEXEC);
    m.cache_key = "cache";
  }
  return m;
}

// The cgroup's usage without its page cache, which the kernel may reclaim at
// any moment (a measurement that counted it went negative under memory
// pressure); -1 when unreadable.
long readCgroupMemory(const CgroupMemory& m) {
  char buf[8192] = {};
  ssize_t n = m.usage < 0 ? -1 : ::pread(m.usage, buf, 63, 0);
  if (n <= 0) return -1;
  long usage = std::strtol(buf, nullptr, 10);
  n = m.stat < 0 ? -1 : ::pread(m.stat, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const std::size_t key_len = std::strlen(m.cache_key);
  for (const char* line = buf; *line != '\0';) {
    if (std::strncmp(line, m.cache_key, key_len) == 0 && line[key_len] == ' ') {
      return usage - std::strtol(line + key_len + 1, nullptr, 10);
    }
    const char* end = std::strchr(line, '\n');
    if (end == nullptr) break;
    line = end + 1;
  }
  return -1;
}

int nofile() {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  put("nofile_soft", static_cast<long>(lim.rlim_cur));
  put("nofile_hard", static_cast<long>(lim.rlim_max));
  rlimit higher = lim;
  higher.rlim_max = lim.rlim_max + 1;
  higher.rlim_cur = higher.rlim_max;
  put("raise_hard", err(::setrlimit(RLIMIT_NOFILE, &higher)));
  rlimit full = lim;
  full.rlim_cur = lim.rlim_max;
  put("raise_soft", err(::setrlimit(RLIMIT_NOFILE, &full)));
  const CgroupMemory memory = openCgroupMemory();
  long before = readCgroupMemory(memory);
  long opened = 0;
  int last_errno = 0;
  for (;;) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      last_errno = errno;
      break;
    }
    ++opened;
  }
  long after = readCgroupMemory(memory);
  put("opened", opened);
  put("open_errno", last_errno);
  put("mem_before", before);
  put("mem_after", after);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string what = argc > 1 ? argv[1] : "";
  if (what == "tty") return tty();
  if (what == "sockets") return sockets();
  if (what == "nofile") return nofile();
  std::fprintf(stderr, "usage: sliver-probe tty|sockets|nofile\n");
  return 2;
}
