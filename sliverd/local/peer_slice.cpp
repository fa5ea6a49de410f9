#include "sliverd/local/peer_slice.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/file.h"

// Linux 6.5; Debian 12's headers predate it.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace plng::sliverd {

std::string Peer::describe() const {
  const std::string who = kind == Kind::kSliver     ? "slice " + slice
                          : kind == Kind::kHostRoot ? std::string("host root")
                                                    : "host user " + std::to_string(uid);
  return who + " (pid " + std::to_string(pid) + ")";
}

PeerIdentifier::PeerIdentifier(const node::CgroupDriver& driver, std::filesystem::path proc)
    : proc_(std::move(proc)),
      slivers_path_(
          node::cgroupPathOfDir(driver.sliversDir(), base::readFile(proc_ / "self/mountinfo"))) {}

Peer PeerIdentifier::identify(int socket_fd) const {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    base::throwErrno("SO_PEERCRED of a local API connection");
  }
  // A pidfd pins the identity of the process that connected: its pid cannot be
  // handed to another process while we look at it without the pidfd noticing.
  int pidfd = -1;
  len = sizeof(pidfd);
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) {
    if (errno != ENOPROTOOPT && errno != EINVAL) base::throwErrno("SO_PEERPIDFD");
    // Older kernels: the best we can do is a pidfd taken now.
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, cred.pid, 0));
    if (pidfd < 0) base::throwErrno("pidfd_open of local API peer " + std::to_string(cred.pid));
  }
  base::UniqueFd pid_handle(pidfd);

  Peer peer;
  peer.pid = cred.pid;
  peer.uid = cred.uid;
  peer.gid = cred.gid;
  const std::string cgroup_file = base::readFile(proc_ / std::to_string(cred.pid) / "cgroup");
  if (::syscall(SYS_pidfd_send_signal, pid_handle.get(), 0, nullptr, 0) != 0) {
    base::throwErrno("local API peer " + std::to_string(cred.pid) +
                     " exited before it could be identified");
  }
  peer.cgroup = node::unifiedCgroupPath(cgroup_file).value_or("");
  if (auto slice = node::sliverOfCgroup(peer.cgroup, slivers_path_)) {
    peer.kind = Peer::Kind::kSliver;
    peer.slice = *slice;
  } else {
    peer.kind = cred.uid == 0 ? Peer::Kind::kHostRoot : Peer::Kind::kHostUser;
  }
  return peer;
}

}  // namespace plng::sliverd
