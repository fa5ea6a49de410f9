#include "node/idrange.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "node/kvfile.h"

using plng::base::SysError;

namespace plng::node {
namespace {

constexpr std::uint64_t kRangeSize = 65536;
// (uid_t)-1 means "no change" to chown/setresuid and can never be a real owner,
// so no range may reach it: the highest id any range holds is 0xFFFFFFFE.
constexpr std::uint64_t kIdLimit = std::numeric_limits<std::uint32_t>::max();

// Line numbers of each key, so a bad value can be reported where it is (readKvFile
// has already rejected lines that are not key=value).
std::map<std::string, int> keyLines(const std::filesystem::path& file) {
  std::map<std::string, int> lines;
  std::ifstream in(file);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto eq = line.find('=');
    if (eq != std::string::npos) lines[line.substr(0, eq)] = number;
  }
  return lines;
}

}  // namespace

IdRange allSliceIds(std::uint32_t base, std::uint32_t max_slices) {
  return IdRange{base, static_cast<std::uint32_t>(std::uint64_t{kRangeSize} * max_slices)};
}

IdRangeAllocator::IdRangeAllocator(std::filesystem::path state_file, std::uint32_t base,
                                   std::uint32_t max_slices)
    : state_file_(std::move(state_file)), base_(base), max_slices_(max_slices) {
  // Range 0 would make a sliver's root the host's root.
  if (base_ == 0) throw std::invalid_argument("id range base must not be 0 (host root)");
  if (std::uint64_t{base_} + kRangeSize * max_slices_ > kIdLimit) {
    throw std::invalid_argument("id ranges from " + std::to_string(base_) + " for " +
                                std::to_string(max_slices_) +
                                " slices would pass 4294967294, the highest usable id");
  }

  KvMap recorded;
  try {
    recorded = readKvFile(state_file_);
  } catch (const SysError& e) {
    if (e.err() != ENOENT) throw;
    save();  // an empty file now, so a state directory we cannot write fails early
    return;
  }
  std::map<std::string, int> lines;
  auto corrupt = [&](const std::string& slice, const std::string& why) {
    if (lines.empty()) lines = keyLines(state_file_);
    throw std::runtime_error(state_file_.string() + ":" + std::to_string(lines[slice]) + ": " +
                             why);
  };
  // Recorded ranges are kept as they are even if base/max_slices changed since: a
  // slice keeps its owners. They must still be sane and disjoint.
  std::map<std::uint32_t, std::string> by_first;
  for (const auto& [slice, value] : recorded) {
    std::uint32_t first = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), first);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
      corrupt(slice, "range start '" + value + "' is not a number");
    }
    if (first == 0 || std::uint64_t{first} + kRangeSize > kIdLimit) {
      corrupt(slice, "range start " + value + " puts ids outside 1..4294967294");
    }
    auto next = by_first.lower_bound(first);
    if (next != by_first.end() && std::uint64_t{next->first} < first + kRangeSize) {
      corrupt(slice, "range of " + slice + " overlaps that of " + next->second);
    }
    if (next != by_first.begin()) {
      auto prev = std::prev(next);
      if (std::uint64_t{prev->first} + kRangeSize > first) {
        corrupt(slice, "range of " + slice + " overlaps that of " + prev->second);
      }
    }
    by_first.emplace(first, slice);
    ranges_[slice] = IdRange{first, static_cast<std::uint32_t>(kRangeSize)};
  }
}

IdRange IdRangeAllocator::acquire(const std::string& slice) {
  if (auto found = find(slice)) return *found;
  if (slice.empty() || slice.find_first_of("=\n\r") != std::string::npos) {
    throw std::invalid_argument("slice name '" + slice + "' is empty or holds '=' or a newline");
  }
  std::vector<std::uint32_t> taken;
  taken.reserve(ranges_.size());
  for (const auto& [name, range] : ranges_) taken.push_back(range.first);
  std::sort(taken.begin(), taken.end());

  // Slots are aligned on base; a recorded range from an older layout may straddle
  // two slots, so test overlap rather than equality.
  auto next = taken.begin();
  for (std::uint64_t slot = 0; slot < max_slices_; ++slot) {
    const std::uint64_t first = base_ + slot * kRangeSize;
    while (next != taken.end() && std::uint64_t{*next} + kRangeSize <= first) ++next;
    if (next != taken.end() && *next < first + kRangeSize) continue;
    IdRange range{static_cast<std::uint32_t>(first), static_cast<std::uint32_t>(kRangeSize)};
    ranges_[slice] = range;
    try {
      save();
    } catch (...) {
      ranges_.erase(slice);
      throw;
    }
    return range;
  }
  throw std::runtime_error("no free id range for slice " + slice + ": all " +
                           std::to_string(max_slices_) + " ranges from " + std::to_string(base_) +
                           " are taken (" + state_file_.string() + ")");
}

std::optional<IdRange> IdRangeAllocator::find(const std::string& slice) const {
  auto it = ranges_.find(slice);
  if (it == ranges_.end()) return std::nullopt;
  return it->second;
}

void IdRangeAllocator::release(const std::string& slice) {
  auto it = ranges_.find(slice);
  if (it == ranges_.end()) return;
  IdRange range = it->second;
  ranges_.erase(it);
  try {
    // A release lost to a machine crash leaves the range recorded for a slice
    // that no longer has it: safe (it is never handed to another slice) and
    // consistent with destroy(), whose deletions are not synced either; the next
    // acquire writes the file durably, release included.
    save(base::Durability::kWholeFile);
  } catch (...) {
    ranges_[slice] = range;
    throw;
  }
}

void IdRangeAllocator::save(base::Durability durability) const {
  KvMap values;
  for (const auto& [slice, range] : ranges_) values[slice] = std::to_string(range.first);
  writeKvFileAtomic(state_file_, values, durability);
}

}  // namespace plng::node
