/* The maps every vnet-bpf program that finds a packet's slice shares, as
 * vnet_policy defines and pins them (the other objects reuse the pins, so the
 * definitions must be the same): sliver_cgroups (a sliver's cgroup id -> its
 * slice's xid) and counters (refusals and drops by slice and reason), with
 * count(). Included by the BPF objects after vmlinux.h, bpf_helpers.h and
 * abi.h. */
#ifndef PLNG_VNET_BPF_SLICE_MAPS_BPF_H
#define PLNG_VNET_BPF_SLICE_MAPS_BPF_H

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, VNET_MAX_SLIVER_CGROUPS);
  __type(key, __u64);
  __type(value, __u32);
} sliver_cgroups SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, VNET_MAX_COUNTERS);
  __type(key, struct vnet_counter_key);
  __type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 xid, __u32 reason) {
  struct vnet_counter_key key = {.xid = xid, .reason = reason};
  __u64* value = bpf_map_lookup_elem(&counters, &key);
  if (value) {
    *value += 1; /* this CPU's own slot */
    return;
  }
  __u64 one = 1;
  bpf_map_update_elem(&counters, &key, &one, BPF_NOEXIST);
}

#endif
