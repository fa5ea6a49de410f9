// btrfs qgroups on a loop volume sliverd makes itself: <state_dir>/storage.img
// (sparse) mounted at <state_dir>/storage, one subvolume per sliver holding its
// overlay upper/ and work/, and a referenced-bytes limit on the subvolume's
// qgroup 0/<subvolume id>. Used where the host filesystem has no project quotas.
#include <endian.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/file.h"
#include "node/program.h"
#include "node/sliver_name.h"
#include "node/storage_internal.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node::storage_detail {
namespace {

// ---- making and mounting the volume ----

std::string findProgram(const std::string& name) {
  // sliverd may run with a PATH lacking the sbin directories.
  std::string dirs = ::getenv("PATH") ? ::getenv("PATH") : "";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  throw SysError(ENOENT, name + " not found (install btrfs-progs)");
}

// Makes the image under a temporary name and renames it into place only once it
// holds a filesystem, so an existing storage.img is never a half-made one (and
// never formatted again).
void createImage(const std::filesystem::path& image, std::uint64_t bytes) {
  const std::string mkfs = findProgram("mkfs.btrfs");
  const std::filesystem::path fresh = image.string() + ".new";
  {
    UniqueFd fd(::open(fresh.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) throwErrno("create " + fresh.string());
    if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
      int err = errno;
      ::unlink(fresh.c_str());
      throw SysError(err, "size " + fresh.string() + " to " + std::to_string(bytes) + " bytes");
    }
  }
  std::string output;
  int status = runProgram({mkfs, "-q", fresh.string()}, output);
  if (status != 0) {
    ::unlink(fresh.c_str());
    throw SysError(
        EIO, "mkfs.btrfs " + fresh.string() + " exited " + std::to_string(status) + ": " + output);
  }
  if (::rename(fresh.c_str(), image.c_str()) != 0) throwErrno("rename to " + image.string());
  base::syncDirectory(image.parent_path());
}

// The size of a new volume: as configured, or kDefaultVolumePct of what the host
// has available where the image goes. Never more than that available space: the
// image is sparse, and a volume the host cannot back would fail (with I/O errors
// on the loop device) only once slivers have filled the host's own disk.
std::uint64_t volumeSize(const StorageOptions& options) {
  constexpr std::uint64_t kMiB = 1ull << 20;
  constexpr std::uint64_t kMinVolume = 512 * kMiB;
  UniqueFd dir(::open(options.state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) throwErrno("open " + options.state_dir.string());
  const std::uint64_t available = spaceOf(dir.get(), options.state_dir).available_bytes;
  auto mib = [](std::uint64_t b) { return std::to_string(b >> 20) + " MiB"; };
  if (options.volume_bytes != 0) {
    if (options.volume_bytes > available) {
      throw SysError(ENOSPC, "a sliver storage volume of " + mib(options.volume_bytes) +
                                 " (storage_volume_bytes) is more than the " + mib(available) +
                                 " available in " + options.state_dir.string() +
                                 ": slivers could fill the host's disk; choose less, or 0 for " +
                                 std::to_string(kDefaultVolumePct) + "% of what is free");
    }
    return options.volume_bytes;
  }
  const std::uint64_t size = available / 100 * kDefaultVolumePct / kMiB * kMiB;
  if (size < kMinVolume) {
    throw SysError(ENOSPC, "only " + mib(available) + " available in " +
                               options.state_dir.string() + ": too little for sliver storage");
  }
  return size;
}

UniqueFd openLoopDevice(int n, std::string& path) {
  path = "/dev/loop" + std::to_string(n);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd || errno != ENOENT) return fd;
  // A /dev without udev (a container's) may lack the node the kernel just made.
  std::ifstream dev("/sys/block/loop" + std::to_string(n) + "/dev");
  unsigned major_no = 0, minor_no = 0;
  char colon = 0;
  if (!(dev >> major_no >> colon >> minor_no)) return fd;
  if (::mknod(path.c_str(), S_IFBLK | 0660, makedev(major_no, minor_no)) != 0 && errno != EEXIST) {
    return fd;
  }
  return UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
}

// Attaches `image` to a free loop device with autoclear and mounts it. The mount
// then holds the only reference to the device, so unmounting detaches it.
void attachAndMount(const std::filesystem::path& image, const std::filesystem::path& mount_point) {
  UniqueFd backing(::open(image.c_str(), O_RDWR | O_CLOEXEC));
  if (!backing) throwErrno("open " + image.string());
  UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control) throwErrno("open /dev/loop-control");
  for (int attempt = 0;; ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) throwErrno("LOOP_CTL_GET_FREE");
    std::string device;
    UniqueFd loop = openLoopDevice(n, device);
    if (!loop) throwErrno("open " + device);
    loop_config config{};
    config.fd = static_cast<__u32>(backing.get());
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), image.c_str(),
                 LO_NAME_SIZE - 1);
    if (::ioctl(loop.get(), LOOP_CONFIGURE, &config) != 0) {
      // Another process may have taken the device between GET_FREE and CONFIGURE.
      if (errno == EBUSY && attempt < 16) continue;
      throwErrno("LOOP_CONFIGURE " + device + " with " + image.string());
    }
    // nodev: nothing in a sliver's upper layer is a device sliverd made.
    if (::mount(device.c_str(), mount_point.c_str(), "btrfs", MS_NODEV, nullptr) != 0) {
      // Closing `loop` below detaches the device again (autoclear).
      throwErrno("mount " + device + " (" + image.string() + ") on " + mount_point.string());
    }
    return;
  }
}

// ---- btrfs ioctls ----

void volArgsName(btrfs_ioctl_vol_args& args, const std::string& name) {
  std::memset(&args, 0, sizeof args);
  std::strncpy(args.name, name.c_str(), BTRFS_PATH_NAME_MAX);
}

// The id of the subvolume `fd` lies in (= its level-0 qgroup).
std::uint64_t subvolumeId(int fd, const std::filesystem::path& path) {
  btrfs_ioctl_ino_lookup_args args{};
  args.treeid = 0;
  args.objectid = BTRFS_FIRST_FREE_OBJECTID;
  if (::ioctl(fd, BTRFS_IOC_INO_LOOKUP, &args) != 0)
    throwErrno("BTRFS_IOC_INO_LOOKUP " + path.string());
  return args.treeid;
}

struct QgroupInfo {
  std::uint64_t id = 0;
  std::uint64_t referenced = 0;
};

// Reads items of one key type from a btrfs tree (BTRFS_IOC_TREE_SEARCH),
// calling `item(header, data)` for each.
template <typename F>
void searchTree(int fd, std::uint64_t tree, std::uint64_t min_objectid, std::uint64_t max_objectid,
                std::uint32_t type, std::uint64_t min_offset, std::uint64_t max_offset, F&& item) {
  btrfs_ioctl_search_args args{};
  auto& key = args.key;
  key.tree_id = tree;
  key.min_objectid = min_objectid;
  key.max_objectid = max_objectid;
  key.min_type = type;
  key.max_type = type;
  key.min_offset = min_offset;
  key.max_offset = max_offset;
  key.min_transid = 0;
  key.max_transid = ~0ull;
  for (;;) {
    key.nr_items = 4096;
    if (::ioctl(fd, BTRFS_IOC_TREE_SEARCH, &args) != 0) throwErrno("BTRFS_IOC_TREE_SEARCH");
    if (key.nr_items == 0) return;
    std::size_t pos = 0;
    btrfs_ioctl_search_header header{};
    for (std::uint32_t i = 0; i < key.nr_items; ++i) {
      std::memcpy(&header, args.buf + pos, sizeof header);
      pos += sizeof header;
      if (header.type == type) item(header, args.buf + pos);
      pos += header.len;
    }
    // Continue after the last key seen (keys sort by objectid, type, offset).
    if (header.objectid > max_objectid ||
        (header.objectid == max_objectid && header.offset >= max_offset)) {
      return;
    }
    if (header.offset < ~0ull) {
      key.min_objectid = header.objectid;
      key.min_offset = header.offset + 1;
    } else {
      key.min_objectid = header.objectid + 1;
      key.min_offset = 0;
    }
  }
}

std::vector<QgroupInfo> qgroupInfos(int fd, std::uint64_t min_id, std::uint64_t max_id) {
  std::vector<QgroupInfo> infos;
  searchTree(fd, BTRFS_QUOTA_TREE_OBJECTID, 0, 0, BTRFS_QGROUP_INFO_KEY, min_id, max_id,
             [&](const btrfs_ioctl_search_header& h, const char* data) {
               btrfs_qgroup_info_item item{};
               std::memcpy(&item, data, std::min<std::size_t>(h.len, sizeof item));
               infos.push_back({h.offset, le64toh(item.rfer)});
             });
  return infos;
}

bool subvolumeExists(int fd, std::uint64_t id) {
  bool found = false;
  searchTree(fd, BTRFS_ROOT_TREE_OBJECTID, id, id, BTRFS_ROOT_ITEM_KEY, 0, ~0ull,
             [&](const btrfs_ioctl_search_header&, const char*) { found = true; });
  return found;
}

void setQgroupLimit(int fd, std::uint64_t qgroup, std::uint64_t bytes, const std::string& sliver) {
  btrfs_ioctl_qgroup_limit_args args{};
  args.qgroupid = qgroup;
  args.lim.flags = BTRFS_QGROUP_LIMIT_MAX_RFER;
  // All ones clears the limit (what `btrfs qgroup limit none` sends).
  args.lim.max_rfer = bytes == 0 ? ~0ull : bytes;
  if (::ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, &args) != 0) {
    throwErrno("BTRFS_IOC_QGROUP_LIMIT 0/" + std::to_string(qgroup) + " (sliver " + sliver + ")");
  }
}

// Removes the level-0 qgroup of a deleted subvolume. The kernel refuses (EBUSY)
// while the cleaner has not yet dropped the subvolume's tree; newer kernels then
// remove the qgroup themselves, and sweepStaleQgroups() catches the rest.
bool removeQgroup(int fd, std::uint64_t qgroup) {
  btrfs_ioctl_qgroup_create_args args{};
  args.create = 0;
  args.qgroupid = qgroup;
  return ::ioctl(fd, BTRFS_IOC_QGROUP_CREATE, &args) == 0 || errno == ENOENT;
}

void sweepStaleQgroups(int fd) {
  for (const auto& q : qgroupInfos(fd, BTRFS_FIRST_FREE_OBJECTID, (1ull << 48) - 1)) {
    if (!subvolumeExists(fd, q.id)) removeQgroup(fd, q.id);
  }
}

// Runs BTRFS_IOC_SYNC on a thread of its own when asked; requests that come
// while one runs are served by one more. Joined on destruction, before the
// volume's fd closes (an unmount after that finds no ioctl in flight). A failed
// sync is not reported: the periodic commit does the same a little later.
class BackgroundSync {
 public:
  BackgroundSync() = default;
  BackgroundSync(const BackgroundSync&) = delete;
  BackgroundSync& operator=(const BackgroundSync&) = delete;
  ~BackgroundSync() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void request(int fd) {
    std::lock_guard lock(mutex_);
    fd_ = fd;
    pending_ = true;
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    wake_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return pending_ || stopping_; });
      if (!pending_) return;  // stopping, nothing left to commit
      pending_ = false;
      int fd = fd_;
      lock.unlock();
      ::ioctl(fd, BTRFS_IOC_SYNC);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool pending_ = false;
  bool stopping_ = false;
  int fd_ = -1;
  std::thread thread_;
};

class BtrfsQgroupStorage : public SliverStorage {
 public:
  BtrfsQgroupStorage(std::filesystem::path mount_point, UniqueFd root, std::uint32_t reserve_pct)
      : mount_point_(std::move(mount_point)),
        root_(std::move(root)),
        reserve_pct_(reserve_pct),
        data_info_(dataSpaceInfo(root_.get())) {}

  std::string_view kind() const override { return kKindBtrfs; }

  SliverDirs prepare(const std::string& sliver, const IdRange& ids,
                     std::uint64_t quota_bytes) override {
    checkSliverName(sliver);
    const auto path = mount_point_ / sliver;
    UniqueFd dir = openSubvolume(sliver);
    if (!dir) {
      btrfs_ioctl_vol_args args;
      volArgsName(args, sliver);
      // With quotas on, the kernel gives the new subvolume its qgroup 0/<id>.
      if (::ioctl(root_.get(), BTRFS_IOC_SUBVOL_CREATE, &args) != 0 && errno != EEXIST) {
        throwErrno("BTRFS_IOC_SUBVOL_CREATE " + path.string());
      }
      dir = openSubvolume(sliver);
      if (!dir) throwErrno("open " + path.string());
    }
    if (::fchmod(dir.get(), 0711) != 0) throwErrno("chmod " + path.string());
    setQgroupLimit(root_.get(), subvolumeId(dir.get(), path),
                   clampQuota(quota_bytes, maxSliverQuota()), sliver);
    for (const char* name : {"upper", "work"}) {
      if (::mkdirat(dir.get(), name, 0755) != 0 && errno != EEXIST) {
        throwErrno("create " + (path / name).string());
      }
      // Root in the sliver owns its / (the upper root), else / shows as nobody.
      if (::fchownat(dir.get(), name, ids.first, ids.first, AT_SYMLINK_NOFOLLOW) != 0) {
        throwErrno("chown " + (path / name).string());
      }
    }
    return {path / "upper", path / "work"};
  }

  void setQuota(const std::string& sliver, std::uint64_t quota_bytes) override {
    checkSliverName(sliver);
    UniqueFd dir = requireSubvolume(sliver);
    setQgroupLimit(root_.get(), subvolumeId(dir.get(), mount_point_ / sliver),
                   clampQuota(quota_bytes, maxSliverQuota()), sliver);
  }

  StorageSpace space() const override {
    StorageSpace out = spaceOf(root_.get(), mount_point_);
    // statfs counts only data already allocated on disk: what sits in the page
    // cache (delalloc, reserved for it as it was written) shows up seconds to
    // minutes later, which hid ~400 MiB of writes on a 1 GiB volume here. The
    // data space_info in sysfs has those reservations live.
    if (!data_info_.empty()) {
      std::uint64_t pending = 0;
      for (const char* field : {"bytes_may_use", "bytes_reserved", "bytes_pinned"}) {
        std::ifstream in(data_info_ / field);
        std::uint64_t value = 0;
        if (in >> value) pending += value;
      }
      out.available_bytes -= std::min(out.available_bytes, pending);
    }
    return out;
  }
  std::uint64_t maxSliverQuota() const override {
    return sliverQuotaCeiling(space().total_bytes, reserve_pct_);
  }
  void sync() override {
    // Commits the running transaction, which also brings every qgroup's
    // counters up to date.
    if (::ioctl(root_.get(), BTRFS_IOC_SYNC) != 0)
      throwErrno("BTRFS_IOC_SYNC " + mount_point_.string());
  }

  std::uint64_t usedBytes(const std::string& sliver) const override {
    checkSliverName(sliver);
    UniqueFd dir = requireSubvolume(sliver);
    const std::uint64_t id = subvolumeId(dir.get(), mount_point_ / sliver);
    auto infos = qgroupInfos(root_.get(), id, id);
    if (infos.empty())
      throw SysError(ENOENT, "no qgroup 0/" + std::to_string(id) + " for " + sliver);
    return infos.front().referenced;
  }

  void destroy(const std::string& sliver) override {
    checkSliverName(sliver);
    UniqueFd dir = openSubvolume(sliver);
    if (!dir) return;
    const std::uint64_t id = subvolumeId(dir.get(), mount_point_ / sliver);
    dir.reset();
    btrfs_ioctl_vol_args args;
    volArgsName(args, sliver);
    // Deletes the whole subvolume in one call, whoever owns the files inside;
    // the cleaner thread frees its blocks afterwards.
    if (::ioctl(root_.get(), BTRFS_IOC_SNAP_DESTROY, &args) != 0 && errno != ENOENT) {
      throwErrno("BTRFS_IOC_SNAP_DESTROY " + (mount_point_ / sliver).string());
    }
    // Committing the deletion (BTRFS_IOC_SYNC, which also wakes the
    // transaction thread and through it the cleaner that drops the tree and
    // gives the space back; else that waits for the periodic commit, 30 s)
    // takes ~10 ms and more on a busy disk. The caller need not wait for it:
    // the subvolume is gone from the tree at once, and no quota depends on when
    // the blocks come back (other slivers' qgroups never counted them). So the
    // sync runs on the syncer thread; destroys in a row share one.
    syncer_.request(root_.get());
    removeQgroup(root_.get(), id);
  }

 private:
  // The sliver's subvolume, or an empty fd when there is none.
  UniqueFd openSubvolume(const std::string& sliver) const {
    const auto path = mount_point_ / sliver;
    UniqueFd dir(
        ::openat(root_.get(), sliver.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) {
      if (errno == ENOENT) return dir;
      throwErrno("open " + path.string());
    }
    struct stat st {};
    if (::fstat(dir.get(), &st) != 0) throwErrno("stat " + path.string());
    // A subvolume's root directory is always inode 256.
    if (st.st_ino != BTRFS_FIRST_FREE_OBJECTID) {
      throw SysError(EEXIST, path.string() + " exists but is not a btrfs subvolume");
    }
    return dir;
  }

  UniqueFd requireSubvolume(const std::string& sliver) const {
    UniqueFd dir = openSubvolume(sliver);
    if (!dir)
      throw SysError(ENOENT, "no storage for sliver " + sliver + " in " + mount_point_.string());
    return dir;
  }

  // /sys/fs/btrfs/<fsid>/allocation/data, or empty when sysfs does not show it.
  static std::filesystem::path dataSpaceInfo(int fd) {
    btrfs_ioctl_fs_info_args info{};
    if (::ioctl(fd, BTRFS_IOC_FS_INFO, &info) != 0) return {};
    char uuid[37];
    const unsigned char* b = info.fsid;
    std::snprintf(uuid, sizeof uuid,
                  "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                  b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                  b[14], b[15]);
    std::filesystem::path dir = std::filesystem::path("/sys/fs/btrfs") / uuid / "allocation/data";
    std::error_code ec;
    return std::filesystem::exists(dir / "bytes_may_use", ec) ? dir : std::filesystem::path();
  }

  std::filesystem::path mount_point_;
  UniqueFd root_;
  std::uint32_t reserve_pct_;
  std::filesystem::path data_info_;
  BackgroundSync syncer_;  // last: joined before root_ closes
};

}  // namespace

std::unique_ptr<SliverStorage> openBtrfsQgroupStorage(const StorageOptions& options) {
  const auto image = volumeImage(options);
  const auto mount_point = storageRoot(options);
  std::filesystem::create_directories(options.state_dir);
  if (::mkdir(mount_point.c_str(), 0700) != 0 && errno != EEXIST) {
    throwErrno("create " + mount_point.string());
  }
  auto mounted = mountAt(mount_point);
  if (mounted && mounted->fstype != "btrfs") {
    throw SysError(EBUSY, mount_point.string() + " has a " + mounted->fstype +
                              " filesystem mounted, not the btrfs storage volume");
  }
  // After a sliverd restart the volume is normally still mounted (slivers'
  // overlays use it); after a reboot the existing image is mounted again.
  if (!mounted) {
    if (!std::filesystem::exists(image)) createImage(image, volumeSize(options));
    attachAndMount(image, mount_point);
  }
  UniqueFd root(::open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) throwErrno("open " + mount_point.string());
  // Only host root goes below here: sliver files are reached through overlays.
  if (::fchmod(root.get(), 0700) != 0) throwErrno("chmod " + mount_point.string());
  btrfs_ioctl_quota_ctl_args quota{};
  quota.cmd = BTRFS_QUOTA_CTL_ENABLE;  // a no-op when quotas are already on
  if (::ioctl(root.get(), BTRFS_IOC_QUOTA_CTL, &quota) != 0) {
    throwErrno("BTRFS_IOC_QUOTA_CTL enable on " + mount_point.string());
  }
  if (::ioctl(root.get(), BTRFS_IOC_QUOTA_RESCAN_WAIT) != 0) {
    throwErrno("BTRFS_IOC_QUOTA_RESCAN_WAIT on " + mount_point.string());
  }
  sweepStaleQgroups(root.get());
  return std::make_unique<BtrfsQgroupStorage>(mount_point, std::move(root), options.reserve_pct);
}

void unmountBtrfsVolume(const StorageOptions& options) {
  const auto mount_point = storageRoot(options);
  if (!std::filesystem::exists(mount_point)) return;
  while (auto mounted = mountAt(mount_point)) {
    if (mounted->fstype != "btrfs") return;  // not ours
    if (::umount2(mount_point.c_str(), UMOUNT_NOFOLLOW) != 0) {
      throwErrno("unmount " + mount_point.string());
    }
  }
}

}  // namespace plng::node::storage_detail
