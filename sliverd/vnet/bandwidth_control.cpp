#include "sliverd/vnet/bandwidth_control.h"

#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"

namespace plng::sliverd {

namespace {

// The inode of the calling thread's network namespace: which one a tree is in.
std::uint64_t networkNamespace() {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0)
    base::throwErrno("stat /proc/thread-self/ns/net");
  return st.st_ino;
}

}  // namespace

BandwidthControl::BandwidthControl(const Options& options, vnet::NetworkPolicy& policy)
    : policy_(policy), tree_(uplinkDevice(options.uplink)) {
  adopted_ = tree_.install(options.node_limit_bps);
  if (!options.record.empty()) {
    std::filesystem::create_directories(options.record.parent_path());
    base::writeFileAtomic(options.record,
                          tree_.device() + " " + std::to_string(networkNamespace()) + "\n", 0644);
  }
  const std::map<std::uint32_t, vnet::SliceClassIds> held = policy_.sliceClasses();
  allocator_ = vnet::ClassIdAllocator(held);
  in_map_ = held;
  // What the kernel holds: the guarantees slices had (admission keeps them
  // first), and classes no slice holds any more (deleted).
  std::map<std::uint32_t, std::uint32_t> holder;  // bulk class -> xid
  for (const auto& [xid, ids] : allocator_.all()) holder[ids.bulk] = xid;
  std::set<std::uint32_t> orphans;
  for (const vnet::HtbClass& c : tree_.classes()) {
    auto slot = vnet::slotOfClass(c.handle);
    if (!slot) continue;
    const vnet::SliceClassIds ids = vnet::classIdsOfSlot(*slot);
    auto it = holder.find(ids.bulk);
    if (it == holder.end()) {
      orphans.insert(*slot);
    } else if (c.handle == ids.bulk) {
      held_min_bps_[it->second] = c.rate_bytes * 8;
    }
  }
  for (std::uint32_t slot : orphans) tree_.removeSlice(vnet::classIdsOfSlot(slot));
  if (!orphans.empty()) spdlog::info("bandwidth: {} classes of no slice deleted", orphans.size());
}

std::string BandwidthControl::describe() const {
  return tree_.device() + " at " + std::to_string(tree_.nodeLimitBps()) + " bit/s" +
         (adopted_ ? " (adopted)" : "") + ", " + tree_.leafKind() + " leaves";
}

std::string BandwidthControl::uplinkDevice(const std::string& configured) {
  if (!configured.empty()) return configured;
  std::string device = vnet::HtbTree::defaultRouteDevice();
  if (device.empty())
    throw std::runtime_error(
        "no uplink: the node's network namespace has no default route (set `uplink`)");
  return device;
}

vnet::SliceBandwidth BandwidthControl::bandwidthOf(const node::NetworkLimits& limits,
                                                   std::uint64_t granted_min_bps) {
  return vnet::SliceBandwidth{
      .min_rate_bps = granted_min_bps,
      .max_rate_bps = limits.max_rate_bps != 0 ? limits.max_rate_bps : vnet::kDefaultMaxRateBps,
      .icmp_pps = limits.icmp_pps != 0 ? limits.icmp_pps : vnet::kDefaultIcmpPps,
  };
}

void BandwidthControl::write(std::uint32_t xid, const vnet::SliceBandwidth& bandwidth) {
  const vnet::SliceClassIds ids = allocator_.assign(xid);
  own_[xid] = bandwidth;
  vnet::SliceBandwidth in_force = bandwidth;
  if (auto lowered = budget_ceil_.find(xid); lowered != budget_ceil_.end())
    in_force.max_rate_bps =
        std::clamp(lowered->second, bandwidth.min_rate_bps, bandwidth.max_rate_bps);
  tree_.setSlice(ids, in_force);  // nothing is sent when the kernel has it already
  auto it = in_map_.find(xid);
  if (it == in_map_.end() || it->second != ids) {
    policy_.setSliceClasses(xid, ids);
    in_map_[xid] = ids;
  }
  held_min_bps_[xid] = bandwidth.min_rate_bps;
}

void BandwidthControl::setBudgetCeilings(const std::map<std::uint32_t, std::uint64_t>& ceilings) {
  std::set<std::uint32_t> changed;
  for (const auto& [xid, ceil] : budget_ceil_)
    if (!ceilings.contains(xid)) changed.insert(xid);
  for (const auto& [xid, ceil] : ceilings) {
    auto held = budget_ceil_.find(xid);
    if (held == budget_ceil_.end() || held->second != ceil) changed.insert(xid);
  }
  budget_ceil_ = ceilings;
  for (std::uint32_t xid : changed) {
    auto own = own_.find(xid);
    if (own != own_.end()) write(xid, own->second);
  }
}

bool BandwidthControl::setNodeLimit(std::uint64_t bps) {
  if (bps == tree_.nodeLimitBps()) return false;
  tree_.install(bps);
  return true;
}

void BandwidthControl::ensureSlice(std::uint32_t xid) {
  if (in_map_.contains(xid) && allocator_.find(xid)) return;
  auto held = held_min_bps_.find(xid);
  write(xid,
        bandwidthOf({}, held != held_min_bps_.end() ? held->second : vnet::kDefaultMinRateBps));
}

std::map<std::uint32_t, std::string> BandwidthControl::apply(
    const std::map<std::uint32_t, node::NetworkLimits>& wanted,
    const std::set<std::uint32_t>& kept) {
  std::map<std::uint32_t, std::uint64_t> wishes;
  std::vector<std::uint32_t> holders;  // hold their wish already: admitted first
  for (const auto& [xid, limits] : wanted) {
    const std::uint64_t wish =
        limits.min_rate_bps != 0 ? limits.min_rate_bps : vnet::kDefaultMinRateBps;
    wishes[xid] = wish;
    auto held = held_min_bps_.find(xid);
    if (held != held_min_bps_.end() && held->second >= wish) holders.push_back(xid);
  }
  const vnet::Admission admission = vnet::admitGuarantees(tree_.nodeLimitBps(), wishes, holders);
  for (const auto& [xid, limits] : wanted)
    write(xid, bandwidthOf(limits, admission.granted.at(xid)));
  for (const auto& [xid, ids] : allocator_.all()) {
    if (wanted.contains(xid) || kept.contains(xid)) continue;
    tree_.removeSlice(ids);
    allocator_.release(xid);
    in_map_.erase(xid);
    held_min_bps_.erase(xid);
    own_.erase(xid);
  }
  return admission.refused;
}

std::string BandwidthControl::remove(const std::filesystem::path& record) {
  auto text = base::readFileIfExists(record, 4096);
  if (!text) return "no tree was made";
  const auto fields = base::split(base::trim(*text), ' ');
  if (fields.size() != 2) throw std::runtime_error(record.string() + ": not \"<device> <netns>\"");
  const std::string& device = fields[0];
  std::string done;
  if (fields[1] != std::to_string(networkNamespace())) {
    done = "the tree on " + device + " is in another network namespace: it goes with it";
  } else if (::if_nametoindex(device.c_str()) == 0) {
    done = device + " is gone, and its tree with it";
  } else {
    vnet::HtbTree(device).remove();
    done = "the HTB tree on " + device + " removed";
  }
  std::filesystem::remove(record);
  return done;
}

}  // namespace plng::sliverd
