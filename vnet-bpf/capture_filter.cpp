#include "vnet-bpf/capture_filter.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "vnet-bpf/capture.skel.h"
#include "vnet-bpf/network_policy.h"

namespace plng::vnet {
namespace {

struct SkeletonDeleter {
  void operator()(vnet_capture* skel) const { vnet_capture__destroy(skel); }
};
using CaptureSkeleton = std::unique_ptr<vnet_capture, SkeletonDeleter>;

// Opened and configured, not loaded. `log`: the verifier's log goes there.
CaptureSkeleton openCapture(int ports_map, std::uint32_t xid, std::vector<char>* log) {
  CaptureSkeleton skel(vnet_capture__open());
  if (!skel) base::throwErrno("open of the capture filter BPF object");
  skel->rodata->capture_xid = xid;
  if (int err = bpf_map__reuse_fd(skel->maps.ports, ports_map); err != 0) {
    throw base::SysError(-err, "the capture filter cannot use the pinned ports map");
  }
  if (log != nullptr) {
    bpf_program__set_log_buf(skel->progs.vnet_capture, log->data(), log->size());
    bpf_program__set_log_level(skel->progs.vnet_capture, 1);
  }
  return skel;
}

}  // namespace

base::UniqueFd loadCaptureProgram(const std::filesystem::path& pin_dir, std::uint32_t xid) {
  const std::string ports_path = (pin_dir / "ports").string();
  base::UniqueFd ports(bpf_obj_get(ports_path.c_str()));
  if (!ports) {
    base::throwErrno("the pinned ports map " + ports_path +
                     " (no network isolation loaded: nobody's ports are known)");
  }
  CaptureSkeleton skel = openCapture(ports.get(), xid, nullptr);
  if (int err = vnet_capture__load(skel.get()); err != 0) {
    // Again with the verifier's log, for the error (a load that fails is rare:
    // the cost of logging every load is not worth it).
    std::vector<char> log(1 << 20);
    CaptureSkeleton again = openCapture(ports.get(), xid, &log);
    vnet_capture__load(again.get());
    log.back() = '\0';
    std::string text(log.data());
    throw BpfLoadError("loading the capture filter of xid " + std::to_string(xid) + " failed (" +
                           std::strerror(-err) + "); the kernel's verifier said:\n" + text,
                       text);
  }
  base::UniqueFd program(::fcntl(bpf_program__fd(skel->progs.vnet_capture), F_DUPFD_CLOEXEC, 0));
  if (!program) base::throwErrno("dup of the capture program");
  return program;
}

void attachLockedFilter(int socket, int program) {
  if (::setsockopt(socket, SOL_SOCKET, SO_ATTACH_BPF, &program, sizeof program) != 0) {
    base::throwErrno("SO_ATTACH_BPF of the capture filter");
  }
  const int on = 1;
  if (::setsockopt(socket, SOL_SOCKET, SO_LOCK_FILTER, &on, sizeof on) != 0) {
    base::throwErrno("SO_LOCK_FILTER");
  }
}

void CaptureFilters::restrict(int socket, std::uint32_t xid) {
  std::lock_guard lock(mutex_);
  auto it = programs_.find(xid);
  if (it == programs_.end()) it = programs_.emplace(xid, loadCaptureProgram(pin_dir_, xid)).first;
  attachLockedFilter(socket, it->second.get());
}

void CaptureFilters::forget(std::uint32_t xid) {
  std::lock_guard lock(mutex_);
  programs_.erase(xid);
}

}  // namespace plng::vnet
