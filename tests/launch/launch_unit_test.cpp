// What a failed sliver start tells the node operator when the host ran out of
// something only they can raise (docs/node.md, "Many slivers on one node").
#include <catch2/catch.hpp>
#include <cerrno>

#include "node/launch.h"

using plng::node::hostLimitHint;

TEST_CASE("hostLimitHint names the sysctls to raise", "[sliver]") {
  // clone3 returns ENOSPC past a user.max_*_namespaces count.
  const std::string namespaces = hostLimitHint(ENOSPC);
  CHECK_THAT(namespaces, Catch::Contains("user.max_user_namespaces"));
  CHECK_THAT(namespaces, Catch::Contains("max_mnt_namespaces"));
  CHECK_THAT(namespaces, Catch::Contains("max_pid_namespaces"));
  CHECK_THAT(namespaces, Catch::Contains("Many slivers on one node"));
  // and EAGAIN when no pid (or thread) is left.
  const std::string pids = hostLimitHint(EAGAIN);
  CHECK_THAT(pids, Catch::Contains("kernel.pid_max"));
  CHECK_THAT(pids, Catch::Contains("kernel.threads-max"));
  CHECK_THAT(pids, Catch::Contains("pids.max"));
}

TEST_CASE("hostLimitHint says nothing for errors that are not host limits", "[sliver]") {
  CHECK(hostLimitHint(EPERM).empty());
  CHECK(hostLimitHint(EINVAL).empty());
  CHECK(hostLimitHint(0).empty());
}
