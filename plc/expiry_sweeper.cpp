#include "plc/expiry_sweeper.h"

#include <spdlog/spdlog.h>

namespace plng::plc {

int ExpirySweeper::sweepOnce() {
  return db_.write([](pqxx::work& tx) {
    auto expired = tx.exec1(
                         "WITH seen AS (SELECT expiries_seen_until AS t FROM plc_state FOR UPDATE)"
                         " SELECT count(*) FROM slices, seen WHERE deleted_at IS NULL"
                         " AND expires_at > seen.t AND expires_at <= now()")[0]
                       .as<int>();
    tx.exec0("UPDATE plc_state SET expiries_seen_until = now()");
    if (expired > 0) Database::bumpStateVersion(tx);
    return expired;
  });
}

void ExpirySweeper::start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      try {
        if (int n = sweepOnce(); n > 0) spdlog::info("{} slice(s) expired; nodes notified", n);
      } catch (const std::exception& e) {
        spdlog::warn("slice expiry check failed: {}", e.what());
      }
      lock.lock();
      wake_.wait_for(lock, interval_, [&] { return stopping_; });
    }
  });
}

void ExpirySweeper::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace plng::plc
