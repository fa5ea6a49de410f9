// ByteBudget: daily byte budgets, PlanetLab's bwmon (docs/vnet.md, "Daily byte
// budgets"). Each slice has a 24-hour window that starts when sliverd first
// sees it and rolls, per slice, every 24 hours from its last reset. What the
// slice's packets carried out of the node (the egress program's counters)
// within the window counts against `net_daily_bytes`; past a threshold of it
// (90%, PlanetLab's effective default) the slice's ceil becomes what is left of
// the budget spread over what is left of the window,
//
//     ceil = (budget - used) * 8 / seconds left    [bit/s]
//
// floored at the slice's guaranteed rate and never above its own cap. A slice
// that leaves the node keeps its window in a dead-slice table until the window
// ends, so a slice deleted and re-created within its window keeps its usage.
//
// Pure: the clock and the counters are handed in; the caller applies the ceils
// and keeps the text of save() (sliverd/vnet/daily_budgets.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vnet-bpf/network_policy.h"

namespace plng::sliverd {

inline constexpr std::int64_t kBudgetWindowSeconds = 24 * 3600;
inline constexpr std::uint32_t kDefaultBudgetThresholdPct = 90;

// What the node holds for a slice now.
struct BudgetedSlice {
  std::uint32_t xid = 0;
  std::uint64_t daily_bytes = 0;   // net_daily_bytes; 0 = no budget
  std::uint64_t min_rate_bps = 0;  // its admitted guarantee: the floor of a lowered ceil
  std::uint64_t max_rate_bps = 0;  // its ceil without a budget; 0 = not shaped
};

// A slice's current window (kept across restarts, and in the dead-slice table).
struct BudgetWindow {
  std::uint32_t xid = 0;
  std::int64_t start = 0;        // unix seconds
  std::uint64_t bytes_used = 0;  // sent within the window (what the budget counts)
  std::uint64_t bytes_received = 0;
  // The slice's counters (NetworkPolicy::traffic) when last read, so that only
  // what they grew by since is added: a restart does not count twice.
  std::uint64_t egress_seen = 0;
  std::uint64_t ingress_seen = 0;
  bool operator==(const BudgetWindow&) const = default;
};

// A slice's budget as the node shows and reports it.
struct SliceBudget {
  BudgetWindow window;
  std::int64_t window_end = 0;
  std::uint64_t daily_bytes = 0;
  std::uint64_t ceil_bps = 0;  // the ceil in force (0: not shaped)
  bool capped = false;         // ceil lowered by the budget
};

class ByteBudget {
 public:
  struct Options {
    std::uint32_t threshold_pct = kDefaultBudgetThresholdPct;  // 1..100
    std::int64_t window_seconds = kBudgetWindowSeconds;
  };

  ByteBudget(Options options, std::function<std::int64_t()> clock);

  // The ceil of a slice that has sent `used` of `daily_bytes` with
  // `seconds_left` of its window, or nullopt while it is under the threshold
  // (or has no budget). Floored at `min_rate_bps`, at most `max_rate_bps`.
  static std::optional<std::uint64_t> loweredCeil(std::uint64_t daily_bytes, std::uint64_t used,
                                                  std::int64_t seconds_left,
                                                  std::uint32_t threshold_pct,
                                                  std::uint64_t min_rate_bps,
                                                  std::uint64_t max_rate_bps);

  struct Pass {
    std::map<std::string, SliceBudget> slices;  // every slice of the pass, by name
    // Lowered ceils to apply, by xid; slices not in it have their own ceil.
    std::map<std::uint32_t, std::uint64_t> ceilings;
    std::vector<std::string> capped, uncapped;  // what changed since the last pass
    // Counters to drop: of slices that left (their usage is in the dead table).
    std::vector<std::uint32_t> forget;
  };
  // One pass: `slices` are the slices the node holds now (by name), `traffic`
  // the counters by xid. Windows roll; slices that left go to the dead-slice
  // table and come back from it; dead windows that ended are pruned.
  Pass update(const std::map<std::string, BudgetedSlice>& slices,
              const std::map<std::uint32_t, vnet::SliceTraffic>& traffic);

  // The live and dead windows as text (one line each), and back. restore()
  // throws std::invalid_argument, naming the line, for text that does not parse.
  std::string save() const;
  void restore(std::string_view text);

  const std::map<std::string, BudgetWindow>& live() const { return live_; }
  const std::map<std::string, BudgetWindow>& dead() const { return dead_; }

 private:
  void roll(BudgetWindow& window, std::int64_t now) const;

  Options options_;
  std::function<std::int64_t()> clock_;
  std::map<std::string, BudgetWindow> live_;
  std::map<std::string, BudgetWindow> dead_;
  std::map<std::string, bool> capped_;  // as of the last pass
};

}  // namespace plng::sliverd
