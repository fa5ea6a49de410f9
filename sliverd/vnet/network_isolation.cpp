#include "sliverd/vnet/network_isolation.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <system_error>

#include "vnet-bpf/rules.h"

namespace plng::sliverd {

namespace fs = std::filesystem;

namespace {

void logFromVnet(vnet::LogLevel level, const std::string& message) {
  switch (level) {
    case vnet::LogLevel::kDebug:
      spdlog::debug("vnet: {}", message);
      break;
    case vnet::LogLevel::kInfo:
      spdlog::info("vnet: {}", message);
      break;
    case vnet::LogLevel::kWarn:
      spdlog::warn("vnet: {}", message);
      break;
  }
}

// The required features the kernel lacks, named with what was tried.
std::string missingRequired(const vnet::Features& features) {
  std::string missing;
  for (const vnet::Feature& f : features.list) {
    if (!f.required || f.present) continue;
    if (!missing.empty()) missing += "; ";
    missing += f.name + " (" + f.detail + ")";
  }
  return missing;
}

// The live sliver cgroups beneath `slivers`: directory name -> cgroup id.
std::map<std::string, std::uint64_t> liveSliverCgroups(const fs::path& slivers) {
  std::map<std::string, std::uint64_t> live;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(slivers, ec)) {
    struct stat st {};
    if (!entry.is_directory(ec) || ::stat(entry.path().c_str(), &st) != 0) continue;
    live[entry.path().filename().string()] = st.st_ino;
  }
  return live;
}

}  // namespace

NetworkIsolation::NetworkIsolation(Options options)
    : options_(std::move(options)), features_(vnet::probeFeatures()) {
  spdlog::info("network features: {}; abstract unix sockets isolated by: {}", features_.summary(),
               features_.abstractUnixIsolation());
  if (!options_.enabled) {
    state_ = State::kOff;
    spdlog::warn(
        "NETWORK ISOLATION IS OFF (network_isolation = false): slivers share this node's "
        "network with no port ownership, no destination blacklist and no protection of the "
        "node's own services; raw sockets are not policed");
    return;
  }
  if (!features_.complete()) {
    state_ = State::kUnavailable;
    why_ = "the kernel lacks " + missingRequired(features_);
    spdlog::error("network isolation unavailable: {}; slivers will not be started (docs/vnet.md)",
                  why_);
    return;
  }
  try {
    policy_ = std::make_unique<vnet::NetworkPolicy>(vnet::PolicyOptions{
        .pin_dir = options_.pin_dir,
        .slivers_cgroup = options_.slivers_cgroup,
        .node_ports = options_.node_ports,
        .service_allowlist = options_.service_allowlist,
        .log = logFromVnet,
        // Where Landlock scopes each sliver, a slice reaches its own abstract
        // sockets; connect_unix would refuse them (it only knows registered names).
        .connect_unix = features_.abstractUnixIsolation() == "connect_unix",
        .flow_entries = options_.flow_entries,
    });
    // Slivers' packet sockets (net_capture) must not send: on every device,
    // whether or not a slice may capture, at the cost of a pointer test per
    // frame of other sockets (docs/vnet.md, "Packet capture").
    packet_guard_ =
        std::make_unique<vnet::PacketSendGuard>(options_.pin_dir, policy_->sliverCgroupLevel());
    packet_guard_->attachToEveryDevice();
    state_ = State::kEnforced;
    if (!options_.local_reserved_ports_saved.empty())
      local_reserved_ = std::make_unique<LocalReservedPorts>(options_.local_reserved_ports_saved);
    spdlog::info("network isolation enforced at {} ({}; state pinned in {})",
                 options_.slivers_cgroup.string(),
                 policy_->reusedPinnedLinks() ? "programs swapped into the pinned links"
                                              : "programs attached",
                 options_.pin_dir.string());
    startBandwidth();
  } catch (const vnet::BpfLoadError& e) {
    state_ = State::kUnavailable;
    why_ = e.what();
    spdlog::error("network isolation unavailable: {}; slivers will not be started\n{}", why_,
                  e.verifierLog());
  } catch (const std::exception& e) {
    state_ = State::kUnavailable;
    why_ = e.what();
    spdlog::error("network isolation unavailable: {}; slivers will not be started", why_);
  }
}

NetworkIsolation::~NetworkIsolation() = default;

void NetworkIsolation::startBandwidth() {
  if (!options_.bandwidth) {
    spdlog::warn(
        "bandwidth is not controlled (bandwidth = false): slices' traffic is neither "
        "capped nor guaranteed");
    return;
  }
  try {
    bandwidth_ = std::make_unique<BandwidthControl>(
        BandwidthControl::Options{.uplink = options_.uplink,
                                  .node_limit_bps = options_.node_limit_bps,
                                  .record = options_.bandwidth_record},
        *policy_);
    spdlog::info("bandwidth: HTB tree on {}", bandwidth_->describe());
  } catch (const std::exception& e) {
    // Slices' packets then leave unshaped, as every node's did before: loud, but
    // no reason to keep slivers from running.
    spdlog::error("bandwidth is not controlled: {}", e.what());
  }
}

node::NetworkLimits NetworkIsolation::effectiveLimits(const SliceRights& rights) {
  node::NetworkLimits limits = rights.limits;
  if (rights.bound_min_rate_bps != 0) {
    limits.min_rate_bps =
        (limits.min_rate_bps != 0 ? limits.min_rate_bps : vnet::kDefaultMinRateBps) +
        rights.bound_min_rate_bps;
  }
  const std::uint64_t cap =
      limits.max_rate_bps != 0 ? limits.max_rate_bps : vnet::kDefaultMaxRateBps;
  if (rights.bound_max_rate_bps > cap) limits.max_rate_bps = rights.bound_max_rate_bps;
  return limits;
}

std::string NetworkIsolation::describeState() const {
  switch (state_) {
    case State::kEnforced:
      return "enforced";
    case State::kOff:
      return "off";
    case State::kUnavailable:
      return "unavailable: " + why_;
  }
  return "unknown";
}

vnet::SlicePolicy NetworkIsolation::policyOf(const node::NetworkRights& rights) const {
  return vnet::SlicePolicy{
      .raw_sockets = rights.raw_sockets,
      .max_ports = rights.max_ports,
      .reserved = rights.reserved_ports,
  };
}

void NetworkIsolation::setSliceLocked(std::uint32_t xid, const vnet::SlicePolicy& policy) {
  auto written = written_.find(xid);
  if (written != written_.end() && written->second == policy) return;
  policy_->setSlice(xid, policy);  // throws before changing anything
  written_[xid] = policy;
}

void NetworkIsolation::beforeLaunch(const node::SliverConfig& config,
                                    const node::NetworkRights& rights,
                                    const fs::path& unified_cgroup) {
  if (state_ == State::kOff) return;
  if (state_ == State::kUnavailable) {
    throw std::runtime_error("network isolation is unavailable on this node (" + why_ +
                             "): slivers are not started (docs/vnet.md; an operator may set "
                             "network_isolation = false to run without it)");
  }
  std::lock_guard lock(mutex_);
  setSliceLocked(config.xid, policyOf(rights));
  if (bandwidth_ != nullptr) {
    try {
      bandwidth_->ensureSlice(config.xid);
    } catch (const std::exception& e) {
      // Its packets go to the node's class, under the node's limit.
      spdlog::error("sliver {}: no HTB class: {}", config.slice, e.what());
    }
  }
  policy_->setSliverCgroup(vnet::NetworkPolicy::cgroupId(unified_cgroup), config.xid);
}

std::map<std::string, std::string> NetworkIsolation::apply(
    const std::map<std::string, SliceRights>& desired,
    const std::vector<node::SliverStatus>& slivers) {
  std::map<std::string, std::string> refused;
  if (state_ != State::kEnforced) return refused;
  std::lock_guard lock(mutex_);

  std::map<std::string, std::uint32_t> xids;  // every slice that keeps a policy
  for (const auto& [slice, wanted] : desired) {
    xids[slice] = wanted.xid;
    try {
      setSliceLocked(wanted.xid, policyOf(wanted.rights));
    } catch (const vnet::ReservationConflict& e) {
      refused[slice] = e.what();
    }
  }
  for (const node::SliverStatus& sliver : slivers) {
    xids.emplace(sliver.config.slice, sliver.config.xid);
  }
  std::set<std::uint32_t> kept;
  for (const auto& [slice, xid] : xids) kept.insert(xid);
  for (std::uint32_t xid : policy_->slices()) {
    if (!kept.contains(xid)) {
      spdlog::info("vnet: slice xid {} left the node: its ports and reservations are freed", xid);
      policy_->removeSlice(xid);
      written_.erase(xid);
    }
  }

  // Cgroups: a sliver's cgroup is made anew at each start, so the live ones are
  // read from the kernel (a start from the local API may have made one since
  // `slivers` was listed).
  const std::map<std::string, std::uint64_t> live = liveSliverCgroups(options_.slivers_cgroup);
  std::set<std::uint64_t> live_ids;
  for (const auto& [name, id] : live) {
    live_ids.insert(id);
    auto xid = xids.find(name);
    if (xid != xids.end()) policy_->setSliverCgroup(id, xid->second);
  }
  for (const auto& [id, xid] : policy_->sliverCgroups()) {
    if (!live_ids.contains(id)) policy_->removeSliverCgroup(id);
  }
  keepReservedPortsFromKernel();
  if (bandwidth_ != nullptr) applyBandwidthLocked(desired, kept, refused);
  return refused;
}

void NetworkIsolation::keepReservedPortsFromKernel() {
  if (!local_reserved_) return;
  std::vector<proto::PortRange> reserved = options_.node_ports;
  for (const auto& [xid, policy] : written_)
    reserved.insert(reserved.end(), policy.reserved.begin(), policy.reserved.end());
  try {
    if (local_reserved_->set(reserved))
      spdlog::info(
          "net.ipv4.ip_local_reserved_ports now holds the node's and the slices' {} "
          "reserved port ranges: the kernel picks none of them for a connect",
          reserved.size());
  } catch (const std::exception& e) {
    spdlog::warn(
        "net.ipv4.ip_local_reserved_ports: {} (the kernel may pick a port reserved "
        "for one slice as another's ephemeral port)",
        e.what());
  }
}

void NetworkIsolation::applyBandwidthLocked(const std::map<std::string, SliceRights>& desired,
                                            const std::set<std::uint32_t>& kept,
                                            std::map<std::string, std::string>& refused) {
  std::map<std::uint32_t, node::NetworkLimits> limits;
  std::map<std::uint32_t, std::string> names;
  for (const auto& [slice, wanted] : desired) {
    limits[wanted.xid] = effectiveLimits(wanted);
    names[wanted.xid] = slice;
  }
  try {
    for (const auto& [xid, why] : bandwidth_->apply(limits, kept)) refused[names[xid]] = why;
  } catch (const std::exception& e) {
    spdlog::error("bandwidth: cannot apply the desired state: {}", e.what());
  }
}

void NetworkIsolation::setNodeLimit(std::optional<std::uint64_t> site_limit_bps) {
  std::lock_guard lock(mutex_);
  if (bandwidth_ == nullptr) return;
  const std::uint64_t bps = site_limit_bps.value_or(options_.node_limit_bps);
  const std::uint64_t was = bandwidth_->nodeLimitBps();
  try {
    if (bandwidth_->setNodeLimit(bps)) {
      spdlog::info("bandwidth: the node's limit is {} bit/s (was {}), {}", bps, was,
                   site_limit_bps ? "the site's net_node_cap" : "capacity_net_bps");
    }
  } catch (const std::exception& e) {
    spdlog::error("bandwidth: cannot set the node's limit to {} bit/s: {}", bps, e.what());
  }
}

std::vector<std::string> NetworkIsolation::setBlacklist(const std::vector<std::string>& prefixes) {
  std::vector<std::string> skipped;
  std::vector<vnet::Prefix> parsed;
  for (const std::string& text : prefixes) {
    try {
      parsed.push_back(vnet::parsePrefix(text));
    } catch (const std::invalid_argument& e) {
      skipped.push_back(e.what());
    }
  }
  if (state_ != State::kEnforced) return skipped;
  std::lock_guard lock(mutex_);
  policy_->setBlacklist(parsed);
  return skipped;
}

void NetworkIsolation::refresh() {
  if (state_ != State::kEnforced) return;
  std::lock_guard lock(mutex_);
  policy_->refreshNodeAddresses();
  try {
    for (const std::string& device : packet_guard_->attachToEveryDevice())
      spdlog::info("vnet: packet send guard attached to {}", device);
  } catch (const std::exception& e) {
    spdlog::error("vnet: {}: slivers' packet sockets may send on that device", e.what());
  }
  if (std::size_t expired = policy_->expireIdleClaims(); expired > 0) {
    spdlog::debug("vnet: {} idle port claims expired", expired);
  }
}

std::vector<vnet::FlowEntry> NetworkIsolation::flows() {
  if (state_ != State::kEnforced) return {};
  std::lock_guard lock(mutex_);
  return policy_->flows();
}

std::optional<vnet_flow> NetworkIsolation::takeFlow(const vnet_flow_key& key) {
  if (state_ != State::kEnforced) return std::nullopt;
  std::lock_guard lock(mutex_);
  return policy_->takeFlow(key);
}

std::uint64_t NetworkIsolation::flowDrops() {
  if (state_ != State::kEnforced) return 0;
  std::lock_guard lock(mutex_);
  return policy_->flowDrops();
}

std::vector<planetlab::v1::PortHolding> NetworkIsolation::ports(
    std::optional<std::uint32_t> xid,
    const std::map<std::uint32_t, std::string>& slice_names) const {
  std::vector<planetlab::v1::PortHolding> holdings;
  if (state_ != State::kEnforced) return holdings;
  std::vector<vnet::PortOwner> owners;
  {
    std::lock_guard lock(mutex_);
    owners = policy_->ports(xid);
  }
  std::sort(owners.begin(), owners.end(),
            [](const vnet::PortOwner& a, const vnet::PortOwner& b) { return a.port < b.port; });
  for (const vnet::PortOwner& owner : owners) {
    planetlab::v1::PortHolding& h = holdings.emplace_back();
    h.set_protocol(std::string(vnet::protocolName(owner.port.protocol)));
    h.set_first_port(owner.port.port);
    h.set_last_port(owner.port.port);
    if (owner.xid == VNET_XID_NODE) {
      h.set_kind("node");
    } else {
      auto name = slice_names.find(owner.xid);
      h.set_slice_name(name != slice_names.end() ? name->second
                                                 : "xid " + std::to_string(owner.xid));
      h.set_kind(owner.hold == vnet::PortHold::kLazy ? "claimed"
                                                     : std::string(portHoldName(owner.hold)));
    }
    h.set_sockets(owner.sockets);
  }
  // Consecutive ports of one owner and kind read as a range.
  std::vector<planetlab::v1::PortHolding> merged;
  for (planetlab::v1::PortHolding& h : holdings) {
    if (!merged.empty()) {
      planetlab::v1::PortHolding& last = merged.back();
      if (last.protocol() == h.protocol() && last.slice_name() == h.slice_name() &&
          last.kind() == h.kind() && h.kind() != "bound" && h.kind() != "claimed" &&
          last.last_port() + 1 == h.first_port()) {
        last.set_last_port(h.first_port());
        continue;
      }
    }
    merged.push_back(std::move(h));
  }
  return merged;
}

std::map<std::string, std::uint64_t> NetworkIsolation::counters(std::uint32_t xid) const {
  if (state_ != State::kEnforced) return {};
  std::lock_guard lock(mutex_);
  return policy_->counters(xid);
}

std::map<std::uint32_t, vnet::SliceTraffic> NetworkIsolation::traffic() const {
  if (state_ != State::kEnforced) return {};
  std::lock_guard lock(mutex_);
  return policy_->traffic();
}

void NetworkIsolation::forgetTraffic(std::uint32_t xid) {
  if (state_ != State::kEnforced) return;
  std::lock_guard lock(mutex_);
  policy_->forgetTraffic(xid);
}

std::map<std::uint32_t, vnet::SliceBandwidth> NetworkIsolation::sliceBandwidth() const {
  if (state_ != State::kEnforced) return {};
  std::lock_guard lock(mutex_);
  return bandwidth_ != nullptr ? bandwidth_->sliceBandwidth()
                               : std::map<std::uint32_t, vnet::SliceBandwidth>{};
}

void NetworkIsolation::setBudgetCeilings(const std::map<std::uint32_t, std::uint64_t>& ceilings) {
  if (state_ != State::kEnforced) return;
  std::lock_guard lock(mutex_);
  if (bandwidth_ != nullptr) bandwidth_->setBudgetCeilings(ceilings);
}

void NetworkIsolation::describe(planetlab::v1::NodeInfo& info) const {
  info.set_network_isolation(describeState());
  for (const vnet::Feature& f : features_.list) {
    planetlab::v1::NetworkFeature* out = info.add_network_features();
    out->set_name(f.name);
    out->set_present(f.present);
    out->set_required(f.required);
    out->set_detail(f.detail);
  }
  // Landlock scoping is applied to every sliver at launch whatever the state of
  // isolation; connect_unix only while the programs are attached.
  std::string abstract_unix = features_.abstractUnixIsolation();
  if (abstract_unix == "connect_unix" && state_ != State::kEnforced) abstract_unix = "none";
  info.set_abstract_unix_isolation(abstract_unix);
}

void NetworkIsolation::removePinned(const fs::path& pin_dir) {
  vnet::PacketSendGuard::detachFromEveryDevice();
  vnet::NetworkPolicy::removePinned(pin_dir);
}

void NetworkIsolation::restoreLocalReservedPorts(const fs::path& saved) {
  LocalReservedPorts::restore(saved);
}

std::string NetworkIsolation::removeBandwidth(const fs::path& record) {
  return BandwidthControl::remove(record);
}

}  // namespace plng::sliverd
