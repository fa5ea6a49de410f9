// SPDX-License-Identifier: GPL-2.0
/* For tests only: a program the verifier refuses (it dereferences a map value
 * without checking it for NULL), so tests/vnet can show that the verifier's log
 * reaches the loader's error. Never loaded by sliverd. */
/* vmlinux.h first: the helpers need its types. */
// clang-format off
#include "vnet-bpf/vmlinux.h"
#include <bpf/bpf_helpers.h>
// clang-format on

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16);
  __type(key, __u32);
  __type(value, __u64);
} packets SEC(".maps");

SEC("cgroup_skb/egress")
int count_unchecked(struct __sk_buff* skb) {
  __u32 key = skb->len;
  __u64* value = bpf_map_lookup_elem(&packets, &key);
  *value += 1;
  return 1;
}
