#include "plc/expiry_sweeper.h"

#include <spdlog/spdlog.h>

#include <vector>

#include "plc/port_reservations.h"

namespace plng::plc {

ExpirySweeper::ExpirySweeper(Database& db, std::chrono::milliseconds interval)
    : db_(db), task_("slice expiry check", interval, [this] {
        if (int n = sweepOnce(); n > 0) spdlog::info("{} slice(s) expired; nodes notified", n);
      }) {}

int ExpirySweeper::sweepOnce() {
  return db_.write([](pqxx::work& tx) {
    std::vector<std::int64_t> slices;
    for (const auto& row :
         tx.exec("WITH seen AS (SELECT expiries_seen_until AS t FROM plc_state FOR UPDATE)"
                 " SELECT slice_id FROM slices, seen WHERE deleted_at IS NULL"
                 " AND expires_at > seen.t AND expires_at <= now()")) {
      slices.push_back(row[0].as<std::int64_t>());
    }
    tx.exec0("UPDATE plc_state SET expiries_seen_until = now()");
    if (!slices.empty()) {
      // Only the streams of the expired slices' nodes recompute.
      std::vector<std::int64_t> nodes;
      for (auto slice_id : slices) {
        auto ids = sliceNodeIds(tx, slice_id);
        nodes.insert(nodes.end(), ids.begin(), ids.end());
      }
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes(std::move(nodes)));
    }
    return static_cast<int>(slices.size());
  });
}

}  // namespace plng::plc
