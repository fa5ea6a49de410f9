// SPDX-License-Identifier: GPL-2.0
/* A slice's packet capture filter (docs/vnet.md, "Packet capture"): a socket
 * filter that sliverd attaches, and locks, to every packet socket it makes for
 * a slice. It passes a packet only when the slice owns its port in `ports`:
 * the source port (TCP, UDP) or echo id (ICMP, ICMPv6) of a packet the node
 * sends, the destination port or echo id of one it receives (on loopback,
 * either: the node sent it), and for an ICMP error it receives, the source
 * port or echo id of the packet it quotes (what traceroute reads). Everything
 * else — ARP, the node's own traffic, other
 * slices', fragments after the first, unknown protocols — is dropped.
 *
 * One program per slice: its xid is read-only data set before load, and the
 * `ports` map is the one vnet_policy pinned (reused by descriptor). Packet
 * sockets see frames at their link-layer header (SOCK_RAW) or at the network
 * header (SOCK_DGRAM, the "any" device), so every load is relative to the
 * network header. */
// clang-format off
#include "vnet-bpf/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
// clang-format on

#include "vnet-bpf/abi.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 capture_xid = 0;

#include "vnet-bpf/port_table.bpf.h" /* ports */

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86dd
#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ICMPV6 58
#define PKT_OUTGOING 4     /* PACKET_OUTGOING: a copy of a packet the node sends */
#define LOOPBACK_IFINDEX 1 /* lo, in every network namespace */

static __always_inline int load(struct __sk_buff* skb, __u32 offset, void* to, __u32 len) {
  return bpf_skb_load_bytes_relative(skb, offset, to, len, BPF_HDR_START_NET);
}

static __always_inline int slice_owns(__u8 protocol, __u16 port) {
  __u32 index = vnet_port_index(protocol, port);
  struct vnet_port* entry = bpf_map_lookup_elem(&ports, &index);
  return entry && capture_xid != 0 && entry->owner == capture_xid;
}

/* The network header at `offset`: its L4 protocol and where L4 starts; -1 for
 * anything else (or a fragment without the L4 header). */
static __always_inline int ip_header(struct __sk_buff* skb, __u32 offset, int ipv6, __u8* protocol,
                                     __u32* l4) {
  if (!ipv6) {
    struct iphdr ip;
    if (load(skb, offset, &ip, sizeof(ip)) || ip.version != 4 || ip.ihl < 5) return -1;
    if (bpf_ntohs(ip.frag_off) & 0x1fff) return -1;
    *protocol = ip.protocol;
    *l4 = offset + ip.ihl * 4;
    return 0;
  }
  struct ipv6hdr ip6;
  if (load(skb, offset, &ip6, sizeof(ip6)) || ip6.version != 6) return -1;
  *protocol = ip6.nexthdr;
  *l4 = offset + sizeof(ip6);
  return 0;
}

static __always_inline int is_echo(__u8 protocol, __u8 type) {
  return protocol == PROTO_ICMP ? type == 0 || type == 8 : type == 128 || type == 129;
}

static __always_inline int is_error(__u8 protocol, __u8 type) {
  return protocol == PROTO_ICMP ? type == 3 || type == 4 || type == 5 || type == 11 || type == 12
                                : type < 128;
}

/* The port the slice must own for the packet to be its own: TCP and UDP ports
 * and echo ids in host order; 0 when the packet has none to check. */
static __always_inline int flow_port(struct __sk_buff* skb, int outgoing, __u8* table,
                                     __u16* port) {
  int ipv6;
  if (skb->protocol == bpf_htons(ETHERTYPE_IPV4))
    ipv6 = 0;
  else if (skb->protocol == bpf_htons(ETHERTYPE_IPV6))
    ipv6 = 1;
  else
    return 0;
  __u8 protocol;
  __u32 l4;
  if (ip_header(skb, 0, ipv6, &protocol, &l4)) return 0;
  if (protocol == PROTO_TCP || protocol == PROTO_UDP) {
    __be16 pair[2];
    if (load(skb, l4, pair, sizeof(pair))) return 0;
    *table = protocol;
    *port = bpf_ntohs(outgoing ? pair[0] : pair[1]);
    return 1;
  }
  if (protocol != (ipv6 ? PROTO_ICMPV6 : PROTO_ICMP)) return 0;
  __u8 icmp[8];
  if (load(skb, l4, icmp, sizeof(icmp))) return 0;
  if (is_echo(protocol, icmp[0])) {
    *table = VNET_PROTO_ICMP;
    *port = ((__u16)icmp[4] << 8) | icmp[5];
    return 1;
  }
  /* An error about a packet the slice sent: the quoted packet's source port
   * (or echo id). The node sends errors of its own; those are its. */
  if (outgoing || !is_error(protocol, icmp[0])) return 0;
  __u8 quoted;
  __u32 quoted_l4;
  if (ip_header(skb, l4 + 8, ipv6, &quoted, &quoted_l4)) return 0;
  __u8 head[6];
  if (load(skb, quoted_l4, head, sizeof(head))) return 0;
  if (quoted == PROTO_TCP || quoted == PROTO_UDP) {
    *table = quoted;
    *port = ((__u16)head[0] << 8) | head[1];
    return 1;
  }
  if (quoted == PROTO_ICMP || quoted == PROTO_ICMPV6) {
    *table = VNET_PROTO_ICMP;
    *port = ((__u16)head[4] << 8) | head[5];
    return 1;
  }
  return 0;
}

SEC("socket")
int vnet_capture(struct __sk_buff* skb) {
  __u8 table = 0;
  __u16 port = 0;
  const int outgoing = skb->pkt_type == PKT_OUTGOING;
  if (!flow_port(skb, outgoing, &table, &port)) return 0;
  if (slice_owns(table, port)) return skb->len;
  /* On loopback every packet passes twice, leaving and arriving, and libpcap
   * keeps only the arriving copy: one the slice sent (to another slice, or to
   * the node) is its own there too. */
  if (!outgoing && skb->ifindex == LOOPBACK_IFINDEX &&
      flow_port(skb, /*outgoing=*/1, &table, &port) && slice_owns(table, port))
    return skb->len;
  return 0;
}
