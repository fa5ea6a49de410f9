// Landlock, as far as the project uses it: the kernel's ABI version and its
// abstract unix socket scoping (docs/vnet.md, "Abstract unix sockets").
//
// A Landlock domain created with LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (ABI 6,
// Linux 6.12) and no access rights handled changes nothing but this: its
// processes cannot connect (stream) or send (datagram) to an abstract unix
// socket created by a process outside the domain or its nested domains; the
// kernel refuses with EPERM. Sockets created inside the domain stay reachable
// from it, and from outside (the host is not restricted).
#pragma once

namespace plng::base {

// The first Landlock ABI with abstract unix socket scoping.
inline constexpr int kLandlockAbstractUnixScopeAbi = 6;

// The running kernel's Landlock ABI version
// (landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)), or
// -errno: -ENOSYS without Landlock, -EOPNOTSUPP when it is built in but not
// enabled at boot (lsm=). Async-signal-safe; asked anew each time (one syscall).
int landlockAbiVersion();

// Whether landlockAbiVersion() >= kLandlockAbstractUnixScopeAbi.
bool landlockScopesAbstractUnixSockets();

}  // namespace plng::base
