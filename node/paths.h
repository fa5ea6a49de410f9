// Where a node keeps its state. One NodePaths per sliverd instance: several
// instances on one host (tests, the local planet) each get their own directories.
//
//   <state_dir>/idranges                 id range allocations (kvfile)
//   <state_dir>/images/<vref>/           reference images (read-only lower layers)
//   <state_dir>/storage.img, storage/    the loop volume, when btrfs qgroups are used
//   <state_dir>/slivers/<slice>/config   the SliverConfig last applied (kvfile)
//   <state_dir>/slivers/<slice>/authorized_keys   slice members' keys, for sshd
//   <state_dir>/slivers/<slice>/held     present while the sliver was stopped on purpose
//                                        (kvfile: by=<who>); sliverd leaves it stopped
//   <state_dir>/slivers/<slice>/rootfs   where the sliver's overlay is mounted, inside
//                                        the sliver's own mount namespace only (an
//                                        empty directory on the host)
//   <run_dir>/slivers/<slice>.init       pid and start time of the running
//                                        sliver-init (kvfile: pid=, start_time=,
//                                        cgroup= unified cgroup directory)
//   <run_dir>/api/sliverd.sock           the local API; <run_dir>/api holds only the
//                                        socket, as it is bound into every sliver
//                                        (at /run/sliverd) without the records above
#pragma once

#include <filesystem>
#include <string>

namespace plng::node {

struct NodePaths {
  std::filesystem::path state_dir = "/var/lib/sliverd";
  std::filesystem::path run_dir = "/run/sliverd";
  std::filesystem::path images_dir;  // empty = <state_dir>/images

  std::filesystem::path images() const {
    return images_dir.empty() ? state_dir / "images" : images_dir;
  }
  std::filesystem::path image(const std::string& vref) const { return images() / vref; }
  std::filesystem::path idRanges() const { return state_dir / "idranges"; }
  std::filesystem::path sliverDir(const std::string& slice) const {
    return state_dir / "slivers" / slice;
  }
  std::filesystem::path sliverConfig(const std::string& slice) const {
    return sliverDir(slice) / "config";
  }
  std::filesystem::path authorizedKeys(const std::string& slice) const {
    return sliverDir(slice) / "authorized_keys";
  }
  std::filesystem::path sliverHeld(const std::string& slice) const {
    return sliverDir(slice) / "held";
  }
  std::filesystem::path rootfs(const std::string& slice) const {
    return sliverDir(slice) / "rootfs";
  }
  std::filesystem::path sliverInit(const std::string& slice) const {
    return run_dir / "slivers" / (slice + ".init");
  }
  // The listening socket on which the sliver's sliver-init starts ssh logins
  // (sliverd/init/login_request.h); root-only, like the init record beside it.
  std::filesystem::path sliverLogins(const std::string& slice) const {
    return run_dir / "slivers" / (slice + ".logins");
  }
  std::filesystem::path localApiDir() const { return run_dir / "api"; }
  std::filesystem::path localSocket() const { return localApiDir() / "sliverd.sock"; }
  // The raw socket broker's (docs/vnet.md, "Raw sockets"), outside localApiDir():
  // no sliver sees it. The call the broker is answering.
  std::filesystem::path rawSocketCall() const { return run_dir / "raw-socket-call"; }
};

}  // namespace plng::node
