#include "security.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "error.h"
#include "resources.h"

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
constexpr std::array kConditionallyDeniedSyscalls = {"clone", "unshare", "clone3"};

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

SeccompProgram compileSliverSeccompProgram() {
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
    ssize_t n = ::pread(memfd.get(), out + done, static_cast<std::size_t>(size - done), done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throwErrno("seccomp: read exported filter");
    if (n == 0) throw SysError(EIO, "seccomp: exported filter shrank");
    done += n;
  }
  return program;
}

const SeccompProgram& sliverSeccompProgram() {
  static const SeccompProgram program = compileSliverSeccompProgram();
  return program;
}

int applySeccomp(const SeccompProgram& program, bool no_new_privs) {
  if (no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  sock_fprog fprog = program.fprog();
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) return -errno;
  return 0;
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

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

CapabilityPlan capabilityPlanFromTag(std::string_view tag, int last_cap) {
  CapabilityPlan plan;
  plan.last_cap = last_cap < 0 ? readLastCap() : last_cap;
  // Bits above 63 cannot be in a 64-bit mask; no kernel has them yet.
  if (plan.last_cap > 63) plan.last_cap = 63;
  plan.keep_bounding = defaultSliverCapabilities();

  std::string_view rest = tag;
  while (!trim(rest).empty()) {
    std::size_t comma = rest.find(',');
    std::string name(trim(rest.substr(0, comma)));
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

}  // namespace plng::node
