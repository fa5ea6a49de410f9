#include "plc/periodic_task.h"

#include <spdlog/spdlog.h>

namespace plng::plc {

void PeriodicTask::start() {
  std::lock_guard start_lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      try {
        work_();
      } catch (const std::exception& e) {
        spdlog::warn("{} failed: {}", what_, e.what());
      }
      lock.lock();
      wake_.wait_for(lock, interval_, [&] { return stopping_; });
    }
  });
}

void PeriodicTask::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace plng::plc
