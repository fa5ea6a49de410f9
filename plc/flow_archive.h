// The flow archive: the flows nodes report (NodeSync.ReportFlows) in the table
// `flows`, partitioned by day on first_seen (flows_YYYYMMDD, UTC days), and the
// planet-wide answer to "who sent this?" (Admin.GetFlows). Partitions are made
// as batches need them and dropped whole once a day is older than
// flow_retention_days (FlowRetention). docs/plc.md, "Flow archive".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "plc/config.h"
#include "plc/db.h"
#include "plc/periodic_task.h"
#include "proto/plc.pb.h"

namespace plng::plc {

// How far ahead of PLC's clock a node's flow times may be.
inline constexpr std::int64_t kFlowClockSkewNs = 3600LL * 1000000000LL;
// GetFlows' limit: default and most.
inline constexpr int kDefaultFlowLimit = 1000;
inline constexpr int kMaxFlowLimit = 100000;
// GetFlows' window when since is not given: the last hour.
inline constexpr std::int64_t kDefaultFlowWindow = 3600;

// Checks a ReportFlows batch; throws INVALID_ARGUMENT naming the field
// ("flows[3].dst_addr") and what it must be. `now_ns`: PLC's clock.
void validateFlowBatch(const planetlab::v1::ReportFlowsRequest& batch, const PlcConfig& config,
                       std::int64_t now_ns);

// Stores `batch` for `node_id` unless that node already reported a batch of
// that batch_id; flows whose day is already past retention are left out.
// Makes the day partitions it needs first (each in a transaction of its own).
// Returns the flows stored (by this call or by the earlier one of that batch).
// Throws RESOURCE_EXHAUSTED past flow_node_daily_max.
std::int64_t storeFlowBatch(Database& db, const PlcConfig& config, std::int64_t node_id,
                            const planetlab::v1::ReportFlowsRequest& batch,
                            std::chrono::system_clock::time_point now);

struct FlowQuery {
  std::string dst;  // canonical CIDR (canonicalPrefix)
  std::int64_t since = 0;
  std::int64_t until = 0;
  std::int64_t node_id = 0;  // 0 = every node
  std::string slice;         // "" = every slice
  int limit = kDefaultFlowLimit;
};

// The flows to `query.dst` (an address in the prefix) seen between since and
// until, latest first, each with its node and who answers for its slice.
planetlab::v1::GetFlowsResponse queryFlows(pqxx::transaction_base& tx, const FlowQuery& query);

// The name of the partition holding flows first seen on `day` (UTC): flows_YYYYMMDD.
std::string flowPartitionName(std::chrono::sys_days day);

// Drops every day partition of `flows` whose whole day is older than
// `retention_days` before `now`, and the batch ledger's rows as old. Returns
// the partitions dropped.
int dropExpiredFlowPartitions(Database& db, int retention_days,
                              std::chrono::system_clock::time_point now);

// Runs dropExpiredFlowPartitions every `interval` on its own thread.
class FlowRetention {
 public:
  FlowRetention(Database& db, int retention_days, std::chrono::milliseconds interval);
  void start() { task_.start(); }
  void stop() { task_.stop(); }

 private:
  PeriodicTask task_;
};

}  // namespace plng::plc
