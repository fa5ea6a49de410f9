// The loader of vnet-bpf's policy programs for one node instance: a
// NetworkPolicy opens the pinned state of its bpffs directory (or creates it),
// loads the programs, attaches them once at the instance's slivers cgroup and
// keeps the maps in line with what sliverd says about slices, slivers, the
// blacklist and the node's addresses (docs/vnet.md).
//
// Everything lives in bpffs under `pin_dir`: the maps (so a restart, or a crash,
// keeps every port owner, counter and rule) and the links (so the programs stay
// attached while no sliverd runs). Opening an instance whose links are pinned
// swaps the new programs in with bpf_link_update: policy never lapses. Instances
// with different pin directories and cgroups share nothing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "proto/port_spec.h"
#include "vnet-bpf/bandwidth.h"
#include "vnet-bpf/features.h"
#include "vnet-bpf/rules.h"

namespace plng::vnet {

enum class LogLevel { kDebug, kInfo, kWarn };
using LogSink = std::function<void(LogLevel, const std::string&)>;

// A program the kernel refused: the message names it; verifierLog() is the
// verifier's own account.
class BpfLoadError : public std::runtime_error {
 public:
  BpfLoadError(const std::string& what, std::string verifier_log)
      : std::runtime_error(what), verifier_log_(std::move(verifier_log)) {}
  const std::string& verifierLog() const { return verifier_log_; }

 private:
  std::string verifier_log_;
};

struct PolicyOptions {
  std::filesystem::path pin_dir;                    // e.g. /sys/fs/bpf/plng/<node>; created
  std::filesystem::path slivers_cgroup;             // a directory on the cgroup2 mount
  std::vector<proto::PortRange> node_ports;         // never granted to slices
  std::vector<proto::PortRange> service_allowlist;  // node ports slices may reach
  LogSink log;                                      // libbpf's messages; may be empty
  std::uint32_t default_max_ports = 2000;
  std::uint64_t lazy_idle_seconds = 60;    // a raw/ping sender's claim without packets
  std::uint64_t max_bound_sockets = 4096;  // per slice: sockets holding a port they bound
  // Attach vnet_connect_unix where the kernel has the hook. sliverd turns it off
  // where Landlock scopes the slivers' abstract unix sockets (node/launch.h),
  // which lets a slice reach its own sockets; connect_unix only knows the names
  // registered with setAbstractUnixNames. Off, a link pinned by an earlier run
  // is detached and unpinned.
  bool connect_unix = true;
  // Entries of the flow records map (docs/vnet.md, "Flow auditing"). A map
  // pinned with another size is replaced, its records lost (a warning says so).
  std::uint32_t flow_entries = VNET_MAX_FLOWS;
};

// A flow record as the programs keep it (abi.h): key and counts.
struct FlowEntry {
  vnet_flow_key key{};
  vnet_flow flow{};
};

struct SlicePolicy {
  bool raw_sockets = false;
  std::uint32_t max_ports = 2000;
  std::vector<proto::PortRange> reserved;
  bool operator==(const SlicePolicy&) const = default;
};

// What a slice's packets that passed the policy carried (IP bytes), since its
// counter was made: counted by the egress and ingress programs, kept in the
// pinned slice_traffic map (a restart keeps counting from where it was).
struct SliceTraffic {
  std::uint64_t egress_bytes = 0;
  std::uint64_t egress_packets = 0;
  std::uint64_t ingress_bytes = 0;
  std::uint64_t ingress_packets = 0;
  bool operator==(const SliceTraffic&) const = default;
};

enum class PortHold { kBound, kReserved, kLazy };
std::string_view portHoldName(PortHold hold);  // "bound" | "reserved" | "lazy"

struct PortOwner {
  PortKey port;
  std::uint32_t xid = 0;  // VNET_XID_NODE for the node's own ports
  PortHold hold = PortHold::kBound;
  std::uint32_t sockets = 0;  // kBound: sockets holding it
};

// "port_owned", "blacklist", ... (enum vnet_reason).
std::string_view reasonName(std::uint32_t reason);

// Not thread-safe: one caller at a time (sliverd serializes its calls).
class NetworkPolicy {
 public:
  // Loads and attaches (or re-attaches) the programs. Throws BpfLoadError when
  // the verifier refuses a program, base::SysError for the rest.
  explicit NetworkPolicy(PolicyOptions options);
  ~NetworkPolicy();
  NetworkPolicy(const NetworkPolicy&) = delete;
  NetworkPolicy& operator=(const NetworkPolicy&) = delete;

  // A slice's policy. Throws ReservationConflict, naming both owners, when its
  // reservation collides with another slice's or with the node's ports; nothing
  // is changed then.
  void setSlice(std::uint32_t xid, const SlicePolicy& policy);
  void removeSlice(std::uint32_t xid);
  // The slice's HTB classes on the uplink (bandwidth.h), written into every
  // packet it sends; setSlice keeps them. A slice without an entry gets one
  // with the default policy. Ids of 0: the uplink's default class.
  void setSliceClasses(std::uint32_t xid, const SliceClassIds& classes);
  // The cgroup (its id: the inode of its cgroup2 directory) of one of the
  // slice's slivers, a direct child of the slivers cgroup.
  void setSliverCgroup(std::uint64_t cgroup_id, std::uint32_t xid);
  void removeSliverCgroup(std::uint64_t cgroup_id);
  // What the maps hold: the slices with a policy, and each mapped cgroup's slice.
  std::vector<std::uint32_t> slices() const;
  std::map<std::uint64_t, std::uint32_t> sliverCgroups() const;
  // The HTB classes each slice's entry holds (a restarted sliverd adopts them).
  std::map<std::uint32_t, SliceClassIds> sliceClasses() const;
  // PLC's destination blacklist: only the difference is written, so a change
  // takes effect at once and nothing else lapses.
  void setBlacklist(const std::vector<Prefix>& prefixes);
  // The node's addresses (getifaddrs in the current network namespace), plus
  // 127.0.0.0/8 and ::1: destinations whose services slices do not reach.
  void refreshNodeAddresses();
  // Abstract unix socket names a slice may connect to (connect_unix).
  void setAbstractUnixNames(std::uint32_t xid, const std::vector<std::string>& names);

  // Port owners, of one slice or all; reserved ports included.
  std::vector<PortOwner> ports(std::optional<std::uint32_t> xid = std::nullopt) const;
  // Refusals of a slice by reason name.
  std::map<std::string, std::uint64_t> counters(std::uint32_t xid) const;
  // Every slice's traffic, summed over the CPUs (slices that sent or received
  // nothing have no entry).
  std::map<std::uint32_t, SliceTraffic> traffic() const;
  // Drops a slice's traffic counter (its next packet starts one from zero).
  void forgetTraffic(std::uint32_t xid);
  // Deletes lazy claims idle longer than lazy_idle_seconds; their number.
  std::size_t expireIdleClaims();

  // Flow records (docs/vnet.md, "Flow auditing"): every entry of the map now
  // (the programs keep counting meanwhile).
  std::vector<FlowEntry> flows() const;
  // Deletes one record and returns its counts as they were when it went
  // (nullopt: gone already). A packet counted in the instant between the
  // kernel's copy and its delete is lost: take only records that are idle.
  std::optional<vnet_flow> takeFlow(const vnet_flow_key& key);
  // Packets whose record the programs could not insert (the map was full),
  // since the map was created.
  std::uint64_t flowDrops() const;

  // Whether the programs were attached anew or swapped into pinned links.
  bool reusedPinnedLinks() const { return reused_links_; }
  // The depth of a sliver's cgroup on the cgroup2 mount (the slivers cgroup's
  // plus one), as the programs find a packet's slice (PacketSendGuard too).
  std::uint32_t sliverCgroupLevel() const { return sliver_cgroup_level_; }

  // Unpins every link and map of an instance (decommission): the programs
  // detach and the state goes. A missing directory is not an error.
  static void removePinned(const std::filesystem::path& pin_dir);

  // The cgroup id of a cgroup2 directory.
  static std::uint64_t cgroupId(const std::filesystem::path& dir);

 private:
  // Invalidates what the egress fast path remembered per socket (its slice's
  // class, a flow's verdict): called after every change of what a verdict or
  // a class depends on, and at load (docs/vnet.md, "The egress fast path").
  void advanceEpoch();

  struct Skeleton;
  std::unique_ptr<Skeleton> skeleton_;
  PolicyOptions options_;
  bool reused_links_ = false;
  std::uint32_t sliver_cgroup_level_ = 0;
};

// For tests: loads the programs of a skeleton-less object file the way
// NetworkPolicy loads its own, so a verifier failure can be shown.
void loadObjectForTest(const std::filesystem::path& object, const LogSink& log);

}  // namespace plng::vnet
