#include "node/idrange.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/error.h"
#include "base/fd.h"
#include "node/kvfile.h"
#include "tests/support/scratch_dir.h"

using plng::node::IdRange;
using plng::node::IdRangeAllocator;

namespace {

constexpr std::uint32_t kBase = 1u << 30;

// A private directory, removed when the test case ends.
struct Scratch {
  plng::test::ScratchDir scratch{"plng-idrange"};
  std::filesystem::path dir = scratch.path();
  std::filesystem::path file() const { return dir / "idranges"; }
};

bool overlap(const IdRange& a, const IdRange& b) {
  return std::uint64_t{a.first} < std::uint64_t{b.first} + b.count &&
         std::uint64_t{b.first} < std::uint64_t{a.first} + a.count;
}

}  // namespace

TEST_CASE("each slice gets the lowest free 65536-id range, recorded before use") {
  Scratch s;
  IdRangeAllocator ids(s.file());
  CHECK(std::filesystem::exists(s.file()));
  IdRange a = ids.acquire("princeton_a");
  IdRange b = ids.acquire("princeton_b");
  CHECK(a == IdRange{kBase, 65536});
  CHECK(b == IdRange{kBase + 65536, 65536});
  CHECK(ids.acquire("princeton_a") == a);  // asking again returns the same range
  CHECK(ids.find("princeton_b") == b);
  CHECK_FALSE(ids.find("nobody").has_value());
  // On disk as slice=first, one line each.
  CHECK(plng::node::readKvFile(s.file()) ==
        plng::node::KvMap{{"princeton_a", std::to_string(kBase)},
                          {"princeton_b", std::to_string(kBase + 65536)}});
  for (const auto& entry : std::filesystem::directory_iterator(s.file().parent_path())) {
    CHECK_FALSE(entry.path().filename().string().starts_with("." + s.file().filename().string()));
  }
}

TEST_CASE("ranges survive a new allocator on the same file (sliverd restart)") {
  Scratch s;
  IdRange a, b;
  {
    IdRangeAllocator ids(s.file());
    a = ids.acquire("a");
    b = ids.acquire("b");
  }
  IdRangeAllocator again(s.file());
  CHECK(again.all().size() == 2);
  CHECK(again.acquire("b") == b);
  CHECK(again.acquire("a") == a);
  CHECK(again.acquire("c").first == kBase + 2 * 65536);
}

TEST_CASE("a released range is free again, and the lowest free one is reused") {
  Scratch s;
  IdRangeAllocator ids(s.file());
  ids.acquire("a");
  IdRange b = ids.acquire("b");
  ids.acquire("c");
  ids.release("b");
  ids.release("b");  // idempotent
  ids.release("never-had-one");
  CHECK_FALSE(ids.find("b").has_value());
  CHECK(IdRangeAllocator(s.file()).all().count("b") == 0);  // the release is on disk
  CHECK(ids.acquire("d") == b);                             // the hole is filled first
  CHECK(ids.acquire("e").first == kBase + 3 * 65536);
}

TEST_CASE("many ranges never overlap and stay below (uid_t)-1") {
  Scratch s;
  // The highest base that still fits 100 ranges: the last id is 4294967294.
  const std::uint32_t base = static_cast<std::uint32_t>(4294967295ull - 100ull * 65536);
  IdRangeAllocator ids(s.file(), base, 100);
  std::vector<IdRange> got;
  for (int i = 0; i < 100; ++i) got.push_back(ids.acquire("s" + std::to_string(i)));
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(std::uint64_t{got[i].first} + got[i].count - 1 <= 4294967294ull);
    for (std::size_t j = i + 1; j < got.size(); ++j) CHECK_FALSE(overlap(got[i], got[j]));
  }
  CHECK_THROWS_WITH(ids.acquire("one-too-many"), Catch::Contains("no free id range"));
  // A layout that would wrap past 2^32 or reach 4294967295 is refused up front.
  CHECK_THROWS_AS(IdRangeAllocator(s.dir / "x", base + 1, 100), std::invalid_argument);
  CHECK_THROWS_AS(IdRangeAllocator(s.dir / "y", 0xFFFF0000u, 2), std::invalid_argument);
  CHECK_THROWS_AS(IdRangeAllocator(s.dir / "z", 0, 10), std::invalid_argument);
}

TEST_CASE("exhaustion leaves the recorded state unchanged") {
  Scratch s;
  IdRangeAllocator ids(s.file(), kBase, 2);
  ids.acquire("a");
  ids.acquire("b");
  CHECK_THROWS_AS(ids.acquire("c"), std::runtime_error);
  CHECK(ids.all().size() == 2);
  CHECK(IdRangeAllocator(s.file(), kBase, 2).all().size() == 2);
  ids.release("a");
  CHECK(ids.acquire("c").first == kBase);
}

TEST_CASE("recorded ranges from another layout are kept and avoided") {
  Scratch s;
  // Written by an allocator with a different base: 'old' straddles slots 0 and 1.
  plng::node::writeKvFileAtomic(s.file(), {{"old", std::to_string(kBase + 100)}});
  IdRangeAllocator ids(s.file());
  CHECK(ids.find("old") == IdRange{kBase + 100, 65536});
  IdRange fresh = ids.acquire("fresh");
  CHECK(fresh.first == kBase + 2 * 65536);
  CHECK_FALSE(overlap(fresh, *ids.find("old")));
}

TEST_CASE("a corrupt file is an error naming the file and line") {
  Scratch s;
  auto write = [&](const std::string& body) { std::ofstream(s.file()) << body; };
  write("a=1073741824\nb=banana\n");
  CHECK_THROWS_WITH(IdRangeAllocator(s.file()),
                    Catch::Contains(s.file().string() + ":2:") && Catch::Contains("banana"));
  write("a=1073741824\nno equals sign\n");
  CHECK_THROWS_WITH(IdRangeAllocator(s.file()), Catch::Contains(s.file().string() + ":2:"));
  write("a=1073741824\nb=1073741825\n");
  CHECK_THROWS_WITH(IdRangeAllocator(s.file()), Catch::Contains("overlaps"));
  write("a=4294901760\n");  // 0xFFFF0000: its last id would be 4294967295
  CHECK_THROWS_WITH(IdRangeAllocator(s.file()), Catch::Contains(s.file().string() + ":1:"));
  write("a=0\n");
  CHECK_THROWS_AS(IdRangeAllocator(s.file()), std::runtime_error);
  write("a=-5\n");
  CHECK_THROWS_AS(IdRangeAllocator(s.file()), std::runtime_error);
  write("a=99999999999\n");
  CHECK_THROWS_AS(IdRangeAllocator(s.file()), std::runtime_error);
}

TEST_CASE("slice names that cannot be recorded are refused") {
  Scratch s;
  IdRangeAllocator ids(s.file());
  CHECK_THROWS_AS(ids.acquire(""), std::invalid_argument);
  CHECK_THROWS_AS(ids.acquire("a=b"), std::invalid_argument);
  CHECK_THROWS_AS(ids.acquire("a\nb"), std::invalid_argument);
  CHECK(ids.all().empty());
}

TEST_CASE("a failed write does not hand out an unrecorded range") {
  Scratch s;
  auto dir = s.dir / "state";
  std::filesystem::create_directories(dir);
  IdRangeAllocator ids(dir / "idranges");
  // Even root cannot create the temp file in a directory that is gone.
  std::filesystem::remove_all(dir);
  CHECK_THROWS_AS(ids.acquire("a"), plng::base::SysError);
  CHECK(ids.all().empty());
}
