// BandwidthControl: sliverd's side of the uplink's HTB tree (vnet-bpf/bandwidth.h;
// docs/vnet.md, "Bandwidth"). It installs the tree at start, or adopts the one
// an earlier sliverd left; gives each slice a pair of classes, kept in the
// slice's entry of the pinned `slices` map where the egress program reads them;
// updates them in place when the slice's tags or bound rcaps change, after
// admission control of the guarantees against the node's limit; removes them
// with the slice. Not thread-safe: NetworkIsolation serializes its calls.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "node/resources.h"
#include "vnet-bpf/bandwidth.h"
#include "vnet-bpf/network_policy.h"

namespace plng::sliverd {

class BandwidthControl {
 public:
  struct Options {
    std::string uplink;  // empty: the device of the default route
    std::uint64_t node_limit_bps = vnet::kDefaultNodeLimitBps;
    // Where the tree is, for decommission: "<device> <netns inode>". Empty: none.
    std::filesystem::path record;
  };

  // Installs or adopts the tree; slice classes that no slice holds (in
  // `policy`'s map) are deleted. Throws std::runtime_error / base::SysError
  // when there is no uplink or the kernel refuses.
  BandwidthControl(const Options& options, vnet::NetworkPolicy& policy);

  bool adopted() const { return adopted_; }
  // "eth0 at 100000000 bit/s (adopted), fq_codel leaves"
  std::string describe() const;

  // Before a slice's sliver starts: it has classes (PlanetLab's defaults until
  // the next apply gives it its own), so its first packet is classified.
  void ensureSlice(std::uint32_t xid);
  // The slices the node keeps and their limits (tags with bound rcaps): every
  // one gets its classes, its guarantee admitted against the node's limit
  // (those holding theirs first); slices in `kept` but not in `wanted` keep
  // theirs as they are; the others lose them. Returns, by xid, why a
  // guarantee was cut.
  std::map<std::uint32_t, std::string> apply(
      const std::map<std::uint32_t, node::NetworkLimits>& wanted,
      const std::set<std::uint32_t>& kept);

  // Daily byte budgets (byte_budget.h): the slices whose ceil is lowered, by
  // xid, and to what. Applied in place at once, and kept by every apply() until
  // a later call leaves the slice out; never below the slice's guarantee nor
  // above its own ceil.
  void setBudgetCeilings(const std::map<std::uint32_t, std::uint64_t>& ceilings);
  // Each slice's classes as its tags and rcaps make them, before any budget.
  std::map<std::uint32_t, vnet::SliceBandwidth> sliceBandwidth() const { return own_; }
  // The node's limit becomes `bps` (the site's net_node_cap, or the
  // configuration's): the root class changes in place; slices' ceils and
  // guarantees follow at the next apply(). Returns whether it changed.
  bool setNodeLimit(std::uint64_t bps);
  std::uint64_t nodeLimitBps() const { return tree_.nodeLimitBps(); }

  // What a slice's limits become once its guarantee is admitted.
  static vnet::SliceBandwidth bandwidthOf(const node::NetworkLimits& limits,
                                          std::uint64_t granted_min_bps);

  // `sliverd decommission`: the tree `record` names goes, when the caller is in
  // the network namespace it was made in (a tree in another one goes with that
  // namespace); the record goes too. Returns what happened, for the log.
  static std::string remove(const std::filesystem::path& record);
  // The configured uplink, or the default route's device; throws without one.
  static std::string uplinkDevice(const std::string& configured);

 private:
  void write(std::uint32_t xid, const vnet::SliceBandwidth& bandwidth);

  vnet::NetworkPolicy& policy_;
  vnet::HtbTree tree_;
  bool adopted_ = false;
  vnet::ClassIdAllocator allocator_;
  std::map<std::uint32_t, vnet::SliceClassIds> in_map_;  // what each slices entry holds
  std::map<std::uint32_t, std::uint64_t> held_min_bps_;  // guarantees in the classes now
  std::map<std::uint32_t, vnet::SliceBandwidth> own_;    // by tags and rcaps, before budgets
  std::map<std::uint32_t, std::uint64_t> budget_ceil_;   // lowered ceils by budget
};

}  // namespace plng::sliverd
