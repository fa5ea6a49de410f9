// Retrying a system call that a signal interrupted.
//
// A handler installed without SA_RESTART (or a call the kernel never restarts:
// poll, epoll_wait, nanosleep, recv with a timeout) makes a blocking call fail
// with EINTR although nothing is wrong. Async-signal-safe: no heap, no locks, so
// it may run in a child between clone3 and exec.
#pragma once

#include <cerrno>
#include <concepts>
#include <type_traits>
#include <utility>

namespace plng::base {

// Calls `call` until its result is not "-1 (or below) with errno EINTR", and
// returns that result (errno is left as the last call set it).
//   ssize_t n = retryOnEintr([&] { return ::read(fd, buf, sizeof buf); });
template <typename Call>
requires std::signed_integral<std::invoke_result_t<Call&>> std::invoke_result_t<Call&> retryOnEintr(
    Call&& call) {
  for (;;) {
    auto result = call();
    if (result >= 0 || errno != EINTR) return result;
  }
}

}  // namespace plng::base
