#include "vnet-bpf/packet_guard.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "base/error.h"
#include "vnet-bpf/network_policy.h"
#include "vnet-bpf/packet_guard.skel.h"

namespace plng::vnet {
namespace {

struct SkeletonDeleter {
  void operator()(vnet_packet_guard* skel) const { vnet_packet_guard__destroy(skel); }
};

base::UniqueFd pinnedMap(const std::filesystem::path& pin_dir, const char* name) {
  const std::string path = (pin_dir / name).string();
  base::UniqueFd map(bpf_obj_get(path.c_str()));
  if (!map) base::throwErrno("the pinned map " + path + " (no network isolation loaded there)");
  return map;
}

struct Device {
  unsigned index;
  std::string name;
};

std::vector<Device> devices() {
  using NameIndex = struct if_nameindex;
  std::unique_ptr<NameIndex, void (*)(NameIndex*)> list(::if_nameindex(), ::if_freenameindex);
  if (!list) base::throwErrno("listing the network devices");
  std::vector<Device> result;
  for (const NameIndex* entry = list.get(); entry->if_index != 0; ++entry)
    result.push_back({entry->if_index, entry->if_name});
  return result;
}

bpf_tc_hook egressHook(unsigned ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof hook;
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = BPF_TC_EGRESS;
  return hook;
}

bpf_tc_opts ourFilter() {
  bpf_tc_opts opts{};
  opts.sz = sizeof opts;
  opts.handle = PacketSendGuard::kHandle;
  opts.priority = PacketSendGuard::kPriority;
  return opts;
}

}  // namespace

PacketSendGuard::PacketSendGuard(const std::filesystem::path& pin_dir,
                                 std::uint32_t sliver_cgroup_level) {
  base::UniqueFd cgroups = pinnedMap(pin_dir, "sliver_cgroups");
  base::UniqueFd counters = pinnedMap(pin_dir, "counters");
  std::unique_ptr<vnet_packet_guard, SkeletonDeleter> skel(vnet_packet_guard__open());
  if (!skel) base::throwErrno("open of the packet send guard BPF object");
  skel->rodata->sliver_cgroup_level = sliver_cgroup_level;
  if (int err = bpf_map__reuse_fd(skel->maps.sliver_cgroups, cgroups.get()); err != 0)
    throw base::SysError(-err, "the packet send guard cannot use the pinned sliver_cgroups map");
  if (int err = bpf_map__reuse_fd(skel->maps.counters, counters.get()); err != 0)
    throw base::SysError(-err, "the packet send guard cannot use the pinned counters map");
  // libbpf fills the log only when the load fails (it retries at level 1).
  std::vector<char> log(1 << 16);
  bpf_program__set_log_buf(skel->progs.vnet_pkt_guard, log.data(), log.size());
  if (int err = vnet_packet_guard__load(skel.get()); err != 0) {
    log.back() = '\0';
    std::string text(log.data());
    throw BpfLoadError("loading the packet send guard failed (" + std::string(std::strerror(-err)) +
                           "); the kernel's verifier said:\n" + text,
                       text);
  }
  program_ =
      base::UniqueFd(::fcntl(bpf_program__fd(skel->progs.vnet_pkt_guard), F_DUPFD_CLOEXEC, 0));
  if (!program_) base::throwErrno("dup of the packet send guard program");
  bpf_prog_info info{};
  std::uint32_t length = sizeof info;
  if (bpf_obj_get_info_by_fd(program_.get(), &info, &length) != 0)
    base::throwErrno("the packet send guard program's id");
  program_id_ = info.id;
}

std::vector<std::string> PacketSendGuard::attachToEveryDevice() {
  std::vector<std::string> attached;
  for (const Device& device : devices()) {
    bpf_tc_hook hook = egressHook(device.index);
    int err = bpf_tc_hook_create(&hook);
    if (err == -ENODEV) continue;  // gone since it was listed
    if (err != 0 && err != -EEXIST)
      throw base::SysError(-err, "creating the clsact qdisc of " + device.name);
    bpf_tc_opts opts = ourFilter();
    err = bpf_tc_query(&hook, &opts);
    if (err == 0 && opts.prog_id == program_id_) continue;
    if (err != 0 && err != -ENOENT && err != -EINVAL && err != -ENODEV)
      throw base::SysError(-err, "querying the tc egress filters of " + device.name);
    opts = ourFilter();
    opts.prog_fd = program_.get();
    opts.flags = BPF_TC_F_REPLACE;
    err = bpf_tc_attach(&hook, &opts);
    if (err == -ENODEV) continue;
    if (err != 0)
      throw base::SysError(-err, "attaching the packet send guard to " + device.name + " egress");
    attached.push_back(device.name);
  }
  return attached;
}

void PacketSendGuard::detachFromEveryDevice() {
  for (const Device& device : devices()) {
    bpf_tc_hook hook = egressHook(device.index);
    bpf_tc_opts opts = ourFilter();
    const int err = bpf_tc_detach(&hook, &opts);
    if (err != 0 && err != -ENOENT && err != -EINVAL && err != -ENODEV)
      throw base::SysError(-err, "detaching the packet send guard from " + device.name);
  }
}

}  // namespace plng::vnet
