// The kernel features vnet-bpf relies on, each probed by trying it (loading a
// tiny program with the attach type, calling the syscall), never by a kernel
// version (docs/vnet.md, "Probed features").
#pragma once

#include <string>
#include <vector>

namespace plng::vnet {

struct Feature {
  std::string name;  // "cgroup_sock_addr", "bind_grants_low_port", ...
  bool present = false;
  bool required = false;  // isolation cannot work without it
  std::string detail;     // what was tried and what the kernel answered
};

struct Features {
  std::vector<Feature> list;

  bool has(const std::string& name) const;
  // Every required feature is present.
  bool complete() const;
  // "cgroup_sock_addr=yes bind_grants_low_port=yes connect_unix=no(...) ...", for
  // logs and GetNodeInfo.
  std::string summary() const;
  // What keeps slivers from the host's and each other's abstract unix sockets:
  // "landlock" (every sliver in a scoped domain of its own, node/launch.h),
  // "connect_unix" (vnet_connect_unix: only registered names) or "none".
  std::string abstractUnixIsolation() const;
};

// Probes every feature. Needs root (CAP_BPF, CAP_SYS_ADMIN) for the BPF ones;
// without it they are reported absent with the kernel's error. Cached after the
// first call; refresh=true probes again.
const Features& probeFeatures(bool refresh = false);

// Feature names.
inline constexpr const char* kCgroupSockAddr = "cgroup_sock_addr";
inline constexpr const char* kBindGrantsLowPort = "bind_grants_low_port";
inline constexpr const char* kSockRelease = "sock_release";
inline constexpr const char* kConnectUnix = "connect_unix";
inline constexpr const char* kLandlockAbstractScope = "landlock_abstract_unix_scope";
inline constexpr const char* kSeccompAddfd = "seccomp_notify_addfd";
inline constexpr const char* kBpffs = "bpffs";
inline constexpr const char* kBtf = "btf";

// BPF_CGROUP_UNIX_CONNECT: kernel >= 6.7; Debian 12's libbpf 1.1 and UAPI
// headers predate it.
inline constexpr int kAttachCgroupUnixConnect = 49;

}  // namespace plng::vnet
