// Choosing the node's quota mechanism, and the mechanisms that keep slivers in
// plain directories (project quotas, and "none").
#include "node/storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/proc.h"
#include "node/sliver_name.h"
#include "node/storage_internal.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node {
namespace {

using namespace storage_detail;

void makeDir(int dir_fd, const std::string& name, mode_t mode, const std::filesystem::path& full,
             bool* created = nullptr) {
  if (::mkdirat(dir_fd, name.c_str(), mode) == 0) {
    if (created) *created = true;
    return;
  }
  if (errno != EEXIST) throwErrno("create " + full.string());
  if (created) *created = false;
}

UniqueFd openDir(int dir_fd, const std::string& name, const std::filesystem::path& full) {
  UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) throwErrno("open " + full.string());
  return fd;
}

// Slivers as plain directories <state_dir>/storage/<sliver>/{upper,work}, with
// an XFS/ext4 project quota per sliver, or without any quota ("none").
//
// The project-quota half cannot be exercised on the development host (its
// kernel has no CONFIG_QUOTA); it follows the quotactl(2) and ioctl_xfs_fsgetxattr(2)
// interfaces and is chosen only when the probe saw project quotas enforced.
class DirectoryStorage : public SliverStorage {
 public:
  DirectoryStorage(const StorageOptions& options, std::string kind)
      : root_path_(storageRoot(options)),
        kind_(std::move(kind)),
        reserve_pct_(options.reserve_pct) {
    std::filesystem::create_directories(options.state_dir);
    // Only host root goes below here: sliver files are reached through overlays.
    if (::mkdir(root_path_.c_str(), 0700) != 0 && errno != EEXIST) {
      throwErrno("create " + root_path_.string());
    }
    root_ = UniqueFd(::open(root_path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_) throwErrno("open " + root_path_.string());
  }

  std::string_view kind() const override { return kind_; }

  SliverDirs prepare(const std::string& sliver, const IdRange& ids,
                     std::uint64_t quota_bytes) override {
    checkSliverName(sliver);
    const auto dir_path = root_path_ / sliver;
    bool created = false;
    makeDir(root_.get(), sliver, 0711, dir_path, &created);
    UniqueFd dir = openDir(root_.get(), sliver, dir_path);
    if (projectQuota() && (created || projectId(dir.get(), dir_path) == 0)) {
      // Before upper/ and work/ exist, so they and all below inherit the project.
      setProjectId(dir.get(), dir_path, ids.first);
    }
    for (const char* name : {"upper", "work"}) {
      makeDir(dir.get(), name, 0755, dir_path / name);
      if (::fchownat(dir.get(), name, ids.first, ids.first, AT_SYMLINK_NOFOLLOW) != 0) {
        throwErrno("chown " + (dir_path / name).string());
      }
    }
    if (projectQuota()) {
      setProjectLimit(root_.get(), projectId(dir.get(), dir_path),
                      clampQuota(quota_bytes, maxSliverQuota()));
    }
    return {dir_path / "upper", dir_path / "work"};
  }

  void setQuota(const std::string& sliver, std::uint64_t quota_bytes) override {
    checkSliverName(sliver);
    UniqueFd dir = openDir(root_.get(), sliver, root_path_ / sliver);
    if (projectQuota()) {
      setProjectLimit(root_.get(), projectId(dir.get(), root_path_ / sliver),
                      clampQuota(quota_bytes, maxSliverQuota()));
    }
  }

  StorageSpace space() const override { return spaceOf(root_.get(), root_path_); }
  std::uint64_t maxSliverQuota() const override {
    return sliverQuotaCeiling(space().total_bytes, reserve_pct_);
  }
  void sync() override {
    if (::syncfs(root_.get()) != 0) throwErrno("syncfs " + root_path_.string());
  }

  std::uint64_t usedBytes(const std::string& sliver) const override {
    checkSliverName(sliver);
    const auto dir_path = root_path_ / sliver;
    UniqueFd dir = openDir(root_.get(), sliver, dir_path);
    if (projectQuota()) return projectUsage(root_.get(), projectId(dir.get(), dir_path));
    // Without a quota the kernel keeps no total: add up allocated blocks.
    std::uint64_t bytes = 0;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir_path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) == 0) bytes += std::uint64_t(st.st_blocks) * 512;
    }
    if (ec) throw SysError(ec.value(), "walk " + dir_path.string());
    return bytes;
  }

  void destroy(const std::string& sliver) override {
    checkSliverName(sliver);
    const auto dir_path = root_path_ / sliver;
    UniqueFd dir(
        ::openat(root_.get(), sliver.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) {
      if (errno == ENOENT) return;
      throwErrno("open " + dir_path.string());
    }
    std::uint32_t project = projectQuota() ? projectId(dir.get(), dir_path) : 0;
    dir.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_path, ec);
    if (ec) throw SysError(ec.value(), "remove " + dir_path.string());
    // The limit goes last: a failed removal leaves the sliver still capped.
    if (project != 0) setProjectLimit(root_.get(), project, 0);
  }

 private:
  bool projectQuota() const { return kind_ != kKindNone; }

  std::filesystem::path root_path_;
  std::string kind_;
  std::uint32_t reserve_pct_;
  UniqueFd root_;
};

bool volumeInUse(const StorageOptions& options) {
  if (std::filesystem::exists(volumeImage(options))) return true;
  auto mounted = mountAt(storageRoot(options));
  return mounted && mounted->fstype == "btrfs";
}

}  // namespace

std::unique_ptr<SliverStorage> openSliverStorage(const StorageOptions& options) {
  const std::string& kind = options.force_kind;
  if (kind == kKindNone) return std::make_unique<DirectoryStorage>(options, kKindNone);
  if (kind == kKindBtrfs) return openBtrfsQgroupStorage(options);
  if (!kind.empty() && kind != kKindXfs && kind != kKindExt4) {
    throw std::invalid_argument("unknown storage kind '" + kind +
                                "' (want btrfs-qgroup, xfs-prjquota, ext4-prjquota or none)");
  }
  std::filesystem::create_directories(options.state_dir);

  // A node that once made a loop volume keeps using it: its slivers' files are there.
  if (kind.empty() && volumeInUse(options)) return openBtrfsQgroupStorage(options);

  std::string why_not_project;
  auto project = probeProjectQuota(options.state_dir, why_not_project);
  if (project && (kind.empty() || kind == *project)) {
    return std::make_unique<DirectoryStorage>(options, *project);
  }
  if (!kind.empty()) {
    throw SysError(EOPNOTSUPP, kind + " asked for, but " +
                                   (project ? "the filesystem has " + *project : why_not_project));
  }
  try {
    return openBtrfsQgroupStorage(options);
  } catch (const SysError& e) {
    throw SysError(e.err(), "no disk quota mechanism for slivers: project quotas: " +
                                why_not_project + "; btrfs loop volume: " + e.what());
  }
}

void unmountSliverStorage(const StorageOptions& options) { unmountBtrfsVolume(options); }

}  // namespace plng::node
