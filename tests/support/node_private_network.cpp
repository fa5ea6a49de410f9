#include "tests/support/node_private_network.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "base/error.h"

namespace plng::test {

PrivateNetwork::PrivateNetwork(bool with_peer)
    : previous_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
  if (!previous_) plng::base::throwErrno("open /proc/thread-self/ns/net");
  if (::unshare(CLONE_NEWNET) != 0) plng::base::throwErrno("unshare(CLONE_NEWNET)");
  auto fail = [&](const std::string& what) {
    if (peer_ > 0) {
      ::kill(peer_, SIGKILL);
      ::waitpid(peer_, nullptr, 0);
    }
    ::setns(previous_.get(), CLONE_NEWNET);
    throw plng::base::SysError(EIO, what);
  };
  if (std::system("ip link set lo up") != 0) fail("ip link set lo up in a new network namespace");
  if (!with_peer) return;
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) plng::base::throwErrno("pipe");
  peer_ = ::fork();
  if (peer_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::unshare(CLONE_NEWNET) != 0) ::_exit(1);
    char byte = 'r';
    if (::write(ready[1], &byte, 1) != 1) ::_exit(1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char byte = 0;
  const bool up = peer_ > 0 && ::read(ready[0], &byte, 1) == 1;
  ::close(ready[0]);
  if (!up) fail("a peer network namespace");
  const std::string peer_ns = "/proc/" + std::to_string(peer_) + "/ns/net";
  const std::string in_peer = "nsenter --net=" + peer_ns + " ";
  const std::string setup =
      "ip link add plngv0 type veth peer name plngv1 netns " + std::to_string(peer_) +
      " && ip addr add 10.213.0.1/24 dev plngv0 && ip link set plngv0 up && " + in_peer +
      "ip link set lo up && " + in_peer + "ip addr add " + kPeerAddress + "/24 dev plngv1 && " +
      in_peer + "ip link set plngv1 up";
  if (std::system(setup.c_str()) != 0) fail("a veth pair to the peer namespace");
}

PrivateNetwork::~PrivateNetwork() {
  // The peer's namespace goes with its last process, and the veth pair with it.
  if (peer_ > 0) {
    ::kill(peer_, SIGKILL);
    ::waitpid(peer_, nullptr, 0);
  }
  ::setns(previous_.get(), CLONE_NEWNET);
}

}  // namespace plng::test
