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

/* Map names, as pinned under the instance's directory. */
#define VNET_MAX_SLICES 4096
#define VNET_MAX_SLIVER_CGROUPS 16384
#define VNET_MAX_PORTS 65536 /* owned ports: all slices together */
#define VNET_MAX_RESERVED 65536
#define VNET_MAX_PREFIXES 16384 /* per family, blacklist and node addresses each */
#define VNET_MAX_COUNTERS 65536

struct vnet_port_key {
  __u8 protocol; /* VNET_PROTO_* */
  __u8 pad;
  __u16 port; /* host order */
};

enum vnet_port_kind {
  VNET_PORT_BOUND = 1, /* held by sockets (bind or a kernel-picked port), counted */
  VNET_PORT_LAZY = 2,  /* claimed by a raw or ping sender, held until idle */
};

/* port_owners value. `sockets` and `last_seen_ns` are changed by the programs
 * with atomic operations; `kind` moves from LAZY to BOUND when a socket binds a
 * port its slice had claimed lazily. */
struct vnet_port_owner {
  __u32 xid;
  __u32 kind; /* enum vnet_port_kind */
  __u32 sockets;
  __u32 pad;
  __u64 last_seen_ns; /* bpf_ktime_get_ns() of the last packet (LAZY) */
};

/* slices value: the policy the loader sets (setSlice). */
#define VNET_SLICE_RAW 0x1u /* raw sockets allowed (created by sliverd) */
struct vnet_slice {
  __u32 flags;
  __u32 max_ports; /* ports held at once, bound and lazy */
};

/* slice_usage value, kept by the programs apart from `slices` so the loader's
 * updates of a slice's policy never race with the counter. */
struct vnet_slice_usage {
  __u64 ports_held;
};

/* socket_ports (socket local storage): the port a socket holds, so that
 * sock_release gives it back. */
struct vnet_socket_port {
  __u32 xid;
  __u8 protocol;
  __u8 released; /* sock_release ran: the FIN or RST a closing socket still
                  * sends must not claim its port again */
  __u16 port;    /* 0: none recorded */
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
  VNET_R_COUNT
};

struct vnet_counter_key {
  __u32 xid;
  __u32 reason; /* enum vnet_reason */
};

/* unix_names key: an abstract socket name (sun_path without its leading NUL),
 * zero padded. Value: the xid that may connect to it. */
#define VNET_UNIX_NAME_MAX 107
struct vnet_unix_name {
  __u8 name[VNET_UNIX_NAME_MAX + 1];
};

#endif
