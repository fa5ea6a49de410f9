#include "node/rootfs_release.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace plng::node {

RootfsReleaser::~RootfsReleaser() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Whatever the thread left (nothing, unless it never started).
  queue_.clear();
}

void RootfsReleaser::release(const std::string& sliver, base::UniqueFd pin) {
  if (!pin) return;
  std::lock_guard lock(mutex_);
  ++held_[sliver];
  queue_.emplace_back(sliver, std::move(pin));
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  wake_.notify_all();
}

void RootfsReleaser::waitFor(const std::string& sliver) {
  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return !held_.contains(sliver); });
}

void RootfsReleaser::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;  // stopping, nothing left
    auto [sliver, pin] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    // The overlay's unmount, and its sync, run as this close returns.
    pin.reset();
    lock.lock();
    if (--held_[sliver] == 0) held_.erase(sliver);
    done_.notify_all();
  }
}

base::UniqueFd pinRootOf(pid_t pid, int pidfd) {
  const std::string link = "/proc/" + std::to_string(pid) + "/root";
  base::UniqueFd pin(::open(link.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  // Still alive after the open: the pid was this process's when we opened it
  // (a pid is not reused while its process lives).
  if (pin && ::syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) != 0) pin.reset();
  return pin;
}

}  // namespace plng::node
