/* The node's port table as vnet_policy defines and pins it (docs/vnet.md,
 * "Ports"): who owns each TCP, UDP and ICMP-id port (vnet_port_index in
 * abi.h), reserved for whom, and how. The capture filter reuses the pin, so
 * the definition must be the same: both objects include this. Included after
 * vmlinux.h, bpf_helpers.h and abi.h. */
#ifndef PLNG_VNET_BPF_PORT_TABLE_BPF_H
#define PLNG_VNET_BPF_PORT_TABLE_BPF_H

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, VNET_PORT_TABLE_SIZE);
  __type(key, __u32);
  __type(value, struct vnet_port);
} ports SEC(".maps");

#endif
