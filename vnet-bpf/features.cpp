#include "vnet-bpf/features.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>

#include "base/fd.h"
#include "base/landlock.h"

namespace plng::vnet {
namespace {

// Loads "r0 = <verdict>; exit" as `type` with `expected` attach type: the
// kernel accepts it only if it knows the attach type and that return value.
Feature probeProgram(const char* name, bool required, bpf_prog_type type, int expected, int verdict,
                     const char* what) {
  const bpf_insn program[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, verdict},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts,
              .expected_attach_type = static_cast<bpf_attach_type>(expected));
  int fd = bpf_prog_load(type, "plng_probe", "GPL", program, 2, &opts);
  Feature feature{name, fd >= 0, required, what};
  if (fd >= 0) {
    close(fd);
  } else {
    feature.detail += std::string(": refused (") + std::strerror(errno) + ")";
  }
  return feature;
}

Feature probeLandlockScope() {
  // The probe launchSliver asks too, so that what the node reports is what its
  // slivers get.
  const int abi = base::landlockAbiVersion();
  Feature feature{kLandlockAbstractScope, abi >= base::kLandlockAbstractUnixScopeAbi, false, ""};
  feature.detail = abi < 0 ? std::string("landlock unavailable (") + std::strerror(-abi) + ")"
                           : "landlock ABI " + std::to_string(abi) + " (abstract scoping needs " +
                                 std::to_string(base::kLandlockAbstractUnixScopeAbi) + ")";
  return feature;
}

Feature probeSeccompAddfd() {
  // A child installs an allow-everything filter with a notification listener
  // (irreversible, hence the child) and asks to add an fd to a notification that
  // does not exist: ENOENT means the kernel knows SECCOMP_IOCTL_NOTIF_ADDFD.
  Feature feature{kSeccompAddfd, false, false, ""};
  pid_t child = fork();
  if (child == 0) {
    sock_filter allow[] = {{BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW}};
    sock_fprog program{1, allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(2);
    long listener =
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
    if (listener < 0) _exit(3);
    seccomp_notif_addfd addfd{};
    addfd.id = 1;
    addfd.srcfd = 0;
    int rc = ioctl(static_cast<int>(listener), SECCOMP_IOCTL_NOTIF_ADDFD, &addfd);
    _exit(rc < 0 && errno == ENOENT ? 0 : 4);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child) {
    feature.detail = "could not fork the probe";
    return feature;
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  feature.present = code == 0;
  feature.detail = code == 0   ? "SECCOMP_IOCTL_NOTIF_ADDFD answered ENOENT for an unknown id"
                   : code == 3 ? "no seccomp notification listener"
                               : "SECCOMP_IOCTL_NOTIF_ADDFD unknown";
  return feature;
}

Feature probeBpffs() {
  std::ifstream filesystems("/proc/filesystems");
  std::string line;
  while (std::getline(filesystems, line))
    if (line.find("\tbpf") != std::string::npos)
      return {kBpffs, true, true, "bpf in /proc/filesystems (mounted at /sys/fs/bpf when absent)"};
  return {kBpffs, false, true, "no bpf file system in /proc/filesystems: links cannot be pinned"};
}

Feature probeBtf() {
  bool present = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  return {
      kBtf, present, true,
      present ? "/sys/kernel/btf/vmlinux" : "no /sys/kernel/btf/vmlinux: CO-RE cannot relocate"};
}

Features probeAll() {
  Features features;
  features.list.push_back(probeProgram(kCgroupSockAddr, true, BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                                       BPF_CGROUP_INET4_BIND, 1, "cgroup/bind4 program"));
  features.list.push_back(probeProgram(kBindGrantsLowPort, false, BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                                       BPF_CGROUP_INET4_BIND, 3,
                                       "cgroup/bind4 returning 3 (bind a reserved low port "
                                       "without CAP_NET_BIND_SERVICE)"));
  features.list.push_back(probeProgram(kSockRelease, true, BPF_PROG_TYPE_CGROUP_SOCK,
                                       BPF_CGROUP_INET_SOCK_RELEASE, 1,
                                       "cgroup/sock_release program"));
  features.list.push_back(probeProgram(kConnectUnix, false, BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
                                       kAttachCgroupUnixConnect, 1,
                                       "cgroup/connect_unix program (attach type 49)"));
  features.list.push_back(probeLandlockScope());
  features.list.push_back(probeSeccompAddfd());
  features.list.push_back(probeBpffs());
  features.list.push_back(probeBtf());
  return features;
}

}  // namespace

bool Features::has(const std::string& name) const {
  for (const Feature& feature : list)
    if (feature.name == name) return feature.present;
  return false;
}

bool Features::complete() const {
  for (const Feature& feature : list)
    if (feature.required && !feature.present) return false;
  return true;
}

std::string Features::abstractUnixIsolation() const {
  if (has(kLandlockAbstractScope)) return "landlock";
  if (has(kConnectUnix)) return "connect_unix";
  return "none";
}

std::string Features::summary() const {
  std::ostringstream out;
  for (const Feature& feature : list) {
    if (out.tellp() > 0) out << ' ';
    out << feature.name << '=' << (feature.present ? "yes" : "no");
    if (!feature.present && feature.required) out << "(required)";
  }
  return out.str();
}

const Features& probeFeatures(bool refresh) {
  static std::mutex mutex;
  static std::optional<Features> cached;
  std::lock_guard lock(mutex);
  if (!cached || refresh) cached = probeAll();
  return *cached;
}

}  // namespace plng::vnet
