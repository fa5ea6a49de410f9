// Who is calling on the local API's unix socket: a sliver, the node operator
// (root on the host), or another host user.
//
// The kernel tells us the peer of a connected unix socket (SO_PEERCRED: pid, uid
// and gid at connect time; SO_PEERPIDFD since Linux 6.5: a pidfd of that very
// process). From the pid we read /proc/<pid>/cgroup; if the unified cgroup lies
// below the driver's sliversDir(), the slice is the first path component below
// it. A process inside a sliver can neither leave its cgroup (it is not
// delegated to the sliver) nor forge these values, so no field of a request is
// ever trusted to say who the caller is.
//
// The pid is checked against pid reuse: after reading its cgroup we ask the
// pidfd whether the process still lives; if it exited meanwhile, another
// process may wear its pid and the caller is refused.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "node/cgroup.h"

namespace plng::sliverd {

struct Peer {
  enum class Kind {
    kSliver,    // a process in a sliver's cgroup: acts for `slice`
    kHostRoot,  // uid 0 outside every sliver: the node operator, may act on all
    kHostUser,  // any other host process: may read, not act
  };
  Kind kind = Kind::kHostUser;
  std::string slice;  // kSliver only
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string cgroup;  // the unified cgroup path as /proc/<pid>/cgroup shows it

  std::string describe() const;  // "slice pl_x (pid 12)", "host root (pid 1)"…
};

class PeerIdentifier {
 public:
  // `driver` gives sliversDir(); `proc` is where procfs is mounted. Throws
  // SysError when sliversDir() lies on no cgroup2 mount.
  explicit PeerIdentifier(const node::CgroupDriver& driver, std::filesystem::path proc = "/proc");

  // Identifies the process at the other end of a connected unix socket.
  // Throws SysError when the kernel gives no credentials or the peer exited.
  Peer identify(int socket_fd) const;

 private:
  std::filesystem::path proc_;
  std::string slivers_path_;  // hierarchy path of driver.sliversDir()
};

}  // namespace plng::sliverd
