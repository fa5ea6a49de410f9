#include "node/rootfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <vector>

#include "base/file.h"
#include "base/scope_guard.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node {
namespace {

// The messages the kernel left in a filesystem context ("e overlayfs: ..."),
// joined, so a failed overlay says why and not only "Invalid argument".
std::string contextLog(int fs_fd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(fs_fd, buf, sizeof buf - 1);
    if (n <= 0) break;
    if (!out.empty()) out += "; ";
    out.append(buf, static_cast<std::size_t>(n));
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

[[noreturn]] void throwFsconfig(int fs_fd, const std::string& what) {
  int err = errno;
  std::string log = contextLog(fs_fd);
  throw SysError(err, what + (log.empty() ? "" : " (" + log + ")"));
}

// Whether overlay takes its lower layer as a file descriptor ("lowerdir+",
// Linux 6.8). Before 6.5 overlayfs parses options the legacy way, strings only
// (EOPNOTSUPP for FSCONFIG_SET_FD); 6.5-6.7 know no "lowerdir+" (EINVAL). Those
// kernels also refuse a lower layer outside the caller's mount namespace
// ("failed to clone lowerpath"), so there the idmapped tree is attached at a
// staging directory for the moment overlay takes its private clone of it.
std::atomic<int> lowerdir_fd_supported{-1};

// Unmounts the staged lower layer (lazily: overlay holds its own clone).
struct StagedLower {
  std::filesystem::path at;
  ~StagedLower() {
    if (!at.empty()) ::umount2(at.c_str(), MNT_DETACH);
  }
};

// Hands the lower layer to the overlay context; fills `staged` when it had to
// attach it at `staging` (unmount after FSCONFIG_CMD_CREATE).
void setLower(int fs_fd, int lower_fd, const std::filesystem::path& staging, StagedLower& staged) {
  if (lowerdir_fd_supported.load() != 0) {
    if (::fsconfig(fs_fd, FSCONFIG_SET_FD, "lowerdir+", nullptr, lower_fd) == 0) {
      lowerdir_fd_supported.store(1);
      return;
    }
    if ((errno != EINVAL && errno != EOPNOTSUPP) || lowerdir_fd_supported.load() == 1) {
      throwFsconfig(fs_fd, "overlay: lowerdir+");
    }
    contextLog(fs_fd);  // drop "unknown parameter"
    lowerdir_fd_supported.store(0);
  }
  if (staging.empty()) {
    throw SysError(EOPNOTSUPP,
                   "overlay: this kernel takes no lower layer by fd, and no staging "
                   "directory was given");
  }
  if (::move_mount(lower_fd, "", AT_FDCWD, staging.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    throwErrno("overlay: attaching the lower layer at " + staging.string());
  }
  staged.at = staging;
  if (::fsconfig(fs_fd, FSCONFIG_SET_STRING, "lowerdir", staging.c_str(), 0) != 0) {
    throwFsconfig(fs_fd, "overlay: lowerdir " + staging.string());
  }
}

struct ImageDirAttrs {
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0755;
};

// Owner and mode of `relative` in the image (defaults when it is not there).
ImageDirAttrs imageDirAttrs(const std::filesystem::path& image, const std::string& relative) {
  ImageDirAttrs attrs;
  struct stat st {};
  std::filesystem::path p = relative.empty() ? image : image / relative;
  if (::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    attrs.uid = st.st_uid;
    attrs.gid = st.st_gid;
    attrs.mode = st.st_mode & 07777;
  }
  return attrs;
}

uid_t shifted(std::uint32_t id, const IdRange& ids) {
  return id < ids.count ? ids.first + id : ids.first;  // unmappable: root's
}

std::vector<std::string> pathParts(const std::string& relative) {
  std::vector<std::string> parts;
  for (const auto& part : std::filesystem::path(relative)) {
    std::string s = part.string();
    if (s.empty() || s == "." || s == "/") continue;
    if (s == "..") throw SysError(EINVAL, "upper file path " + relative);
    parts.push_back(s);
  }
  if (parts.empty()) throw SysError(EINVAL, "upper file path " + relative);
  return parts;
}

}  // namespace

UniqueFd openIdmappedTree(const std::filesystem::path& dir, int userns_fd) {
  UniqueFd tree(::open_tree(AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
  if (!tree) throwErrno("open_tree " + dir.string());
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY;
  attr.userns_fd = static_cast<std::uint64_t>(userns_fd);
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    throwErrno("idmap " + dir.string());
  }
  return tree;
}

UniqueFd makeSliverOverlay(const std::filesystem::path& image, const SliverDirs& dirs,
                           int userns_fd, const std::filesystem::path& staging) {
  UniqueFd lower = openIdmappedTree(image, userns_fd);
  UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fs) throwErrno("fsopen overlay");
  StagedLower staged;
  setLower(fs.get(), lower.get(), staging, staged);
  if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, "upperdir", dirs.upper.c_str(), 0) != 0) {
    throwFsconfig(fs.get(), "overlay: upperdir " + dirs.upper.string());
  }
  if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, "workdir", dirs.work.c_str(), 0) != 0) {
    throwFsconfig(fs.get(), "overlay: workdir " + dirs.work.string());
  }
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    throwFsconfig(fs.get(), "overlay of " + image.string() + " and " + dirs.upper.string());
  }
  // nodev: devices reach a sliver only as the bind mounts of its /dev.
  UniqueFd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV));
  if (!mnt) throwFsconfig(fs.get(), "fsmount overlay of " + image.string());
  return mnt;
}

void chownUpperRoot(const std::filesystem::path& upper, const std::filesystem::path& image,
                    const IdRange& ids) {
  ImageDirAttrs attrs = imageDirAttrs(image, "");
  if (::lchown(upper.c_str(), shifted(attrs.uid, ids), shifted(attrs.gid, ids)) != 0) {
    throwErrno("chown " + upper.string());
  }
  if (::chmod(upper.c_str(), attrs.mode) != 0) throwErrno("chmod " + upper.string());
}

void writeUpperFile(const std::filesystem::path& upper, const std::filesystem::path& image,
                    const IdRange& ids, const std::string& relative, const std::string& content,
                    mode_t mode) {
  // The upper layer belongs to the sliver: any component may be a symlink its
  // root planted to make sliverd write elsewhere. Walk it by file descriptor,
  // never following a link.
  std::vector<std::string> parts = pathParts(relative);

  UniqueFd dir(::open(upper.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) throwErrno("open " + upper.string());
  std::string walked;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    walked += (walked.empty() ? "" : "/") + parts[i];
    UniqueFd next(
        ::openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next && errno == ENOENT) {
      ImageDirAttrs attrs = imageDirAttrs(image, walked);
      if (::mkdirat(dir.get(), parts[i].c_str(), attrs.mode) != 0 && errno != EEXIST) {
        throwErrno("mkdir " + (upper / walked).string());
      }
      next.reset(
          ::openat(dir.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next) throwErrno("open " + (upper / walked).string());
      if (::fchown(next.get(), shifted(attrs.uid, ids), shifted(attrs.gid, ids)) != 0 ||
          ::fchmod(next.get(), attrs.mode) != 0) {
        throwErrno("chown " + (upper / walked).string());
      }
    } else if (!next) {
      throwErrno("open " + (upper / walked).string() + " (not a directory, or a symlink)");
    }
    dir = std::move(next);
  }

  const std::string& name = parts.back();
  std::string tmp = "." + name + ".plng-tmp";
  ::unlinkat(dir.get(), tmp.c_str(), 0);
  UniqueFd file(
      ::openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  std::filesystem::path target = upper / relative;
  if (!file) throwErrno("create " + target.string());
  base::ScopeGuard remove_tmp([&] { ::unlinkat(dir.get(), tmp.c_str(), 0); });
  base::writeAll(file.get(), content, target.string());
  if (::fchown(file.get(), ids.first, ids.first) != 0 || ::fchmod(file.get(), mode) != 0) {
    throwErrno("chown " + target.string());
  }
  // rename replaces a symlink planted at the target instead of following it.
  if (::renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) {
    throwErrno("rename into " + target.string());
  }
  remove_tmp.dismiss();
}

void removeUpperFile(const std::filesystem::path& upper, const std::string& relative) {
  std::vector<std::string> parts = pathParts(relative);
  UniqueFd dir(::open(upper.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) throwErrno("open " + upper.string());
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    UniqueFd next(
        ::openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return;  // nothing of ours
      throwErrno("open " + (upper / relative).parent_path().string());
    }
    dir = std::move(next);
  }
  if (::unlinkat(dir.get(), parts.back().c_str(), 0) != 0 && errno != ENOENT) {
    throwErrno("remove " + (upper / relative).string());
  }
}

}  // namespace plng::node
