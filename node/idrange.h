// Host id ranges for slices' user namespaces.
//
// Each slice gets a private, contiguous range of 65536 host uids/gids (the same
// numbers for both); root inside the sliver maps to range.first. Ranges never
// overlap, and a slice keeps its range for as long as the node knows it (the
// allocation is recorded on disk), so files in a sliver's upper layer keep their
// owners across restarts and re-creation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "base/file.h"

namespace plng::node {

struct IdRange {
  std::uint32_t first = 0;
  std::uint32_t count = 65536;
  bool operator==(const IdRange&) const = default;
};

// Where slices' ranges are carved from by default.
inline constexpr std::uint32_t kSliceIdBase = 1u << 30;
inline constexpr std::uint32_t kMaxSlices = 40000;

// Every host id a slice may ever be given: [base, base + 65536 * max_slices).
IdRange allSliceIds(std::uint32_t base = kSliceIdBase, std::uint32_t max_slices = kMaxSlices);

class IdRangeAllocator {
 public:
  // `state_file` records allocations (created if missing; written atomically).
  // Ranges are carved from [base, base + count * max_slices).
  explicit IdRangeAllocator(std::filesystem::path state_file, std::uint32_t base = kSliceIdBase,
                            std::uint32_t max_slices = kMaxSlices);

  // The slice's range: its recorded one, else the lowest free one (recorded
  // before returning). Throws std::runtime_error when every range is taken.
  IdRange acquire(const std::string& slice);
  std::optional<IdRange> find(const std::string& slice) const;
  // Frees the slice's range for reuse (after its storage was deleted).
  void release(const std::string& slice);
  const std::map<std::string, IdRange>& all() const { return ranges_; }

 private:
  void save(base::Durability durability = base::Durability::kDurable) const;
  std::filesystem::path state_file_;
  std::uint32_t base_;
  std::uint32_t max_slices_;
  std::map<std::string, IdRange> ranges_;
};

}  // namespace plng::node
