// NodeReading: one look at the node and its slivers, taken when asked. The
// sensor server (sensors.h), /metrics (node_metrics.h) and the health report
// to PLC (node_health.h) are each a rendering of the same reading, so the three
// never disagree on what a figure means or where it comes from
// (docs/sensors.md, docs/metrics.md).
//
// What is read: /proc (meminfo, loadavg, uptime), the sliver storage
// (statvfs and each sliver's quota usage), every sliver's cgroup (through the
// runtime), vnet-bpf's per-slice counters and refusals and the HTB classes
// (when network isolation is enforced), the daily byte budgets, the
// reconciler's record of passes and failures, and PLC's stream state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node/runtime.h"
#include "node/storage.h"
#include "proto/node.pb.h"
#include "sliverd/vnet/daily_budgets.h"
#include "sliverd/vnet/network_isolation.h"

namespace plng::sliverd {

// /proc/meminfo's fields in file order, in bytes (the kernel's "kB" is KiB;
// counts without a unit, HugePages_*, are kept as they are).
std::vector<std::pair<std::string, std::uint64_t>> parseMeminfo(std::string_view text);
struct LoadAverage {
  double load1 = 0, load5 = 0, load15 = 0;
};
LoadAverage parseLoadavg(std::string_view text);
// /proc/uptime's first field, seconds since boot.
double parseUptime(std::string_view text);

struct SystemReading {
  std::vector<std::pair<std::string, std::uint64_t>> meminfo;
  std::uint64_t memory_total_bytes = 0;      // MemTotal
  std::uint64_t memory_available_bytes = 0;  // MemAvailable
  LoadAverage load;
  double uptime_s = 0;
};
// Throws SysError when a file cannot be read, EPROTO when it does not parse.
SystemReading readSystem(const std::filesystem::path& proc = "/proc");

struct SliverReading {
  std::string slice;
  std::uint32_t xid = 0;
  std::string state;    // "running", "stopped" or "failed"
  std::string failure;  // why, when failed
  std::int64_t failed_since = 0;
  std::uint64_t cpu_ns = 0;
  std::uint64_t memory_bytes = 0;
  std::uint32_t tasks = 0;
  std::uint64_t disk_bytes = 0;  // charged to its quota; 0 without quotas
  // vnet-bpf's counters of the slice's IP packets (with network isolation).
  bool traffic_counted = false;
  std::uint64_t bytes_in = 0, bytes_out = 0, packets_in = 0, packets_out = 0;
  std::map<std::string, std::uint64_t> refusals;  // by reason (docs/vnet.md)
};

struct ReconcileRecord {
  std::uint64_t runs = 0;
  std::uint64_t failures = 0;  // passes that failed: the runtime could not list, or a sliver failed
  std::int64_t last_at = 0;    // unix seconds of the end of the last pass; 0 = none yet
  bool last_ok = false;
};

struct NodeReading {
  std::int64_t read_at = 0;
  SystemReading system;
  std::uint64_t disk_total_bytes = 0;  // the sliver storage's filesystem
  std::uint64_t disk_free_bytes = 0;
  std::vector<SliverReading> slivers;  // by slice name
  ReconcileRecord reconcile;
  std::string plc_stream;                       // PlcSync::connection()
  std::map<std::string, std::string> features;  // probed at start
  std::string software_version;
  // What could not be read this time (the rest of the reading stands).
  std::vector<std::string> errors;
};

// One slice's bandwidth as the sensor shows it.
struct BandwidthReading {
  std::string slice;
  std::uint64_t rate_bps = 0;  // guaranteed (HTB rate)
  std::uint64_t ceil_bps = 0;  // in force: the class's, or lower under its budget
  std::uint64_t daily_bytes = 0;
  std::uint64_t bytes_used = 0;      // sent in the budget's window
  std::uint64_t bytes_received = 0;  // received in it
  bool capped = false;
  std::int64_t window_end = 0;
};

// One port holding as the local API shows it.
struct PortReading {
  std::string slice;  // "" = the node
  std::string protocol;
  std::uint32_t first_port = 0, last_port = 0;
  std::string kind;  // "bound", "claimed", "reserved", "node"
  std::uint32_t sockets = 0;
};

class NodeObserver {
 public:
  struct Sources {
    std::filesystem::path proc = "/proc";
    plng::node::SliverRuntime* runtime = nullptr;       // required
    plng::node::SliverStorage* storage = nullptr;       // null: no disk figures
    NetworkIsolation* network = nullptr;                // null or not enforced: no traffic
    std::function<const DailyBudgets*()> budgets = {};  // null result: no budgets
    std::function<std::string()> plc_stream = {};
    std::map<std::string, std::string> features = {};
    std::function<std::int64_t()> clock = {};  // unix seconds; empty: time()
  };

  explicit NodeObserver(Sources sources);

  // The reconciler's word after each pass: whether it ran through, and every
  // failed sliver with its reason. Keeps since when each has failed.
  void recordPass(bool listed, const std::map<std::string, std::string>& failures);

  // Never throws: what cannot be read is left out and named in errors.
  NodeReading read() const;
  // nullopt when the slice has no sliver here, or its bandwidth is not
  // controlled.
  std::optional<BandwidthReading> bandwidth(const std::string& slice) const;
  // Every port held on the node (empty without network isolation).
  std::vector<PortReading> ports() const;
  bool hasSliver(const std::string& slice) const;

 private:
  std::map<std::uint32_t, std::string> sliceNames() const;
  bool trafficCounted() const;

  Sources sources_;
  mutable std::mutex mutex_;
  ReconcileRecord record_;
  std::map<std::string, std::pair<std::string, std::int64_t>> failing_;  // reason, since
};

}  // namespace plng::sliverd
