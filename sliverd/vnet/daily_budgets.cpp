#include "sliverd/vnet/daily_budgets.h"

#include <spdlog/spdlog.h>

#include <system_error>

#include "base/file.h"

namespace plng::sliverd {

DailyBudgets::DailyBudgets(Options options, NetworkIsolation& network)
    : options_(std::move(options)), network_(network), budget_(options_.budget, options_.clock) {
  auto text = base::readFileIfExists(options_.state_file);
  if (!text) return;
  try {
    budget_.restore(*text);
    spdlog::info("daily byte budgets: {} slices' windows continued from {}", budget_.live().size(),
                 options_.state_file.string());
  } catch (const std::exception& e) {
    std::filesystem::path bad = options_.state_file;
    bad += ".bad";
    std::error_code ec;
    std::filesystem::rename(options_.state_file, bad, ec);
    spdlog::error("daily byte budgets: {}: {}; set aside as {}, windows start anew",
                  options_.state_file.string(), e.what(), bad.string());
  }
}

void DailyBudgets::pass(const std::map<std::string, Slice>& slices) {
  std::lock_guard lock(mutex_);
  try {
    const std::map<std::uint32_t, vnet::SliceBandwidth> classes = network_.sliceBandwidth();
    std::map<std::string, BudgetedSlice> held;
    for (const auto& [name, slice] : slices) {
      BudgetedSlice& out = held[name];
      out.xid = slice.xid;
      out.daily_bytes = slice.daily_bytes;
      if (auto c = classes.find(slice.xid); c != classes.end()) {
        out.min_rate_bps = c->second.min_rate_bps;
        out.max_rate_bps = c->second.max_rate_bps;
      }
    }
    ByteBudget::Pass pass = budget_.update(held, network_.traffic());
    network_.setBudgetCeilings(pass.ceilings);
    for (std::uint32_t xid : pass.forget) network_.forgetTraffic(xid);
    for (const std::string& name : pass.capped) {
      const SliceBudget& b = pass.slices.at(name);
      spdlog::warn(
          "slice {}: capped at {} bit/s by its daily byte budget: {} of {} bytes sent in the "
          "window that ends at {}",
          name, b.ceil_bps, b.window.bytes_used, b.daily_bytes, b.window_end);
    }
    for (const std::string& name : pass.uncapped) {
      const SliceBudget& b = pass.slices.at(name);
      spdlog::info("slice {}: no longer capped by its daily byte budget ({} of {} bytes sent)",
                   name, b.window.bytes_used, b.daily_bytes);
    }
    base::writeFileAtomic(options_.state_file, budget_.save(), 0600);
    last_ = std::move(pass.slices);
    last_error_.clear();
  } catch (const std::exception& e) {
    if (last_error_ != e.what()) spdlog::error("daily byte budgets: {}", e.what());
    last_error_ = e.what();
  }
}

namespace {

// What the local API's NetUsage and PLC's SliceNetUsage share.
template <class Usage>
Usage usageOf(const std::string& slice, const SliceBudget& budget) {
  Usage out;
  out.set_slice_name(slice);
  out.set_daily_bytes(budget.daily_bytes);
  out.set_bytes_used(budget.window.bytes_used);
  out.set_window_start(budget.window.start);
  out.set_ceil_bps(budget.ceil_bps);
  out.set_capped(budget.capped);
  return out;
}

}  // namespace

planetlab::v1::NetUsage DailyBudgets::netUsage(const std::string& slice,
                                               const SliceBudget& budget) {
  auto out = usageOf<planetlab::v1::NetUsage>(slice, budget);
  out.set_bytes_received(budget.window.bytes_received);
  out.set_window_end(budget.window_end);
  return out;
}

planetlab::v1::SliceNetUsage DailyBudgets::sliceNetUsage(const std::string& slice,
                                                         const SliceBudget& budget) {
  return usageOf<planetlab::v1::SliceNetUsage>(slice, budget);
}

std::optional<SliceBudget> DailyBudgets::slice(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = last_.find(name);
  if (it == last_.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, SliceBudget> DailyBudgets::all() const {
  std::lock_guard lock(mutex_);
  return last_;
}

}  // namespace plng::sliverd
