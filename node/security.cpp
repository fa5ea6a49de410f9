#include "node/security.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "base/eintr.h"
#include "base/error.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/landlock.h"
#include "base/proc.h"
#include "base/strings.h"
#include "node/resources.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node {
namespace {

// Refused with EPERM on every ABI. Each entry names the hole it closes; a
// sliver's root is root only over its own user namespace, so most of these fail
// anyway for lack of an init-namespace capability — the filter keeps the kernel
// code behind them out of reach too, and holds when a tag grants more
// capabilities.
constexpr std::array kDeniedSyscalls = {
    // Kernel code: loading, unloading, replacing the kernel.
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    // eBPF and perf are the node's (vnet-bpf): programs, maps and perf events.
    "bpf", "perf_event_open",
    // The kernel keyring is not namespaced: keys leak across slivers.
    "keyctl", "add_key", "request_key",
    // File handles bypass the mount tree (the "shocker" escape). name_to_handle_at
    // only reads a handle and stays allowed (systemd uses it to compare mounts).
    "open_by_handle_at",
    // Whole-node state: power, swap, process accounting, the kernel log.
    "reboot", "swapon", "swapoff", "acct", "syslog",
    // The host clock.
    "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    // Raw I/O ports.
    "iopl", "ioperm",
    // Obsolete or abused kernel interfaces: a.out loader, oprofile, userfaultfd
    // (stalls kernel copies to widen race windows), io_uring (a large, often
    // exploited attack surface that bypasses syscall filtering of its operations).
    "uselib", "lookup_dcookie", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register"};

// Refused only for some arguments.
constexpr std::array kConditionallyDeniedSyscalls = {"clone",      "unshare",    "clone3", "socket",
                                                     "socketpair", "setsockopt", "ioctl"};

constexpr std::array kSocketFamilies = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
constexpr std::array kNetlinkProtocols = {NETLINK_ROUTE, NETLINK_SOCK_DIAG, NETLINK_AUDIT,
                                          NETLINK_GENERIC};
// Above every family and protocol the kernel knows today (AF_MAX 46, netlink 23
// protocols, MAX_LINKS 32): the rules below refuse each value up to here one by
// one, and everything from here on with a single comparison.
constexpr int kFamilyLimit = 64;
// The kernel's SOCK_TYPE_MASK (not exported to user space): the type without
// SOCK_CLOEXEC and SOCK_NONBLOCK.
constexpr scmp_datum_t kSocketTypeMask = 0xf;
constexpr int kNetlinkLimit = 32;

int resolveOrThrow(const char* name) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR)
    throw SysError(EINVAL, std::string("seccomp: unknown syscall ") + name);
  return nr;
}

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using FilterCtx = std::unique_ptr<void, FilterDeleter>;

void check(int rc, const std::string& what) {
  if (rc < 0) throw SysError(-rc, "seccomp: " + what);
}

std::uint64_t bit(int cap) { return std::uint64_t{1} << cap; }

}  // namespace

std::vector<std::string> sliverDeniedSyscalls() {
  return {kDeniedSyscalls.begin(), kDeniedSyscalls.end()};
}

std::vector<std::string> sliverConditionallyDeniedSyscalls() {
  return {kConditionallyDeniedSyscalls.begin(), kConditionallyDeniedSyscalls.end()};
}

std::vector<int> sliverSocketFamilies() { return {kSocketFamilies.begin(), kSocketFamilies.end()}; }

std::vector<int> sliverNetlinkProtocols() {
  return {kNetlinkProtocols.begin(), kNetlinkProtocols.end()};
}

SeccompProgram compileSliverSeccompProgram(RawSockets raw) {
  FilterCtx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) throw SysError(ENOMEM, "seccomp: seccomp_init");
  // A syscall from an architecture the filter does not describe could reach the
  // denied calls under other numbers: kill rather than guess.
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
        "set bad-arch action");
  // We install the program ourselves; libseccomp must not touch NO_NEW_PRIVS.
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0), "clear NNP attribute");
#if defined(__x86_64__)
  // 32-bit binaries run on x86_64 nodes through int 0x80 with i386 numbers; x32
  // uses x86_64 numbers with a marker bit. libseccomp translates every rule.
  check(seccomp_arch_add(ctx.get(), SCMP_ARCH_X86), "add arch i386");
  check(seccomp_arch_add(ctx.get(), SCMP_ARCH_X32), "add arch x32");
#endif

  const std::uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
  for (const char* name : kDeniedSyscalls) {
    check(seccomp_rule_add(ctx.get(), eperm, resolveOrThrow(name), 0), std::string("deny ") + name);
  }
  // A nested user namespace hands its creator every capability over it, which
  // re-opens what the bounding set closed (network namespaces and their
  // nf_tables, mounts of userns-mountable filesystems): slivers may not nest them.
  check(seccomp_rule_add(ctx.get(), eperm, resolveOrThrow("unshare"), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)),
        "deny unshare(CLONE_NEWUSER)");
  // clone's flags are its first argument on x86_64 and i386 (not on s390).
  check(seccomp_rule_add(ctx.get(), eperm, resolveOrThrow("clone"), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)),
        "deny clone(CLONE_NEWUSER)");
  // clone3's flags sit in a struct the filter cannot read; ENOSYS makes glibc
  // (and Go, and musl) fall back to clone, which the rule above sees.
  check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), resolveOrThrow("clone3"), 0),
        "clone3 to ENOSYS");

  // Socket families: libseccomp has no "not in" and takes one comparison per
  // argument and rule, so every family outside the list gets a rule of its own,
  // and all values from kFamilyLimit up (including negative ints, which the
  // 64-bit comparison sees as huge) one more.
  const int socket_nr = resolveOrThrow("socket");
  const std::uint32_t no_family = SCMP_ACT_ERRNO(EAFNOSUPPORT);
  for (int family = 0; family < kFamilyLimit; ++family) {
    if (std::find(kSocketFamilies.begin(), kSocketFamilies.end(), family) !=
        kSocketFamilies.end()) {
      continue;
    }
    if (family == AF_PACKET && raw == RawSockets::kBrokered) continue;  // brokered below
    check(seccomp_rule_add(ctx.get(), no_family, socket_nr, 1,
                           SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))),
          "deny socket family " + std::to_string(family));
  }
  check(seccomp_rule_add(ctx.get(), no_family, socket_nr, 1,
                         SCMP_A0(SCMP_CMP_GE, static_cast<scmp_datum_t>(kFamilyLimit))),
        "deny socket families from " + std::to_string(kFamilyLimit));
  // Netlink: the protocol is the third argument.
  const std::uint32_t no_protocol = SCMP_ACT_ERRNO(EPROTONOSUPPORT);
  for (int protocol = 0; protocol < kNetlinkLimit; ++protocol) {
    if (std::find(kNetlinkProtocols.begin(), kNetlinkProtocols.end(), protocol) !=
        kNetlinkProtocols.end()) {
      continue;
    }
    check(seccomp_rule_add(ctx.get(), no_protocol, socket_nr, 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                           SCMP_A2(SCMP_CMP_EQ, static_cast<scmp_datum_t>(protocol))),
          "deny netlink protocol " + std::to_string(protocol));
  }
  check(seccomp_rule_add(ctx.get(), no_protocol, socket_nr, 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                         SCMP_A2(SCMP_CMP_GE, static_cast<scmp_datum_t>(kNetlinkLimit))),
        "deny netlink protocols from " + std::to_string(kNetlinkLimit));
  // Raw IPv4/IPv6 sockets go to sliverd's broker, which makes them for a slice
  // with the right (it checks the right at every call, so granting or revoking
  // it needs no new filter). The type may carry SOCK_CLOEXEC/SOCK_NONBLOCK;
  // the family is compared on its low 32 bits, the int the kernel reads. i386's
  // socketcall(2) is refused above whatever the family: only the direct i386
  // socket(2) is brokered there.
  if (raw == RawSockets::kBrokered) {
    for (int family : {AF_INET, AF_INET6}) {
      check(seccomp_rule_add(
                ctx.get(), SCMP_ACT_NOTIFY, socket_nr, 2,
                SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, static_cast<scmp_datum_t>(family)),
                SCMP_A1(SCMP_CMP_MASKED_EQ, kSocketTypeMask, SOCK_RAW)),
            "notify raw sockets of family " + std::to_string(family));
    }
    // Packet sockets (capture, docs/vnet.md "Packet capture") go to the broker
    // too, whatever the type: it makes them, filtered to the slice's own
    // packets, for a slice with net_capture, and refuses the rest.
    for (int type : {SOCK_RAW, SOCK_DGRAM, SOCK_PACKET}) {
      check(seccomp_rule_add(
                ctx.get(), SCMP_ACT_NOTIFY, socket_nr, 2,
                SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_PACKET),
                SCMP_A1(SCMP_CMP_MASKED_EQ, kSocketTypeMask, static_cast<scmp_datum_t>(type))),
            "notify packet sockets of type " + std::to_string(type));
    }
    // Any other type never reaches the kernel's packet code either.
    for (int type = 0; type <= static_cast<int>(kSocketTypeMask); ++type) {
      if (type == SOCK_RAW || type == SOCK_DGRAM || type == SOCK_PACKET) continue;
      check(seccomp_rule_add(
                ctx.get(), SCMP_ACT_ERRNO(ESOCKTNOSUPPORT), socket_nr, 2,
                SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, AF_PACKET),
                SCMP_A1(SCMP_CMP_MASKED_EQ, kSocketTypeMask, static_cast<scmp_datum_t>(type))),
            "deny packet sockets of type " + std::to_string(type));
    }
  }
  // Never promiscuous (or all-multicast): a packet socket's memberships are
  // answered with success and no effect. The membership's kind is in memory a
  // filter cannot read, so every one is; a slice's socket sees only the
  // slice's own packets, which reach it without them. Plain `tcpdump` (which
  // asks for promiscuous mode unless -p) works.
  for (int option : {PACKET_ADD_MEMBERSHIP, PACKET_DROP_MEMBERSHIP}) {
    check(seccomp_rule_add(
              ctx.get(), SCMP_ACT_ERRNO(0), resolveOrThrow("setsockopt"), 2,
              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, SOL_PACKET),
              SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, static_cast<scmp_datum_t>(option))),
          "neutralise packet memberships");
  }
  // A frame sent with PACKET_QDISC_BYPASS skips tc egress, where sliverd drops
  // every frame a sliver's packet socket sends (vnet-bpf/packet_guard.h).
  // PACKET_TX_RING stays: its frames go through the device queue, and tc.
  check(seccomp_rule_add(ctx.get(), eperm, resolveOrThrow("setsockopt"), 2,
                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, SOL_PACKET),
                         SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, PACKET_QDISC_BYPASS)),
        "deny PACKET_QDISC_BYPASS");
  // A slice's packet socket carries a locked filter (SO_LOCK_FILTER), which the
  // kernel refuses to detach with EPERM; libpcap takes that for a fatal error
  // after its own filter failed to attach, where "no filter" (ENOENT) makes it
  // filter in user space. Detaching is answered ENOENT for every socket of a
  // sliver: a filter a sliver attached itself stays on its socket.
  check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOENT), resolveOrThrow("setsockopt"), 2,
                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, SOL_SOCKET),
                         SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu, SO_DETACH_FILTER)),
        "answer SO_DETACH_FILTER");
  // Interface flags (up, down, promiscuous) are the node's: the kernel refuses
  // a sliver anyway (no CAP_NET_ADMIN over the node's network namespace).
  check(seccomp_rule_add(ctx.get(), eperm, resolveOrThrow("ioctl"), 1,
                         SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, SIOCSIFFLAGS)),
        "deny SIOCSIFFLAGS");
  // socketpair() exists for AF_UNIX only (the kernel answers EOPNOTSUPP for the
  // others it knows): anything else is refused like socket().
  check(seccomp_rule_add(ctx.get(), no_family, resolveOrThrow("socketpair"), 1,
                         SCMP_A0(SCMP_CMP_NE, AF_UNIX)),
        "deny socketpair families");
  // Netlink multicast groups carry the node's network events (links, addresses,
  // routes, neighbours, tc) and, for generic netlink, other kernel events. A
  // group joined with setsockopt is refused; groups below 32 can also be joined
  // through bind()'s sockaddr, which a filter cannot read (docs/security.md).
  check(seccomp_rule_add(ctx.get(), eperm, resolveOrThrow("setsockopt"), 2,
                         SCMP_A1(SCMP_CMP_EQ, SOL_NETLINK),
                         SCMP_A2(SCMP_CMP_EQ, NETLINK_ADD_MEMBERSHIP)),
        "deny NETLINK_ADD_MEMBERSHIP");

  // libseccomp 2.5.4 (Debian 12) has no seccomp_export_bpf_mem: export into a
  // memfd and read it back.
  UniqueFd memfd(static_cast<int>(::syscall(SYS_memfd_create, "sliver-seccomp", MFD_CLOEXEC)));
  if (!memfd) throwErrno("seccomp: memfd_create");
  check(seccomp_export_bpf(ctx.get(), memfd.get()), "export BPF");
  off_t size = ::lseek(memfd.get(), 0, SEEK_END);
  if (size < 0) throwErrno("seccomp: lseek exported filter");
  if (size == 0 || size % sizeof(sock_filter) != 0 || size / sizeof(sock_filter) > BPF_MAXINSNS) {
    throw SysError(EINVAL, "seccomp: exported filter has " + std::to_string(size) + " bytes");
  }
  SeccompProgram program;
  program.instructions.resize(static_cast<std::size_t>(size) / sizeof(sock_filter));
  auto* out = reinterpret_cast<char*>(program.instructions.data());
  off_t done = 0;
  while (done < size) {
    const ssize_t n = base::retryOnEintr([&] {
      return ::pread(memfd.get(), out + done, static_cast<std::size_t>(size - done), done);
    });
    if (n < 0) throwErrno("seccomp: read exported filter");
    if (n == 0) throw SysError(EIO, "seccomp: exported filter shrank");
    done += n;
  }
  return program;
}

const SeccompProgram& sliverSeccompProgram(RawSockets raw) {
  if (raw == RawSockets::kBrokered) {
    static const SeccompProgram brokered = compileSliverSeccompProgram(RawSockets::kBrokered);
    return brokered;
  }
  static const SeccompProgram kernel = compileSliverSeccompProgram(RawSockets::kKernel);
  return kernel;
}

int applySeccomp(const SeccompProgram& program, bool no_new_privs) {
  if (no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  sock_fprog fprog = program.fprog();
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) return -errno;
  return 0;
}

int applySeccompWithListener(const SeccompProgram& program, bool no_new_privs) {
  if (no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  sock_fprog fprog = program.fprog();
  const long fd =
      ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
  return fd < 0 ? -errno : static_cast<int>(fd);
}

namespace {
// struct landlock_ruleset_attr as of ABI 6 (Linux 6.12); Debian 12's
// linux/landlock.h (6.1) lacks `scoped`. The kernel takes the size given.
struct LandlockRulesetAttr {
  std::uint64_t handled_access_fs = 0;
  std::uint64_t handled_access_net = 0;
  std::uint64_t scoped = 0;
};
constexpr std::uint64_t kScopeAbstractUnixSocket = 1ull
                                                   << 0;  // LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
}  // namespace

base::UniqueFd abstractUnixScopeRuleset() {
  // No access right handled: the domain restricts nothing but the scope.
  LandlockRulesetAttr attr;
  attr.scoped = kScopeAbstractUnixSocket;
  base::UniqueFd ruleset(
      static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0u)));
  if (!ruleset) {
    base::throwErrno("landlock ruleset scoping abstract unix sockets (Landlock ABI " +
                     std::to_string(base::landlockAbiVersion()) + ", scoping needs " +
                     std::to_string(base::kLandlockAbstractUnixScopeAbi) + ")");
  }
  return ruleset;
}

int applyLandlockRuleset(int ruleset_fd) {
  return ::syscall(SYS_landlock_restrict_self, ruleset_fd, 0u) == 0 ? 0 : -errno;
}

std::uint64_t defaultSliverCapabilities() {
  // Docker's and Podman's default set, minus NET_RAW (raw sockets come from
  // sliverd's privileged operations: DESIGN.md) — and capabilities over the
  // node's network namespace mean nothing to a user namespace anyway. MKNOD is
  // kept: in a user namespace it only creates overlayfs whiteouts (0:0 char
  // devices), which nested containers and package managers need.
  return bit(CAP_CHOWN) | bit(CAP_DAC_OVERRIDE) | bit(CAP_FOWNER) | bit(CAP_FSETID) |
         bit(CAP_KILL) | bit(CAP_SETGID) | bit(CAP_SETUID) | bit(CAP_SETPCAP) |
         bit(CAP_NET_BIND_SERVICE) | bit(CAP_SYS_CHROOT) | bit(CAP_AUDIT_WRITE) | bit(CAP_SETFCAP) |
         bit(CAP_MKNOD);
}

std::uint64_t neverGrantedCapabilities() {
  return bit(CAP_SYS_MODULE) | bit(CAP_SYS_RAWIO) | bit(CAP_MAC_ADMIN) | bit(CAP_MAC_OVERRIDE) |
         bit(CAP_SYS_BOOT) | bit(CAP_SYS_TIME) | bit(CAP_BPF) | bit(CAP_PERFMON);
}

namespace {

int readLastCap() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = -1;
  if (!(in >> last) || last < 0) {
    throw SysError(errno ? errno : EIO, "read /proc/sys/kernel/cap_last_cap");
  }
  return last;
}

}  // namespace

CapabilityPlan capabilityPlanFromTag(std::string_view tag, int last_cap) {
  CapabilityPlan plan;
  plan.last_cap = last_cap < 0 ? readLastCap() : last_cap;
  // Bits above 63 cannot be in a 64-bit mask; no kernel has them yet.
  if (plan.last_cap > 63) plan.last_cap = 63;
  plan.keep_bounding = defaultSliverCapabilities();

  std::string_view rest = tag;
  while (!base::trim(rest).empty()) {
    std::size_t comma = rest.find(',');
    std::string name(base::trim(rest.substr(0, comma)));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (name.empty()) throw TagError("capabilities: empty name in " + quotedTagValue(tag));
    cap_value_t cap = 0;
    // cap_from_name also takes bare numbers and other spellings; the tag's
    // canonical form is CAP_ names only.
    if (name.rfind("CAP_", 0) != 0 || cap_from_name(name.c_str(), &cap) != 0) {
      throw TagError("capabilities: unknown capability " + quotedTagValue(name));
    }
    if (cap > plan.last_cap) {
      throw TagError("capabilities: " + quotedTagValue(name) +
                     " is not supported by this node's kernel");
    }
    if (neverGrantedCapabilities() & bit(cap)) {
      throw TagError("capabilities: " + quotedTagValue(name) + " is never granted to a sliver");
    }
    plan.keep_bounding |= bit(cap);
  }
  // The kernel may be older than our headers.
  if (plan.last_cap < 63) plan.keep_bounding &= bit(plan.last_cap + 1) - 1;
  return plan;
}

std::vector<std::string> capabilityNames(std::uint64_t mask) {
  std::vector<std::string> names;
  for (int cap = 0; cap < 64; ++cap) {
    if (!(mask & bit(cap))) continue;
    char* text = cap_to_name(cap);
    std::string name = text ? text : "cap_" + std::to_string(cap);
    cap_free(text);
    for (char& c : name) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    names.push_back(std::move(name));
  }
  return names;
}

int applyCapabilityPlan(const CapabilityPlan& plan) {
  for (int cap = 0; cap <= plan.last_cap && cap < 64; ++cap) {
    if (plan.keep_bounding & bit(cap)) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return -errno;
  }
  // Ambient capabilities survive execve of unprivileged programs; a sliver gets
  // none. EINVAL: a kernel without ambient capabilities (< 4.3) has none to clear.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return -errno;
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return -errno;
  const std::uint32_t keep[2] = {static_cast<std::uint32_t>(plan.keep_bounding),
                                 static_cast<std::uint32_t>(plan.keep_bounding >> 32)};
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; ++i) {
    // execve as root grants inheritable | bounding: inheritable must not carry
    // anything back that the bounding set dropped.
    data[i].inheritable = 0;
    data[i].permitted &= keep[i];
    data[i].effective &= keep[i];
  }
  if (::syscall(SYS_capset, &header, data) != 0) return -errno;
  return 0;
}

namespace {

// The controlling terminal's name, from tty_nr (field 7 of /proc/self/stat):
// an fd of /dev/tty only names /dev/tty.
std::string controllingTerminalName() {
  const auto stat = base::readProcStat(::getpid());
  if (!stat || stat->tty_nr == 0) return "(a terminal)";
  const auto tty_nr = static_cast<dev_t>(static_cast<unsigned>(stat->tty_nr));
  const unsigned major = ::major(tty_nr), minor = ::minor(tty_nr);
  if (major >= 136 && major <= 143) {  // UNIX98 pty slaves
    return "/dev/pts/" + std::to_string((major - 136) * 256 + minor);
  }
  std::ifstream uevent("/sys/dev/char/" + std::to_string(major) + ":" + std::to_string(minor) +
                       "/uevent");
  for (std::string entry; std::getline(uevent, entry);) {
    if (entry.rfind("DEVNAME=", 0) == 0) return "/dev/" + entry.substr(8);
  }
  return "(terminal " + std::to_string(major) + ":" + std::to_string(minor) + ")";
}

}  // namespace

TerminalDetach detachFromControllingTerminal() {
  TerminalDetach result;
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) throwErrno("open /dev/null");
  struct stat in {
  }, null{};
  if (::fstat(STDIN_FILENO, &in) != 0 || ::fstat(null_fd.get(), &null) != 0 ||
      in.st_rdev != null.st_rdev || !S_ISCHR(in.st_mode)) {
    if (::dup2(null_fd.get(), STDIN_FILENO) != STDIN_FILENO) throwErrno("stdin to /dev/null");
    result.stdin_replaced = true;
  }
  // /dev/tty is the caller's controlling terminal, if it has one (ENXIO if not).
  UniqueFd tty(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!tty) {
    if (errno == ENXIO || errno == ENOENT || errno == EIO) return result;
    throwErrno("open /dev/tty");
  }
  const std::string name = controllingTerminalName();
  const bool leader = ::getsid(0) == ::getpid();
  struct sigaction ignore {
  }, previous{};
  ignore.sa_handler = SIG_IGN;
  if (leader) ::sigaction(SIGHUP, &ignore, &previous);
  int rc = ::ioctl(tty.get(), TIOCNOTTY);
  int err = errno;
  if (leader) ::sigaction(SIGHUP, &previous, nullptr);
  if (rc != 0) throw SysError(err, "TIOCNOTTY on " + name);
  result.terminal = name;
  return result;
}

LegacyTiocsti disableLegacyTiocsti(const std::filesystem::path& file) {
  LegacyTiocsti result;
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return result;
    throwErrno("open " + file.string());
  }
  result.present = true;
  char buf[16] = {};
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n < 0) throwErrno("read " + file.string());
  result.before.assign(buf, static_cast<std::size_t>(n));
  while (!result.before.empty() && result.before.back() == '\n') result.before.pop_back();
  if (result.before == "0") return result;
  if (::pwrite(fd.get(), "0\n", 2, 0) != 2) throwErrno("write 0 to " + file.string());
  result.changed = true;
  return result;
}

namespace {}  // namespace

std::string readSysctl(const std::filesystem::path& file) {
  std::string value = base::readFile(file);
  for (char& c : value) {
    if (c == '\t') c = ' ';
  }
  return std::string(base::trim(value));
}

void writeSysctl(const std::filesystem::path& file, const std::string& value) {
  // O_TRUNC as a shell's `>` has: nothing for /proc/sys, all for a plain file.
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) throwErrno("open " + file.string());
  const std::string line = value + "\n";
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    throwErrno("write '" + value + "' to " + file.string());
  }
}

PingGroupRange coverPingGroupRange(const IdRange& ids, const std::filesystem::path& file) {
  PingGroupRange result;
  result.before = readSysctl(file);
  std::istringstream in(result.before);
  std::uint64_t low = 1, high = 0;
  if (!(in >> low >> high)) {
    throw SysError(EINVAL, file.string() + " reads '" + result.before + "', not two gids");
  }
  const std::uint64_t first = ids.first;
  const std::uint64_t last = std::uint64_t{ids.first} + ids.count - 1;
  result.after = result.before;
  if (low <= first && last <= high) return result;
  const bool empty = low > high;
  result.after = std::to_string(empty ? first : std::min(low, first)) + " " +
                 std::to_string(empty ? last : std::max(high, last));
  writeSysctl(file, result.after);
  result.changed = true;
  return result;
}

void restorePingGroupRange(const std::string& value, const std::filesystem::path& file) {
  writeSysctl(file, value);
}

}  // namespace plng::node
