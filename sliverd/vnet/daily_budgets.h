// DailyBudgets: sliverd's driver of the daily byte budgets (byte_budget.h;
// docs/vnet.md, "Daily byte budgets"). At every pass it reads the slices'
// traffic counters from the egress program's pinned map, updates each slice's
// window, lowers (or gives back) ceils through the HTB tree, logs when a slice
// is capped or uncapped, and keeps the windows in <state_dir>/net-budgets
// (written atomically), so that a restarted sliverd continues them. What the
// local API and PLC's ReportStatus show comes from the last pass.
//
// Thread-safe: the loop thread runs passes; the local API reads concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "proto/node.pb.h"
#include "proto/plc.pb.h"
#include "sliverd/vnet/byte_budget.h"
#include "sliverd/vnet/network_isolation.h"

namespace plng::sliverd {

class DailyBudgets {
 public:
  struct Options {
    std::filesystem::path state_file;  // <state_dir>/net-budgets
    ByteBudget::Options budget;
    std::function<std::int64_t()> clock;  // unix seconds
  };
  // A slice the node holds: its xid and net_daily_bytes (0 = no budget).
  struct Slice {
    std::uint32_t xid = 0;
    std::uint64_t daily_bytes = 0;
  };

  // Loads the state file; one that does not parse is logged and set aside
  // (renamed *.bad), and the windows start anew.
  DailyBudgets(Options options, NetworkIsolation& network);

  // One pass over the slices the node holds now, by name. Never throws: a
  // failure is logged (once per message) and the next pass tries again.
  void pass(const std::map<std::string, Slice>& slices);

  // As of the last pass.
  std::optional<SliceBudget> slice(const std::string& name) const;
  std::map<std::string, SliceBudget> all() const;

  // A slice's budget as the local API shows it, and as PLC learns it
  // (NodeSync.ReportStatus).
  static planetlab::v1::NetUsage netUsage(const std::string& slice, const SliceBudget& budget);
  static planetlab::v1::SliceNetUsage sliceNetUsage(const std::string& slice,
                                                    const SliceBudget& budget);

 private:
  Options options_;
  NetworkIsolation& network_;
  mutable std::mutex mutex_;
  ByteBudget budget_;
  std::map<std::string, SliceBudget> last_;
  std::string last_error_;
};

}  // namespace plng::sliverd
