#include "node/raw_socket.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/if_packet.h>
#include <linux/kcmp.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "base/eintr.h"
#include "base/error.h"
#include "node/cgroup_fs.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node {
namespace {

constexpr std::string_view kListenerLink = "anon_inode:seccomp notify";

std::string linkOf(const std::string& path) {
  char target[64];
  const ssize_t n = ::readlink(path.c_str(), target, sizeof target);
  return n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

std::optional<SocketCall> receiveSocketCall(int listener) {
  // The kernel refuses a buffer that is not zeroed.
  seccomp_notif notif{};
  if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &notif) != 0) {
    if (errno == ENOENT || errno == EINTR) return std::nullopt;
    throwErrno("SECCOMP_IOCTL_NOTIF_RECV");
  }
  SocketCall call;
  call.id = notif.id;
  call.pid = static_cast<pid_t>(notif.pid);
  call.arch = notif.data.arch;
  // socket()'s arguments are ints: only the low 32 bits of each register count.
  call.domain = static_cast<int>(static_cast<std::uint32_t>(notif.data.args[0]));
  call.type = static_cast<int>(static_cast<std::uint32_t>(notif.data.args[1]));
  call.protocol = static_cast<int>(static_cast<std::uint32_t>(notif.data.args[2]));
  return call;
}

bool socketCallPending(int listener, std::uint64_t id) {
  return ::ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

int answerSocketCall(int listener, std::uint64_t id, int fd, bool cloexec) {
  // Two steps, never SECCOMP_ADDFD_FLAG_SEND: that flag marks the call answered
  // when the request is queued, and a supervisor interrupted before the caller
  // took the descriptor (killed, or any signal) withdraws the request and
  // leaves the caller's socket() returning 0 — its standard input, not a socket.
  seccomp_notif_addfd addfd{};
  addfd.id = id;
  addfd.srcfd = static_cast<std::uint32_t>(fd);
  addfd.newfd_flags = cloexec ? O_CLOEXEC : 0;
  int given;
  do {
    given = ::ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
  } while (given < 0 && errno == EINTR);
  // ESRCH: the caller was interrupted while the descriptor was on its way.
  if (given < 0) return errno == ESRCH ? -ENOENT : -errno;
  seccomp_notif_resp resp{};
  resp.id = id;
  resp.val = given;
  int rc;
  do {
    rc = ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? given : -errno;
}

std::optional<SocketCall> waitingSocketCall(pid_t tid) {
  // "41 0x2 0x3 0x1 0x0 0x0 0x0 <sp> <pc>", or "running", or -1 and the rest.
  UniqueFd file(
      ::open(("/proc/" + std::to_string(tid) + "/syscall").c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) return std::nullopt;
  char text[256];
  const ssize_t n = base::retryOnEintr([&] { return ::read(file.get(), text, sizeof text - 1); });
  if (n <= 0) return std::nullopt;
  text[n] = '\0';
  char* at = text;
  auto field = [&]() -> std::optional<unsigned long long> {
    char* end = nullptr;
    errno = 0;
    const unsigned long long value = std::strtoull(at, &end, 0);
    if (end == at || errno != 0) return std::nullopt;
    at = end;
    return value;
  };
  const auto nr = field();
  if (!nr || *nr != SYS_socket) return std::nullopt;
  const auto domain = field();
  const auto type = field();
  const auto protocol = field();
  if (!domain || !type || !protocol) return std::nullopt;
  SocketCall call;
  call.pid = tid;
  call.arch = AUDIT_ARCH_X86_64;
  // socket()'s arguments are ints: only the low 32 bits of each register count.
  call.domain = static_cast<int>(static_cast<std::uint32_t>(*domain));
  call.type = static_cast<int>(static_cast<std::uint32_t>(*type));
  call.protocol = static_cast<int>(static_cast<std::uint32_t>(*protocol));
  return call;
}

namespace {

void collectWaiting(const cgroupfs::Dir& dir, std::vector<SocketCall>& calls, int depth) {
  try {
    for (const std::string& word : cgroupfs::words(cgroupfs::readKnob(dir, "cgroup.threads"))) {
      const pid_t tid = static_cast<pid_t>(std::atoi(word.c_str()));
      if (tid <= 0) continue;
      if (auto call = waitingSocketCall(tid)) calls.push_back(*call);
    }
    if (depth >= 16) return;
    for (const std::string& name : cgroupfs::subdirs(dir)) {
      if (auto child = cgroupfs::openChild(dir, name)) collectWaiting(*child, calls, depth + 1);
    }
  } catch (const SysError&) {
    // Removed while we read it: nobody waits there.
  }
}

}  // namespace

std::vector<SocketCall> socketCallsWaitingIn(int cgroup_dir) {
  std::vector<SocketCall> calls;
  cgroupfs::Dir dir{UniqueFd(::fcntl(cgroup_dir, F_DUPFD_CLOEXEC, 0)), "the sliver's cgroup"};
  if (!dir.fd) throwErrno("dup of a cgroup directory");
  collectWaiting(dir, calls, 0);
  return calls;
}

int refuseSocketCall(int listener, std::uint64_t id, int err) {
  seccomp_notif_resp resp{};
  resp.id = id;
  resp.error = -err;
  return ::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0 ? 0 : -errno;
}

namespace {

// What the task cloned into the cgroup does, with the arguments it reads from
// our memory (shared: CLONE_VM).
struct SocketTask {
  int domain;
  int type;
  int protocol;
  int slot;
};

// The task: raw syscalls only (it runs on a stack of its own, in our memory,
// while the thread that cloned it waits). Returns 0 or an errno.
// Not instrumented by ASan: it runs on a stack ASan does not know.
__attribute__((no_sanitize_address)) int makeSocket(void* argument) {
  const auto* task = static_cast<const SocketTask*>(argument);
  const long fd = ::syscall(SYS_socket, task->domain, task->type | SOCK_CLOEXEC, task->protocol);
  if (fd < 0) return errno;
  const long moved = ::syscall(SYS_dup3, fd, task->slot, O_CLOEXEC);
  const int err = moved < 0 ? errno : 0;
  ::syscall(SYS_close, fd);
  return err;
}

#if defined(__x86_64__)
// clone3 with a stack of the child's own, where it calls fn(argument) and
// exits with its result; the parent gets the child's pid or -errno. glibc
// exports no clone3 wrapper (2.36), and a child of a raw syscall() with
// CLONE_VM and a new stack would return into a frame that is not there: the
// child's path is in assembly (as glibc's own clone does it).
long clone3WithStack(clone_args* args, int (*fn)(void*), void* argument) {
  long result;
  register int (*r12)(void*) asm("r12") = fn;
  register void* r13 asm("r13") = argument;
  asm volatile(
      "syscall\n\t"
      "test %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xor %%ebp, %%ebp\n\t"
      "mov %%r13, %%rdi\n\t"
      "call *%%r12\n\t"
      "mov %%eax, %%edi\n\t"
      "mov %[exit], %%eax\n\t"
      "syscall\n\t"
      "hlt\n\t"
      "1:\n\t"
      : "=a"(result)
      : "0"(static_cast<long>(SYS_clone3)), "D"(args), "S"(sizeof *args), "r"(r12),
        "r"(r13), [exit] "i"(SYS_exit)
      : "rcx", "r11", "memory");
  return result;
}
#endif

}  // namespace

UniqueFd socketInCgroup(int cgroup_dir, int domain, int type, int protocol) {
  // The socket's place in our descriptor table, reserved before the clone: the
  // task moves the socket there, so it needs no way to tell us a number.
  UniqueFd slot(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!slot) throwErrno("open /dev/null");
  SocketTask task{domain, type, protocol, slot.get()};
  clone_args args{};
  // CLONE_FILES: the task shares our descriptor table; CLONE_VFORK holds this
  // thread until it has exited; exit_signal 0: no SIGCHLD, and no waitpid(-1)
  // of another thread reaps it.
  args.flags = CLONE_INTO_CGROUP | CLONE_FILES | CLONE_VFORK;
  args.cgroup = static_cast<std::uint64_t>(cgroup_dir);
  args.exit_signal = 0;
  long pid;
#if defined(__x86_64__)
  // CLONE_VM too, on a small stack of its own: copying the page tables of a
  // large daemon was most of the cost (docs/benchmarks.md, "raw_socket_bench").
  // Every signal is blocked meanwhile, so that no handler of ours runs on the
  // task's stack.
  args.flags |= CLONE_VM;
  constexpr std::size_t kStackSize = 64 * 1024;
  thread_local std::unique_ptr<char[]> stack(new char[kStackSize]);
  args.stack = reinterpret_cast<std::uint64_t>(stack.get());
  args.stack_size = kStackSize;
  sigset_t all, previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  pid = clone3WithStack(&args, makeSocket, &task);
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) throw SysError(static_cast<int>(-pid), "clone3 into the sliver's cgroup");
#else
  // Elsewhere a copy-on-write copy of our memory (its stack among it), so the
  // task may run on from clone3 like a fork's child.
  pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) throwErrno("clone3 into the sliver's cgroup");
  if (pid == 0) ::_exit(makeSocket(&task));
#endif
  siginfo_t info{};
  if (base::retryOnEintr(
          [&] { return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | __WALL); }) != 0) {
    throwErrno("waitid for the socket's task");
  }
  if (info.si_code != CLD_EXITED) {
    throw SysError(
        EIO, "the task making a socket was killed by signal " + std::to_string(info.si_status));
  }
  if (info.si_status != 0) {
    throw SysError(info.si_status, "socket(" + std::to_string(domain) + ", " +
                                       std::to_string(type) + ", " + std::to_string(protocol) +
                                       ")");
  }
  return slot;
}

UniqueFd takeSeccompListener(int pidfd, pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) throwErrno("open " + dir);
  int found = -1;
  while (dirent* entry = ::readdir(d)) {
    if (entry->d_name[0] == '.') continue;
    if (linkOf(dir + "/" + entry->d_name) == kListenerLink) {
      found = std::atoi(entry->d_name);
      break;
    }
  }
  ::closedir(d);
  if (found < 0) return UniqueFd();
  UniqueFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, found, 0)));
  if (!copy)
    throwErrno("pidfd_getfd of descriptor " + std::to_string(found) + " of pid " +
               std::to_string(pid));
  // The pid named in /proc may have been another process's by then: what the
  // pidfd gave us must be a listener too.
  if (linkOf("/proc/self/fd/" + std::to_string(copy.get())) != kListenerLink) return UniqueFd();
  return copy;
}

bool sameOpenFile(int a, int b) {
  const pid_t self = ::getpid();
  return ::syscall(SYS_kcmp, self, self, KCMP_FILE, a, b) == 0;
}

void bindPacketSocket(int socket, std::uint16_t protocol, int ifindex) {
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = protocol;
  address.sll_ifindex = ifindex;
  if (::bind(socket, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    base::throwErrno("bind of a packet socket to ethertype " + std::to_string(ntohs(protocol)));
  }
}

}  // namespace plng::node
