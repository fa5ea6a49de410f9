// The HTB tree's arithmetic and its netlink messages, without privileges:
// class ids derived from xids, the quantum rule, admission of guarantees, and
// the bytes of each tc request as the kernel reads them.
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <set>

#include "vnet-bpf/bandwidth.h"
#include "vnet-bpf/rtnetlink.h"

using namespace plng::vnet;

namespace {

// The payload of a finished message (after its netlink header), as a dump
// reply would carry it.
std::vector<std::uint8_t> payloadOf(rtnl::Message& message) {
  const auto& bytes = message.finish(7);
  nlmsghdr head{};
  std::memcpy(&head, bytes.data(), sizeof(head));
  REQUIRE(head.nlmsg_len == bytes.size());
  REQUIRE(head.nlmsg_seq == 7);
  return {bytes.begin() + NLMSG_HDRLEN, bytes.end()};
}

nlmsghdr headerOf(rtnl::Message& message) {
  nlmsghdr head{};
  std::memcpy(&head, message.finish(1).data(), sizeof(head));
  return head;
}

tcmsg tcOf(const std::vector<std::uint8_t>& payload) {
  tcmsg tc{};
  std::memcpy(&tc, payload.data(), sizeof(tc));
  return tc;
}

std::map<std::uint16_t, std::span<const std::uint8_t>> attributesOf(
    const std::vector<std::uint8_t>& payload) {
  return rtnl::parseAttributes(std::span(payload).subspan(NLMSG_ALIGN(sizeof(tcmsg))));
}

std::string text(std::span<const std::uint8_t> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace

TEST_CASE("slice class ids come in pairs derived from the xid, kept across restarts") {
  CHECK(classIdsOfSlot(0) == SliceClassIds{0x10010, 0x10011});
  CHECK(classIdsOfSlot(kSliceSlots - 1).icmp <= 0x1fffe);
  CHECK(slotOfClass(0x10010) == 0u);
  CHECK(slotOfClass(0x10011) == 0u);
  CHECK(slotOfClass(kRootClass) == std::nullopt);
  CHECK(slotOfClass(kNodeClass) == std::nullopt);
  CHECK(slotOfClass(tcHandle(2, 0x10)) == std::nullopt);  // another qdisc's
  CHECK(slotOfClass(classIdsOfSlot(kSliceSlots - 1).bulk + 2) == std::nullopt);

  ClassIdAllocator fresh;
  const SliceClassIds a = fresh.assign(1001);
  CHECK(a == classIdsOfSlot(1001));
  CHECK(fresh.assign(1001) == a);  // stable
  // A collision (same slot) takes the next free slot.
  const SliceClassIds b = fresh.assign(1001 + kSliceSlots);
  CHECK(b == classIdsOfSlot(1002));
  const SliceClassIds c = fresh.assign(1002);
  CHECK(c == classIdsOfSlot(1003));

  // A restarted sliverd reads the ids from the pinned map and keeps them.
  ClassIdAllocator restarted({{1001 + kSliceSlots, b}, {1001, a}, {1002, c}});
  CHECK(restarted.assign(1002) == c);
  CHECK(restarted.assign(1001 + kSliceSlots) == b);
  CHECK(restarted.assign(7) == classIdsOfSlot(7));
  // Two slices claiming one slot (a damaged map): the second gets a new one.
  ClassIdAllocator damaged({{1, classIdsOfSlot(5)}, {2, classIdsOfSlot(5)}});
  CHECK(damaged.find(1) == classIdsOfSlot(5));
  CHECK(damaged.find(2) == std::nullopt);
  CHECK(damaged.assign(2) == classIdsOfSlot(2));

  restarted.release(1001);
  CHECK(restarted.find(1001) == std::nullopt);
  CHECK(restarted.assign(1001 + 2 * kSliceSlots) == a);  // the freed slot is reused
}

TEST_CASE("every slot can be handed out once, then the allocator refuses") {
  ClassIdAllocator all;
  std::set<std::uint32_t> handles;
  for (std::uint32_t xid = 0; xid < kSliceSlots; ++xid) {
    auto ids = all.assign(xid * 3 + 11);
    handles.insert(ids.bulk);
    handles.insert(ids.icmp);
  }
  CHECK(handles.size() == 2 * kSliceSlots);
  CHECK(!handles.contains(kRootClass));
  CHECK(!handles.contains(kNodeClass));
  CHECK_THROWS_WITH(all.assign(5), Catch::Contains("no HTB class left for slice 5"));
}

TEST_CASE("the quantum is 100 ms of the rate, at least a frame, never clamped above") {
  CHECK(quantumFor(5'000) == 1514);             // the default minimum
  CHECK(quantumFor(1'000'000) == 12'500);       // 1 Mbit/s
  CHECK(quantumFor(3'000'000) == 3 * 12'500);   // in proportion
  CHECK(quantumFor(100'000'000) == 1'250'000);  // above HTB's 200000 clamp
  CHECK(quantumFor(10'000'000'000) == 125'000'000);
  CHECK(quantumFor(UINT64_MAX) == 0x7fffffffu);  // HTB's deficit is an int
}

TEST_CASE("a slice's classes: rate, ceil under the node's limit, ICMP in packets") {
  const SliceClassIds ids = classIdsOfSlot(3);
  auto classes = sliceClasses(
      ids, {.min_rate_bps = 2'000'000, .max_rate_bps = 10'000'000, .icmp_pps = 50}, 100'000'000);
  REQUIRE(classes.size() == 2);
  CHECK(classes[0].handle == ids.bulk);
  CHECK(classes[0].parent == kRootClass);
  CHECK(classes[0].rate_bytes == 250'000);
  CHECK(classes[0].ceil_bytes == 1'250'000);
  CHECK(classes[0].quantum == quantumFor(2'000'000));
  CHECK(classes[0].mpu == 0);
  // tc's burst: 10 ms of the rate plus 1600 bytes, in 64 ns ticks.
  CHECK(classes[0].buffer_ticks == (2500 + 1600) * 1'000'000'000ull / 250'000 / 64);
  CHECK(classes[1].handle == ids.icmp);
  CHECK(classes[1].mpu == 0xffff);
  // One packet a second of its own; the rest up to 50 borrowed under the node's limit.
  CHECK(classes[1].parent == kRootClass);
  CHECK(classes[1].rate_bytes == 0xffffull);
  CHECK(classes[1].ceil_bytes == 50 * 0xffffull);

  // The ceil never exceeds the node's limit, nor falls below the rate.
  auto capped =
      sliceClasses(ids, {.min_rate_bps = 5'000, .max_rate_bps = 1'000'000'000}, 50'000'000);
  CHECK(capped[0].ceil_bytes == 50'000'000 / 8);
  auto inverted =
      sliceClasses(ids, {.min_rate_bps = 8'000'000, .max_rate_bps = 1'000'000}, 50'000'000);
  CHECK(inverted[0].ceil_bytes == inverted[0].rate_bytes);
  auto unset = sliceClasses(ids, {.min_rate_bps = 5'000, .max_rate_bps = 0}, 50'000'000);
  CHECK(unset[0].ceil_bytes == 50'000'000 / 8);

  auto node = nodeClasses(100'000'000);
  REQUIRE(node.size() == 2);
  CHECK(node[0].handle == kRootClass);
  CHECK(node[0].parent == TC_H_ROOT);
  CHECK(node[0].rate_bytes == 12'500'000);
  CHECK(node[0].ceil_bytes == 12'500'000);
  CHECK(node[1].handle == kNodeClass);
  CHECK(node[1].ceil_bytes == 12'500'000);
}

TEST_CASE("admission: guarantees sum to at most the node's limit, holders first") {
  // 100 Mbit/s: 60 + 30 fit, 20 more does not.
  auto a = admitGuarantees(100'000'000, {{1, 60'000'000}, {2, 30'000'000}, {3, 20'000'000}}, {});
  CHECK(a.granted.at(1) == 60'000'000);
  CHECK(a.granted.at(2) == 30'000'000);
  CHECK(a.granted.at(3) == kDefaultMinRateBps);
  CHECK(a.refused.size() == 1);
  CHECK_THAT(a.refused.at(3), Catch::Contains("net_min_rate 20000000 bit/s does not fit") &&
                                  Catch::Contains("10000000 of the node's 100000000"));
  // Slice 3 held its guarantee already: it keeps it, and a newcomer is cut.
  auto b = admitGuarantees(100'000'000, {{1, 60'000'000}, {2, 30'000'000}, {3, 20'000'000}}, {3});
  CHECK(b.granted.at(3) == 20'000'000);
  CHECK(b.granted.at(1) == 60'000'000);
  CHECK(b.granted.at(2) == kDefaultMinRateBps);
  CHECK(b.refused.contains(2));
  // Exactly the limit fits.
  auto c = admitGuarantees(10'000'000, {{1, 4'000'000}, {2, 6'000'000}}, {});
  CHECK(c.refused.empty());
  // Nothing left: the fallback is never zero (HTB needs a rate).
  auto d = admitGuarantees(10'000, {{1, 10'000}, {2, 5'000}}, {});
  CHECK(d.granted.at(2) == 8);
  std::uint64_t sum = 0;
  for (const auto& [xid, rate] : c.granted) sum += rate;
  CHECK(sum == 10'000'000);
}

TEST_CASE("netlink: attributes are aligned, nested, and parse back") {
  rtnl::Message m(RTM_NEWQDISC, NLM_F_CREATE);
  tcmsg tc{};
  tc.tcm_ifindex = 3;
  m.header(tc);
  m.attribute(TCA_KIND, std::string_view("htb"));  // 4 bytes with its NUL
  const std::size_t nest = m.beginNested(TCA_OPTIONS);
  m.attribute(1, std::uint16_t{0xabcd});  // padded to 4
  m.attribute(2, std::uint32_t{42});
  m.endNested(nest);
  auto head = headerOf(m);
  CHECK(head.nlmsg_type == RTM_NEWQDISC);
  CHECK(head.nlmsg_flags == (NLM_F_REQUEST | NLM_F_CREATE));
  auto payload = payloadOf(m);
  CHECK(payload.size() % 4 == 0);
  auto attributes = attributesOf(payload);
  CHECK(text(attributes[TCA_KIND]) == std::string("htb", 4));
  auto inner = rtnl::parseAttributes(attributes[TCA_OPTIONS]);
  REQUIRE(inner.size() == 2);
  CHECK(inner[1].size() == 2);
  std::uint32_t value = 0;
  std::memcpy(&value, inner[2].data(), 4);
  CHECK(value == 42);
  // The nested flag is set on the wire and masked when parsing.
  nlattr options{};
  std::memcpy(&options, payload.data() + NLMSG_ALIGN(sizeof(tcmsg)) + 8, sizeof(options));
  CHECK((options.nla_type & NLA_F_NESTED) != 0);
  CHECK(options.nla_len == 4 + 8 + 8);
  // A truncated attribute ends parsing instead of reading past the buffer.
  std::vector<std::uint8_t> cut(payload.begin() + NLMSG_ALIGN(sizeof(tcmsg)), payload.end() - 2);
  CHECK(rtnl::parseAttributes(cut).size() == 1);
}

TEST_CASE("netlink: an HTB class request as the kernel reads it, and back") {
  const HtbClass c = htbClass(0x10012, kRootClass, 250'000, 1'250'000, 25'000);
  auto m = classMessage(9, c);
  auto head = headerOf(m);
  CHECK(head.nlmsg_type == RTM_NEWTCLASS);
  CHECK((head.nlmsg_flags & NLM_F_CREATE) != 0);  // created, or changed in place
  CHECK((head.nlmsg_flags & NLM_F_EXCL) == 0);
  auto payload = payloadOf(m);
  auto tc = tcOf(payload);
  CHECK(tc.tcm_ifindex == 9);
  CHECK(tc.tcm_handle == 0x10012);
  CHECK(tc.tcm_parent == kRootClass);
  auto attributes = attributesOf(payload);
  CHECK(text(attributes[TCA_KIND]) == std::string("htb", 4));
  auto options = rtnl::parseAttributes(attributes[TCA_OPTIONS]);
  tc_htb_opt opt{};
  REQUIRE(options[TCA_HTB_PARMS].size() == sizeof(opt));
  std::memcpy(&opt, options[TCA_HTB_PARMS].data(), sizeof(opt));
  CHECK(opt.rate.rate == 250'000);
  CHECK(opt.ceil.rate == 1'250'000);
  CHECK(opt.rate.linklayer == TC_LINKLAYER_ETHERNET);  // no rate table needed
  CHECK(opt.quantum == 25'000);
  CHECK(opt.buffer == c.buffer_ticks);
  CHECK(opt.cbuffer == c.cbuffer_ticks);
  CHECK(!options.contains(TCA_HTB_RATE64));
  CHECK(decodeClass(payload) == c);

  // Above 4 GB/s the rates go in the 64-bit attributes.
  const HtbClass fast = htbClass(kRootClass, TC_H_ROOT, 5'000'000'000ull, 6'000'000'000ull, 1514);
  auto fast_message = classMessage(9, fast);
  auto fast_payload = payloadOf(fast_message);
  auto fast_options = rtnl::parseAttributes(attributesOf(fast_payload)[TCA_OPTIONS]);
  CHECK(fast_options.contains(TCA_HTB_RATE64));
  CHECK(fast_options.contains(TCA_HTB_CEIL64));
  CHECK(decodeClass(fast_payload) == fast);

  // The ICMP class: its packets cost mpu bytes each.
  auto icmp = sliceClasses(classIdsOfSlot(0), {}, 100'000'000)[1];
  auto icmp_message = classMessage(9, icmp);
  CHECK(decodeClass(payloadOf(icmp_message))->mpu == 0xffff);
  // Not HTB: no class.
  auto leaf = leafQdiscMessage(9, 0x10012);
  CHECK(decodeClass(payloadOf(leaf)) == std::nullopt);
}

TEST_CASE("netlink: the root qdisc, the leaves and deletion") {
  auto root = rootQdiscMessage(4);
  auto head = headerOf(root);
  CHECK(head.nlmsg_type == RTM_NEWQDISC);
  CHECK((head.nlmsg_flags & (NLM_F_CREATE | NLM_F_REPLACE)) == (NLM_F_CREATE | NLM_F_REPLACE));
  auto payload = payloadOf(root);
  CHECK(tcOf(payload).tcm_handle == kHtbQdisc);
  CHECK(tcOf(payload).tcm_parent == TC_H_ROOT);
  auto options = rtnl::parseAttributes(attributesOf(payload)[TCA_OPTIONS]);
  tc_htb_glob glob{};
  REQUIRE(options[TCA_HTB_INIT].size() == sizeof(glob));
  std::memcpy(&glob, options[TCA_HTB_INIT].data(), sizeof(glob));
  CHECK(glob.version == 3);
  CHECK(glob.defcls == 2);  // unclassified packets: the node's class

  auto leaf = leafQdiscMessage(4, 0x10012);
  auto leaf_payload = payloadOf(leaf);
  CHECK(tcOf(leaf_payload).tcm_parent == 0x10012);
  CHECK(tcOf(leaf_payload).tcm_handle == 0x00120000);  // major = the class's minor
  CHECK(text(attributesOf(leaf_payload)[TCA_KIND]) == std::string("fq_codel", 9));

  auto del = deleteClassMessage(4, 0x10012);
  CHECK(headerOf(del).nlmsg_type == RTM_DELTCLASS);
  CHECK(tcOf(payloadOf(del)).tcm_handle == 0x10012);
}
