#include "peer_slice.h"

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

// Linux 6.5; Debian 12's headers predate it.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

namespace plng::sliverd {
namespace {

// mountinfo escapes ' ', '\t', '\n' and '\\' in paths as \ooo.
std::string unescapeMountinfo(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    auto octal = [&](std::size_t j) { return j < in.size() && in[j] >= '0' && in[j] <= '7'; };
    if (in[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((in[i + 1] - '0') * 64 + (in[i + 2] - '0') * 8 + (in[i + 3] - '0'));
      i += 3;
    } else {
      out += in[i];
    }
  }
  return out;
}

std::string readAll(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) base::throwErrno("read " + path.string());
  std::ostringstream body;
  body << in.rdbuf();
  return body.str();
}

// Is `path` equal to `prefix` or below it (hierarchy paths, "/" separated)?
bool below(const std::string& path, const std::string& prefix) {
  if (prefix == "/") return true;
  return path.size() >= prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
         (path.size() == prefix.size() || path[prefix.size()] == '/');
}

}  // namespace

std::string Peer::describe() const {
  const std::string who = kind == Kind::kSliver     ? "slice " + slice
                          : kind == Kind::kHostRoot ? std::string("host root")
                                                    : "host user " + std::to_string(uid);
  return who + " (pid " + std::to_string(pid) + ")";
}

std::optional<std::string> unifiedCgroupPath(const std::string& proc_pid_cgroup) {
  std::istringstream in(proc_pid_cgroup);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("0::", 0) == 0) {
      std::string path = line.substr(3);
      // A cgroup removed under a zombie reads "/a/b (deleted)".
      const std::string kDeleted = " (deleted)";
      if (path.size() > kDeleted.size() &&
          path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
        path.resize(path.size() - kDeleted.size());
      }
      return path;
    }
  }
  return std::nullopt;
}

std::string cgroupPathOfDir(const std::filesystem::path& dir, const std::string& mountinfo) {
  const std::string target = dir.lexically_normal().string();
  std::string best_mount, best_root;
  std::istringstream in(mountinfo);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string word; fields >> word;) f.push_back(word);
    std::size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (f.size() < 5 || dash + 1 >= f.size() || f[dash + 1] != "cgroup2") continue;
    const std::string mount = unescapeMountinfo(f[4]);
    if (below(target, mount) && mount.size() >= best_mount.size()) {
      best_mount = mount;
      best_root = unescapeMountinfo(f[3]);
    }
  }
  if (best_mount.empty()) {
    throw base::SysError(ENOENT, "find the cgroup2 mount holding " + target);
  }
  std::string rest = best_mount == "/" ? target : target.substr(best_mount.size());
  if (best_root == "/") return rest.empty() ? "/" : rest;
  return best_root + rest;
}

std::optional<std::string> sliceOfCgroup(const std::string& cgroup_path,
                                         const std::string& slivers_path) {
  if (!below(cgroup_path, slivers_path) || cgroup_path.size() == slivers_path.size()) {
    return std::nullopt;
  }
  std::size_t start = slivers_path == "/" ? 1 : slivers_path.size() + 1;
  std::size_t end = cgroup_path.find('/', start);
  std::string slice = cgroup_path.substr(start, end == std::string::npos ? end : end - start);
  if (slice.empty()) return std::nullopt;
  return slice;
}

PeerIdentifier::PeerIdentifier(const node::CgroupDriver& driver, std::filesystem::path proc)
    : proc_(std::move(proc)),
      slivers_path_(cgroupPathOfDir(driver.sliversDir(), readAll(proc_ / "self/mountinfo"))) {}

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
  const std::string cgroup_file = readAll(proc_ / std::to_string(cred.pid) / "cgroup");
  if (::syscall(SYS_pidfd_send_signal, pid_handle.get(), 0, nullptr, 0) != 0) {
    base::throwErrno("local API peer " + std::to_string(cred.pid) +
                     " exited before it could be identified");
  }
  peer.cgroup = unifiedCgroupPath(cgroup_file).value_or("");
  if (auto slice = sliceOfCgroup(peer.cgroup, slivers_path_)) {
    peer.kind = Peer::Kind::kSliver;
    peer.slice = *slice;
  } else {
    peer.kind = cred.uid == 0 ? Peer::Kind::kHostRoot : Peer::Kind::kHostUser;
  }
  return peer;
}

}  // namespace plng::sliverd
