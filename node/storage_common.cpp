// What every storage mechanism uses (storage_internal.h): the filesystem's
// space, what is mounted where, the quota ceiling. Both storage.cpp (the
// chooser, and plain directories) and storage_btrfs.cpp build on this file
// and not on each other's.
#include <sys/statvfs.h>

#include <algorithm>

#include "base/error.h"
#include "base/proc.h"
#include "node/storage.h"
#include "node/storage_internal.h"

namespace plng::node {

using base::SysError;
using base::throwErrno;

std::uint64_t sliverQuotaCeiling(std::uint64_t total_bytes, std::uint32_t reserve_pct) {
  const std::uint64_t reserve = std::max(total_bytes / 100 * reserve_pct, kMinReserveBytes);
  if (total_bytes < 2 * reserve) return total_bytes / 2;
  return total_bytes - reserve;
}

namespace storage_detail {

StorageSpace spaceOf(int fd, const std::filesystem::path& path) {
  struct statvfs st {};
  if (::fstatvfs(fd, &st) != 0) throwErrno("statvfs " + path.string());
  return StorageSpace{std::uint64_t(st.f_blocks) * st.f_frsize,
                      std::uint64_t(st.f_bavail) * st.f_frsize};
}

namespace {
// mountinfo escapes space, tab, newline and backslash as \ooo.
}  // namespace

std::optional<MountEntry> mountAt(const std::filesystem::path& path,
                                  const std::filesystem::path& mountinfo) {
  std::error_code ec;
  const std::filesystem::path want = std::filesystem::weakly_canonical(path, ec);
  if (ec) throw SysError(ec.value(), "resolve " + path.string());
  std::optional<MountEntry> found;
  for (const base::MountInfoEntry& mount : base::readMountInfo(mountinfo)) {
    // Later lines are mounted on top of earlier ones at the same point.
    if (mount.mount_point == want.string()) found = MountEntry{mount.fstype, mount.source};
  }
  return found;
}

}  // namespace storage_detail

}  // namespace plng::node
