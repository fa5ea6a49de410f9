// Daily byte budgets (sliverd/vnet/byte_budget.h) with an injected clock and
// counters, without privileges: the threshold, the formula and its floor and
// cap, windows rolling per slice, a restart from the saved text, the dead-slice
// table, and counters that were made anew.
#include <catch2/catch.hpp>

#include "sliverd/vnet/byte_budget.h"

using namespace plng::sliverd;
using plng::vnet::SliceTraffic;

namespace {

constexpr std::uint64_t kMB = 1'000'000;
constexpr std::int64_t kDay = 24 * 3600;

struct Clock {
  std::int64_t now = 1'000'000;
  std::function<std::int64_t()> fn() {
    return [this] { return now; };
  }
};

BudgetedSlice budgeted(std::uint32_t xid, std::uint64_t daily) {
  return {.xid = xid, .daily_bytes = daily, .min_rate_bps = 5'000, .max_rate_bps = 10'000'000};
}

std::map<std::uint32_t, SliceTraffic> sent(std::uint32_t xid, std::uint64_t bytes) {
  return {{xid, SliceTraffic{.egress_bytes = bytes, .ingress_bytes = bytes / 10}}};
}

}  // namespace

TEST_CASE("the lowered ceil: threshold, formula, floor, cap", "[budget]") {
  // Under 90% of the budget: no cap.
  CHECK(!ByteBudget::loweredCeil(100 * kMB, 89 * kMB, 3600, 90, 5'000, 10'000'000));
  CHECK(!ByteBudget::loweredCeil(0, 500 * kMB, 3600, 90, 5'000, 10'000'000));  // no budget
  // At 90%: (100 - 90) MB · 8 / 3600 s = 22222 bit/s.
  CHECK(ByteBudget::loweredCeil(100 * kMB, 90 * kMB, 3600, 90, 5'000, 10'000'000) == 22'222);
  // The threshold is configurable.
  CHECK(!ByteBudget::loweredCeil(100 * kMB, 90 * kMB, 3600, 95, 5'000, 10'000'000));
  CHECK(ByteBudget::loweredCeil(100 * kMB, 95 * kMB, 3600, 95, 5'000, 10'000'000) == 11'111);
  // Floored at the guarantee: the budget spent, or nearly.
  CHECK(ByteBudget::loweredCeil(100 * kMB, 100 * kMB, 3600, 90, 5'000, 10'000'000) == 5'000);
  CHECK(ByteBudget::loweredCeil(100 * kMB, 120 * kMB, 3600, 90, 64'000, 10'000'000) == 64'000);
  // Never above the slice's own ceil: much left and little time.
  CHECK(ByteBudget::loweredCeil(100 * kMB, 90 * kMB, 1, 90, 5'000, 10'000'000) == 10'000'000);
  // No time left counts as one second; budgets near 2^63 do not overflow.
  CHECK(ByteBudget::loweredCeil(100 * kMB, 90 * kMB, 0, 90, 5'000, 0) == 80 * kMB);
  const std::uint64_t huge = 9'000'000'000'000'000'000ull;
  CHECK(ByteBudget::loweredCeil(huge, huge / 10 * 9, kDay, 90, 5'000, 0) ==
        huge / 10 / kDay * 8 + huge / 10 % kDay * 8 / kDay);
}

TEST_CASE("a slice is capped past the threshold and uncapped when its window rolls", "[budget]") {
  Clock clock;
  ByteBudget budget({}, clock.fn());
  const std::map<std::string, BudgetedSlice> slices{{"pl_a", budgeted(7, 10 * kMB)},
                                                    {"pl_free", budgeted(8, 0)}};
  auto pass = budget.update(slices, sent(7, 1 * kMB));
  CHECK(pass.ceilings.empty());
  CHECK(pass.slices.at("pl_a").window.start == clock.now);
  CHECK(pass.slices.at("pl_a").window_end == clock.now + kDay);
  CHECK(pass.slices.at("pl_a").window.bytes_used == 1 * kMB);
  CHECK(pass.slices.at("pl_a").window.bytes_received == kMB / 10);
  CHECK(pass.slices.at("pl_a").ceil_bps == 10'000'000);
  CHECK(!pass.slices.at("pl_a").capped);
  CHECK(pass.slices.at("pl_free").daily_bytes == 0);

  clock.now += 3600;  // 9.5 MB sent in all, 23 hours left
  pass = budget.update(slices, sent(7, 9'500'000));
  const std::uint64_t expected = 500'000ull * 8 / (23 * 3600);  // 48 bit/s: the floor
  REQUIRE(expected < 5'000);
  CHECK(pass.ceilings == std::map<std::uint32_t, std::uint64_t>{{7, 5'000}});
  CHECK(pass.slices.at("pl_a").capped);
  CHECK(pass.slices.at("pl_a").ceil_bps == 5'000);
  CHECK(pass.capped == std::vector<std::string>{"pl_a"});

  pass = budget.update(slices, sent(7, 9'600'000));  // still capped: not logged again
  CHECK(pass.capped.empty());
  CHECK(pass.ceilings.contains(7));

  // The window rolls 24 hours after it started: usage from zero, the cap goes.
  clock.now += 23 * 3600;
  pass = budget.update(slices, sent(7, 9'700'000));
  CHECK(pass.slices.at("pl_a").window.start == 1'000'000 + kDay);
  CHECK(pass.slices.at("pl_a").window.bytes_used == 100'000);  // what came after the roll
  CHECK(pass.ceilings.empty());
  CHECK(pass.uncapped == std::vector<std::string>{"pl_a"});

  // After days without a pass, the window still starts on its own 24-hour grid.
  clock.now += 3 * kDay + 600;
  pass = budget.update(slices, sent(7, 9'700'000));
  CHECK(pass.slices.at("pl_a").window.start == 1'000'000 + 4 * kDay);
}

TEST_CASE("the formula follows what is left of the budget and of the window", "[budget]") {
  Clock clock;
  ByteBudget budget({.threshold_pct = 50}, clock.fn());
  const std::map<std::string, BudgetedSlice> slices{{"pl_a", budgeted(7, 1000 * kMB)}};
  budget.update(slices, {});
  clock.now += kDay - 1000;  // 1000 s left
  auto pass = budget.update(slices, sent(7, 600 * kMB));
  CHECK(pass.ceilings.at(7) == 400 * kMB * 8 / 1000);  // 3.2 Mbit/s
  clock.now += 500;                                    // 500 s left, 100 MB more sent
  pass = budget.update(slices, sent(7, 700 * kMB));
  CHECK(pass.ceilings.at(7) == 300 * kMB * 8 / 500);  // 4.8 Mbit/s
}

TEST_CASE("a restart continues the windows without counting twice", "[budget]") {
  Clock clock;
  std::string saved;
  const std::map<std::string, BudgetedSlice> slices{{"pl_a", budgeted(7, 10 * kMB)}};
  {
    ByteBudget budget({}, clock.fn());
    budget.update(slices, sent(7, 4 * kMB));
    saved = budget.save();
  }
  clock.now += 60;
  ByteBudget restarted({}, clock.fn());
  restarted.restore(saved);
  REQUIRE(restarted.live().at("pl_a").bytes_used == 4 * kMB);
  // The pinned counter kept counting while sliverd was down: only its growth counts.
  auto pass = restarted.update(slices, sent(7, 5 * kMB));
  CHECK(pass.slices.at("pl_a").window.bytes_used == 5 * kMB);
  CHECK(pass.slices.at("pl_a").window.start == 1'000'000);
  // Counters made anew (the pins were removed): all they hold is new.
  pass = restarted.update(slices, sent(7, 2 * kMB));
  CHECK(pass.slices.at("pl_a").window.bytes_used == 7 * kMB);
  CHECK(restarted.save() != saved);

  ByteBudget bad({}, clock.fn());
  CHECK_THROWS_WITH(bad.restore("live pl_a 7 x 0 0 0 0\n"), Catch::Contains("line 1"));
  CHECK_THROWS_WITH(bad.restore("# c\nalive pl_a 7 1 0 0 0 0\n"), Catch::Contains("line 2"));
  CHECK_THROWS(bad.restore("live pl_a 7 1 0 0 0\n"));
  CHECK_THROWS(ByteBudget({.threshold_pct = 0}, clock.fn()));
  CHECK_THROWS(ByteBudget({.threshold_pct = 101}, clock.fn()));
}

TEST_CASE("a slice deleted and re-created within its window keeps its usage", "[budget]") {
  Clock clock;
  ByteBudget budget({}, clock.fn());
  budget.update({{"pl_a", budgeted(7, 10 * kMB)}}, sent(7, 6 * kMB));
  clock.now += 60;
  // Gone: what it sent since the last pass counts, its counter is to be dropped.
  auto pass = budget.update({}, sent(7, 9 * kMB));
  CHECK(pass.forget == std::vector<std::uint32_t>{7});
  CHECK(pass.slices.empty());
  REQUIRE(budget.dead().contains("pl_a"));
  CHECK(budget.dead().at("pl_a").bytes_used == 9 * kMB);
  // The dead table survives a restart.
  ByteBudget restarted({}, clock.fn());
  restarted.restore(budget.save());
  CHECK(restarted.dead() == budget.dead());
  // Re-created under another xid, whose counter starts from zero: still capped.
  clock.now += 3600;
  pass = restarted.update({{"pl_a", budgeted(9, 10 * kMB)}}, sent(9, 100'000));
  CHECK(pass.slices.at("pl_a").window.bytes_used == 9'100'000);
  CHECK(pass.slices.at("pl_a").window.start == 1'000'000);
  CHECK(pass.slices.at("pl_a").capped);
  CHECK(restarted.dead().empty());

  // A slice gone for longer than its window is forgotten: a new one starts anew.
  restarted.update({}, sent(9, 200'000));
  clock.now += kDay;
  restarted.update({}, {});
  CHECK(restarted.dead().empty());
  pass = restarted.update({{"pl_a", budgeted(9, 10 * kMB)}}, sent(9, 50));
  CHECK(pass.slices.at("pl_a").window.bytes_used == 50);
  CHECK(pass.slices.at("pl_a").window.start == clock.now);
}

TEST_CASE("an unshaped slice is counted but never capped", "[budget]") {
  Clock clock;
  ByteBudget budget({}, clock.fn());
  BudgetedSlice unshaped{.xid = 7, .daily_bytes = 10 * kMB};  // no classes: max 0
  auto pass = budget.update({{"pl_a", unshaped}}, sent(7, 20 * kMB));
  CHECK(pass.slices.at("pl_a").window.bytes_used == 20 * kMB);
  CHECK(!pass.slices.at("pl_a").capped);
  CHECK(pass.ceilings.empty());
}
