// NetworkIsolation: sliverd's side of vnet-bpf (docs/vnet.md, "sliverd"). It
// decides, at start, whether the node isolates its slices' network (features
// probed, the config's network_isolation), keeps vnet-bpf's maps in line with
// the desired state — each slice's policy from its tags, each running sliver's
// cgroup, PLC's destination blacklist, the node's addresses — and answers what
// the node reports about it (GetNodeInfo, the local API's GetPorts).
//
// Three states:
//   enforced     the programs are attached at the slivers cgroup; every sliver's
//                cgroup is mapped to its slice before its first process runs
//                (beforeLaunch), so no sliver ever runs unpoliced
//   off          the config turned isolation off: slivers start without it, and
//                every start of sliverd says so loudly
//   unavailable  a required kernel feature is missing, or the programs could not
//                be loaded: slivers are not started (beforeLaunch throws, and the
//                reconciler reports why on each sliver)
//
// Thread-safe: the reconciler (loop thread) and the local API's handler threads
// call it concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/resources.h"
#include "node/runtime.h"
#include "proto/node.pb.h"
#include "proto/port_spec.h"
#include "sliverd/vnet/bandwidth_control.h"
#include "sliverd/vnet/flow_log.h"
#include "sliverd/vnet/local_reserved_ports.h"
#include "vnet-bpf/features.h"
#include "vnet-bpf/network_policy.h"
#include "vnet-bpf/packet_guard.h"

namespace plng::sliverd {

class NetworkIsolation : public FlowSource {
 public:
  struct Options {
    bool enabled = true;                   // config: network_isolation
    std::filesystem::path pin_dir;         // config: bpfPinDir()
    std::filesystem::path slivers_cgroup;  // CgroupDriver::sliversDir()
    std::vector<proto::PortRange> node_ports;
    std::vector<proto::PortRange> service_allowlist;
    // Where the node's own net.ipv4.ip_local_reserved_ports is kept while
    // sliverd adds the slices' reserved ports to it (LocalReservedPorts);
    // empty: the sysctl is left alone.
    std::filesystem::path local_reserved_ports_saved;
    // Bandwidth (docs/vnet.md, "Bandwidth"): the HTB tree on the uplink.
    bool bandwidth = true;
    std::string uplink;  // empty: the device of the default route
    std::uint64_t node_limit_bps = 100'000'000;
    std::filesystem::path bandwidth_record;  // BandwidthControl::Options::record
    // Flow auditing (docs/vnet.md, "Flow auditing"): the flow map's entries.
    std::uint32_t flow_entries = VNET_MAX_FLOWS;
  };

  enum class State { kEnforced, kOff, kUnavailable };

  // Probes the kernel and, when enabled and complete, loads and attaches the
  // programs (reusing what an earlier sliverd pinned). Never throws for what the
  // kernel lacks or refuses: state() says it, and why.
  explicit NetworkIsolation(Options options);
  ~NetworkIsolation() override;
  NetworkIsolation(const NetworkIsolation&) = delete;
  NetworkIsolation& operator=(const NetworkIsolation&) = delete;

  State state() const { return state_; }
  // "enforced", "off" or "unavailable: <why>" (NodeInfo.network_isolation).
  std::string describeState() const;
  const vnet::Features& features() const { return features_; }

  // SliverRuntimeOptions::before_launch: maps the sliver's fresh cgroup to its
  // slice, with the slice's policy set first. Throws when isolation is
  // unavailable (the sliver must not start), or when the slice's reservation
  // collides with another's (vnet::ReservationConflict names both).
  void beforeLaunch(const node::SliverConfig& config, const node::NetworkRights& rights,
                    const std::filesystem::path& unified_cgroup);

  // One slice's network rights as its desired state gives them.
  struct SliceRights {
    std::uint32_t xid = 0;
    node::NetworkRights rights;
    node::NetworkLimits limits;  // net_* tags
    // What the slice's bound rcaps add: guarantees add, a larger cap wins.
    std::uint64_t bound_min_rate_bps = 0;
    std::uint64_t bound_max_rate_bps = 0;
  };
  // After each reconciliation: the policy of every slice the node should run
  // (by slice name) and the slivers that exist (running or not). A slice
  // neither desired nor with a sliver is forgotten (its reservations and ports
  // freed); a cgroup that no longer exists is forgotten, and every live sliver
  // cgroup is mapped to its slice. Returns, by slice, why its policy could not
  // be set (a reservation that collides).
  std::map<std::string, std::string> apply(const std::map<std::string, SliceRights>& desired,
                                           const std::vector<node::SliverStatus>& slivers);

  // The uplink's limit: the site's (node tag net_node_cap) when it set one,
  // else the configuration's (Options::node_limit_bps). Takes effect for the
  // slices' classes at the next apply().
  void setNodeLimit(std::optional<std::uint64_t> site_limit_bps);

  // PLC's destination blacklist (NodeState.blacklist prefixes). An entry that
  // does not parse is skipped and returned (the caller logs it).
  std::vector<std::string> setBlacklist(const std::vector<std::string>& prefixes);

  // Periodic upkeep: the node's addresses (they may change), idle lazy claims,
  // and the packet send guard on devices that appeared since.
  void refresh();

  // Port holdings as the local API shows them: of one slice (xid), or of every
  // owner (nullopt); `slice_names` names owners by xid.
  std::vector<planetlab::v1::PortHolding> ports(
      std::optional<std::uint32_t> xid,
      const std::map<std::uint32_t, std::string>& slice_names) const;
  // Refusals of a slice, by reason.
  std::map<std::string, std::uint64_t> counters(std::uint32_t xid) const;

  void describe(planetlab::v1::NodeInfo& info) const;

  // Flow records (FlowSource, for FlowDrain): none unless enforced.
  std::vector<vnet::FlowEntry> flows() override;
  std::optional<vnet_flow> takeFlow(const vnet_flow_key& key) override;
  std::uint64_t flowDrops() override;
  // Daily byte budgets (DailyBudgets): every slice's traffic counters (empty
  // unless enforced), dropping a slice's counter, each slice's HTB classes
  // before budgets (empty when bandwidth is not controlled), and the ceils the
  // budgets lower (BandwidthControl::setBudgetCeilings).
  std::map<std::uint32_t, vnet::SliceTraffic> traffic() const;
  void forgetTraffic(std::uint32_t xid);
  std::map<std::uint32_t, vnet::SliceBandwidth> sliceBandwidth() const;
  void setBudgetCeilings(const std::map<std::uint32_t, std::uint64_t>& ceilings);

  // `sliverd decommission`: unpins every program and map of the instance, and
  // takes the packet send guard off every device.
  static void removePinned(const std::filesystem::path& pin_dir);
  // `sliverd decommission`: net.ipv4.ip_local_reserved_ports back as it was.
  static void restoreLocalReservedPorts(const std::filesystem::path& saved);
  // `sliverd decommission`: the uplink's HTB tree (BandwidthControl::remove).
  static std::string removeBandwidth(const std::filesystem::path& record);
  // The limits the HTB tree gives a slice: its tags with its bound rcaps.
  static node::NetworkLimits effectiveLimits(const SliceRights& rights);

 private:
  vnet::SlicePolicy policyOf(const node::NetworkRights& rights) const;
  void startBandwidth();
  // Call with mutex_ held; adds admission's cuts to `refused`.
  void applyBandwidthLocked(const std::map<std::string, SliceRights>& desired,
                            const std::set<std::uint32_t>& kept,
                            std::map<std::string, std::string>& refused);
  // Writes a slice's policy unless this process already wrote the same one:
  // setSlice reads the whole reserved-ports map, too much for every slice at
  // every reconciliation. Call with mutex_ held.
  void setSliceLocked(std::uint32_t xid, const vnet::SlicePolicy& policy);
  // The node's and every slice's reserved ports into ip_local_reserved_ports,
  // when they changed. Call with mutex_ held.
  void keepReservedPortsFromKernel();

  Options options_;
  vnet::Features features_;
  State state_ = State::kOff;
  std::string why_;  // kUnavailable: what is missing or failed
  mutable std::mutex mutex_;
  std::unique_ptr<vnet::NetworkPolicy> policy_;
  std::unique_ptr<vnet::PacketSendGuard> packet_guard_;
  std::map<std::uint32_t, vnet::SlicePolicy> written_;  // by xid, what setSlice took
  std::unique_ptr<LocalReservedPorts> local_reserved_;  // null: not managed
  std::unique_ptr<BandwidthControl> bandwidth_;         // null: bandwidth not controlled
};

}  // namespace plng::sliverd
