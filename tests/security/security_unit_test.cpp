// The sliver seccomp profile and capability plans, without privileges.
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/unix_socket.h"
#include "node/program.h"
#include "node/resources.h"
#include "node/security.h"

using plng::base::SysError;
using plng::base::UniqueFd;

using namespace plng::node;

namespace {

// The constants the filter compares the syscall number (or arch) against.
std::set<std::uint32_t> jeqConstants(const SeccompProgram& program) {
  std::set<std::uint32_t> out;
  for (const sock_filter& insn : program.instructions) {
    if (insn.code == (BPF_JMP | BPF_JEQ | BPF_K)) out.insert(insn.k);
  }
  return out;
}

// Runs `body` in a forked child under the sliver filter and returns its exit
// status (the child reports by exit code: 0 = all as expected).
int runFiltered(int (*body)()) {
  const SeccompProgram& program = sliverSeccompProgram();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (applySeccomp(program) != 0) ::_exit(100);
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("the sliver profile denies what a sliver must never do", "[security]") {
  std::vector<std::string> denied = sliverDeniedSyscalls();
  for (const char* must : {"init_module",
                           "finit_module",
                           "delete_module",
                           "kexec_load",
                           "kexec_file_load",
                           "bpf",
                           "keyctl",
                           "add_key",
                           "request_key",
                           "perf_event_open",
                           "open_by_handle_at",
                           "reboot",
                           "swapon",
                           "swapoff",
                           "acct",
                           "settimeofday",
                           "clock_settime",
                           "adjtimex",
                           "iopl",
                           "ioperm",
                           "lookup_dcookie",
                           "userfaultfd"}) {
    INFO(must);
    CHECK(std::count(denied.begin(), denied.end(), must) == 1);
  }
  // Harmless and used by systemd: stays allowed (docs/node.md).
  CHECK(std::count(denied.begin(), denied.end(), "name_to_handle_at") == 0);
}

TEST_CASE("every denied syscall resolves and has a rule on x86_64 and i386", "[security]") {
  const SeccompProgram& program = sliverSeccompProgram();
  REQUIRE(!program.instructions.empty());
  REQUIRE(program.fprog().len == program.instructions.size());
  std::set<std::uint32_t> constants = jeqConstants(program);
  CHECK(constants.count(AUDIT_ARCH_X86_64) == 1);
  CHECK(constants.count(AUDIT_ARCH_I386) == 1);

  std::vector<std::string> names = sliverDeniedSyscalls();
  for (const std::string& name : sliverConditionallyDeniedSyscalls()) names.push_back(name);
  for (const std::string& name : names) {
    INFO(name);
    int native = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name.c_str());
    REQUIRE(native != __NR_SCMP_ERROR);
    CHECK(native >= 0);
    CHECK(constants.count(static_cast<std::uint32_t>(native)) == 1);
    int i386 = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86, name.c_str());
    // iopl/ioperm/... exist on both; a syscall i386 lacks needs no rule there.
    if (i386 >= 0) CHECK(constants.count(static_cast<std::uint32_t>(i386)) == 1);
  }
}

TEST_CASE("the profile is compiled once and shared", "[security]") {
  const SeccompProgram& a = sliverSeccompProgram();
  const SeccompProgram& b = sliverSeccompProgram();
  CHECK(&a == &b);
  SeccompProgram fresh = compileSliverSeccompProgram();
  REQUIRE(fresh.instructions.size() == a.instructions.size());
  CHECK(std::equal(fresh.instructions.begin(), fresh.instructions.end(), a.instructions.begin(),
                   [](const sock_filter& x, const sock_filter& y) {
                     return x.code == y.code && x.jt == y.jt && x.jf == y.jf && x.k == y.k;
                   }));
}

TEST_CASE("an unprivileged process under the profile gets EPERM, ENOSYS and normal calls",
          "[security]") {
  // The session keyring works for anyone without the filter.
  REQUIRE(::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) >= 0);
  CHECK(runFiltered([] {
          if (::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) != -1 ||
              errno != EPERM) {
            return 1;
          }
          if (::syscall(SYS_clone3, nullptr, 0) != -1 || errno != ENOSYS) return 2;
          if (::unshare(CLONE_NEWUSER) != -1 || errno != EPERM) return 3;
          if (::syscall(SYS_getpid) != ::getpid()) return 4;
          // fork goes through clone (glibc falls back from clone3).
          pid_t child = ::fork();
          if (child < 0) return 5;
          if (child == 0) ::_exit(7);
          int status = 0;
          if (::waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
              WEXITSTATUS(status) != 7) {
            return 6;
          }
          return 0;
        }) == 0);
}

TEST_CASE("the profile refuses socket families and netlink protocols a sliver has no use for",
          "[security]") {
  CHECK(sliverSocketFamilies() == std::vector<int>{AF_UNIX, AF_INET, AF_INET6, AF_NETLINK});
  CHECK(runFiltered([] {
          auto refused = [](long family, int type, int protocol, int expected) {
            long fd = ::syscall(SYS_socket, family, type | SOCK_CLOEXEC, protocol);
            if (fd >= 0) ::close(static_cast<int>(fd));
            return fd == -1 && errno == expected;
          };
          auto works = [](int family, int type, int protocol) {
            int fd = ::socket(family, type | SOCK_CLOEXEC, protocol);
            if (fd >= 0) ::close(fd);
            return fd >= 0;
          };
          // Never connected anywhere: socket() itself is the test.
          if (!refused(AF_VSOCK, SOCK_STREAM, 0, EAFNOSUPPORT)) return 1;
          // Packet sockets go to sliverd's broker (a filter without a
          // listener answers ENOSYS), but for types it never makes.
          if (!refused(AF_PACKET, SOCK_RAW, 0, ENOSYS)) return 2;
          if (!refused(AF_PACKET, SOCK_DGRAM, 0, ENOSYS)) return 2;
          if (!refused(AF_PACKET, SOCK_SEQPACKET, 0, ESOCKTNOSUPPORT)) return 2;
          if (!refused(AF_ALG, SOCK_SEQPACKET, 0, EAFNOSUPPORT)) return 3;
          if (!refused(AF_UNSPEC, SOCK_DGRAM, 0, EAFNOSUPPORT)) return 4;
          // The kernel reads an int: neither a negative one nor high bits get past.
          if (!refused(-1, SOCK_DGRAM, 0, EAFNOSUPPORT)) return 5;
          if (!refused((1L << 32) | AF_VSOCK, SOCK_STREAM, 0, EAFNOSUPPORT)) return 6;
          if (!refused((1L << 32) | AF_INET, SOCK_DGRAM, 0, EAFNOSUPPORT)) return 7;
          if (!refused(AF_NETLINK, SOCK_RAW, NETLINK_KOBJECT_UEVENT, EPROTONOSUPPORT)) return 8;
          if (!refused(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER, EPROTONOSUPPORT)) return 9;
          if (!refused(AF_NETLINK, SOCK_RAW, 40, EPROTONOSUPPORT)) return 10;
          if (!works(AF_UNIX, SOCK_STREAM, 0) || !works(AF_INET, SOCK_DGRAM, 0) ||
              !works(AF_INET6, SOCK_STREAM, 0) || !works(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE) ||
              !works(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC) ||
              !works(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG)) {
            return 11;
          }
          int pair[2];
          if (::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return 12;
          ::close(pair[0]);
          ::close(pair[1]);
          if (::socketpair(AF_INET, SOCK_STREAM, 0, pair) != -1 || errno != EAFNOSUPPORT) return 13;
          int nl = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
          int group = RTNLGRP_LINK;
          if (::setsockopt(nl, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != -1 ||
              errno != EPERM) {
            return 14;
          }
          // Other netlink and socket options stay.
          int on = 1;
          if (::setsockopt(nl, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on) != 0) return 15;
          if (::setsockopt(nl, SOL_SOCKET, SO_RCVBUF, &on, sizeof on) != 0) return 16;
          ::close(nl);
          return 0;
        }) == 0);
}

TEST_CASE("a helper program the node runs inherits nothing of the daemon", "[security]") {
  // A listening socket without close-on-exec, as Boost.Asio opens sliverd's.
  UniqueFd leaky(::socket(AF_UNIX, SOCK_STREAM, 0));
  REQUIRE(leaky);
  struct stat st {};
  REQUIRE(::fstat(leaky.get(), &st) == 0);
  const std::string name = "socket:[" + std::to_string(st.st_ino) + "]";
  std::string out;
  int code = runProgram({"/bin/sh", "-c",
                         "for f in /proc/$$/fd/*; do readlink $f; done; "
                         "echo pid $$; cut -d' ' -f6,7 /proc/$$/stat"},
                        out);
  INFO(out);
  CHECK(code == 0);
  CHECK(out.find(name) == std::string::npos);
  CHECK(out.find("/dev/null\n") != std::string::npos);  // its stdin
  // A session of its own, without a controlling terminal.
  auto pid_at = out.find("pid ");
  REQUIRE(pid_at != std::string::npos);
  std::istringstream rest(out.substr(pid_at + 4));
  std::string pid, session, tty_nr;
  rest >> pid >> session >> tty_nr;
  CHECK(session == pid);
  CHECK(tty_nr == "0");
  std::string missing;
  CHECK_THROWS_AS(runProgram({"/nonexistent/plng-program"}, missing), SysError);
}

TEST_CASE("the default capability plan is a container runtime's set", "[security][caps]") {
  CapabilityPlan plan = capabilityPlanFromTag("", 40);
  CHECK(plan.last_cap == 40);
  CHECK(plan.keep_bounding == defaultSliverCapabilities());
  std::vector<std::string> names = capabilityNames(plan.keep_bounding);
  CHECK(names == std::vector<std::string>{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                                          "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
                                          "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
                                          "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP"});
  CHECK((plan.keep_bounding & (1ULL << CAP_SYS_ADMIN)) == 0);
  CHECK((plan.keep_bounding & neverGrantedCapabilities()) == 0);
}

TEST_CASE("the capabilities tag adds capabilities", "[security][caps]") {
  CapabilityPlan plan = capabilityPlanFromTag("CAP_SYS_ADMIN, CAP_NET_ADMIN ,CAP_SYS_PTRACE", 40);
  CHECK(plan.keep_bounding == (defaultSliverCapabilities() | 1ULL << CAP_SYS_ADMIN |
                               1ULL << CAP_NET_ADMIN | 1ULL << CAP_SYS_PTRACE));
  // Naming a default capability again changes nothing.
  CHECK(capabilityPlanFromTag("CAP_CHOWN", 40).keep_bounding == defaultSliverCapabilities());
}

TEST_CASE("the capabilities tag refuses unknown and never-granted names", "[security][caps]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_MATCHES(capabilityPlanFromTag("CAP_SYS_ADMIN,CAP_FLY", 40), TagError,
                       Catch::Matchers::Predicate<TagError>([](const TagError& e) {
                         return std::string(e.what()).find("CAP_FLY") != std::string::npos &&
                                std::string(e.what()).find("unknown") != std::string::npos;
                       }));
  CHECK_THROWS_AS(capabilityPlanFromTag("21", 40), TagError);
  CHECK_THROWS_AS(capabilityPlanFromTag("CAP_CHOWN,,CAP_KILL", 40), TagError);
  for (const char* never : {"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE",
                            "CAP_SYS_BOOT", "CAP_SYS_TIME", "CAP_BPF", "CAP_PERFMON"}) {
    INFO(never);
    try {
      capabilityPlanFromTag(std::string("CAP_KILL,") + never, 40);
      FAIL("accepted " << never);
    } catch (const TagError& e) {
      CHECK_THAT(e.what(), Contains(never) && Contains("never granted"));
    }
  }
  // A capability this kernel does not have (CHECKPOINT_RESTORE is 40).
  CHECK_THROWS_WITH(capabilityPlanFromTag("CAP_CHECKPOINT_RESTORE", 39),
                    Contains("CAP_CHECKPOINT_RESTORE") && Contains("not supported"));
}

TEST_CASE("the plan reads the running kernel's last capability", "[security][caps]") {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = -1;
  REQUIRE(in >> last);
  CapabilityPlan plan = capabilityPlanFromTag("");
  CHECK(plan.last_cap == last);
  // An old kernel (last cap 35, before PERFMON/BPF/CHECKPOINT_RESTORE) trims the mask.
  CHECK((capabilityPlanFromTag("", 35).keep_bounding >> 36) == 0);
}

TEST_CASE("raw IPv4/IPv6 socket() calls go to the filter's listener, flags and all",
          "[seccomp][rawsock]") {
  // Raw sockets without a listener: ENOSYS from the brokered filter (nobody
  // answers); the kKernel filter leaves them to the kernel.
  CHECK(runFiltered([] {
          return ::socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) < 0 && errno == ENOSYS ? 0 : 1;
        }) == 0);
  {
    const SeccompProgram& kernel = sliverSeccompProgram(RawSockets::kKernel);
    pid_t pid = ::fork();
    if (pid == 0) {
      if (applySeccomp(kernel) != 0) ::_exit(100);
      // The kernel decides: EPERM without CAP_NET_RAW, a socket for root here.
      const int fd = ::socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
      ::_exit(fd >= 0 || errno == EPERM ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(status == 0);
  }

  // With a listener: each raw call arrives with its arguments; other sockets
  // never do (the child would block forever on one).
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) == 0);
  UniqueFd parent_end(pair[0]), child_end(pair[1]);
  pid_t pid = ::fork();
  if (pid == 0) {
    const int listener = applySeccompWithListener(sliverSeccompProgram());
    if (listener < 0) ::_exit(100);
    // A second listener in the same chain: the kernel allows one.
    if (applySeccompWithListener(sliverSeccompProgram()) != -EBUSY) ::_exit(101);
    try {
      const int fds[] = {listener};
      plng::base::sendFds(pair[1], "l", fds, "the listener");
    } catch (const std::exception&) {
      ::_exit(102);
    }
    ::close(listener);
    for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
      const int fd = ::socket(AF_INET, type, 0);
      if (fd < 0) ::_exit(103);
      ::close(fd);
    }
    // Answered by the test below with errors it chose: 11 and 12.
    if (::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP) != -1 ||
        errno != 11) {
      ::_exit(104);
    }
    if (::socket(AF_INET6, SOCK_RAW, IPPROTO_RAW) != -1 || errno != 12) ::_exit(105);
    ::_exit(0);
  }
  child_end.reset();
  auto message = plng::base::receiveFds(parent_end.get(), 1, 1, "the listener");
  REQUIRE(message.fds.size() == 1);
  const int listener = message.fds[0].get();

  auto next = [&] {
    seccomp_notif notif{};
    REQUIRE(::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &notif) == 0);
    return notif;
  };
  auto answer = [&](std::uint64_t id, int err) {
    seccomp_notif_resp resp{};
    resp.id = id;
    resp.error = -err;
    REQUIRE(::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0);
  };
  seccomp_notif first = next();
  CHECK(first.data.nr == SYS_socket);
  CHECK(first.data.args[0] == AF_INET);
  CHECK(first.data.args[1] == (SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC));
  CHECK(first.data.args[2] == IPPROTO_ICMP);
  answer(first.id, 11);
  seccomp_notif second = next();
  CHECK(second.data.args[0] == AF_INET6);
  CHECK(second.data.args[1] == SOCK_RAW);
  CHECK(second.data.args[2] == IPPROTO_RAW);
  answer(second.id, 12);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
