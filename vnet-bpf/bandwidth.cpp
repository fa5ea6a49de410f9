#include "vnet-bpf/bandwidth.h"

#include <linux/gen_stats.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "base/error.h"

namespace plng::vnet {

namespace {

constexpr std::uint32_t kEthernetFrame = 1514;
constexpr std::uint32_t kTcMtu = 1600;  // tc's burst allowance for one packet
constexpr std::uint16_t kPacketCost = 0xffff;
constexpr std::uint64_t kMaxU32 = 0xffffffffu;

std::uint64_t bytesOf(std::uint64_t bps) { return std::max<std::uint64_t>(bps / 8, 1); }

// tc's default burst: 10 ms at the rate, plus a packet; as psched ticks (64 ns).
std::uint32_t bufferTicks(std::uint64_t rate_bytes, std::uint16_t mpu) {
  const std::uint64_t burst =
      std::max<std::uint64_t>(rate_bytes / 100 + kTcMtu, std::uint64_t{mpu});
  const std::uint64_t ns = burst * 1'000'000'000ull / rate_bytes;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(ns >> 6, kMaxU32));
}

tc_ratespec rateSpec(std::uint64_t rate_bytes, std::uint16_t mpu) {
  tc_ratespec spec{};
  spec.linklayer = TC_LINKLAYER_ETHERNET;  // no rate table needed
  spec.mpu = mpu;
  spec.rate = static_cast<std::uint32_t>(std::min(rate_bytes, kMaxU32));
  return spec;
}

tcmsg tcHeader(int ifindex, std::uint32_t handle, std::uint32_t parent) {
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = ifindex;
  tc.tcm_handle = handle;
  tc.tcm_parent = parent;
  return tc;
}

template <typename T>
bool readValue(std::span<const std::uint8_t> bytes, T& out) {
  if (bytes.size() < sizeof(T)) return false;
  std::memcpy(&out, bytes.data(), sizeof(T));
  return true;
}

std::string kindOf(const std::map<std::uint16_t, std::span<const std::uint8_t>>& attributes) {
  auto it = attributes.find(TCA_KIND);
  if (it == attributes.end()) return {};
  const char* text = reinterpret_cast<const char*>(it->second.data());
  return std::string(text, ::strnlen(text, it->second.size()));
}

std::string handleName(std::uint32_t handle) {
  char text[16];
  std::snprintf(text, sizeof(text), "%x:%x", handle >> 16, handle & 0xffff);
  return text;
}

}  // namespace

SliceClassIds classIdsOfSlot(std::uint32_t slot) {
  const std::uint32_t minor = kFirstSliceMinor + 2 * slot;
  return {tcHandle(kHtbMajor, minor), tcHandle(kHtbMajor, minor + 1)};
}

std::optional<std::uint32_t> slotOfClass(std::uint32_t handle) {
  const std::uint32_t minor = handle & 0xffff;
  if (handle >> 16 != kHtbMajor || minor < kFirstSliceMinor) return std::nullopt;
  const std::uint32_t slot = (minor - kFirstSliceMinor) / 2;
  if (slot >= kSliceSlots) return std::nullopt;
  return slot;
}

ClassIdAllocator::ClassIdAllocator(const std::map<std::uint32_t, SliceClassIds>& held) {
  for (const auto& [xid, ids] : held) {
    auto slot = slotOfClass(ids.bulk);
    if (!slot || classIdsOfSlot(*slot) != ids || xid_of_.contains(*slot)) continue;
    slot_of_[xid] = *slot;
    xid_of_[*slot] = xid;
  }
}

SliceClassIds ClassIdAllocator::assign(std::uint32_t xid) {
  if (auto it = slot_of_.find(xid); it != slot_of_.end()) return classIdsOfSlot(it->second);
  const std::uint32_t preferred = xid % kSliceSlots;
  for (std::uint32_t step = 0; step < kSliceSlots; ++step) {
    const std::uint32_t slot = (preferred + step) % kSliceSlots;
    if (xid_of_.contains(slot)) continue;
    slot_of_[xid] = slot;
    xid_of_[slot] = xid;
    return classIdsOfSlot(slot);
  }
  throw std::runtime_error("no HTB class left for slice " + std::to_string(xid) + ": all " +
                           std::to_string(kSliceSlots) + " are taken");
}

void ClassIdAllocator::release(std::uint32_t xid) {
  auto it = slot_of_.find(xid);
  if (it == slot_of_.end()) return;
  xid_of_.erase(it->second);
  slot_of_.erase(it);
}

std::optional<SliceClassIds> ClassIdAllocator::find(std::uint32_t xid) const {
  auto it = slot_of_.find(xid);
  if (it == slot_of_.end()) return std::nullopt;
  return classIdsOfSlot(it->second);
}

std::map<std::uint32_t, SliceClassIds> ClassIdAllocator::all() const {
  std::map<std::uint32_t, SliceClassIds> out;
  for (const auto& [xid, slot] : slot_of_) out[xid] = classIdsOfSlot(slot);
  return out;
}

std::uint32_t quantumFor(std::uint64_t rate_bps) {
  const std::uint64_t per_turn = rate_bps / 8 / 10;  // 100 ms of the rate
  // HTB adds the quantum to an int deficit.
  return static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(per_turn, kEthernetFrame, 0x7fffffff));
}

HtbClass htbClass(std::uint32_t handle, std::uint32_t parent, std::uint64_t rate_bytes,
                  std::uint64_t ceil_bytes, std::uint32_t quantum, std::uint16_t mpu) {
  rate_bytes = std::max<std::uint64_t>(rate_bytes, 1);
  ceil_bytes = std::max(ceil_bytes, rate_bytes);
  return HtbClass{.handle = handle,
                  .parent = parent,
                  .rate_bytes = rate_bytes,
                  .ceil_bytes = ceil_bytes,
                  .buffer_ticks = bufferTicks(rate_bytes, mpu),
                  .cbuffer_ticks = bufferTicks(ceil_bytes, mpu),
                  .quantum = quantum,
                  .mpu = mpu};
}

std::vector<HtbClass> sliceClasses(const SliceClassIds& ids, const SliceBandwidth& bandwidth,
                                   std::uint64_t node_limit_bps) {
  const std::uint64_t rate = std::min(bandwidth.min_rate_bps, node_limit_bps);
  const std::uint64_t ceil = bandwidth.max_rate_bps == 0
                                 ? node_limit_bps
                                 : std::min(bandwidth.max_rate_bps, node_limit_bps);
  const std::uint64_t pps = std::max<std::uint32_t>(bandwidth.icmp_pps, 1);
  return {
      htbClass(ids.bulk, kRootClass, bytesOf(rate), bytesOf(ceil), quantumFor(rate)),
      // One packet a second guaranteed, up to `pps` borrowed from the node's
      // class: guaranteed rates pass HTB's parent unchecked, so a rate of `pps`
      // would let every slice's ICMP add to the node's limit. The parent is
      // charged real bytes (its own rate table has no mpu).
      htbClass(ids.icmp, kRootClass, kPacketCost, pps * kPacketCost, kEthernetFrame, kPacketCost)};
}

std::vector<HtbClass> nodeClasses(std::uint64_t node_limit_bps) {
  const std::uint64_t limit = bytesOf(node_limit_bps);
  return {htbClass(kRootClass, TC_H_ROOT, limit, limit, quantumFor(node_limit_bps)),
          htbClass(kNodeClass, kRootClass, bytesOf(kDefaultMinRateBps), limit,
                   quantumFor(kDefaultMinRateBps))};
}

Admission admitGuarantees(std::uint64_t node_limit_bps,
                          const std::map<std::uint32_t, std::uint64_t>& wanted,
                          const std::vector<std::uint32_t>& order) {
  Admission out;
  std::uint64_t left = node_limit_bps;
  auto admit = [&](std::uint32_t xid, std::uint64_t want) {
    if (out.granted.contains(xid)) return;
    if (want <= left) {
      out.granted[xid] = want;
      left -= want;
      return;
    }
    const std::uint64_t fallback = std::max<std::uint64_t>(std::min(kDefaultMinRateBps, left), 8);
    out.granted[xid] = fallback;
    left -= std::min(fallback, left);
    out.refused[xid] = "net_min_rate " + std::to_string(want) +
                       " bit/s does not fit: " + std::to_string(left + std::min(fallback, left)) +
                       " of the node's " + std::to_string(node_limit_bps) +
                       " bit/s were left; granted " + std::to_string(fallback);
  };
  for (std::uint32_t xid : order)
    if (auto it = wanted.find(xid); it != wanted.end()) admit(xid, it->second);
  for (const auto& [xid, want] : wanted) admit(xid, want);
  return out;
}

rtnl::Message classMessage(int ifindex, const HtbClass& c) {
  rtnl::Message m(RTM_NEWTCLASS, NLM_F_CREATE);
  m.header(tcHeader(ifindex, c.handle, c.parent));
  m.attribute(TCA_KIND, std::string_view("htb"));
  const std::size_t options = m.beginNested(TCA_OPTIONS);
  tc_htb_opt opt{};
  opt.rate = rateSpec(c.rate_bytes, c.mpu);
  opt.ceil = rateSpec(c.ceil_bytes, c.mpu);
  opt.buffer = c.buffer_ticks;
  opt.cbuffer = c.cbuffer_ticks;
  opt.quantum = c.quantum;
  m.attribute(TCA_HTB_PARMS, opt);
  if (c.rate_bytes > kMaxU32) m.attribute(TCA_HTB_RATE64, c.rate_bytes);
  if (c.ceil_bytes > kMaxU32) m.attribute(TCA_HTB_CEIL64, c.ceil_bytes);
  m.endNested(options);
  return m;
}

std::optional<HtbClass> decodeClass(const std::vector<std::uint8_t>& payload) {
  tcmsg tc{};
  if (!readValue(payload, tc)) return std::nullopt;
  auto attributes = rtnl::parseAttributes(std::span(payload).subspan(NLMSG_ALIGN(sizeof(tcmsg))));
  if (kindOf(attributes) != "htb" || !attributes.contains(TCA_OPTIONS)) return std::nullopt;
  auto options = rtnl::parseAttributes(attributes[TCA_OPTIONS]);
  tc_htb_opt opt{};
  if (!options.contains(TCA_HTB_PARMS) || !readValue(options[TCA_HTB_PARMS], opt))
    return std::nullopt;
  HtbClass c{.handle = tc.tcm_handle,
             .parent = tc.tcm_parent,
             .rate_bytes = opt.rate.rate,
             .ceil_bytes = opt.ceil.rate,
             .buffer_ticks = opt.buffer,
             .cbuffer_ticks = opt.cbuffer,
             .quantum = opt.quantum,
             .mpu = opt.rate.mpu};
  if (options.contains(TCA_HTB_RATE64)) readValue(options[TCA_HTB_RATE64], c.rate_bytes);
  if (options.contains(TCA_HTB_CEIL64)) readValue(options[TCA_HTB_CEIL64], c.ceil_bytes);
  return c;
}

std::optional<std::uint64_t> decodeBytesSent(const std::vector<std::uint8_t>& payload) {
  auto attributes = rtnl::parseAttributes(std::span(payload).subspan(NLMSG_ALIGN(sizeof(tcmsg))));
  if (!attributes.contains(TCA_STATS2)) return std::nullopt;
  auto stats = rtnl::parseAttributes(attributes[TCA_STATS2]);
  gnet_stats_basic basic{};
  if (!stats.contains(TCA_STATS_BASIC) || stats[TCA_STATS_BASIC].size() < sizeof(std::uint64_t))
    return std::nullopt;
  std::memcpy(&basic.bytes, stats[TCA_STATS_BASIC].data(), sizeof(basic.bytes));
  return basic.bytes;
}

rtnl::Message rootQdiscMessage(int ifindex) {
  rtnl::Message m(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE);
  m.header(tcHeader(ifindex, kHtbQdisc, TC_H_ROOT));
  m.attribute(TCA_KIND, std::string_view("htb"));
  const std::size_t options = m.beginNested(TCA_OPTIONS);
  tc_htb_glob glob{};
  glob.version = 3;  // HTB_VER >> 16
  glob.rate2quantum = 10;
  glob.defcls = kNodeClass & 0xffff;
  m.attribute(TCA_HTB_INIT, glob);
  m.endNested(options);
  return m;
}

rtnl::Message leafQdiscMessage(int ifindex, std::uint32_t class_handle) {
  rtnl::Message m(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE);
  m.header(tcHeader(ifindex, tcHandle(class_handle & 0xffff, 0), class_handle));
  m.attribute(TCA_KIND, std::string_view("fq_codel"));
  return m;
}

rtnl::Message deleteClassMessage(int ifindex, std::uint32_t class_handle) {
  rtnl::Message m(RTM_DELTCLASS, 0);
  m.header(tcHeader(ifindex, class_handle, 0));
  return m;
}

HtbTree::HtbTree(std::string device) : device_(std::move(device)) {
  ifindex_ = static_cast<int>(::if_nametoindex(device_.c_str()));
  if (ifindex_ == 0) base::throwErrno("uplink device " + device_);
}

bool HtbTree::installed() {
  rtnl::Message m(RTM_GETQDISC, 0);
  m.header(tcHeader(ifindex_, 0, 0));
  for (const auto& reply : socket_.dump(m, "list the qdiscs of " + device_)) {
    tcmsg tc{};
    if (!readValue(std::span<const std::uint8_t>(reply.payload), tc)) continue;
    if (tc.tcm_ifindex != ifindex_ || tc.tcm_parent != TC_H_ROOT) continue;
    auto attributes =
        rtnl::parseAttributes(std::span(reply.payload).subspan(NLMSG_ALIGN(sizeof(tcmsg))));
    return tc.tcm_handle == kHtbQdisc && kindOf(attributes) == "htb";
  }
  return false;
}

std::map<std::uint32_t, std::string> HtbTree::leafKinds() {
  std::map<std::uint32_t, std::string> kinds;
  rtnl::Message m(RTM_GETQDISC, 0);
  m.header(tcHeader(ifindex_, 0, 0));
  for (const auto& reply : socket_.dump(m, "list the qdiscs of " + device_)) {
    tcmsg tc{};
    if (!readValue(std::span<const std::uint8_t>(reply.payload), tc)) continue;
    if (tc.tcm_ifindex != ifindex_ || tc.tcm_parent == TC_H_ROOT) continue;
    kinds[tc.tcm_parent] =
        kindOf(rtnl::parseAttributes(std::span(reply.payload).subspan(NLMSG_ALIGN(sizeof(tcmsg)))));
  }
  return kinds;
}

std::vector<HtbClass> HtbTree::classes() {
  rtnl::Message m(RTM_GETTCLASS, 0);
  m.header(tcHeader(ifindex_, 0, 0));
  std::vector<HtbClass> out;
  for (const auto& reply : socket_.dump(m, "list the classes of " + device_))
    if (auto c = decodeClass(reply.payload)) out.push_back(*c);
  return out;
}

std::map<std::uint32_t, std::uint64_t> HtbTree::bytesSent() {
  rtnl::Message m(RTM_GETTCLASS, 0);
  m.header(tcHeader(ifindex_, 0, 0));
  std::map<std::uint32_t, std::uint64_t> out;
  for (const auto& reply : socket_.dump(m, "list the classes of " + device_)) {
    auto c = decodeClass(reply.payload);
    auto bytes = decodeBytesSent(reply.payload);
    if (c && bytes) out[c->handle] = *bytes;
  }
  return out;
}

bool HtbTree::install(std::uint64_t node_limit_bps) {
  node_limit_bps_ = node_limit_bps;
  known_.clear();
  fq_codel_ = true;
  const bool adopted = installed();
  if (adopted) {
    for (const HtbClass& c : classes()) known_[c.handle] = c;
  } else {
    auto m = rootQdiscMessage(ifindex_);
    socket_.request(m, "add the HTB root qdisc to " + device_);
  }
  for (const HtbClass& c : nodeClasses(node_limit_bps)) ensureClass(c);
  // The node's leaf tells whether this kernel has fq_codel.
  auto kinds = leafKinds();
  if (kinds[kNodeClass] != "fq_codel") addLeaf(kNodeClass);
  return adopted;
}

void HtbTree::addLeaf(std::uint32_t class_handle) {
  if (!fq_codel_) return;
  auto m = leafQdiscMessage(ifindex_, class_handle);
  try {
    socket_.request(m, "add fq_codel under " + handleName(class_handle) + " on " + device_);
  } catch (const base::SysError& e) {
    // A kernel without sch_fq_codel: HTB's own pfifo leaves stay.
    if (e.err() != ENOENT) throw;
    fq_codel_ = false;
  }
}

void HtbTree::ensureClass(const HtbClass& wanted) {
  auto it = known_.find(wanted.handle);
  if (it != known_.end() && it->second == wanted) return;
  auto m = classMessage(ifindex_, wanted);
  socket_.request(m, "set HTB class " + handleName(wanted.handle) + " on " + device_);
  const bool created = it == known_.end();
  known_[wanted.handle] = wanted;
  if (created && wanted.handle != kRootClass) addLeaf(wanted.handle);  // the root is inner
}

void HtbTree::setSlice(const SliceClassIds& ids, const SliceBandwidth& bandwidth) {
  for (const HtbClass& c : sliceClasses(ids, bandwidth, node_limit_bps_)) ensureClass(c);
}

void HtbTree::removeSlice(const SliceClassIds& ids) {
  for (std::uint32_t handle : {ids.bulk, ids.icmp}) {
    if (handle == 0) continue;
    auto m = deleteClassMessage(ifindex_, handle);
    try {
      socket_.request(m, "delete HTB class " + handleName(handle) + " on " + device_);
    } catch (const base::SysError& e) {
      if (e.err() != ENOENT) throw;
    }
    known_.erase(handle);
  }
}

void HtbTree::remove() {
  if (!installed()) return;
  rtnl::Message m(RTM_DELQDISC, 0);
  m.header(tcHeader(ifindex_, kHtbQdisc, TC_H_ROOT));
  socket_.request(m, "delete the HTB root qdisc of " + device_);
  known_.clear();
}

std::string HtbTree::defaultRouteDevice() {
  rtnl::Socket socket;
  for (int family : {AF_INET, AF_INET6}) {
    rtnl::Message m(RTM_GETROUTE, 0);
    rtmsg route{};
    route.rtm_family = static_cast<unsigned char>(family);
    m.header(route);
    for (const auto& reply : socket.dump(m, "list the routes")) {
      rtmsg r{};
      if (!readValue(std::span<const std::uint8_t>(reply.payload), r)) continue;
      if (r.rtm_dst_len != 0 || r.rtm_type != RTN_UNICAST) continue;
      auto attributes =
          rtnl::parseAttributes(std::span(reply.payload).subspan(NLMSG_ALIGN(sizeof(rtmsg))));
      std::uint32_t table = r.rtm_table;
      if (attributes.contains(RTA_TABLE)) readValue(attributes[RTA_TABLE], table);
      std::uint32_t oif = 0;
      if (table != RT_TABLE_MAIN || !attributes.contains(RTA_OIF) ||
          !readValue(attributes[RTA_OIF], oif))
        continue;
      char name[IF_NAMESIZE] = {};
      if (::if_indextoname(oif, name) != nullptr) return name;
    }
  }
  return {};
}

}  // namespace plng::vnet
