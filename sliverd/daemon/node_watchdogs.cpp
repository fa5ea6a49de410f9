// GCC's -Wnull-dereference flags Boost.Asio 1.74's scheduler internals once they
// are inlined here; the code is Boost's, not ours.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "sliverd/daemon/node_watchdogs.h"

#include <spdlog/spdlog.h>

#include "sliverd/core/reconciler.h"

namespace plng::sliverd {

NodeWatchdogs::NodeWatchdogs(boost::asio::io_context& io, plng::node::CgroupDriver& cgroups,
                             plng::node::SliverStorage& storage, Options options,
                             plng::node::MemoryProbe* memory)
    : options_(std::move(options)),
      memory_(cgroups, memory != nullptr ? *memory : meminfo_),
      disk_(cgroups, storage, options_.disk_thresholds),
      memory_timer_(io),
      disk_timer_(io) {}

void NodeWatchdogs::start() {
  if (options_.memory) armMemory();
  if (options_.disk) armDisk();
}

void NodeWatchdogs::stop() {
  memory_timer_.cancel();
  disk_timer_.cancel();
}

std::optional<plng::node::Victim> NodeWatchdogs::checkMemory() {
  auto victim = memory_.check();
  if (victim) {
    spdlog::warn("memory watchdog killed sliver {} ({} bytes): {}", victim->slice, victim->bytes,
                 victim->reason);
  }
  return victim;
}

std::optional<plng::node::Victim> NodeWatchdogs::checkDisk() {
  auto victim = disk_.check([this](const plng::node::Victim& v) {
    // Held before the kill: a reconcile pass in between must not start it again.
    holdSliver(options_.paths, v.slice, "the disk watchdog (" + v.reason + ")");
  });
  if (victim) {
    spdlog::warn("disk watchdog stopped sliver {} ({} bytes on the sliver storage): {}",
                 victim->slice, victim->bytes, victim->reason);
  }
  return victim;
}

void NodeWatchdogs::armMemory() {
  memory_timer_.expires_after(options_.memory_interval);
  memory_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    try {
      checkMemory();
      memory_error_.clear();
    } catch (const std::exception& e) {
      if (memory_error_ != e.what()) spdlog::error("memory watchdog: {}", e.what());
      memory_error_ = e.what();
    }
    armMemory();
  });
}

void NodeWatchdogs::armDisk() {
  disk_timer_.expires_after(options_.disk_interval);
  disk_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    try {
      checkDisk();
      disk_error_.clear();
    } catch (const std::exception& e) {
      if (disk_error_ != e.what()) spdlog::error("disk watchdog: {}", e.what());
      disk_error_ = e.what();
    }
    armDisk();
  });
}

}  // namespace plng::sliverd
