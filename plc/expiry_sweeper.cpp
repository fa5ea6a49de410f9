#include "plc/expiry_sweeper.h"

#include <spdlog/spdlog.h>

namespace plng::plc {

ExpirySweeper::ExpirySweeper(Database& db, std::chrono::milliseconds interval)
    : db_(db), task_("slice expiry check", interval, [this] {
        if (int n = sweepOnce(); n > 0) spdlog::info("{} slice(s) expired; nodes notified", n);
      }) {}

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

}  // namespace plng::plc
