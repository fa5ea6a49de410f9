// A network namespace of a test's own, so that its traffic stays on links
// nobody else uses: unshare(CLONE_NEWNET) for the calling thread — and every
// thread and process it starts from then on (sliverd, slivers, a broker's
// thread) — with `lo` up; the thread's previous namespace again at the end.
// With a peer: a second namespace, held by a child process, joined by a veth
// pair (10.213.0.1/24 here, kPeerAddress there), which answers pings and
// traceroutes as a remote host would — and is no address of the node.
#pragma once

#include <sys/types.h>

#include "base/fd.h"

namespace plng::test {

class PrivateNetwork {
 public:
  static constexpr const char* kPeerAddress = "10.213.0.2";

  // Throws plng::base::SysError when the namespaces cannot be made.
  explicit PrivateNetwork(bool with_peer = false);
  ~PrivateNetwork();
  PrivateNetwork(const PrivateNetwork&) = delete;
  PrivateNetwork& operator=(const PrivateNetwork&) = delete;

 private:
  plng::base::UniqueFd previous_;
  pid_t peer_ = 0;  // holds the peer's namespace
};

}  // namespace plng::test
