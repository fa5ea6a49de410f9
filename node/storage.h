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

#include "node/idrange.h"

namespace plng::node {

// The loop volume's size when none is configured: this percentage of the space
// available where state_dir lies when it is made (the image is sparse and grows
// into that space as slivers write).
inline constexpr std::uint32_t kDefaultVolumePct = 80;
// The least a node keeps back from any single sliver, whatever reserve_pct says.
inline constexpr std::uint64_t kMinReserveBytes = 256ull << 20;

struct StorageOptions {
  std::filesystem::path state_dir;  // e.g. /var/lib/sliverd
  // Size of a loop volume sliverd creates; 0 = kDefaultVolumePct of the space
  // available. Larger than the space available is refused: a sparse volume
  // bigger than the host can back would let slivers fill the host's disk.
  std::uint64_t volume_bytes = 0;
  std::string force_kind;  // "" = probe; else a kind() value
  // Percent of the storage (at least kMinReserveBytes) that no single sliver
  // may take: see SliverStorage::maxSliverQuota.
  std::uint32_t reserve_pct = 10;
};

// The sliver storage as a whole.
struct StorageSpace {
  std::uint64_t total_bytes = 0;      // its size (the volume, or the filesystem)
  std::uint64_t available_bytes = 0;  // what can still be written (statvfs f_bavail)
};

// The most one sliver may be given on storage of `total_bytes`: the total less
// max(reserve_pct %, kMinReserveBytes), and never more than half of a storage
// smaller than twice that reserve.
std::uint64_t sliverQuotaCeiling(std::uint64_t total_bytes, std::uint32_t reserve_pct);

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
  // quota set; an existing sliver keeps its files. Like setQuota, it clamps the
  // quota to maxSliverQuota(): a larger one, or 0 (none), gets the ceiling, so
  // no sliver can fill the storage for the others.
  virtual SliverDirs prepare(const std::string& sliver, const IdRange& ids,
                             std::uint64_t quota_bytes) = 0;
  virtual void setQuota(const std::string& sliver, std::uint64_t quota_bytes) = 0;
  // The storage's size and free space. Throws SysError.
  virtual StorageSpace space() const = 0;
  // sliverQuotaCeiling(space().total_bytes, reserve_pct).
  virtual std::uint64_t maxSliverQuota() const = 0;
  // Makes usedBytes() and space() current: btrfs commits its transaction
  // (≈10 ms and more on a busy disk), the others syncfs(2).
  virtual void sync() = 0;
  // Bytes charged to the sliver's quota. With btrfs qgroups this is the figure
  // of the last transaction commit (syncfs(2) forces one; btrfs commits every
  // 30 s by default).
  virtual std::uint64_t usedBytes(const std::string& sliver) const = 0;
  // Deletes the sliver's files and quota. Idempotent.
  virtual void destroy(const std::string& sliver) = 0;
};

// Probes and opens (creating and mounting the loop volume if that is the
// mechanism) the node's sliver storage. Throws SysError saying what is missing,
// or (ENOSPC) that the host has too little space for the volume asked for.
// Destroying the SliverStorage leaves the volume mounted (running slivers'
// overlays use it, and a restarted sliverd finds it again).
std::unique_ptr<SliverStorage> openSliverStorage(const StorageOptions& options);

// Unmounts the loop volume, if this node has one and it is mounted; its loop
// device detaches by itself once nothing uses the filesystem any more. Fails
// with EBUSY while a file or directory on it is open (a SliverStorage object
// holds one: destroy it first). An overlay over a sliver's upper layer does not
// block the unmount but keeps the filesystem (and loop device) alive until the
// overlay goes. For sliverd --cleanup and tests; a no-op for the other
// mechanisms.
void unmountSliverStorage(const StorageOptions& options);

}  // namespace plng::node
