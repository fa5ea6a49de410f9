// What the vnet root tests share: a network namespace of the test's own (lo up,
// ping sockets open to every group), a cgroup sandbox holding a slivers cgroup
// with one cgroup per slice, a NetworkPolicy pinned under a private bpffs
// directory, and "slice" processes: children placed in a slice's cgroup, as an
// unprivileged uid (no capability in the node's network namespace, as a
// sliver's root has none there), or as root for the raw-socket creators that
// sliverd stands for.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include "tests/support/node_cgroup_sandbox.h"
#include "vnet-bpf/network_policy.h"

namespace plng::test {

inline constexpr std::uint32_t kXidA = 1001;
inline constexpr std::uint32_t kXidB = 1002;

// Enters a fresh network namespace with lo up; once per test case.
void enterPrivateNetwork();

// A process in a slice's cgroup that ran `setup` and now holds what it opened
// until destroyed (SIGKILL): how a slice keeps a port while another tries it.
class SliceProcess {
 public:
  SliceProcess(const std::filesystem::path& cgroup, bool as_root,
               const std::function<int()>& setup);
  ~SliceProcess();
  SliceProcess(const SliceProcess&) = delete;
  SliceProcess& operator=(const SliceProcess&) = delete;
  // What setup returned (waits for it: several processes can run their setup at once).
  int result();
  void stop();  // kills and reaps it now

 private:
  pid_t pid_ = -1;
  int report_fd_ = -1;
  std::optional<int> result_;
};

// Runs `body` in a slice's cgroup and returns what it returned.
int runInSlice(const std::filesystem::path& cgroup, const std::function<int()>& body,
               bool as_root = false);

struct VnetEnvironment {
  CgroupSandbox sandbox;
  std::filesystem::path slivers;
  std::filesystem::path slice_a;
  std::filesystem::path slice_b;
  std::filesystem::path pin_dir;

  VnetEnvironment();
  ~VnetEnvironment();
  vnet::PolicyOptions options() const;
  // Opens a policy and registers both slices' cgroups.
  std::unique_ptr<vnet::NetworkPolicy> open(std::optional<vnet::PolicyOptions> options = {});
};

// Socket helpers for slice bodies; each returns 0 or the errno of the call that failed.
// Binds a new socket (kept open) to `port` on 0.0.0.0 (family AF_INET) or [::]
// (AF_INET6; v4mapped: ::ffff:127.0.0.1); *bound receives the port.
int bindSocket(int family, int type, int port, bool reuseaddr = false, bool reuseport = false,
               bool v4mapped = false, int* bound = nullptr);
int connectTcp(int family, const char* address, int port);
// A listening (TCP) or bound (UDP) socket of the node itself, outside the slivers:
// on 127.0.0.1 or ::1, or on every address. Throws when it cannot.
int listenAsNode(int family, int type, int port, bool any_address = false);
int sendUdp(int family, const char* address, int port, int* local_port = nullptr,
            bool reuseaddr = false);

// The far end of a link standing for the world outside the node: attaches
// vnet-bpf/testing/discard.bpf.c to `device` (of the calling thread's network
// namespace) in the driver's XDP path, where it drops IPv4 UDP datagrams to
// kDiscardPort, as a NIC takes a frame off the wire; everything else goes on.
// The attachment lasts until the device goes. Throws when it cannot.
inline constexpr int kDiscardPort = 9;
void attachUdpDiscard(const char* device);

}  // namespace plng::test
