// Bandwidth: the HTB tree on a node's uplink that the egress program's
// classification feeds (docs/vnet.md, "Bandwidth").
//
//   1:      htb, root qdisc of the uplink, default class 1:2
//   1:1     the node's limit (rate = ceil = node limit)
//   1:2     the node's own traffic and every unclassified packet (rate = the
//           default minimum, ceil = node limit)
//   1:S     a slice (rate = net_min_rate, ceil = net_max_rate)
//   1:S+1   the slice's ICMP and IP-options packets, limited in packets per second
// Every leaf has an fq_codel qdisc whose major is its class's minor (HTB's
// pfifo where the kernel has no fq_codel).
//
// A slice's pair of classes is derived from its xid (ClassIdAllocator) and kept
// in the pinned `slices` map, where the egress program reads it: a restarted
// sliverd finds the same ids there and in the kernel, and adopts them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vnet-bpf/rtnetlink.h"

namespace plng::vnet {

// PlanetLab's defaults (its OS paper): a node capped at 100 Mbit/s, each slice
// at 10 Mbit/s with 5 kbit/s for "fair best effort".
inline constexpr std::uint64_t kDefaultNodeLimitBps = 100'000'000;
inline constexpr std::uint64_t kDefaultMinRateBps = 5'000;
inline constexpr std::uint64_t kDefaultMaxRateBps = 10'000'000;
// ICMP and IP-options packets a slice may send per second (net_icmp_pps).
inline constexpr std::uint32_t kDefaultIcmpPps = 100;

// tc handles (major << 16 | minor).
inline constexpr std::uint32_t kHtbMajor = 1;
constexpr std::uint32_t tcHandle(std::uint32_t major, std::uint32_t minor) {
  return major << 16 | (minor & 0xffff);
}
inline constexpr std::uint32_t kHtbQdisc = tcHandle(kHtbMajor, 0);
inline constexpr std::uint32_t kRootClass = tcHandle(kHtbMajor, 1);
inline constexpr std::uint32_t kNodeClass = tcHandle(kHtbMajor, 2);
// Slice classes: minors 0x10 + 2·slot (the slice) and + 1 (its ICMP class).
inline constexpr std::uint32_t kFirstSliceMinor = 0x10;
inline constexpr std::uint32_t kSliceSlots = (0xfffe - kFirstSliceMinor) / 2;

struct SliceClassIds {
  std::uint32_t bulk = 0;  // tc handle of the slice's class; 0 = none
  std::uint32_t icmp = 0;  // its ICMP / IP-options class
  bool operator==(const SliceClassIds&) const = default;
};
SliceClassIds classIdsOfSlot(std::uint32_t slot);
// The slot of a slice class handle (either of the pair); nullopt for others.
std::optional<std::uint32_t> slotOfClass(std::uint32_t handle);

// Hands out slice classes: a slice keeps the ids it holds; a new one gets slot
// xid mod kSliceSlots, or the next free slot after it.
class ClassIdAllocator {
 public:
  // `held`: what the pinned slices map says (xid -> ids).
  explicit ClassIdAllocator(const std::map<std::uint32_t, SliceClassIds>& held = {});
  // Throws std::runtime_error when every slot is taken.
  SliceClassIds assign(std::uint32_t xid);
  void release(std::uint32_t xid);
  std::optional<SliceClassIds> find(std::uint32_t xid) const;
  std::map<std::uint32_t, SliceClassIds> all() const;  // by xid

 private:
  std::map<std::uint32_t, std::uint32_t> slot_of_;  // xid -> slot
  std::map<std::uint32_t, std::uint32_t> xid_of_;   // slot -> xid
};

// HTB's quantum for a class of this rate: the bytes it sends per turn when it
// borrows. 100 ms of its rate, so that excess is shared in proportion to the
// rates; at least one Ethernet frame. Set explicitly: HTB's own (rate / r2q)
// is clamped to 1000..200000 bytes, which breaks the proportion.
std::uint32_t quantumFor(std::uint64_t rate_bps);

// One HTB class in the kernel's units.
struct HtbClass {
  std::uint32_t handle = 0;
  std::uint32_t parent = 0;
  std::uint64_t rate_bytes = 0;  // per second
  std::uint64_t ceil_bytes = 0;
  std::uint32_t buffer_ticks = 0;  // burst at rate, in psched ticks (64 ns)
  std::uint32_t cbuffer_ticks = 0;
  std::uint32_t quantum = 0;
  std::uint16_t mpu = 0;  // a packet costs at least this many bytes
  bool operator==(const HtbClass&) const = default;
};

// A class with tc's default burst (10 ms of the rate plus one MTU; at least
// one packet of `mpu`).
HtbClass htbClass(std::uint32_t handle, std::uint32_t parent, std::uint64_t rate_bytes,
                  std::uint64_t ceil_bytes, std::uint32_t quantum, std::uint16_t mpu = 0);

// What a slice gets, in PLC's units.
struct SliceBandwidth {
  std::uint64_t min_rate_bps = kDefaultMinRateBps;  // guaranteed (after admission)
  std::uint64_t max_rate_bps = kDefaultMaxRateBps;  // ceil
  std::uint32_t icmp_pps = kDefaultIcmpPps;
  bool operator==(const SliceBandwidth&) const = default;
};

// The two classes of a slice under a node limited to `node_limit_bps`: its
// ceil is at least its rate and at most the node's limit; the ICMP class costs
// every packet 65535 bytes (mpu), so its rate in bytes is packets per second.
std::vector<HtbClass> sliceClasses(const SliceClassIds& ids, const SliceBandwidth& bandwidth,
                                   std::uint64_t node_limit_bps);
// The root and the node's default class.
std::vector<HtbClass> nodeClasses(std::uint64_t node_limit_bps);

// Admission control of guarantees: the slices' min rates sum to at most the
// node's limit. Slices are taken in order of `order` (those already holding
// their guarantee first, so a newcomer never takes one away), each granted
// its wish if it fits, else the default minimum (or what is left).
struct Admission {
  std::map<std::uint32_t, std::uint64_t> granted;  // xid -> min rate, bit/s
  std::map<std::uint32_t, std::string> refused;    // xid -> why its wish was cut
};
Admission admitGuarantees(std::uint64_t node_limit_bps,
                          const std::map<std::uint32_t, std::uint64_t>& wanted,
                          const std::vector<std::uint32_t>& order);

// Netlink messages (exposed for the unit tests).
rtnl::Message classMessage(int ifindex, const HtbClass& htb_class);
std::optional<HtbClass> decodeClass(const std::vector<std::uint8_t>& payload);
std::optional<std::uint64_t> decodeBytesSent(const std::vector<std::uint8_t>& payload);
rtnl::Message rootQdiscMessage(int ifindex);
rtnl::Message leafQdiscMessage(int ifindex, std::uint32_t class_handle);
rtnl::Message deleteClassMessage(int ifindex, std::uint32_t class_handle);

// The tree on one device of the calling thread's network namespace.
class HtbTree {
 public:
  // Throws base::SysError when there is no such device.
  explicit HtbTree(std::string device);

  // Makes the root qdisc, the root class at the node's limit and the node's
  // class, or adopts those found (true): existing slice classes are left as
  // they are, the root's rate is updated in place.
  bool install(std::uint64_t node_limit_bps);
  std::uint64_t nodeLimitBps() const { return node_limit_bps_; }
  // Creates or updates (in place) the slice's two classes and their leaves.
  void setSlice(const SliceClassIds& ids, const SliceBandwidth& bandwidth);
  void removeSlice(const SliceClassIds& ids);
  // The classes in the kernel now.
  std::vector<HtbClass> classes();
  // Bytes each class has sent (HTB's count: whole frames, headers included).
  std::map<std::uint32_t, std::uint64_t> bytesSent();
  // Whether the device's root qdisc is this tree's.
  bool installed();
  // Deletes the root qdisc and with it every class (decommission). A device
  // whose root is not ours is left alone.
  void remove();

  const std::string& device() const { return device_; }
  // The leaves' qdisc: "fq_codel", or "pfifo" (HTB's default) on a kernel
  // without sch_fq_codel. Known after install().
  std::string leafKind() const { return fq_codel_ ? "fq_codel" : "pfifo"; }
  int ifindex() const { return ifindex_; }

  // The device of the IPv4 default route (else IPv6) in the calling thread's
  // network namespace; empty when there is none.
  static std::string defaultRouteDevice();

 private:
  void ensureClass(const HtbClass& wanted);
  void addLeaf(std::uint32_t class_handle);
  std::map<std::uint32_t, std::string> leafKinds();  // parent class -> qdisc kind

  std::string device_;
  int ifindex_ = 0;
  std::uint64_t node_limit_bps_ = 0;
  bool fq_codel_ = true;
  rtnl::Socket socket_;
  std::map<std::uint32_t, HtbClass> known_;  // what the kernel holds, by handle
};

}  // namespace plng::vnet
