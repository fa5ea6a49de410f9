#include "base/landlock.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace plng::base {

namespace {
// linux/landlock.h of Debian 12 (6.1) predates some of what the project needs;
// the flag is stable ABI.
constexpr unsigned kCreateRulesetVersion = 1u << 0;  // LANDLOCK_CREATE_RULESET_VERSION
}  // namespace

int landlockAbiVersion() {
  const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, kCreateRulesetVersion);
  return abi < 0 ? -errno : static_cast<int>(abi);
}

bool landlockScopesAbstractUnixSockets() {
  return landlockAbiVersion() >= kLandlockAbstractUnixScopeAbi;
}

}  // namespace plng::base
