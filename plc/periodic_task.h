// PeriodicTask: plcd's housekeeping (slice expiry, flow retention) runs on a
// thread of its own, once at start and then every interval until stopped. A
// failed round is logged and the next one runs as usual.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace plng::plc {

class PeriodicTask {
 public:
  // `what` names the work in log lines ("slice expiry check").
  PeriodicTask(std::string what, std::chrono::milliseconds interval, std::function<void()> work)
      : what_(std::move(what)), interval_(interval), work_(std::move(work)) {}
  ~PeriodicTask() { stop(); }
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  void start();
  // Wakes the thread and joins it. Idempotent.
  void stop();

 private:
  std::string what_;
  std::chrono::milliseconds interval_;
  std::function<void()> work_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace plng::plc
