#include "sliverd/core/raw_socket_runtime.h"

#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "base/error.h"
#include "node/raw_socket.h"

namespace plng::sliverd {

bool RawSocketRuntime::adopt(const std::string& slice, pid_t init_pid) {
  try {
    base::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, init_pid, 0)));
    if (!pidfd) base::throwErrno("pidfd_open " + std::to_string(init_pid));
    base::UniqueFd listener = node::takeSeccompListener(pidfd.get(), init_pid);
    if (!listener) {
      auto [it, first] = without_listener_.try_emplace(slice, init_pid);
      if (!first && it->second == init_pid) return false;
      it->second = init_pid;
      // A sliver started before sliverd had the broker: its raw socket() calls
      // get EPERM from the kernel, as before, until it is restarted.
      spdlog::warn(
          "sliver {}: its sliver-init (pid {}) holds no seccomp listener; raw sockets "
          "need a restart of the sliver",
          slice, init_pid);
      return false;
    }
    broker_.watch(slice, init_pid, std::move(listener), cgroups_.openUnifiedDir(slice));
    spdlog::debug("sliver {}: raw socket broker watches sliver-init (pid {})", slice, init_pid);
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("sliver {}: cannot watch its raw socket calls: {}", slice, e.what());
    return false;
  }
}

std::vector<node::SliverStatus> RawSocketRuntime::list() {
  auto slivers = runtime_.list();
  for (const auto& sliver : slivers) {
    const std::string& slice = sliver.config.slice;
    if (sliver.phase != node::SliverPhase::kRunning) {
      if (!broker_.holders(slice).empty()) broker_.forget(slice);
      continue;
    }
    const auto holders = broker_.holders(slice);
    if (std::find(holders.begin(), holders.end(), sliver.init_pid) == holders.end()) {
      // A sliver-init of an earlier start is gone with its listener.
      if (!holders.empty()) broker_.forget(slice);
      adopt(slice, sliver.init_pid);
    }
  }
  return slivers;
}

void RawSocketRuntime::start(std::string_view slice) {
  runtime_.start(slice);
  const std::string name(slice);
  if (auto status = runtime_.get(slice); status && status->phase == node::SliverPhase::kRunning) {
    const auto holders = broker_.holders(name);
    if (std::find(holders.begin(), holders.end(), status->init_pid) == holders.end()) {
      if (!holders.empty()) broker_.forget(name);
      adopt(name, status->init_pid);
    }
  }
}

void RawSocketRuntime::stop(std::string_view slice, std::chrono::milliseconds grace) {
  runtime_.stop(slice, grace);
  broker_.forget(std::string(slice));
}

void RawSocketRuntime::destroy(std::string_view slice) {
  runtime_.destroy(slice);
  broker_.forget(std::string(slice));
}

}  // namespace plng::sliverd
