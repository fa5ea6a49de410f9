// SPDX-License-Identifier: GPL-2.0
/* For benchmarks only: the far end of a veth uplink takes UDP datagrams to the
 * discard port (9) away at its driver, as a NIC takes a frame off the wire, so
 * that a packet-rate benchmark times the sending host's path alone; everything
 * else goes on to the far end's stack. Never loaded by sliverd. */
/* vmlinux.h first: the helpers need its types. */
// clang-format off
#include "vnet-bpf/vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
// clang-format on

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int vnet_discard(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  struct iphdr* ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || eth->h_proto != bpf_htons(0x0800 /* IPv4 */) ||
      ip->protocol != 17 /* UDP */ || ip->ihl != 5)
    return XDP_PASS;
  struct udphdr* udp = (void*)(ip + 1);
  if ((void*)(udp + 1) > end || udp->dest != bpf_htons(9)) return XDP_PASS;
  return XDP_DROP;
}
