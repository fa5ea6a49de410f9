// Per-sliver writable storage with a disk quota enforced by the filesystem.
//
// A sliver's root is an overlay: the shared read-only reference image below, and
// an upper (+ work) directory of its own above. Only the upper layer grows, so the
// quota is set on it. The mechanism is chosen by probing the host: XFS or ext4
// project quotas where the kernel has them; otherwise btrfs qgroups on a storage
// volume that sliverd creates as a sparse loop-mounted image; "none" (no quota,
// refused unless explicitly allowed) as a last resort.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "idrange.h"

namespace plng::node {

struct StorageOptions {
  std::filesystem::path state_dir;           // e.g. /var/lib/sliverd
  std::uint64_t volume_bytes = 64ull << 30;  // size of a loop volume sliverd creates
  std::string force_kind;                    // "" = probe; else a kind() value
};

struct SliverDirs {
  std::filesystem::path upper;  // overlay upperdir, its root owned by the range's root
  std::filesystem::path work;   // overlay workdir (same filesystem as upper)
};

class SliverStorage {
 public:
  virtual ~SliverStorage() = default;
  // "btrfs-qgroup", "xfs-prjquota", "ext4-prjquota" or "none".
  virtual std::string_view kind() const = 0;
  // Creates (idempotently) the sliver's upper and work directories with the
  // quota set; an existing sliver keeps its files.
  virtual SliverDirs prepare(const std::string& sliver, const IdRange& ids,
                             std::uint64_t quota_bytes) = 0;
  virtual void setQuota(const std::string& sliver, std::uint64_t quota_bytes) = 0;
  virtual std::uint64_t usedBytes(const std::string& sliver) const = 0;
  // Deletes the sliver's files and quota. Idempotent.
  virtual void destroy(const std::string& sliver) = 0;
};

// Probes and opens (creating and mounting the loop volume if that is the
// mechanism) the node's sliver storage. Throws SysError saying what is missing.
std::unique_ptr<SliverStorage> openSliverStorage(const StorageOptions& options);

}  // namespace plng::node
