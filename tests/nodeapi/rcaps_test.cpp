// RcapTable: admission control, split arithmetic, bind, persistence.
#include "sliverd/core/rcaps.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/support/scratch_dir.h"

using plng::sliverd::RcapError;
using plng::sliverd::RcapErrorCode;
using plng::sliverd::RcapTable;
using plng::sliverd::ResourceSpec;

namespace {

struct Scratch {
  plng::test::ScratchDir dir{"plng-rcaps"};
  std::filesystem::path file() const { return dir / "rcaps"; }
};

ResourceSpec cpu(std::uint32_t shares) {
  ResourceSpec s;
  s.cpu_share = shares;
  return s;
}

template <typename F>
RcapErrorCode codeOf(F&& f) {
  try {
    f();
  } catch (const RcapError& e) {
    return e.code();
  }
  FAIL("no RcapError thrown");
  return RcapErrorCode::kMalformed;
}

}  // namespace

TEST_CASE("acquire hands out distinct 128-bit capabilities") {
  Scratch s;
  RcapTable table(s.file(), ResourceSpec{}, nullptr);
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    std::string rcap = table.acquire("pl_broker", cpu(1));
    CHECK(rcap.size() == 32);
    CHECK(rcap.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(rcap);
  }
  CHECK(seen.size() == 50);
  CHECK(table.reserved().cpu_share == 50);
}

TEST_CASE("admission control: CPU guarantees never exceed 1000 shares") {
  Scratch s;
  std::uint32_t granted_to_slivers = 300;
  // A configured capacity above 1000 is clamped to PlanetLab's 1000 shares.
  RcapTable table(s.file(), cpu(5000), [&] { return cpu(granted_to_slivers); });
  CHECK(table.capacity().cpu_share == 1000);

  std::string a = table.acquire("pl_broker", cpu(600));
  // 300 granted + 600 held: 100 left.
  try {
    table.acquire("pl_broker", cpu(101));
    FAIL("101 shares admitted with 100 left");
  } catch (const RcapError& e) {
    CHECK(e.code() == RcapErrorCode::kExhausted);
    CHECK_THAT(e.what(), Catch::Contains("100 of 1000 shares left"));
  }
  std::string b = table.acquire("pl_broker", cpu(100));
  CHECK(codeOf([&] { table.acquire("pl_broker", cpu(1)); }) == RcapErrorCode::kExhausted);

  // Bound rcaps still count: binding moves the reservation, it does not free it.
  table.bind(a, "pl_sliver");
  CHECK(codeOf([&] { table.acquire("pl_broker", cpu(1)); }) == RcapErrorCode::kExhausted);
  // The sliver goes away: its bound rcaps are released.
  CHECK(table.releaseSlice("pl_sliver") == 1);
  CHECK_NOTHROW(table.acquire("pl_broker", cpu(600)));

  // Slivers' grants grow beyond capacity: nothing more is admitted.
  granted_to_slivers = 2000;
  CHECK(codeOf([&] { table.acquire("pl_broker", cpu(1)); }) == RcapErrorCode::kExhausted);
  (void)b;
}

TEST_CASE("admission control: a huge request cannot wrap the sum") {
  Scratch s;
  RcapTable table(s.file(), ResourceSpec{}, [] { return cpu(10); });
  CHECK(codeOf([&] { table.acquire("pl_broker", cpu(0xffffffffu)); }) == RcapErrorCode::kExhausted);
  CHECK(codeOf([&] { table.acquire("pl_broker", ResourceSpec{}); }) == RcapErrorCode::kMalformed);
}

TEST_CASE("admission control: bandwidth guarantees and per-rcap limits") {
  Scratch s;
  ResourceSpec capacity;
  capacity.net_min_rate = 1000000;
  capacity.mem_limit_bytes = 1 << 30;
  RcapTable table(s.file(), capacity, nullptr);
  ResourceSpec net;
  net.net_min_rate = 700000;
  table.acquire("pl_broker", net);
  CHECK(codeOf([&] { table.acquire("pl_broker", net); }) == RcapErrorCode::kExhausted);
  ResourceSpec mem;
  mem.mem_limit_bytes = (1ull << 30) + 1;
  CHECK(codeOf([&] { table.acquire("pl_broker", mem); }) == RcapErrorCode::kExhausted);
  mem.mem_limit_bytes = 1 << 30;
  // Limits are not summed: two rcaps may each carry the node's memory.
  CHECK_NOTHROW(table.acquire("pl_broker", mem));
  CHECK_NOTHROW(table.acquire("pl_broker", mem));
}

TEST_CASE("split carves a part out and keeps the total") {
  Scratch s;
  RcapTable table(s.file(), ResourceSpec{}, nullptr);
  ResourceSpec whole;
  whole.cpu_share = 100;
  whole.mem_limit_bytes = 512 << 20;
  whole.net_min_rate = 10000;
  std::string rcap = table.acquire("pl_broker", whole);

  ResourceSpec part;
  part.cpu_share = 30;
  part.mem_limit_bytes = 128 << 20;
  auto result = table.split(rcap, part, "pl_broker");
  CHECK(result.rcap != rcap);
  CHECK(result.remaining.cpu_share == 70);
  CHECK(result.remaining.mem_limit_bytes == 384u << 20);
  CHECK(result.remaining.net_min_rate == 10000);
  CHECK(table.find(result.rcap)->spec == part);
  CHECK(table.find(rcap)->spec == result.remaining);
  CHECK(table.reserved().cpu_share == 100);

  // More than the rcap holds in any one dimension is refused; nothing changes.
  ResourceSpec too_much = part;
  too_much.cpu_share = 71;
  CHECK(codeOf([&] { table.split(rcap, too_much, "pl_broker"); }) == RcapErrorCode::kTooLarge);
  ResourceSpec other_dim;
  other_dim.tasks = 1;
  CHECK(codeOf([&] { table.split(rcap, other_dim, "pl_broker"); }) == RcapErrorCode::kTooLarge);
  CHECK(codeOf([&] { table.split(rcap, ResourceSpec{}, "pl_broker"); }) ==
        RcapErrorCode::kMalformed);
  CHECK(table.find(rcap)->spec == result.remaining);

  // A split-off part can be split again and bound on its own.
  auto again = table.split(result.rcap, cpu(10), "pl_other");
  CHECK(again.remaining.cpu_share == 20);
  CHECK(table.find(again.rcap)->owner_slice == "pl_other");
}

TEST_CASE("bind consumes an rcap; bound resources combine with the grant") {
  Scratch s;
  RcapTable table(s.file(), ResourceSpec{}, nullptr);
  ResourceSpec a = cpu(40);
  a.mem_limit_bytes = 256 << 20;
  a.tasks = 100;
  ResourceSpec b = cpu(10);
  b.mem_limit_bytes = 1 << 30;
  std::string ra = table.acquire("pl_broker", a);
  std::string rb = table.acquire("pl_broker", b);
  table.bind(ra, "pl_target");
  table.bind(ra, "pl_target");  // the same bind again is a no-op
  table.bind(rb, "pl_target");

  // Bound: no second bind elsewhere, no split.
  CHECK(codeOf([&] { table.bind(ra, "pl_thief"); }) == RcapErrorCode::kConsumed);
  CHECK(codeOf([&] { table.split(ra, cpu(1), "pl_broker"); }) == RcapErrorCode::kConsumed);

  ResourceSpec bound = table.boundTo("pl_target");
  CHECK(bound.cpu_share == 50);              // guarantees add
  CHECK(bound.mem_limit_bytes == 1u << 30);  // limits: the largest
  CHECK(bound.tasks == 100);
  CHECK(table.boundTo("pl_thief").empty());

  plng::node::Resources granted;  // PlanetLab defaults: 32 shares
  granted.mem_limit_bytes = 128 << 20;
  granted.tasks = 0;  // unlimited stays unlimited
  auto effective = plng::sliverd::withBound(granted, bound);
  CHECK(effective.cpu_share == 82);
  CHECK(effective.mem_limit_bytes == 1u << 30);
  CHECK(effective.tasks == 0);
}

TEST_CASE("unknown and malformed rcaps are refused") {
  Scratch s;
  RcapTable table(s.file(), ResourceSpec{}, nullptr);
  CHECK(codeOf([&] { table.bind("0123456789abcdef0123456789abcdef", "pl_x"); }) ==
        RcapErrorCode::kUnknown);
  CHECK(codeOf([&] { table.split("0123456789abcdef0123456789abcdef", cpu(1), "pl_x"); }) ==
        RcapErrorCode::kUnknown);
  CHECK(codeOf([&] { table.bind("xyz", "pl_x"); }) == RcapErrorCode::kMalformed);
  CHECK(codeOf([&] { table.bind("0123456789ABCDEF0123456789ABCDEF", "pl_x"); }) ==
        RcapErrorCode::kMalformed);
}

TEST_CASE("unbound rcaps expire and return their reservation") {
  Scratch s;
  RcapTable table(s.file(), cpu(100), nullptr);
  std::string gone = table.acquire("pl_broker", cpu(60), /*expires_at=*/1000, /*now=*/500);
  std::string kept = table.acquire("pl_broker", cpu(40), /*expires_at=*/1000, /*now=*/500);
  table.bind(kept, "pl_target", 600);
  CHECK(codeOf([&] { table.acquire("pl_broker", cpu(1), 0, 900); }) == RcapErrorCode::kExhausted);
  CHECK_NOTHROW(table.acquire("pl_broker", cpu(60), 0, 1000));
  CHECK(codeOf([&] { table.bind(gone, "pl_target", 1001); }) == RcapErrorCode::kUnknown);
  CHECK(table.boundTo("pl_target").cpu_share == 40);  // bound rcaps live with the sliver
}

TEST_CASE("rcaps survive a reopen of the table") {
  Scratch s;
  std::string unbound, bound;
  {
    RcapTable table(s.file(), ResourceSpec{}, nullptr);
    ResourceSpec spec = cpu(25);
    spec.net_max_rate = 5000000;
    unbound = table.acquire("pl_broker", spec, 1234);
    bound = table.acquire("pl_broker", cpu(75));
    table.bind(bound, "pl_target");
  }
  CHECK((std::filesystem::status(s.file()).permissions() & std::filesystem::perms::others_read) ==
        std::filesystem::perms::none);
  RcapTable reopened(s.file(), cpu(1000), nullptr);
  auto r = reopened.find(unbound);
  REQUIRE(r);
  CHECK(r->owner_slice == "pl_broker");
  CHECK(r->spec.cpu_share == 25);
  CHECK(r->spec.net_max_rate == 5000000);
  CHECK(r->expires_at == 1234);
  CHECK(r->bound_to.empty());
  CHECK(reopened.find(bound)->bound_to == "pl_target");
  CHECK(reopened.boundTo("pl_target").cpu_share == 75);
  CHECK(codeOf([&] { reopened.bind(bound, "pl_other"); }) == RcapErrorCode::kConsumed);
  CHECK(reopened.reserved().cpu_share == 100);
  CHECK(codeOf([&] { reopened.acquire("pl_broker", cpu(901)); }) == RcapErrorCode::kExhausted);
}

TEST_CASE("a corrupt state file is reported, not silently emptied") {
  Scratch s;
  std::ofstream(s.file()) << "0123456789abcdef0123456789abcdef=pl_x - 0 12\n";
  CHECK_THROWS_WITH(RcapTable(s.file(), ResourceSpec{}, nullptr),
                    Catch::Contains("want 10 fields"));
}
