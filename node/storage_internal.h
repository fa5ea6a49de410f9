// What node/storage's parts share: the chooser and plain directories
// (storage.cpp), btrfs qgroups (storage_btrfs.cpp), project quotas
// (storage_prjquota.cpp), and what they all use (storage_common.cpp). Not part
// of node/'s public contract. A sliver's name is checked with checkSliverName
// (node/sliver_name.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "node/storage.h"

namespace plng::node::storage_detail {

inline constexpr const char* kKindBtrfs = "btrfs-qgroup";
inline constexpr const char* kKindXfs = "xfs-prjquota";
inline constexpr const char* kKindExt4 = "ext4-prjquota";
inline constexpr const char* kKindNone = "none";

// Where slivers' upper/work directories live: <state_dir>/storage (the mount
// point of the loop volume when btrfs qgroups are used).
inline std::filesystem::path storageRoot(const StorageOptions& o) {
  return o.state_dir / "storage";
}
inline std::filesystem::path volumeImage(const StorageOptions& o) {
  return o.state_dir / "storage.img";
}

// --- storage_common.cpp ---
// statvfs of the filesystem `fd` lies on.
StorageSpace spaceOf(int fd, const std::filesystem::path& path);
// `quota`, or `ceiling` when it is larger or 0 (no quota).
inline std::uint64_t clampQuota(std::uint64_t quota, std::uint64_t ceiling) {
  return quota == 0 || quota > ceiling ? ceiling : quota;
}

// The filesystem mounted last (topmost) exactly at `path`, from mountinfo.
struct MountEntry {
  std::string fstype;
  std::string source;
};
std::optional<MountEntry> mountAt(const std::filesystem::path& path,
                                  const std::filesystem::path& mountinfo = "/proc/self/mountinfo");

// --- btrfs qgroups on a loop volume (storage_btrfs.cpp) ---
std::unique_ptr<SliverStorage> openBtrfsQgroupStorage(const StorageOptions& options);
void unmountBtrfsVolume(const StorageOptions& options);

// --- project quotas (storage_prjquota.cpp) ---
// kKindXfs or kKindExt4 when the filesystem holding `dir` enforces project
// quotas; otherwise nullopt and `why` says what is missing.
std::optional<std::string> probeProjectQuota(const std::filesystem::path& dir, std::string& why);
// Marks `dir` (just created, still empty) with project id `project` and the
// inherit flag, so everything created below is charged to that project.
void setProjectId(int dir_fd, const std::filesystem::path& dir, std::uint32_t project);
std::uint32_t projectId(int dir_fd, const std::filesystem::path& dir);
// 0 = no limit. `fs_fd` is any descriptor on the filesystem.
void setProjectLimit(int fs_fd, std::uint32_t project, std::uint64_t bytes);
std::uint64_t projectUsage(int fs_fd, std::uint32_t project);

}  // namespace plng::node::storage_detail
