// ExpirySweeper: a slice expiring changes what nodes should run, but no API call
// marks the moment. Every few seconds each plcd checks (under the plc_state row
// lock, so one replica wins) whether a slice expired since the last check and, if
// so, bumps the state version: WatchSlivers streams then drop the slice at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "plc/db.h"

namespace plng::plc {

class ExpirySweeper {
 public:
  ExpirySweeper(Database& db, std::chrono::milliseconds interval) : db_(db), interval_(interval) {}
  ~ExpirySweeper() { stop(); }
  ExpirySweeper(const ExpirySweeper&) = delete;
  ExpirySweeper& operator=(const ExpirySweeper&) = delete;

  void start();
  void stop();
  // One check; returns how many slices expired since the previous one.
  int sweepOnce();

 private:
  Database& db_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace plng::plc
