// ExpirySweeper: a slice expiring changes what nodes should run, but no API call
// marks the moment. Every few seconds each plcd checks (under the plc_state row
// lock, so one replica wins) whether a slice expired since the last check and, if
// so, bumps the state version: WatchSlivers streams then drop the slice at once.
#pragma once

#include <chrono>

#include "plc/db.h"
#include "plc/periodic_task.h"

namespace plng::plc {

class ExpirySweeper {
 public:
  ExpirySweeper(Database& db, std::chrono::milliseconds interval);

  void start() { task_.start(); }
  void stop() { task_.stop(); }
  // One check; returns how many slices expired since the previous one.
  int sweepOnce();

 private:
  Database& db_;
  PeriodicTask task_;
};

}  // namespace plng::plc
