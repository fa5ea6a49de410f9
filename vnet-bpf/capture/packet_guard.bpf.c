// SPDX-License-Identifier: GPL-2.0
/* Slivers' packet sockets receive, never send (docs/vnet.md, "Packet
 * capture"): a tc egress program, attached by sliverd to every device of the
 * node's network namespace, that drops each frame sent through a packet socket
 * (AF_PACKET: send(), sendto(), sendmsg(), PACKET_TX_RING) made in a sliver's
 * cgroup. Such frames never pass the cgroup_skb egress program, so nothing else
 * would check their ports, source address or destination, nor put them in the
 * slice's HTB class.
 *
 * Every other frame passes untouched (TC_ACT_UNSPEC: the next filter, if any,
 * decides), the node's own packet sockets (dhclient, lldpd) included: a
 * frame's socket is checked only when it is a full socket of family AF_PACKET.
 * The slice is found as policy.bpf.c finds it, through the sliver cgroup above
 * the socket's cgroup in `sliver_cgroups`; a drop is counted in `counters`
 * (VNET_R_PACKET_SEND). Both maps are the ones vnet_policy pinned, reused by
 * descriptor. Loads on 6.1: tc programs read skb->sk and call bpf_sk_fullsock
 * (5.1) and bpf_skb_ancestor_cgroup_id (4.19). */
// clang-format off
#include "vnet-bpf/vmlinux.h"
#include <bpf/bpf_helpers.h>
// clang-format on

#include "vnet-bpf/abi.h"

char LICENSE[] SEC("license") = "GPL";

/* The depth of a sliver's cgroup, as vnet_policy's. */
const volatile __u32 sliver_cgroup_level = 0;

#include "vnet-bpf/slice_maps.bpf.h" /* sliver_cgroups, counters, count() */

#define FAMILY_PACKET 17 /* AF_PACKET */
#define TC_ACT_UNSPEC -1
#define TC_ACT_SHOT 2

SEC("tc")
int vnet_pkt_guard(struct __sk_buff* skb) {
  struct bpf_sock* sk = skb->sk;
  if (!sk) return TC_ACT_UNSPEC;
  sk = bpf_sk_fullsock(sk);
  if (!sk || sk->family != FAMILY_PACKET) return TC_ACT_UNSPEC;
  __u64 cgroup = bpf_skb_ancestor_cgroup_id(skb, sliver_cgroup_level);
  __u32* xid = bpf_map_lookup_elem(&sliver_cgroups, &cgroup);
  if (!xid) return TC_ACT_UNSPEC;
  count(*xid, VNET_R_PACKET_SEND);
  return TC_ACT_SHOT;
}
