#include "base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/eintr.h"
#include "base/error.h"
#include "base/fd.h"
#include "base/scope_guard.h"

namespace plng::base {

namespace {

// nullopt for ENOENT when `missing_ok`.
std::optional<std::string> read(const std::filesystem::path& path, std::size_t max_bytes,
                                bool missing_ok) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (missing_ok && errno == ENOENT) return std::nullopt;
    throwErrno("open " + path.string());
  }
  return readAll(fd.get(), path.string(), max_bytes);
}

}  // namespace

std::string readAll(int fd, const std::string& what, std::size_t max_bytes) {
  std::string content;
  char buf[65536];
  for (;;) {
    const ssize_t n = retryOnEintr([&] { return ::read(fd, buf, sizeof buf); });
    if (n < 0) throwErrno("read " + what);
    if (n == 0) return content;
    if (static_cast<std::size_t>(n) > max_bytes - content.size()) {
      throw SysError(EFBIG, "read " + what + ": more than " + std::to_string(max_bytes) + " bytes");
    }
    content.append(buf, static_cast<std::size_t>(n));
  }
}

std::string readFile(const std::filesystem::path& path, std::size_t max_bytes) {
  return *read(path, max_bytes, /*missing_ok=*/false);
}

std::optional<std::string> readFileIfExists(const std::filesystem::path& path,
                                            std::size_t max_bytes) {
  return read(path, max_bytes, /*missing_ok=*/true);
}

void writeAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = retryOnEintr([&] { return ::write(fd, data.data(), data.size()); });
    if (n < 0) throwErrno("write " + what);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void syncDirectory(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) ::fsync(fd.get());
}

void writeFileAtomic(const std::filesystem::path& path, std::string_view content, mode_t mode,
                     Durability durability, std::optional<FileOwner> owner) {
  const std::filesystem::path dir =
      path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  // A unique name (O_EXCL): two writers never share a temporary file, and
  // nothing planted at a predictable name is followed.
  std::string tmp = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) throwErrno("create a temporary file for " + path.string());
  ScopeGuard remove_tmp([&] { ::unlink(tmp.c_str()); });
  if (owner && ::fchown(fd.get(), owner->uid, owner->gid) != 0) throwErrno("chown " + tmp);
  // After the chown, which clears set-id bits.
  if (::fchmod(fd.get(), mode) != 0) throwErrno("chmod " + tmp);
  writeAll(fd.get(), content, tmp);
  if (durability != Durability::kNoSync && ::fsync(fd.get()) != 0) throwErrno("fsync " + tmp);
  // close reports the write errors of some filesystems (NFS) that fsync did not.
  if (::close(fd.release()) != 0) throwErrno("close " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throwErrno("rename " + tmp + " to " + path.string());
  }
  remove_tmp.dismiss();
  if (durability == Durability::kDurable) syncDirectory(dir);
}

}  // namespace plng::base
