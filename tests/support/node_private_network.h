// A network namespace of a test's own, so that its traffic stays on a loopback
// nobody else uses: unshare(CLONE_NEWNET) for the calling thread — and every
// thread and process it starts from then on (sliverd, slivers, a broker's
// thread) — with `lo` up; the thread's previous namespace again at the end.
#pragma once

#include "base/fd.h"

namespace plng::test {

class PrivateNetwork {
 public:
  // Throws plng::base::SysError when the namespace cannot be made.
  PrivateNetwork();
  ~PrivateNetwork();
  PrivateNetwork(const PrivateNetwork&) = delete;
  PrivateNetwork& operator=(const PrivateNetwork&) = delete;

 private:
  plng::base::UniqueFd previous_;
};

}  // namespace plng::test
