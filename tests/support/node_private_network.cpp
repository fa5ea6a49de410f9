#include "tests/support/node_private_network.h"

#include <fcntl.h>
#include <sched.h>

#include <cerrno>
#include <cstdlib>

#include "base/error.h"

namespace plng::test {

PrivateNetwork::PrivateNetwork()
    : previous_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
  if (!previous_) plng::base::throwErrno("open /proc/thread-self/ns/net");
  if (::unshare(CLONE_NEWNET) != 0) plng::base::throwErrno("unshare(CLONE_NEWNET)");
  if (std::system("ip link set lo up") != 0) {
    ::setns(previous_.get(), CLONE_NEWNET);
    throw plng::base::SysError(EIO, "ip link set lo up in a new network namespace");
  }
}

PrivateNetwork::~PrivateNetwork() { ::setns(previous_.get(), CLONE_NEWNET); }

}  // namespace plng::test
