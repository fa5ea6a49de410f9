// SPDX-License-Identifier: GPL-2.0
/* vnet-bpf's socket and packet policy: one object, attached once at a node
 * instance's slivers cgroup (docs/vnet.md). Every program finds the slice of a
 * call or a packet through the sliver cgroup above it (sliver_cgroups: cgroup
 * id -> xid); calls and packets of cgroups that are not registered slivers pass
 * untouched.
 *
 * Compiled against the build host's BTF; loads on 6.1: only helpers and context
 * fields 6.1 has, except in vnet_connect_unix, which the loader loads only where
 * the kernel has cgroup/connect_unix (>= 6.7). */
/* vmlinux.h first: the helpers need its types. */
// clang-format off
#include "vnet-bpf/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
// clang-format on

#include "vnet-bpf/abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load (open -> configure -> load). */
const volatile __u32 sliver_cgroup_level = 0;    /* depth of a sliver's cgroup */
const volatile __u32 grant_reserved_ports = 0;   /* bind4/6 may return 3 (>= 5.12) */
const volatile __u32 default_max_ports = 2000;   /* a slice with no `slices` entry */
const volatile __u64 lazy_idle_ns = 60000000000; /* a lazy claim's life without packets */
const volatile __u64 max_bound_sockets = 4096;   /* per slice, in bound_sockets */

/* Maps: pinned by the loader under the instance's directory, by these names,
 * and reused across restarts. The next part's programs (HTB class ids, byte
 * counters, flow records) share them through those pins. */
#include "vnet-bpf/slice_maps.bpf.h" /* sliver_cgroups, counters, count() */

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, VNET_MAX_SLICES);
  __type(key, __u32);
  __type(value, struct vnet_slice);
} slices SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, VNET_MAX_SLICES);
  __type(key, __u32);
  __type(value, struct vnet_slice_usage);
} slice_usage SEC(".maps");

#include "vnet-bpf/port_table.bpf.h" /* ports */

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct vnet_socket_port);
} socket_ports SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH); /* preallocated: no allocation at bind */
  __uint(max_entries, VNET_MAX_BOUND_SOCKETS);
  __type(key, __u64); /* socket cookie */
  __type(value, struct vnet_socket_port);
} bound_sockets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, VNET_MAX_PREFIXES);
  __type(key, struct vnet_lpm4);
  __type(value, __u8);
} blacklist4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, VNET_MAX_PREFIXES);
  __type(key, struct vnet_lpm6);
  __type(value, __u8);
} blacklist6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, VNET_MAX_PREFIXES);
  __type(key, struct vnet_lpm4);
  __type(value, __u8);
} node_addrs4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, VNET_MAX_PREFIXES);
  __type(key, struct vnet_lpm6);
  __type(value, __u8);
} node_addrs6 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH); /* each CPU adds to its own copy: no atomics */
  __uint(max_entries, VNET_MAX_SLICES);
  __type(key, __u32);
  __type(value, struct vnet_slice_traffic);
} slice_traffic SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct vnet_unix_name);
  __type(value, __u32);
} unix_names SEC(".maps");

/* Flow records: sized by the loader (bpf_map__set_max_entries), drained by
 * sliverd. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH); /* preallocated: an insert never allocates */
  __uint(max_entries, VNET_MAX_FLOWS);
  __type(key, struct vnet_flow_key);
  __type(value, struct vnet_flow);
} flows SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} flow_drops SEC(".maps");

/* The egress fast path's per-socket memory, and the epoch that validates it
 * (advanced by the loader). */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct vnet_socket_cache);
} socket_cache SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} policy_epoch SEC(".maps");

/* --- slices ------------------------------------------------------------------ */

static __always_inline __u32 xid_of_cgroup(__u64 cgroup_id) {
  __u32* xid = bpf_map_lookup_elem(&sliver_cgroups, &cgroup_id);
  return xid ? *xid : 0;
}

/* The slice of the calling task (sock_addr and sock hooks). */
static __always_inline __u32 current_xid(void) {
  return xid_of_cgroup(bpf_get_current_ancestor_cgroup_id(sliver_cgroup_level));
}

static __always_inline __u32 slice_flags(__u32 xid) {
  struct vnet_slice* slice = bpf_map_lookup_elem(&slices, &xid);
  return slice ? slice->flags : 0;
}

static __always_inline __u64 slice_max_ports(__u32 xid) {
  struct vnet_slice* slice = bpf_map_lookup_elem(&slices, &xid);
  return slice ? slice->max_ports : default_max_ports;
}

static __always_inline struct vnet_slice_usage* usage_of(__u32 xid) {
  struct vnet_slice_usage* usage = bpf_map_lookup_elem(&slice_usage, &xid);
  if (usage) return usage;
  struct vnet_slice_usage zero = {};
  bpf_map_update_elem(&slice_usage, &xid, &zero, BPF_NOEXIST);
  return bpf_map_lookup_elem(&slice_usage, &xid);
}

/* One more port held by the slice of `usage`; nonzero past its cap. Two
 * racing claims may both pass the check: the cap can be exceeded by the
 * number of CPUs. */
static __always_inline int take_port_slot(__u32 xid, struct vnet_slice_usage* usage) {
  if (!usage || usage->ports_held >= slice_max_ports(xid)) return -1;
  __sync_fetch_and_add(&usage->ports_held, 1);
  return 0;
}

static __always_inline void give_port_slot(struct vnet_slice_usage* usage) {
  if (usage && usage->ports_held > 0) __sync_fetch_and_sub(&usage->ports_held, 1);
}

/* --- port ownership ---------------------------------------------------------- */

/* The entry of (protocol, port); never null for the protocols used here, but
 * the verifier wants the check. */
static __always_inline struct vnet_port* port_entry(__u8 protocol, __u16 port) {
  __u32 index = vnet_port_index(protocol, port);
  return bpf_map_lookup_elem(&ports, &index);
}

static __always_inline int idle_claim(const struct vnet_port* entry, __u64 now) {
  return entry->kind == VNET_PORT_LAZY && now - entry->last_seen_ns > lazy_idle_ns;
}

/* Why `xid` may not take a port another holds: 0 when it is free or held by
 * an idle claim, which is then evicted. */
static __always_inline __u32 evict_idle(struct vnet_port* entry, __u32 holder) {
  if (!holder) return 0;
  if (!idle_claim(entry, bpf_ktime_get_ns())) return VNET_R_PORT_OWNED;
  if (__sync_val_compare_and_swap(&entry->owner, holder, 0) == holder)
    give_port_slot(bpf_map_lookup_elem(&slice_usage, &holder));
  return 0;
}

/* `xid` (whose usage is `usage`) takes a port it does not hold, as `kind`:
 * free, or held by another's idle claim (evicted), not reserved for another
 * owner, and within the slice's cap. 0, or the reason for refusing. */
static __always_inline __u32 take_port(struct vnet_port* entry, __u32 xid, __u8 kind,
                                       struct vnet_slice_usage* usage) {
  __u32 refused = evict_idle(entry, entry->owner);
  if (refused) return refused;
  __u32 reserved = entry->reserved_for;
  if (reserved && reserved != xid)
    return reserved == VNET_XID_NODE ? VNET_R_PORT_NODE : VNET_R_PORT_RESERVED;
  if (take_port_slot(xid, usage)) return VNET_R_PORT_CAP;
  __u32 holder = __sync_val_compare_and_swap(&entry->owner, 0, xid);
  if (holder == 0) {
    if (kind == VNET_PORT_LAZY) entry->last_seen_ns = bpf_ktime_get_ns();
    entry->kind = kind;
    if (kind == VNET_PORT_BOUND) __sync_fetch_and_add(&entry->sockets, 1);
    return 0;
  }
  give_port_slot(usage); /* another CPU took it first */
  if (holder != xid) return VNET_R_PORT_OWNED;
  if (kind == VNET_PORT_BOUND) __sync_fetch_and_add(&entry->sockets, 1);
  return 0;
}

/* A socket of `xid` holds the port (bind, or the first packet of a socket
 * whose port the kernel picked). 0, or the reason for refusing. */
static __always_inline __u32 claim_bound(struct vnet_port* entry, __u32 xid,
                                         struct vnet_slice_usage* usage) {
  if (entry->owner == xid) {
    __sync_fetch_and_add(&entry->sockets, 1);
    entry->kind = VNET_PORT_BOUND;
    return 0;
  }
  return take_port(entry, xid, VNET_PORT_BOUND, usage);
}

/* The socket that held the port for `xid` is gone: when it was the last, the
 * port is free. (A socket of the slice binding the port between the decrement
 * and the release keeps its port in the kernel but no owner here.) */
static __always_inline void release_bound(__u8 protocol, __u16 port, __u32 xid,
                                          struct vnet_slice_usage* usage) {
  struct vnet_port* entry = port_entry(protocol, port);
  if (!entry || entry->owner != xid || entry->kind != VNET_PORT_BOUND) return;
  if (__sync_fetch_and_sub(&entry->sockets, 1) != 1) return;
  entry->kind = 0;
  if (__sync_val_compare_and_swap(&entry->owner, xid, 0) == xid) give_port_slot(usage);
}

/* A raw or ping sender uses the port (VNET's lazy binding): a free port
 * becomes the sender's until idle for lazy_idle_ns. 0, or the reason for
 * refusing. */
static __always_inline __u32 claim_lazy(struct vnet_port* entry, __u32 xid) {
  if (entry->owner == xid) {
    if (entry->kind == VNET_PORT_LAZY) {
      /* Refreshed at most every 100 ms: no cache line bouncing per packet. */
      __u64 now = bpf_ktime_get_ns();
      if (now - entry->last_seen_ns > 100000000) entry->last_seen_ns = now;
    }
    return 0;
  }
  return take_port(entry, xid, VNET_PORT_LAZY, usage_of(xid));
}

static __always_inline int owned_by(__u8 protocol, __u16 port, __u32 xid) {
  struct vnet_port* entry = port_entry(protocol, port);
  return entry && entry->owner == xid;
}

/* --- addresses --------------------------------------------------------------- */

static __always_inline int in_trie4(void* trie, __u32 addr) {
  struct vnet_lpm4 key = {.prefixlen = 32};
  __builtin_memcpy(key.addr, &addr, 4);
  return bpf_map_lookup_elem(trie, &key) != 0;
}

static __always_inline int in_trie6(void* trie, const __u8* addr) {
  struct vnet_lpm6 key = {.prefixlen = 128};
  __builtin_memcpy(key.addr, addr, 16);
  return bpf_map_lookup_elem(trie, &key) != 0;
}

static __always_inline int v4_mapped(const __u32* addr6) {
  return addr6[0] == 0 && addr6[1] == 0 && addr6[2] == bpf_htonl(0x0000ffff);
}

/* A node service a slice may not reach: the node's address, a port no slice
 * owns and not on the allowlist. */
static __always_inline int node_service(__u8 protocol, __u16 port) {
  struct vnet_port* entry = port_entry(protocol, port);
  return entry && !entry->owner && !entry->service;
}

/* --- sock_addr hooks: bind, connect, sendmsg ---------------------------------- */

/* The port a socket holds by bind is recorded by the socket's cookie in
 * bound_sockets, a preallocated table that a slice fills only up to
 * max_bound_sockets, so that sock_release gives it back. Socket local storage
 * would need no table, but allocating it costs most of a bind
 * (docs/benchmarks.md). */
static __always_inline struct vnet_socket_port* bound_record(__u64* cookie) {
  return bpf_map_lookup_elem(&bound_sockets, cookie);
}

/* Forgets the record of a socket (closed, or whose bind the kernel refused
 * and which then holds another port), giving its port back. */
static __always_inline void forget_bound(__u64* cookie, struct vnet_socket_port* record) {
  __u32 xid = record->xid;
  struct vnet_slice_usage* usage = bpf_map_lookup_elem(&slice_usage, &xid);
  release_bound(record->protocol, record->port, xid, usage);
  if (bpf_map_delete_elem(&bound_sockets, cookie) == 0 && usage && usage->bound_sockets > 0)
    __sync_fetch_and_sub(&usage->bound_sockets, 1);
}

/* The socket of `cookie` holds the port of `entry` for `xid`: claimed, and
 * recorded. 0, or the reason for refusing. */
static __always_inline __u32 record_bound(struct vnet_port* entry, __u32 xid,
                                          struct vnet_slice_usage* usage, __u64* cookie,
                                          __u8 protocol, __u16 port) {
  if (usage->bound_sockets >= max_bound_sockets) return VNET_R_SOCKET_CAP;
  __u32 refused = claim_bound(entry, xid, usage);
  if (refused) return refused;
  struct vnet_socket_port record = {.xid = xid, .protocol = protocol, .port = port};
  if (bpf_map_update_elem(&bound_sockets, cookie, &record, BPF_NOEXIST)) {
    /* A record of the socket's earlier bind, which the kernel refused: its
     * claim goes (looked for only now, off the common path). */
    struct vnet_socket_port* earlier = bound_record(cookie);
    if (earlier) forget_bound(cookie, earlier);
    if (bpf_map_update_elem(&bound_sockets, cookie, &record, BPF_NOEXIST)) {
      release_bound(protocol, port, xid, usage);
      return VNET_R_SOCKET_CAP;
    }
  }
  __sync_fetch_and_add(&usage->bound_sockets, 1);
  return 0;
}

/* record_bound for a socket of the calling slice, a refusal counted: 1 when
 * the port is the socket's, 0 when refused. */
static __always_inline int take_for_socket(struct vnet_port* entry, __u32 xid, __u64 cookie,
                                           __u8 protocol, __u16 port) {
  struct vnet_slice_usage* usage = usage_of(xid);
  if (!usage) return 0;
  __u32 refused = record_bound(entry, xid, usage, &cookie, protocol, port);
  if (refused) {
    count(xid, refused);
    return 0;
  }
  return 1;
}

/* bind4/6: the port is claimed here, before the kernel hashes the socket (a
 * bind refused after it would let the socket receive the owner's datagrams
 * for a moment), and recorded for the socket. Should the kernel then refuse
 * the bind (EADDRINUSE, EACCES), the claim stays with the socket until it
 * binds again or closes. A port the kernel picks (port 0) is claimed at
 * post_bind; one it picks at connect or sendto, by the socket's first packet
 * (egress). */
static __always_inline int check_bind(struct bpf_sock_addr* ctx) {
  __u32 xid = current_xid();
  if (!xid) return 1;
  __u32 protocol = ctx->protocol;
  if (protocol != VNET_PROTO_TCP && protocol != VNET_PROTO_UDP) return 1;
  struct bpf_sock* sk = ctx->sk;
  if (!sk || sk->src_port) return 1; /* bound already: the kernel refuses (EINVAL) */
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  if (port == 0) return 1;
  struct vnet_port* entry = port_entry(protocol, port);
  if (!entry) return 1;
  __u32 reserved = entry->reserved_for;
  if (reserved && reserved != xid) {
    count(xid, reserved == VNET_XID_NODE ? VNET_R_PORT_NODE : VNET_R_PORT_RESERVED);
    return 0;
  }
  if (!take_for_socket(entry, xid, bpf_get_socket_cookie(ctx), protocol, port)) return 0;
  /* A port reserved for the slice, below 1024 too: 3 lets the kernel skip
   * its CAP_NET_BIND_SERVICE check (>= 5.12). */
  return reserved && grant_reserved_ports ? 3 : 1;
}

SEC("cgroup/bind4")
int vnet_bind4(struct bpf_sock_addr* ctx) { return check_bind(ctx); }

SEC("cgroup/bind6")
int vnet_bind6(struct bpf_sock_addr* ctx) { return check_bind(ctx); }

/* A UDP connect sends nothing, and stock tools (ping, traceroute) connect a
 * UDP socket to a destination only to learn their source address: for it the
 * node-service rule waits for the first packet (egress). */
static __always_inline int check_destination4(__u32 xid, __u32 addr, __u32 protocol, __u16 port,
                                              int services) {
  if (in_trie4(&blacklist4, addr)) {
    count(xid, VNET_R_BLACKLIST);
    return 0;
  }
  if (services && in_trie4(&node_addrs4, addr) && node_service(protocol, port)) {
    count(xid, VNET_R_NODE_SERVICE);
    return 0;
  }
  return 1;
}

static __always_inline int allowed_destination(struct bpf_sock_addr* ctx, __u32 xid, int ipv6,
                                               int connect) {
  __u32 protocol = ctx->protocol;
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  int services = !(connect && protocol == VNET_PROTO_UDP);
  if (!ipv6) return check_destination4(xid, ctx->user_ip4, protocol, port, services);
  __u32 addr[4];
  addr[0] = ctx->user_ip6[0];
  addr[1] = ctx->user_ip6[1];
  addr[2] = ctx->user_ip6[2];
  addr[3] = ctx->user_ip6[3];
  if (v4_mapped(addr)) return check_destination4(xid, addr[3], protocol, port, services);
  if (in_trie6(&blacklist6, (const __u8*)addr)) {
    count(xid, VNET_R_BLACKLIST);
    return 0;
  }
  if (services && in_trie6(&node_addrs6, (const __u8*)addr) && node_service(protocol, port)) {
    count(xid, VNET_R_NODE_SERVICE);
    return 0;
  }
  return 1;
}

/* A socket with no port yet is about to get one from the kernel (connect, or
 * the first sendto): a slice at its cap is refused here, with an error the
 * caller sees, rather than by dropping the socket's first packet at egress
 * (which, for TCP, would leave connect() to time out). */
static __always_inline int port_within_cap(struct bpf_sock_addr* ctx, __u32 xid) {
  struct bpf_sock* sk = ctx->sk;
  __u32 protocol = ctx->protocol;
  if (!sk || sk->src_port || (protocol != VNET_PROTO_TCP && protocol != VNET_PROTO_UDP)) return 1;
  struct vnet_slice_usage* usage = bpf_map_lookup_elem(&slice_usage, &xid);
  if (!usage || usage->ports_held < slice_max_ports(xid)) return 1;
  count(xid, VNET_R_PORT_CAP);
  return 0;
}

static __always_inline int check_destination(struct bpf_sock_addr* ctx, int ipv6, int connect) {
  __u32 xid = current_xid();
  if (!xid) return 1;
  return allowed_destination(ctx, xid, ipv6, connect) && port_within_cap(ctx, xid);
}

SEC("cgroup/connect4")
int vnet_connect4(struct bpf_sock_addr* ctx) { return check_destination(ctx, 0, 1); }

SEC("cgroup/connect6")
int vnet_connect6(struct bpf_sock_addr* ctx) { return check_destination(ctx, 1, 1); }

SEC("cgroup/sendmsg4")
int vnet_sendmsg4(struct bpf_sock_addr* ctx) { return check_destination(ctx, 0, 0); }

SEC("cgroup/sendmsg6")
int vnet_sendmsg6(struct bpf_sock_addr* ctx) { return check_destination(ctx, 1, 0); }

/* --- sock hooks: ports the kernel picks at bind, and their release -------------- */

/* post_bind4/6: a port the kernel picked at bind (port 0) is claimed as bind4
 * claims a port asked for (refused, the kernel undoes the bind: EPERM). A port
 * bind4 claimed is the slice's already: one lookup, and nothing else. */
static __always_inline int claim_picked_port(struct bpf_sock* sk) {
  __u32 xid = current_xid();
  if (!xid) return 1;
  __u32 protocol = sk->protocol;
  if (protocol != VNET_PROTO_TCP && protocol != VNET_PROTO_UDP) return 1;
  __u16 port = sk->src_port;
  struct vnet_port* entry = port_entry(protocol, port);
  if (!entry) return 0;
  if (entry->owner == xid && entry->kind == VNET_PORT_BOUND) return 1;
  return take_for_socket(entry, xid, bpf_get_socket_cookie(sk), protocol, port);
}

SEC("cgroup/post_bind4")
int vnet_post_bind4(struct bpf_sock* sk) { return claim_picked_port(sk); }

SEC("cgroup/post_bind6")
int vnet_post_bind6(struct bpf_sock* sk) { return claim_picked_port(sk); }

SEC("cgroup/sock_release")
int vnet_sock_release(struct bpf_sock* sk) {
  struct vnet_socket_port* claimed = bpf_sk_storage_get(&socket_ports, sk, 0, 0);
  if (claimed) {
    if (claimed->port && !(claimed->flags & VNET_SOCKET_RELEASED))
      release_bound(claimed->protocol, claimed->port, claimed->xid,
                    bpf_map_lookup_elem(&slice_usage, &claimed->xid));
    claimed->flags |= VNET_SOCKET_RELEASED;
    if (!(claimed->flags & VNET_SOCKET_AT_BIND)) return 1;
  }
  __u32 protocol = sk->protocol;
  if (protocol != VNET_PROTO_TCP && protocol != VNET_PROTO_UDP) return 1;
  __u64 cookie = bpf_get_socket_cookie(sk);
  struct vnet_socket_port* record = bound_record(&cookie);
  if (record) forget_bound(&cookie, record);
  return 1;
}

/* --- packets ----------------------------------------------------------------- */

#define ETH_P_IP_BE 0x0008   /* htons(0x0800) */
#define ETH_P_IPV6_BE 0xdd86 /* htons(0x86dd) */
#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_ICMPV6_ 58
#define SOCK_RAW_ 3
#define SOCK_DGRAM_ 2

struct packet {
  __u8 ipv6;
  __u8 protocol; /* the L4 protocol (IPv6: the first next header) */
  __u8 fragment;
  __u8 icmp_type;
  __u8 icmp_code;
  __u8 icmp_error;
  __u8 has_port; /* sport/dport (or echo id in both) were read */
  __u16 sport;   /* host order */
  __u16 dport;
  __u16 inner_sport; /* ICMP error: the source port (or echo id) of the quoted packet */
  __u8 inner_protocol;
  __u8 has_inner;
  __u8 tcp_flags;
  __u8 ip_options; /* IPv4: a header longer than 20 bytes */
  __u32 saddr4, daddr4;
  __u8 saddr6[16], daddr6[16];
};

static __always_inline int icmp4_error(__u8 type) {
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

/* The quoted packet of an ICMP error: its protocol and its source port (or
 * echo id), which for an error about a packet this node sent is the sender's. */
static __always_inline void parse_quoted(struct __sk_buff* skb, __u32 offset, int ipv6,
                                         struct packet* p) {
  __u8 protocol;
  __u32 l4;
  if (!ipv6) {
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, offset, &ip, sizeof(ip))) return;
    protocol = ip.protocol;
    l4 = offset + ip.ihl * 4;
  } else {
    struct ipv6hdr ip6;
    if (bpf_skb_load_bytes(skb, offset, &ip6, sizeof(ip6))) return;
    protocol = ip6.nexthdr;
    l4 = offset + sizeof(ip6);
  }
  __u16 words[4];
  if (bpf_skb_load_bytes(skb, l4, words, sizeof(words))) return;
  if (protocol == IPPROTO_TCP_ || protocol == IPPROTO_UDP_) {
    p->inner_protocol = protocol;
    p->inner_sport = bpf_ntohs(words[0]);
    p->has_inner = 1;
  } else if (protocol == IPPROTO_ICMP_ || protocol == IPPROTO_ICMPV6_) {
    p->inner_protocol = VNET_PROTO_ICMP;
    p->inner_sport = bpf_ntohs(words[2]);
    p->has_inner = 1;
  }
}

/* 0 when `skb` (at its network header) is a well-formed IPv4/IPv6 packet. */
static __always_inline int parse_packet(struct __sk_buff* skb, struct packet* p) {
  __u32 l4;
  if (skb->protocol == ETH_P_IP_BE) {
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip))) return -1;
    if (ip.version != 4 || ip.ihl < 5 || bpf_ntohs(ip.tot_len) > skb->len) return -1;
    p->protocol = ip.protocol;
    p->ip_options = ip.ihl > 5;
    p->saddr4 = ip.saddr;
    p->daddr4 = ip.daddr;
    p->fragment = (bpf_ntohs(ip.frag_off) & 0x3fff) != 0; /* MF or an offset */
    l4 = ip.ihl * 4;
  } else if (skb->protocol == ETH_P_IPV6_BE) {
    struct ipv6hdr ip6;
    if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6))) return -1;
    if (ip6.version != 6) return -1;
    p->ipv6 = 1;
    p->protocol = ip6.nexthdr;
    __builtin_memcpy(p->saddr6, &ip6.saddr, 16);
    __builtin_memcpy(p->daddr6, &ip6.daddr, 16);
    p->fragment = ip6.nexthdr == IPPROTO_FRAGMENT_;
    l4 = sizeof(ip6);
  } else {
    return -1;
  }
  if (p->fragment) return 0;
  if (p->protocol == IPPROTO_TCP_) {
    __u8 head[14]; /* ports, sequence, acknowledgement, offset, flags */
    if (bpf_skb_load_bytes(skb, l4, head, sizeof(head))) return -1;
    p->sport = ((__u16)head[0] << 8) | head[1];
    p->dport = ((__u16)head[2] << 8) | head[3];
    p->tcp_flags = head[13];
    p->has_port = 1;
  } else if (p->protocol == IPPROTO_UDP_) {
    __u16 ports[2];
    if (bpf_skb_load_bytes(skb, l4, ports, sizeof(ports))) return -1;
    p->sport = bpf_ntohs(ports[0]);
    p->dport = bpf_ntohs(ports[1]);
    p->has_port = 1;
  } else if (p->protocol == IPPROTO_ICMP_ || p->protocol == IPPROTO_ICMPV6_) {
    __u8 head[8];
    if (bpf_skb_load_bytes(skb, l4, head, sizeof(head))) return -1;
    p->icmp_type = head[0];
    p->icmp_code = head[1];
    if (p->protocol == IPPROTO_ICMP_) {
      p->icmp_error = icmp4_error(head[0]);
      if (head[0] == 0 || head[0] == 8) p->has_port = 1; /* echo reply, request */
    } else {
      p->icmp_error = head[0] < 128;
      if (head[0] == 128 || head[0] == 129) p->has_port = 1;
    }
    if (p->has_port) {
      p->sport = ((__u16)head[4] << 8) | head[5];
      p->dport = p->sport;
    }
    if (p->icmp_error) parse_quoted(skb, l4 + 8, p->ipv6, p);
  }
  return 0;
}

static __always_inline __u8 port_protocol(__u8 protocol) {
  return protocol == IPPROTO_ICMPV6_ ? VNET_PROTO_ICMP : protocol;
}

static __always_inline int blacklisted(const struct packet* p) {
  return p->ipv6 ? in_trie6(&blacklist6, p->daddr6) : in_trie4(&blacklist4, p->daddr4);
}

static __always_inline int to_node(const struct packet* p) {
  return p->ipv6 ? in_trie6(&node_addrs6, p->daddr6) : in_trie4(&node_addrs4, p->daddr4);
}

static __always_inline int from_node(const struct packet* p) {
  return p->ipv6 ? in_trie6(&node_addrs6, p->saddr6) : in_trie4(&node_addrs4, p->saddr4);
}

static __always_inline int raw_or_ping(struct bpf_sock* sk, int* raw) {
  *raw = sk->type == SOCK_RAW_;
  return *raw || (sk->type == SOCK_DGRAM_ &&
                  (sk->protocol == IPPROTO_ICMP_ || sk->protocol == IPPROTO_ICMPV6_));
}

static __always_inline int drop(__u32 xid, __u32 reason) {
  count(xid, reason);
  return 0;
}

/* PlanetLab's rules for a packet a slice's raw or ping socket sends: 0 when it
 * may leave, or why not. */
static __always_inline __u32 police_raw(__u32 xid, int raw, const struct packet* p) {
  if (raw && !(slice_flags(xid) & VNET_SLICE_RAW)) return VNET_R_RAW_DENIED;
  if (p->fragment) return VNET_R_RAW_FRAGMENT;
  __u8 protocol = p->protocol;
  int icmp = protocol == (p->ipv6 ? IPPROTO_ICMPV6_ : IPPROTO_ICMP_);
  if (protocol != IPPROTO_TCP_ && protocol != IPPROTO_UDP_ && !icmp) return VNET_R_RAW_PROTOCOL;
  if (icmp && p->icmp_error) return VNET_R_RAW_ICMP_ERROR;
  if (icmp && !p->has_port) return VNET_R_RAW_PROTOCOL; /* only echo */
  if (!from_node(p)) return VNET_R_RAW_SPOOFED;
  if (!icmp && to_node(p) && node_service(protocol, p->dport)) return VNET_R_NODE_SERVICE;
  struct vnet_port* entry = port_entry(port_protocol(protocol), p->sport);
  if (!entry) return VNET_R_RAW_PROTOCOL;
  return claim_lazy(entry, xid);
}

/* TCP states in which a socket's packets may claim its port: not those a
 * closing socket passes through (FIN_WAIT1/2, TIME_WAIT, CLOSE, LAST_ACK,
 * CLOSING). */
static __always_inline int tcp_may_claim(__u32 state) {
  return state == 1 /* ESTABLISHED */ || state == 2 /* SYN_SENT */ || state == 3 /* SYN_RECV */ ||
         state == 8 /* CLOSE_WAIT */;
}

/* --- flow records (docs/vnet.md, "Flow auditing") ------------------------------- */

/* One lookup and an in-place update per packet; a new flow is inserted once.
 * The map is a preallocated hash (never LRU, which would evict records
 * silently): when it is full the packet still leaves, and flow_drops counts
 * what was not recorded. Counts are atomic: a flow's packets may come from
 * several CPUs. */
static __always_inline void record_flow(struct __sk_buff* skb, __u32 xid, const struct packet* p,
                                        __u32 refused) {
  struct vnet_flow_key key = {};
  key.xid = xid;
  key.family = p->ipv6 ? 6 : 4;
  key.protocol = p->protocol;
  key.refused = (__u8)refused;
  if (p->protocol == IPPROTO_ICMP_ || p->protocol == IPPROTO_ICMPV6_) {
    key.sport = p->has_port ? p->sport : 0; /* the echo id */
    key.dport = ((__u16)p->icmp_type << 8) | p->icmp_code;
  } else if (p->has_port) {
    key.sport = p->sport;
    key.dport = p->dport;
  }
  if (p->ipv6) {
    __builtin_memcpy(key.saddr, p->saddr6, 16);
    __builtin_memcpy(key.daddr, p->daddr6, 16);
  } else {
    __builtin_memcpy(key.saddr, &p->saddr4, 4);
    __builtin_memcpy(key.daddr, &p->daddr4, 4);
  }
  /* A GSO packet is several on the wire. */
  __u64 packets = skb->gso_segs > 1 ? skb->gso_segs : 1;
  __u64 bytes = skb->len;
  /* The coarse clock (CLOCK_MONOTONIC_COARSE, a tick's resolution) is a load
   * where bpf_ktime_get_ns reads the clock source. */
  __u64 now = bpf_ktime_get_coarse_ns();
  struct vnet_flow* flow = bpf_map_lookup_elem(&flows, &key);
  if (!flow) {
    struct vnet_flow fresh = {.packets = packets,
                              .bytes = bytes,
                              .first_seen_ns = now,
                              .last_seen_ns = now,
                              .tcp_flags = p->tcp_flags};
    long err = bpf_map_update_elem(&flows, &key, &fresh, BPF_NOEXIST);
    if (err == 0) return;
    flow = bpf_map_lookup_elem(&flows, &key); /* another CPU inserted it first */
    if (!flow) {
      __u32 zero = 0;
      __u64* drops = bpf_map_lookup_elem(&flow_drops, &zero);
      if (drops) *drops += 1; /* this CPU's own slot */
      return;
    }
  }
  __sync_fetch_and_add(&flow->packets, packets);
  __sync_fetch_and_add(&flow->bytes, bytes);
  if (flow->last_seen_ns != now) flow->last_seen_ns = now;
  if ((flow->tcp_flags | p->tcp_flags) != flow->tcp_flags)
    __sync_fetch_and_or(&flow->tcp_flags, p->tcp_flags);
}

/* --- bandwidth: the slice's HTB class ------------------------------------------ */

/* ICMP, ICMPv6, and packets with IP options (IPv4 header longer than 20 bytes;
 * IPv6 hop-by-hop or destination options first): the slice's packets-per-second
 * class. */
static __always_inline int pps_limited(struct __sk_buff* skb) {
  __u8 head[10];
  if (bpf_skb_load_bytes(skb, 0, head, sizeof(head))) return 0;
  if (skb->protocol == ETH_P_IP_BE) return (head[0] & 0xf) > 5 || head[9] == IPPROTO_ICMP_;
  if (skb->protocol == ETH_P_IPV6_BE)
    return head[6] == IPPROTO_ICMPV6_ || head[6] == 0 /* hop-by-hop */ ||
           head[6] == 60 /* destination options */;
  return 0;
}

/* Every packet a slice sends goes to its class on the uplink, whatever
 * SO_PRIORITY or IP_TOS its socket set (HTB takes a class id from
 * skb->priority; 1:0 would even bypass it). The uplink's filters are none, so
 * SO_MARK selects nothing. A slice without classes gets 0: the default class. */
static __always_inline void classify(struct __sk_buff* skb, __u32 xid) {
  const struct vnet_slice* slice = bpf_map_lookup_elem(&slices, &xid);
  __u32 class_id = 0;
  if (slice) {
    class_id = slice->htb_class;
    if (slice->htb_icmp_class && pps_limited(skb)) class_id = slice->htb_icmp_class;
  }
  skb->priority = class_id;
}

/* --- daily byte budgets: what a slice's packets carried ------------------------ */

/* Adds a packet that passed to its slice's traffic. Per-CPU: one CPU's egress
 * in process context interrupted by its own softirq's egress may lose one
 * packet's count, which a budget of megabytes does not notice. */
static __always_inline void count_traffic(struct __sk_buff* skb, __u32 xid, int ingress) {
  struct vnet_slice_traffic* traffic = bpf_map_lookup_elem(&slice_traffic, &xid);
  if (!traffic) {
    struct vnet_slice_traffic zero = {};
    bpf_map_update_elem(&slice_traffic, &xid, &zero, BPF_NOEXIST);
    traffic = bpf_map_lookup_elem(&slice_traffic, &xid);
    if (!traffic) return;
  }
  __u64 packets = skb->gso_segs ? skb->gso_segs : 1;
  if (ingress) {
    traffic->ingress_bytes += skb->len;
    traffic->ingress_packets += packets;
  } else {
    traffic->egress_bytes += skb->len;
    traffic->egress_packets += packets;
  }
}

/* --- the packet programs -------------------------------------------------------- */

/* Why a packet a slice sends may not leave; 0 when it may. `parsed`: `p` holds
 * the packet (parse_packet succeeded). */
static __always_inline __u32 egress_refusal(struct __sk_buff* skb, __u32 xid, struct packet* p,
                                            int parsed) {
  struct bpf_sock* sk = skb->sk;
  if (!sk) return 0;
  sk = bpf_sk_fullsock(sk);
  if (!sk) return 0; /* request and time-wait sockets: their listener or past owner */
  int raw;
  int policed = raw_or_ping(sk, &raw);
  if (!parsed) return policed ? VNET_R_RAW_MALFORMED : 0;
  if (blacklisted(p)) return VNET_R_BLACKLIST;
  if (policed) return police_raw(xid, raw, p);
  /* An ordinary TCP or UDP socket: a port the kernel picked at connect or
   * sendto never passed bind, so the socket's first packet claims it. */
  __u32 protocol = sk->protocol;
  if ((protocol != IPPROTO_TCP_ && protocol != IPPROTO_UDP_) || !p->has_port) return 0;
  /* A connected UDP socket's datagrams never met sendmsg4/6. */
  if (protocol == IPPROTO_UDP_ && to_node(p) && node_service(IPPROTO_UDP_, p->dport))
    return VNET_R_NODE_SERVICE;
  /* TCP sends its FIN or RST after sock_release: a socket that is closing
   * (or whose port sock_release gave back) claims nothing. */
  if (protocol == IPPROTO_TCP_ && !tcp_may_claim(sk->state)) return 0;
  struct vnet_socket_port* held = bpf_sk_storage_get(&socket_ports, sk, 0, 0);
  if (held) return 0; /* claimed already, bound, or released */
  /* A socket that bound its port is in bound_sockets; marked here once, so
   * that its next packets stop at the lookup above. A record of another port
   * is of a bind the kernel refused: the port picked since is claimed. */
  __u64 cookie = bpf_get_socket_cookie(skb);
  struct vnet_socket_port* record = bound_record(&cookie);
  int at_bind = record && record->protocol == protocol && record->port == p->sport;
  if (record && !at_bind) forget_bound(&cookie, record);
  held = bpf_sk_storage_get(&socket_ports, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!held) return 0;
  if (at_bind) {
    held->flags = VNET_SOCKET_AT_BIND;
    return 0;
  }
  struct vnet_port* entry = port_entry(protocol, p->sport);
  if (!entry) return 0;
  __u32 refused = claim_bound(entry, xid, usage_of(xid));
  if (refused) return refused;
  held->xid = xid;
  held->protocol = protocol;
  held->port = p->sport;
  return 0;
}

/* --- the egress fast path (docs/vnet.md) ------------------------------------------ */

static __always_inline __u64 current_epoch(void) {
  __u32 zero = 0;
  __u64* epoch = bpf_map_lookup_elem(&policy_epoch, &zero);
  return epoch ? *epoch : 0;
}

/* The ordinary TCP or UDP socket that sent `p`, a packet of a flow the fast
 * path may remember (no IP options, not a fragment, ports read); else null. */
static __always_inline struct bpf_sock* fast_path_socket(struct __sk_buff* skb,
                                                         const struct packet* p) {
  if (p->fragment || p->ip_options || !p->has_port) return 0;
  if (p->protocol != IPPROTO_TCP_ && p->protocol != IPPROTO_UDP_) return 0;
  struct bpf_sock* sk = skb->sk;
  if (!sk) return 0;
  sk = bpf_sk_fullsock(sk);
  if (!sk || sk->type == SOCK_RAW_ || sk->protocol != p->protocol) return 0;
  return sk;
}

static __always_inline void flow_addresses(const struct packet* p, __u64* saddr, __u64* daddr) {
  if (p->ipv6) {
    __builtin_memcpy(saddr, p->saddr6, 16);
    __builtin_memcpy(daddr, p->daddr6, 16);
  } else {
    saddr[0] = p->saddr4;
    saddr[1] = 0;
    daddr[0] = p->daddr4;
    daddr[1] = 0;
  }
}

#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

static __always_inline __u32 read_seq(const struct vnet_socket_cache* cache) {
  return *(const volatile __u32*)&cache->seq;
}

/* What this packet's socket remembers of it: its slice and class, when the
 * socket's last remembered flow is this packet's and no policy changed since.
 * The entry is read under its sequence lock: a CPU rewriting it for another
 * flow of the socket makes the read miss, never mix two flows. */
static __always_inline struct vnet_socket_cache* remembered(struct __sk_buff* skb,
                                                            const struct packet* p) {
  struct bpf_sock* sk = fast_path_socket(skb, p);
  if (!sk) return 0;
  struct vnet_socket_cache* cache = bpf_sk_storage_get(&socket_cache, sk, 0, 0);
  if (!cache) return 0;
  __u32 seq = read_seq(cache);
  if (seq & 1) return 0;
  compiler_barrier();
  if (cache->epoch != current_epoch() || cache->protocol != p->protocol ||
      cache->sport != p->sport || cache->dport != p->dport)
    return 0;
  __u64 saddr[2], daddr[2], cached_saddr[2], cached_daddr[2];
  flow_addresses(p, saddr, daddr);
  __builtin_memcpy(cached_saddr, cache->saddr, 16);
  __builtin_memcpy(cached_daddr, cache->daddr, 16);
  if (saddr[0] != cached_saddr[0] || saddr[1] != cached_saddr[1] || daddr[0] != cached_daddr[0] ||
      daddr[1] != cached_daddr[1])
    return 0;
  compiler_barrier();
  return read_seq(cache) == seq ? cache : 0;
}

/* After a packet passed the whole policy, evaluated in `epoch` (read before
 * any of the maps it consulted): its socket remembers the flow, so that the
 * flow's next packets take the fast path. Never a flow to the node's own
 * addresses, whose verdict hangs on which ports slices hold. One CPU rewrites
 * an entry at a time (the sequence lock taken by compare-and-swap); another
 * that finds it taken leaves it. */
static __always_inline void remember(struct __sk_buff* skb, __u32 xid, const struct packet* p,
                                     __u64 epoch) {
  struct bpf_sock* sk = fast_path_socket(skb, p);
  if (!epoch || !sk || to_node(p)) return;
  const struct vnet_slice* slice = bpf_map_lookup_elem(&slices, &xid);
  struct vnet_socket_cache* cache =
      bpf_sk_storage_get(&socket_cache, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!cache) return;
  __u32 seq = read_seq(cache);
  if ((seq & 1) || __sync_val_compare_and_swap(&cache->seq, seq, seq + 1) != seq) return;
  compiler_barrier();
  cache->epoch = epoch;
  cache->xid = xid;
  cache->htb_class = slice ? slice->htb_class : 0;
  cache->protocol = p->protocol;
  cache->sport = p->sport;
  cache->dport = p->dport;
  __u64 saddr[2], daddr[2];
  flow_addresses(p, saddr, daddr);
  __builtin_memcpy(cache->saddr, saddr, 16);
  __builtin_memcpy(cache->daddr, daddr, 16);
  compiler_barrier();
  __sync_fetch_and_add(&cache->seq, 1);
}

SEC("cgroup_skb/egress")
int vnet_egress(struct __sk_buff* skb) {
  struct packet p = {};
  int parsed = parse_packet(skb, &p) == 0;
  /* A packet of a flow its socket remembers: the slice and its class are
   * known, the verdict was "pass" (ordinary TCP/UDP, not blacklisted, port
   * the slice's), and no policy changed since; only the records remain. */
  struct vnet_socket_cache* cache = parsed ? remembered(skb, &p) : 0;
  if (cache) {
    __u32 known = cache->xid;
    skb->priority = cache->htb_class;
    record_flow(skb, known, &p, 0);
    count_traffic(skb, known, 0);
    return 1;
  }
  __u64 epoch = current_epoch(); /* before the maps the verdict reads */
  __u32 xid = xid_of_cgroup(bpf_skb_ancestor_cgroup_id(skb, sliver_cgroup_level));
  if (!xid) return 1;
  classify(skb, xid);
  __u32 refused = egress_refusal(skb, xid, &p, parsed);
  record_flow(skb, xid, &p, refused);
  if (refused) return drop(xid, refused);
  count_traffic(skb, xid, 0);
  if (parsed) remember(skb, xid, &p, epoch);
  return 1;
}

/* A raw or ping socket of a slice receives only packets of flows its slice
 * owns; ordinary sockets are the kernel's to demultiplex. */
static __always_inline int ingress_verdict(struct __sk_buff* skb, __u32 xid) {
  struct bpf_sock* sk = skb->sk;
  if (!sk) return 1;
  sk = bpf_sk_fullsock(sk);
  if (!sk) return 1;
  int raw;
  if (!raw_or_ping(sk, &raw)) return 1;
  struct packet p = {};
  if (parse_packet(skb, &p) || p.fragment) return drop(xid, VNET_R_INGRESS_FOREIGN);
  __u8 protocol;
  __u16 port;
  if (p.has_port) {
    protocol = port_protocol(p.protocol);
    port = p.dport;
  } else if (p.has_inner) {
    protocol = p.inner_protocol;
    port = p.inner_sport;
  } else {
    return drop(xid, VNET_R_INGRESS_FOREIGN);
  }
  if (owned_by(protocol, port, xid)) return 1;
  return drop(xid, VNET_R_INGRESS_FOREIGN);
}

SEC("cgroup_skb/ingress")
int vnet_ingress(struct __sk_buff* skb) {
  __u32 xid = xid_of_cgroup(bpf_skb_ancestor_cgroup_id(skb, sliver_cgroup_level));
  if (!xid) return 1;
  int verdict = ingress_verdict(skb, xid);
  if (verdict) count_traffic(skb, xid, 1);
  return verdict;
}

/* --- abstract unix sockets ----------------------------------------------------- */

extern void* bpf_cast_to_kern_ctx(void* obj) __ksym __weak;

/* Loaded as cgroup/connect_unix (attach type 49, kernel >= 6.7; libbpf 1.1
 * knows neither the type nor a section for it, so the loader sets the
 * expected attach type before load): a slice connects only to abstract names
 * registered for it (unix_names); pathname sockets are the file system's. */
SEC("cgroup/connect4")
int vnet_connect_unix(struct bpf_sock_addr* ctx) {
  __u32 xid = current_xid();
  if (!xid) return 1;
  struct bpf_sock_addr_kern* kern = bpf_cast_to_kern_ctx(ctx);
  __u32 length = kern->uaddrlen;
  const char* sun_path = (const char*)kern->uaddr + 2; /* after sun_family */
  if (length <= 3) return 1;                           /* unnamed (autobind) */
  char first = 1;
  bpf_probe_read_kernel(&first, 1, sun_path);
  if (first != 0) return 1; /* a pathname socket */
  struct vnet_unix_name name = {};
  __u32 size = length - 3;
  if (size > VNET_UNIX_NAME_MAX) size = VNET_UNIX_NAME_MAX;
  bpf_probe_read_kernel(name.name, size, sun_path + 1);
  __u32* allowed = bpf_map_lookup_elem(&unix_names, &name);
  if (allowed && *allowed == xid) return 1;
  count(xid, VNET_R_UNIX_ABSTRACT);
  return 0;
}
