#include "base/unix_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/eintr.h"
#include "base/error.h"

namespace plng::base {

namespace {

// Room for the most descriptors any message here carries, aligned for cmsghdr.
union ControlBuffer {
  cmsghdr align;
  char bytes[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
};

}  // namespace

void sendFds(int socket, std::string_view payload, std::span<const int> fds,
             const std::string& what) {
  if (payload.empty()) throw SysError(EINVAL, what + ": a message needs a payload");
  if (fds.size() > kMaxFdsPerMessage) {
    throw SysError(EINVAL, what + ": more than " + std::to_string(kMaxFdsPerMessage) +
                               " descriptors in one message");
  }
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  ControlBuffer control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    const std::size_t bytes = fds.size() * sizeof(int);
    msg.msg_control = control.bytes;
    msg.msg_controllen = CMSG_SPACE(bytes);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(bytes);
    std::memcpy(CMSG_DATA(cmsg), fds.data(), bytes);
  }
  const ssize_t n = retryOnEintr([&] { return ::sendmsg(socket, &msg, MSG_NOSIGNAL); });
  if (n < 0) throwErrno(what);
  if (static_cast<std::size_t>(n) != payload.size()) {
    throw SysError(EPROTO, what + ": sent " + std::to_string(n) + " of " +
                               std::to_string(payload.size()) + " bytes");
  }
}

ssize_t receiveFdsInto(int socket, std::span<char> payload, std::span<int> fds,
                       std::size_t& fd_count) noexcept {
  fd_count = 0;
  if (fds.size() > kMaxFdsPerMessage || payload.empty()) {
    errno = EINVAL;
    return -1;
  }
  iovec iov{payload.data(), payload.size()};
  ControlBuffer control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // Room for exactly fds.size() descriptors: the kernel closes any beyond it and
  // says so with MSG_CTRUNC.
  msg.msg_control = control.bytes;
  msg.msg_controllen = fds.empty() ? 0 : CMSG_SPACE(fds.size() * sizeof(int));
  if (fds.empty()) msg.msg_control = nullptr;
  const ssize_t n = retryOnEintr([&] { return ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC); });
  if (n < 0) return -1;
  std::size_t count = 0;
  bool overflow = false;
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t arrived = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < arrived; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
      if (count < fds.size()) {
        fds[count++] = fd;
      } else {
        ::close(fd);
        overflow = true;
      }
    }
  }
  if (overflow || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0) {
    for (std::size_t i = 0; i < count; ++i) ::close(fds[i]);
    errno = EPROTO;
    return -1;
  }
  fd_count = count;
  return n;
}

FdMessage receiveFds(int socket, std::size_t max_payload, std::size_t max_fds,
                     const std::string& what) {
  if (max_fds > kMaxFdsPerMessage) {
    throw SysError(EINVAL, what + ": more than " + std::to_string(kMaxFdsPerMessage) +
                               " descriptors in one message");
  }
  FdMessage message;
  message.payload.resize(max_payload);
  message.fds.reserve(max_fds);  // no allocation once descriptors are ours
  int fds[kMaxFdsPerMessage];
  std::size_t count = 0;
  const ssize_t n = receiveFdsInto(socket, message.payload, std::span<int>(fds, max_fds), count);
  if (n < 0) {
    if (errno == EPROTO) {
      throw SysError(EPROTO, what + ": more descriptors or bytes than the " +
                                 std::to_string(max_fds) + " and " + std::to_string(max_payload) +
                                 " expected (those that came are closed)");
    }
    throwErrno(what);
  }
  message.payload.resize(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < count; ++i) message.fds.emplace_back(fds[i]);
  return message;
}

}  // namespace plng::base
