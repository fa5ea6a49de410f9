#include "sliverd/vnet/byte_budget.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "base/strings.h"

namespace plng::sliverd {

namespace {

// What a counter grew by since it was `seen`; a counter below that was made
// anew (its slice's entry dropped, or the maps recreated): all of it is new.
std::uint64_t grownBy(std::uint64_t now, std::uint64_t seen) {
  return now >= seen ? now - seen : now;
}

template <typename Number>
Number parseNumber(const std::string& field, std::size_t line) {
  Number value{};
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec != std::errc() || end != field.data() + field.size())
    throw std::invalid_argument("line " + std::to_string(line) + ": \"" + field +
                                "\" is not a number");
  return value;
}

}  // namespace

ByteBudget::ByteBudget(Options options, std::function<std::int64_t()> clock)
    : options_(options), clock_(std::move(clock)) {
  if (options_.threshold_pct < 1 || options_.threshold_pct > 100)
    throw std::invalid_argument("budget threshold must be 1..100%");
  if (options_.window_seconds <= 0) throw std::invalid_argument("budget window must be positive");
}

std::optional<std::uint64_t> ByteBudget::loweredCeil(std::uint64_t daily_bytes, std::uint64_t used,
                                                     std::int64_t seconds_left,
                                                     std::uint32_t threshold_pct,
                                                     std::uint64_t min_rate_bps,
                                                     std::uint64_t max_rate_bps) {
  if (daily_bytes == 0) return std::nullopt;
  // used < daily·pct/100, without overflow for budgets near 2^63.
  const std::uint64_t threshold =
      daily_bytes / 100 * threshold_pct + daily_bytes % 100 * threshold_pct / 100;
  if (used < threshold) return std::nullopt;
  const std::uint64_t left = daily_bytes > used ? daily_bytes - used : 0;
  const auto seconds = static_cast<std::uint64_t>(std::max<std::int64_t>(seconds_left, 1));
  // left·8 / seconds, without overflow.
  std::uint64_t ceil = left / seconds * 8 + left % seconds * 8 / seconds;
  ceil = std::max(ceil, min_rate_bps);
  if (max_rate_bps != 0) ceil = std::min(ceil, max_rate_bps);
  return ceil;
}

void ByteBudget::roll(BudgetWindow& window, std::int64_t now) const {
  const std::int64_t length = options_.window_seconds;
  if (now < window.start + length) return;
  window.start += (now - window.start) / length * length;
  window.bytes_used = 0;
  window.bytes_received = 0;
}

ByteBudget::Pass ByteBudget::update(const std::map<std::string, BudgetedSlice>& slices,
                                    const std::map<std::uint32_t, vnet::SliceTraffic>& traffic) {
  const std::int64_t now = clock_();
  Pass pass;
  // Slices that left: their windows go to the dead table, counted up to now,
  // and their counters are dropped (so that a slice later given the same xid
  // starts from zero).
  for (auto it = live_.begin(); it != live_.end();) {
    if (slices.contains(it->first)) {
      ++it;
      continue;
    }
    BudgetWindow window = it->second;
    roll(window, now);
    if (auto t = traffic.find(window.xid); t != traffic.end()) {
      window.bytes_used += grownBy(t->second.egress_bytes, window.egress_seen);
      window.bytes_received += grownBy(t->second.ingress_bytes, window.ingress_seen);
    }
    pass.forget.push_back(window.xid);
    window.egress_seen = window.ingress_seen = 0;
    dead_[it->first] = window;
    capped_.erase(it->first);
    it = live_.erase(it);
  }
  for (auto it = dead_.begin(); it != dead_.end();) {
    if (now >= it->second.start + options_.window_seconds)
      it = dead_.erase(it);
    else
      ++it;
  }

  for (const auto& [name, slice] : slices) {
    auto it = live_.find(name);
    if (it == live_.end()) {
      BudgetWindow window{.xid = slice.xid, .start = now};
      if (auto dead = dead_.find(name); dead != dead_.end()) {
        window = dead->second;  // re-created within its window: its usage stays
        dead_.erase(dead);
      }
      it = live_.emplace(name, window).first;
    }
    BudgetWindow& window = it->second;
    if (window.xid != slice.xid) {  // another xid: its counter is another
      window.xid = slice.xid;
      window.egress_seen = window.ingress_seen = 0;
    }
    roll(window, now);
    vnet::SliceTraffic counted;
    if (auto t = traffic.find(slice.xid); t != traffic.end()) counted = t->second;
    window.bytes_used += grownBy(counted.egress_bytes, window.egress_seen);
    window.bytes_received += grownBy(counted.ingress_bytes, window.ingress_seen);
    window.egress_seen = counted.egress_bytes;
    window.ingress_seen = counted.ingress_bytes;

    SliceBudget budget{.window = window,
                       .window_end = window.start + options_.window_seconds,
                       .daily_bytes = slice.daily_bytes,
                       .ceil_bps = slice.max_rate_bps};
    std::optional<std::uint64_t> lowered;
    if (slice.max_rate_bps != 0)
      lowered = loweredCeil(slice.daily_bytes, window.bytes_used, budget.window_end - now,
                            options_.threshold_pct, slice.min_rate_bps, slice.max_rate_bps);
    if (lowered && *lowered < slice.max_rate_bps) {
      budget.ceil_bps = *lowered;
      budget.capped = true;
      pass.ceilings[slice.xid] = *lowered;
    }
    bool& was_capped = capped_[name];
    if (budget.capped && !was_capped) pass.capped.push_back(name);
    if (!budget.capped && was_capped) pass.uncapped.push_back(name);
    was_capped = budget.capped;
    pass.slices[name] = budget;
  }
  return pass;
}

std::string ByteBudget::save() const {
  std::string text =
      "# sliverd's daily byte budgets (sliverd/vnet/byte_budget.h): live|dead slice xid "
      "window_start bytes_used bytes_received egress_seen ingress_seen\n";
  auto add = [&](const char* kind, const std::string& name, const BudgetWindow& w) {
    text += std::string(kind) + " " + name + " " + std::to_string(w.xid) + " " +
            std::to_string(w.start) + " " + std::to_string(w.bytes_used) + " " +
            std::to_string(w.bytes_received) + " " + std::to_string(w.egress_seen) + " " +
            std::to_string(w.ingress_seen) + "\n";
  };
  for (const auto& [name, window] : live_) add("live", name, window);
  for (const auto& [name, window] : dead_) add("dead", name, window);
  return text;
}

void ByteBudget::restore(std::string_view text) {
  std::map<std::string, BudgetWindow> live, dead;
  std::size_t number = 0;
  for (const std::string& raw : base::split(text, '\n')) {
    ++number;
    const std::string line(base::trim(raw));
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    for (const std::string& field : base::split(line, ' '))
      if (!field.empty()) fields.push_back(field);
    if (fields.size() != 8 || (fields[0] != "live" && fields[0] != "dead"))
      throw std::invalid_argument("line " + std::to_string(number) +
                                  ": not \"live|dead slice xid window_start bytes_used "
                                  "bytes_received egress_seen ingress_seen\"");
    BudgetWindow window{.xid = parseNumber<std::uint32_t>(fields[2], number),
                        .start = parseNumber<std::int64_t>(fields[3], number),
                        .bytes_used = parseNumber<std::uint64_t>(fields[4], number),
                        .bytes_received = parseNumber<std::uint64_t>(fields[5], number),
                        .egress_seen = parseNumber<std::uint64_t>(fields[6], number),
                        .ingress_seen = parseNumber<std::uint64_t>(fields[7], number)};
    (fields[0] == "live" ? live : dead)[fields[1]] = window;
  }
  live_ = std::move(live);
  dead_ = std::move(dead);
  capped_.clear();
}

}  // namespace plng::sliverd
