// Raw sockets for slivers, the kernel's half of sliverd's raw socket broker
// (docs/vnet.md, "Raw sockets", and "Packet capture" for packet sockets): the socket() calls a
// sliver's seccomp filter hands to user space (security.h, RawSockets::kBrokered), the socket made
// inside the sliver's cgroup, and the answer that gives it to the caller.
//
// A sliver can never make a raw socket itself: the node's network namespace
// belongs to the host's user namespace, where a sliver holds no CAP_NET_RAW.
// A socket keeps the cgroup of the task that made it, and the cgroup BPF
// programs that police raw traffic key on that cgroup: so the socket is made
// by a task placed in the sliver's unified-hierarchy cgroup, never by sliverd.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "base/fd.h"

namespace plng::node {

// One socket() call of a sliver's process, waiting for an answer.
struct SocketCall {
  std::uint64_t id = 0;    // the notification's cookie
  pid_t pid = 0;           // the caller, in the listener holder's pid namespace (0: not visible)
  std::uint32_t arch = 0;  // AUDIT_ARCH_* of the call (x86_64, i386 or x32)
  int domain = 0;
  int type = 0;  // with SOCK_CLOEXEC / SOCK_NONBLOCK as the caller passed them
  int protocol = 0;
};

// Reads the next call from a seccomp listener. nullopt: none to answer after all
// (the caller was killed or interrupted before it could be read: ENOENT; or a
// signal interrupted the wait: EINTR). Blocks while there is none: call it when
// the listener polls readable. Throws SysError otherwise.
std::optional<SocketCall> receiveSocketCall(int listener);

// Whether `id` still waits for an answer (SECCOMP_IOCTL_NOTIF_ID_VALID): its
// caller may have been killed, and its pid reused, since it was read.
bool socketCallPending(int listener, std::uint64_t id);

// Installs `fd` in the caller (SECCOMP_IOCTL_NOTIF_ADDFD) and then makes its
// number the return value of its socket() (SECCOMP_IOCTL_NOTIF_SEND). Not in
// one step with SECCOMP_ADDFD_FLAG_SEND: the kernel marks such a call answered
// as soon as the request is queued, and a supervisor interrupted before the
// caller took the descriptor (killed with SIGKILL, or any signal) leaves that
// caller's socket() returning 0. In two steps, a supervisor killed between
// them leaves the call unanswered for the next one to answer (the caller then
// keeps one descriptor it was not told of), and a caller interrupted between
// them restarts its socket() (the same). `cloexec` sets O_CLOEXEC on the
// caller's descriptor; file status flags (O_NONBLOCK) belong to the socket and
// are shared. Returns the caller's descriptor number or -errno (ENOENT: the
// caller is gone or was interrupted; EMFILE: it has no descriptor left).
int answerSocketCall(int listener, std::uint64_t id, int fd, bool cloexec);

// The socket() call task `tid` is blocked in, read from /proc/<tid>/syscall
// (native calls only; `id` is 0: the kernel does not show it). nullopt when
// the task runs, is gone, or waits in another system call.
std::optional<SocketCall> waitingSocketCall(pid_t tid);

// Every task of the cgroup `cgroup_dir` (a directory of the cgroup2
// hierarchy) and of the cgroups below it that is blocked in socket(), as
// waitingSocketCall() reads it, with `pid` set to the task's id.
std::vector<SocketCall> socketCallsWaitingIn(int cgroup_dir);

// Fails the call with `err` (> 0). Returns 0 or -errno (ENOENT: gone).
int refuseSocketCall(int listener, std::uint64_t id, int err);

// socket(domain, type, protocol) made by a short-lived task cloned into the
// cgroup `cgroup_dir` (a descriptor of a directory of the cgroup2 hierarchy) —
// clone3(CLONE_INTO_CGROUP | CLONE_FILES | CLONE_VFORK): the task shares this
// process's descriptor table, so the socket needs no passing back, and lives
// only for the one call. Close-on-exec here whatever `type` says. Throws
// SysError with the kernel's errno (EPROTONOSUPPORT, EMFILE, ...).
base::UniqueFd socketInCgroup(int cgroup_dir, int domain, int type, int protocol);

// Binds the packet socket `socket` (AF_PACKET) to `protocol` (an ethertype in
// network byte order, as socket() takes it) on the device `ifindex` (0: every
// device, what socket(AF_PACKET, type, protocol) does at once), done after its
// filter is in place (vnet-bpf/capture_filter.h). Throws SysError.
void bindPacketSocket(int socket, std::uint16_t protocol, int ifindex = 0);

// A copy (pidfd_getfd, which host root may take of any process) of the seccomp
// listener process `pid` holds: the first of its descriptors that
// /proc/<pid>/fd shows as "anon_inode:seccomp notify". `pidfd` must refer to
// the same process (it pins it: a reused pid is not read). Empty when the
// process holds none. Throws SysError (ESRCH: the process is gone).
base::UniqueFd takeSeccompListener(int pidfd, pid_t pid);

// Whether two descriptors of this process are the same open file (kcmp
// KCMP_FILE): two copies of one listener must be watched once.
bool sameOpenFile(int a, int b);

}  // namespace plng::node
