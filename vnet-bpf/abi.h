/* What vnet-bpf's programs and its loader (plng_vnet) agree on: the keys and
 * values of the pinned maps, the flags of a slice, the reasons a packet or a
 * call is refused (docs/vnet.md, "Maps and keys"). Plain C, included by the BPF
 * objects (after vmlinux.h) and by C++.
 *
 * Ports are kept in host byte order; addresses in network byte order, as the
 * packets carry them. Ownership is of a (protocol, port) pair across address
 * families: an IPv4 and an IPv6 socket on TCP port 80 share one entry. ICMP and
 * ICMPv6 echo identifiers share one space too, under VNET_PROTO_ICMP. */
#ifndef PLNG_VNET_BPF_ABI_H
#define PLNG_VNET_BPF_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* The owner of a port that the node keeps for itself (node_ports). */
#define VNET_XID_NODE 0xffffffffu

#define VNET_PROTO_ICMP 1 /* echo ids of ICMP and ICMPv6 */
#define VNET_PROTO_TCP 6
#define VNET_PROTO_UDP 17

/* Map sizes. */
#define VNET_MAX_SLICES 4096
#define VNET_MAX_SLIVER_CGROUPS 16384
#define VNET_MAX_PREFIXES 16384 /* per family, blacklist and node addresses each */
#define VNET_MAX_COUNTERS 65536
#define VNET_MAX_BOUND_SOCKETS 65536 /* bound_sockets: every slice's together */
#define VNET_MAX_FLOWS 65536         /* flows: the default; the loader sets the size */

/* The port table (`ports`): one entry for every (protocol, port) of the node —
 * ICMP echo ids, TCP ports, UDP ports — in an array indexed by
 * vnet_port_index(), so that the programs find a port's owner, reservation and
 * service flag in one inlined lookup. Read and written by the loader through
 * mmap (the array is BPF_F_MMAPABLE), field by field. */
#define VNET_PORT_TABLE_SIZE (3u * 65536u)

static inline __u32 vnet_port_index(__u8 protocol, __u16 port) {
  __u32 table = protocol == VNET_PROTO_TCP ? 1u : protocol == VNET_PROTO_UDP ? 2u : 0u;
  return table * 65536u + port;
}

enum vnet_port_kind {
  VNET_PORT_BOUND = 1, /* held by sockets (bind or a kernel-picked port), counted */
  VNET_PORT_LAZY = 2,  /* claimed by a raw or ping sender, held until idle */
};

/* A port's entry. `owner` changes hands only by compare-and-swap (0: free);
 * the new owner then sets `kind` (0 while a port changes hands, so that it is
 * never taken for an idle claim) and counts its sockets with atomic adds. A
 * free entry has `sockets` == 0. `reserved_for` and `service` are the loader's. */
struct vnet_port {
  __u32 owner;        /* xid holding it; 0: free */
  __u32 sockets;      /* VNET_PORT_BOUND: the owner's sockets on it */
  __u32 reserved_for; /* xid, VNET_XID_NODE (node_ports), or 0 */
  __u8 kind;          /* enum vnet_port_kind */
  __u8 service;       /* 1: a node service slices may reach (allowlist) */
  __u16 pad;
  __u64 last_seen_ns; /* bpf_ktime_get_ns() of the last packet (LAZY) */
};

/* slices value: the policy the loader sets (setSlice). */
#define VNET_SLICE_RAW 0x1u /* raw sockets allowed (created by sliverd) */
struct vnet_slice {
  __u32 flags;
  __u32 max_ports; /* ports held at once, bound and lazy */
  /* Bandwidth (vnet-bpf/bandwidth.h): the tc handles of the slice's HTB
   * classes, written into skb->priority of every packet it sends; 0 = the
   * uplink's default class (the node's). */
  __u32 htb_class;
  __u32 htb_icmp_class; /* ICMP and IP-options packets, limited in packets/s */
};

/* slice_usage value, kept by the programs apart from `slices` so the loader's
 * updates of a slice's policy never race with the counter. */
struct vnet_slice_usage {
  __u64 ports_held;
  __u64 bound_sockets; /* entries of the slice in bound_sockets */
};

/* slice_traffic value (a per-CPU hash by xid): what a slice's packets that
 * passed the policy carried, in IP bytes (header included, no link layer), for
 * its daily byte budget (docs/vnet.md, "Daily byte budgets"). A GSO packet
 * counts as its segments. Only ever grows; the loader sums the CPUs' copies. */
struct vnet_slice_traffic {
  __u64 egress_bytes;
  __u64 egress_packets;
  __u64 ingress_bytes;
  __u64 ingress_packets;
};

/* The port a socket holds, so that sock_release gives it back: in
 * bound_sockets (hash by socket cookie) for a socket that bound its port, in
 * socket_ports (socket local storage) for one whose first packet claimed a
 * port the kernel picked. */
#define VNET_SOCKET_RELEASED                                                   \
  0x1u                           /* sock_release ran: the FIN or RST a closing \
                                  * socket still sends claims nothing */
#define VNET_SOCKET_AT_BIND 0x2u /* socket_ports: the socket is in bound_sockets */
struct vnet_socket_port {
  __u32 xid;
  __u8 protocol;
  __u8 flags; /* VNET_SOCKET_* */
  __u16 port; /* 0: none recorded */
};

/* socket_cache value (socket local storage): what cgroup_skb/egress found for
 * a socket's flow, so that the socket's next packets of that flow skip the
 * lookups (docs/vnet.md, "The egress fast path"). Valid while `epoch` equals
 * policy_epoch's, which the loader advances on every change of a slice's
 * classes, the blacklist, the node's addresses or the sliver cgroups, and on
 * every load; only TCP and UDP packets of ordinary sockets, without IP options,
 * to an address not the node's, that passed, are remembered. */
struct vnet_socket_cache {
  __u64 epoch; /* 0: nothing remembered */
  __u32 seq;   /* odd while a CPU rewrites the entry (a sequence lock) */
  __u32 xid;
  __u32 htb_class;
  __u8 protocol;
  __u8 pad;
  __u16 sport; /* host order */
  __u16 dport;
  __u16 pad2;
  __u32 pad3;
  __u8 saddr[16]; /* network order; IPv4: the first 4 bytes */
  __u8 daddr[16];
};

/* LPM trie keys (blacklist4, node_addrs4; blacklist6, node_addrs6). */
struct vnet_lpm4 {
  __u32 prefixlen;
  __u8 addr[4];
};
struct vnet_lpm6 {
  __u32 prefixlen;
  __u8 addr[16];
};

/* Why a call was refused or a packet dropped: counters key, and the reason
 * names the loader reports (reasonName()). */
enum vnet_reason {
  VNET_R_PORT_OWNED = 1,  /* port held by another slice */
  VNET_R_PORT_RESERVED,   /* port reserved for another slice */
  VNET_R_PORT_NODE,       /* port kept by the node (node_ports) */
  VNET_R_PORT_CAP,        /* the slice holds max_ports already */
  VNET_R_NODE_SERVICE,    /* the node's own service, not allowlisted */
  VNET_R_BLACKLIST,       /* destination in PLC's blacklist */
  VNET_R_RAW_DENIED,      /* raw packet from a slice without the raw right */
  VNET_R_RAW_MALFORMED,   /* not a well-formed IPv4/IPv6 packet */
  VNET_R_RAW_PROTOCOL,    /* neither TCP, UDP nor ICMP/ICMPv6 echo */
  VNET_R_RAW_ICMP_ERROR,  /* an ICMP error message */
  VNET_R_RAW_FRAGMENT,    /* a fragment */
  VNET_R_RAW_SPOOFED,     /* source address not the node's */
  VNET_R_INGRESS_FOREIGN, /* raw/ping socket: packet of another slice's flow */
  VNET_R_UNIX_ABSTRACT,   /* abstract unix socket not the slice's own */
  VNET_R_SOCKET_CAP,      /* the slice has max_bound_sockets bound sockets */
  VNET_R_PACKET_SEND,     /* a frame sent through a sliver's packet socket */
  VNET_R_COUNT
};

struct vnet_counter_key {
  __u32 xid;
  __u32 reason; /* enum vnet_reason */
};

/* Flow records (flows): one entry per (slice, addresses, protocol, ports or
 * ICMP type/code and echo id, verdict) that a slice's packets leaving through
 * cgroup_skb/egress carry, refused ones included; drained by sliverd. */
struct vnet_flow_key {
  __u32 xid;
  __u8 family;   /* 4 or 6 */
  __u8 protocol; /* the IP protocol number (ICMPv6: 58) */
  __u8 refused;  /* enum vnet_reason the packets were dropped for; 0: they left */
  __u8 pad;
  __u16 sport;    /* TCP/UDP source port; ICMP/ICMPv6 echo: its id */
  __u16 dport;    /* TCP/UDP destination port; ICMP/ICMPv6: type << 8 | code */
  __u8 saddr[16]; /* network order; IPv4: the first 4 bytes */
  __u8 daddr[16];
};

struct vnet_flow {
  __u64 packets;       /* on the wire: a GSO packet counts its segments */
  __u64 bytes;         /* IP packets' lengths as the slice's sockets made them */
  __u64 first_seen_ns; /* bpf_ktime_get_coarse_ns() (CLOCK_MONOTONIC_COARSE) */
  __u64 last_seen_ns;
  __u32 tcp_flags; /* the TCP flags of every packet, OR'd (FIN 0x01 ... CWR 0x80) */
  __u32 pad;
};

/* unix_names key: an abstract socket name (sun_path without its leading NUL),
 * zero padded. Value: the xid that may connect to it. */
#define VNET_UNIX_NAME_MAX 107
struct vnet_unix_name {
  __u8 name[VNET_UNIX_NAME_MAX + 1];
};

#endif
