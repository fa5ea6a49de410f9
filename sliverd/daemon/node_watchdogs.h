// The node's watchdogs (node/watchdog.h) on sliverd's event loop: memory, and
// the sliver storage. They log what they do; a sliver the disk watchdog stops
// is marked held first (holdSliver, by "the disk watchdog (<why>)"), so the
// reconciler does not start it again and the local API says why until someone
// starts it. A sliver the memory watchdog kills is started again by the next
// reconcile pass, as before (its memory is freed by the kill; its disk would
// not be).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "node/cgroup.h"
#include "node/paths.h"
#include "node/storage.h"
#include "node/watchdog.h"

namespace plng::sliverd {

class NodeWatchdogs {
 public:
  struct Options {
    plng::node::NodePaths paths = {};  // where held marks go
    bool memory = true;
    std::chrono::milliseconds memory_interval{1000};
    bool disk = true;
    std::chrono::milliseconds disk_interval{2000};
    plng::node::DiskThresholds disk_thresholds = {};
  };

  // `memory` = nullptr reads /proc/meminfo.
  NodeWatchdogs(boost::asio::io_context& io, plng::node::CgroupDriver& cgroups,
                plng::node::SliverStorage& storage, Options options,
                plng::node::MemoryProbe* memory = nullptr);

  // Arms the timers of the enabled watchdogs. On the loop's thread, or before it runs.
  void start();
  // Cancels them; on the loop's thread.
  void stop();

  // One check each, as the timers run them (tests call these directly).
  std::optional<plng::node::Victim> checkMemory();
  std::optional<plng::node::Victim> checkDisk();

 private:
  void armMemory();
  void armDisk();

  Options options_;
  plng::node::ProcMeminfoProbe meminfo_;
  plng::node::MemoryWatchdog memory_;
  plng::node::DiskWatchdog disk_;
  boost::asio::steady_timer memory_timer_;
  boost::asio::steady_timer disk_timer_;
  std::string memory_error_, disk_error_;  // the last error logged (each said once)
};

}  // namespace plng::sliverd
