// What a sliver may never do: a seccomp filter and a capability bounding set.
//
// Both are decided and compiled in the parent (sliverd) before it clones a
// sliver; the freshly cloned child only applies them with async-signal-safe
// calls (no heap, no exceptions, no locks). Order in the child, after it has
// finished its privileged set-up (mounts, id maps, cgroup):
//
//   applySeccomp(sliverSeccompProgram());   // needs NO_NEW_PRIVS or CAP_SYS_ADMIN
//   applyCapabilityPlan(plan);              // drops the bounding set, clears inheritable
//   execve(sliver-init)                     // root keeps only the bounding set
//
// The policy (which syscalls, which capabilities, and why) is in docs/node.md,
// "Seccomp and capabilities".
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "node/idrange.h"

namespace plng::node {

// A classic-BPF seccomp filter compiled by libseccomp, ready for
// seccomp(SECCOMP_SET_MODE_FILTER). Owns its instructions; `fprog()` is a view
// that stays valid as long as the program lives and is not moved.
struct SeccompProgram {
  std::vector<sock_filter> instructions;
  sock_fprog fprog() const {
    return sock_fprog{static_cast<unsigned short>(instructions.size()),
                      const_cast<sock_filter*>(instructions.data())};
  }
};

// The syscalls the sliver filter refuses outright, by name (each resolves on
// the native architecture). clone/unshare are refused only with CLONE_NEWUSER
// and are listed in sliverConditionallyDeniedSyscalls().
std::vector<std::string> sliverDeniedSyscalls();
// Syscalls refused only for some arguments (clone, unshare with CLONE_NEWUSER)
// or with a different errno (clone3: ENOSYS so libc falls back to clone).
std::vector<std::string> sliverConditionallyDeniedSyscalls();

// The socket families a sliver may create: AF_UNIX, AF_INET, AF_INET6 and
// AF_NETLINK. socket() of any other family fails with EAFNOSUPPORT, as on a
// kernel without it (AF_VSOCK would reach the hypervisor, AF_PACKET, AF_ALG,
// AF_KEY, ... are kernel code a sliver has no use for); socketpair() works for
// AF_UNIX only.
std::vector<int> sliverSocketFamilies();
// The netlink protocols a sliver may open: NETLINK_ROUTE (ip, getifaddrs),
// NETLINK_SOCK_DIAG (ss), NETLINK_AUDIT (login programs' records, refused by
// the kernel outside the host's user namespace anyway) and NETLINK_GENERIC
// (ethtool, iw). Any other one (KOBJECT_UEVENT: the host's device events,
// NETFILTER, XFRM, SELINUX, CONNECTOR, ...) fails with EPROTONOSUPPORT.
std::vector<int> sliverNetlinkProtocols();

// What the sliver filter does with socket(AF_INET or AF_INET6, SOCK_RAW[|flags],
// protocol) and socket(AF_PACKET, ...). A sliver holds no CAP_NET_RAW over the node's network
// namespace, so the kernel itself always refuses these (EPERM); sliverd's raw socket broker can
// make the socket for a slice with the right (docs/vnet.md, "Raw sockets").
enum class RawSockets {
  // SECCOMP_RET_USER_NOTIF: the call waits for whoever holds the filter's
  // listener (applySeccompWithListener). Installed without a listener, the call
  // fails with ENOSYS.
  kBrokered,
  // Left to the kernel, which refuses with EPERM (a process whose filter no one
  // answers: tests, and tools that would stall on an unanswered call).
  kKernel,
};

// Compiles the sliver filter: default allow; EPERM for every syscall in
// sliverDeniedSyscalls(); EPERM for clone/unshare with CLONE_NEWUSER; ENOSYS for
// clone3 (its flags live in memory a filter cannot read); EAFNOSUPPORT and
// EPROTONOSUPPORT for sockets outside sliverSocketFamilies() and
// sliverNetlinkProtocols(); EPERM for joining a netlink multicast group with
// setsockopt(NETLINK_ADD_MEMBERSHIP) (bind() with nl_groups stays possible: a
// filter cannot read the address; docs/security.md). Covers the x86_64 and
// i386 ABIs (and x32 where libseccomp knows it); a syscall from any other
// architecture kills the process. On i386, socket() and socketpair() through
// the multiplexer socketcall(2) carry their arguments in memory: they are
// refused whatever the family (EAFNOSUPPORT); the direct i386 syscalls are
// filtered like the 64-bit ones. Raw IPv4/IPv6 sockets as `raw` says (the type
// is compared under SOCK_TYPE_MASK, so SOCK_CLOEXEC and SOCK_NONBLOCK do not
// hide one); packet sockets (AF_PACKET, any type) too when brokered, refused
// with EAFNOSUPPORT otherwise. For packet capture (docs/vnet.md, "Packet
// capture"): setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP or
// PACKET_DROP_MEMBERSHIP) answers 0 and does nothing (never promiscuous);
// setsockopt(SOL_SOCKET, SO_DETACH_FILTER) answers ENOENT and does nothing
// (libpcap then filters in user space under the slice's locked filter);
// ioctl(SIOCSIFFLAGS) fails with EPERM. Throws SysError if libseccomp fails.
SeccompProgram compileSliverSeccompProgram(RawSockets raw = RawSockets::kBrokered);
// compileSliverSeccompProgram(raw), compiled once per process and value
// (thread-safe) and shared: cloning many slivers never recompiles it.
const SeccompProgram& sliverSeccompProgram(RawSockets raw = RawSockets::kBrokered);

// Async-signal-safe. Sets PR_SET_NO_NEW_PRIVS (when `no_new_privs`) and installs
// `program` on the calling thread. Returns 0 or -errno. Without no_new_privs the
// caller must hold CAP_SYS_ADMIN in its user namespace (a freshly cloned sliver
// child does), and setuid binaries inside the sliver keep working (still under
// the filter, which can never be removed).
int applySeccomp(const SeccompProgram& program, bool no_new_privs = true);
// Async-signal-safe. applySeccomp with SECCOMP_FILTER_FLAG_NEW_LISTENER: returns
// the filter's listener (a close-on-exec descriptor; SECCOMP_IOCTL_NOTIF_*
// answer the calls the filter sends to user space) or -errno. The kernel allows
// one listener in a task's whole filter chain: EBUSY when a filter the caller
// already runs under has one (a process of a sliver can never make another).
int applySeccompWithListener(const SeccompProgram& program, bool no_new_privs = true);

// A Landlock ruleset that handles no access right and scopes abstract unix
// sockets (base/landlock.h): a domain made from it only keeps its processes
// from connecting or sending to abstract unix sockets created outside it.
// One per sliver, applied by the sliver's first process before it execs
// sliver-init, so that every process of the sliver shares it (logins too: they
// are sliver-init's children, sliver_init.cpp). Throws SysError where the
// kernel lacks ABI 6 (ask base::landlockScopesAbstractUnixSockets() first).
base::UniqueFd abstractUnixScopeRuleset();
// Async-signal-safe. landlock_restrict_self(ruleset_fd): the caller and its
// future children enter a new domain nested in their current one. Needs
// no_new_privs or CAP_SYS_ADMIN in the caller's user namespace. Returns 0 or
// -errno.
int applyLandlockRuleset(int ruleset_fd);

// The capabilities root inside a sliver keeps (its bounding set), decided in the
// parent. All capabilities are relative to the sliver's user namespace.
struct CapabilityPlan {
  std::uint64_t keep_bounding = 0;  // bit n = capability n
  int last_cap = 0;                 // the kernel's /proc/sys/kernel/cap_last_cap
  bool operator==(const CapabilityPlan&) const = default;
};

// The bounding set every sliver gets (what container runtimes keep): CHOWN,
// DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
// SYS_CHROOT, AUDIT_WRITE, SETFCAP, MKNOD.
std::uint64_t defaultSliverCapabilities();
// Capabilities never granted whatever the tag says: SYS_MODULE, SYS_RAWIO,
// MAC_ADMIN, MAC_OVERRIDE, SYS_BOOT, SYS_TIME, BPF, PERFMON.
std::uint64_t neverGrantedCapabilities();

// The default set plus the slice's `capabilities` tag ("CAP_A,CAP_B"; blanks
// around names are ignored; empty = none). Throws TagError (node/resources.h)
// naming an unknown capability, one this kernel lacks, or one never granted.
// `last_cap` < 0 reads /proc/sys/kernel/cap_last_cap (throws SysError if it
// cannot).
CapabilityPlan capabilityPlanFromTag(std::string_view tag, int last_cap = -1);

// Names of the capabilities in `mask` ("CAP_CHOWN", ...), in bit order.
std::vector<std::string> capabilityNames(std::uint64_t mask);

// Async-signal-safe. Drops every capability not in keep_bounding from the
// bounding set (0..last_cap; needs CAP_SETPCAP), clears the ambient set, empties
// the inheritable set (for root, execve grants inheritable | bounding) and
// reduces permitted and effective to keep_bounding. Returns 0 or -errno.
int applyCapabilityPlan(const CapabilityPlan& plan);

// Host-side hardening the node daemon applies at start (docs/security.md,
// "Node: what a sliver shares with the host").

// What detachFromControllingTerminal() did.
struct TerminalDetach {
  bool stdin_replaced = false;  // stdin is /dev/null now (it was something else)
  std::string terminal;         // the controlling terminal given up; empty = none
};

// Points stdin at /dev/null and gives up the controlling terminal (TIOCNOTTY),
// so that no process the daemon starts can inherit a way to the terminal it was
// started from. The process group is kept: ^C at that terminal still stops the
// daemon in the foreground. A session leader would send its foreground group
// SIGHUP when it lets go: SIGHUP is ignored meanwhile. stdout and stderr are
// left alone (logs); the daemon's children never get them. Throws SysError.
TerminalDetach detachFromControllingTerminal();

// dev.tty.legacy_tiocsti (Linux 6.2): at 0, TIOCSTI (pushing bytes into a
// terminal's input) takes CAP_SYS_ADMIN in the host's user namespace, which no
// sliver has, whatever terminal it gets hold of.
struct LegacyTiocsti {
  bool present = false;  // the kernel has the sysctl
  std::string before;    // its value before ("1" or "0")
  bool changed = false;  // it was written to 0
};
// Sets `file` (the sysctl) to 0 unless it is already; a kernel without it is
// no error (present = false). Throws SysError when it cannot be written.
LegacyTiocsti disableLegacyTiocsti(
    const std::filesystem::path& file = "/proc/sys/dev/tty/legacy_tiocsti");

// A sysctl's value (its /proc/sys file, tabs as spaces, trimmed), and writing
// one. Throw SysError naming the file.
std::string readSysctl(const std::filesystem::path& file);
void writeSysctl(const std::filesystem::path& file, const std::string& value);

// net.ipv4.ping_group_range (per network namespace): the host gids whose
// processes may open ICMP datagram ("ping") sockets, which is how stock `ping`
// and `ping -6` work without CAP_NET_RAW. "1 0" (the default) allows nobody.
struct PingGroupRange {
  std::string before;  // its value before, "<low> <high>"
  std::string after;   // its value now
  bool changed = false;
};
// Makes the sysctl `file` (the caller's network namespace's) cover `ids`
// (first .. first + count - 1): left alone when it already does; otherwise set
// to the smallest range holding both what it allowed before (unless that was
// empty) and `ids`. Throws SysError when it cannot be read or written.
PingGroupRange coverPingGroupRange(
    const IdRange& ids, const std::filesystem::path& file = "/proc/sys/net/ipv4/ping_group_range");
// Writes `value` ("<low> <high>", as PingGroupRange::before) back to `file`.
// Throws SysError.
void restorePingGroupRange(const std::string& value, const std::filesystem::path& file =
                                                         "/proc/sys/net/ipv4/ping_group_range");

}  // namespace plng::node
