// Handing file descriptors to another process over a unix socket (SCM_RIGHTS).
//
// Each message carries a payload of at least one byte (a stream socket cannot
// carry descriptors alone) and the descriptors ride with its first byte. The
// receiver takes them with MSG_CMSG_CLOEXEC, so none leaks into a program it
// runs before deciding what to do with them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"

namespace plng::base {

// The most descriptors one message here carries (the kernel's SCM_MAX_FD is 253).
inline constexpr std::size_t kMaxFdsPerMessage = 64;

// Sends `payload` (not empty) with `fds` (at most kMaxFdsPerMessage) in one
// sendmsg, without SIGPIPE. Throws SysError naming `what` when the message did not
// go whole (a stream socket may take part of a long payload: keep payloads
// short, or send the rest with write).
void sendFds(int socket, std::string_view payload, std::span<const int> fds,
             const std::string& what);

// One message received: its payload and the descriptors that came with it.
struct FdMessage {
  std::string payload;  // empty at end of file
  std::vector<UniqueFd> fds;
};

// Receives one message of up to `max_payload` bytes and `max_fds` descriptors.
// Throws SysError naming `what`: EPROTO when the sender sent more descriptors
// than `max_fds` (the kernel truncated them: MSG_CTRUNC) or a longer datagram
// than `max_payload` (MSG_TRUNC); the descriptors that did arrive are closed.
FdMessage receiveFds(int socket, std::size_t max_payload, std::size_t max_fds,
                     const std::string& what);

// The same without heap or exceptions, for a child between clone3 and exec:
// fills `payload` and up to fds.size() (at most kMaxFdsPerMessage) descriptors,
// sets `fd_count`, and returns the payload's length (0 at end of file), or -1
// with errno set (EPROTO on truncation, after closing what arrived; fd_count 0).
ssize_t receiveFdsInto(int socket, std::span<char> payload, std::span<int> fds,
                       std::size_t& fd_count) noexcept;

}  // namespace plng::base
