// XFS and ext4 project quotas: one project per sliver (its id range's first id,
// which is unique on the node and stable), set on the sliver's directory with
// the inherit flag, and a block hard limit on that project.
//
// NOT TESTED on the development host: its kernel lacks CONFIG_QUOTA (quotactl
// gives ENOSYS), so the probe below always falls through to the btrfs loop
// volume there. The calls follow quotactl(2) and ioctl_xfs_fsgetxattr(2).
#include <fcntl.h>
#include <linux/dqblk_xfs.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/quota.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "base/error.h"
#include "base/fd.h"
#include "node/storage_internal.h"

using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node::storage_detail {
namespace {

constexpr long kXfsMagic = 0x58465342;  // XFS_SUPER_MAGIC
constexpr long kExt4Magic = 0xEF53;     // EXT4_SUPER_MAGIC (also ext2/3)

// quotactl_fd(2) (Linux 5.14) takes a descriptor instead of a block device path,
// which a loop- or dm-backed state directory may not even have.
int quotactlFd(int fd, int cmd, int id, void* addr) {
  return static_cast<int>(::syscall(SYS_quotactl_fd, fd, cmd, id, addr));
}

}  // namespace

std::optional<std::string> probeProjectQuota(const std::filesystem::path& dir, std::string& why) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) {
    why = "statfs " + dir.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (fs.f_type != kXfsMagic && fs.f_type != kExt4Magic) {
    why = dir.string() + " is on neither XFS nor ext4";
    return std::nullopt;
  }
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    why = "open " + dir.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (fs.f_type == kXfsMagic) {
    fs_quota_stat stat{};
    if (quotactlFd(fd.get(), QCMD(Q_XGETQSTAT, PRJQUOTA), 0, &stat) != 0) {
      why = "XFS quotactl(Q_XGETQSTAT, PRJQUOTA) on " + dir.string() + ": " + std::strerror(errno);
      return std::nullopt;
    }
    if (!(stat.qs_flags & FS_QUOTA_PDQ_ENFD)) {
      why = dir.string() + " is on XFS mounted without prjquota";
      return std::nullopt;
    }
    return std::string(kKindXfs);
  }
  // ext4 answers Q_GETINFO for a quota type only while that type is turned on
  // (mounted with prjquota, or the quota feature with project quotas enabled).
  dqinfo info{};
  if (quotactlFd(fd.get(), QCMD(Q_GETINFO, PRJQUOTA), 0, &info) != 0) {
    why = "ext4 quotactl(Q_GETINFO, PRJQUOTA) on " + dir.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  return std::string(kKindExt4);
}

void setProjectId(int dir_fd, const std::filesystem::path& dir, std::uint32_t project) {
  fsxattr attr{};
  if (::ioctl(dir_fd, FS_IOC_FSGETXATTR, &attr) != 0)
    throwErrno("FS_IOC_FSGETXATTR " + dir.string());
  attr.fsx_projid = project;
  attr.fsx_xflags |= FS_XFLAG_PROJINHERIT;
  if (::ioctl(dir_fd, FS_IOC_FSSETXATTR, &attr) != 0)
    throwErrno("FS_IOC_FSSETXATTR " + dir.string());
}

std::uint32_t projectId(int dir_fd, const std::filesystem::path& dir) {
  fsxattr attr{};
  if (::ioctl(dir_fd, FS_IOC_FSGETXATTR, &attr) != 0)
    throwErrno("FS_IOC_FSGETXATTR " + dir.string());
  return attr.fsx_projid;
}

void setProjectLimit(int fs_fd, std::uint32_t project, std::uint64_t bytes) {
  // The generic quota interface serves XFS too; block limits are in 1 KiB units.
  dqblk limit{};
  limit.dqb_bhardlimit = (bytes + 1023) / 1024;
  limit.dqb_bsoftlimit = limit.dqb_bhardlimit;
  limit.dqb_valid = QIF_BLIMITS;
  if (quotactlFd(fs_fd, QCMD(Q_SETQUOTA, PRJQUOTA), static_cast<int>(project), &limit) != 0) {
    throwErrno("quotactl(Q_SETQUOTA) for project " + std::to_string(project));
  }
}

std::uint64_t projectUsage(int fs_fd, std::uint32_t project) {
  dqblk usage{};
  if (quotactlFd(fs_fd, QCMD(Q_GETQUOTA, PRJQUOTA), static_cast<int>(project), &usage) != 0) {
    throwErrno("quotactl(Q_GETQUOTA) for project " + std::to_string(project));
  }
  return usage.dqb_curspace;
}

}  // namespace plng::node::storage_detail
