// Slivers' packet sockets receive, never send (docs/vnet.md, "Packet capture"):
// the tc egress program capture/packet_guard.bpf.c, attached to every network
// device of the node's namespace, drops every frame a packet socket made in a
// sliver's cgroup sends (such frames skip the cgroup egress program: no port,
// source-address or blacklist check, no HTB class) and counts it per slice
// (reason "packet_send"). The node's own packet sockets are not touched.
//
// The filter sits in each device's clsact egress at one handle and priority of
// ours (kHandle, kPriority): attaching again replaces it, so a restarted sliverd
// swaps its program in and never stacks a second one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/fd.h"

namespace plng::vnet {

class PacketSendGuard {
 public:
  static constexpr std::uint32_t kHandle = 0x504c;  // "PL"
  static constexpr std::uint32_t kPriority = 1;     // before any other filter

  // Loads the program against the sliver_cgroups and counters maps that
  // NetworkPolicy pinned under `pin_dir`; `sliver_cgroup_level` is
  // NetworkPolicy::sliverCgroupLevel(). Throws SysError (ENOENT: no policy
  // pinned there) or BpfLoadError.
  PacketSendGuard(const std::filesystem::path& pin_dir, std::uint32_t sliver_cgroup_level);

  // Attaches the program to the egress of every device of the calling thread's
  // network namespace (lo included) that does not run it yet, creating the
  // clsact qdisc where there is none. Returns the devices it attached to now.
  // Throws SysError naming the device that refused; a device gone meanwhile is
  // skipped.
  std::vector<std::string> attachToEveryDevice();

  // Detaches whatever filter sits at our handle and priority from every device
  // of the calling thread's network namespace (`sliverd decommission`). The
  // clsact qdiscs stay (others may use them). Throws SysError.
  static void detachFromEveryDevice();

 private:
  base::UniqueFd program_;
  std::uint32_t program_id_ = 0;
};

}  // namespace plng::vnet
