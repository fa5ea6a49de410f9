// What every storage mechanism uses (storage_internal.h): the filesystem's
// space, what is mounted where, the quota ceiling. Both storage.cpp (the
// chooser, and plain directories) and storage_btrfs.cpp build on this file
// and not on each other's.
#include <sys/statvfs.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "node/error.h"
#include "node/storage.h"
#include "node/storage_internal.h"

namespace plng::node {

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
std::string unescapeMountField(const std::string& field) {
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size()) {
      int value = 0;
      bool octal = true;
      for (std::size_t j = 1; j <= 3; ++j) {
        char c = field[i + j];
        octal = octal && c >= '0' && c <= '7';
        value = value * 8 + (c - '0');
      }
      if (octal) {
        out += static_cast<char>(value);
        i += 3;
        continue;
      }
    }
    out += field[i];
  }
  return out;
}
}  // namespace

std::optional<MountEntry> mountAt(const std::filesystem::path& path,
                                  const std::filesystem::path& mountinfo) {
  std::error_code ec;
  const std::filesystem::path want = std::filesystem::weakly_canonical(path, ec);
  if (ec) throw SysError(ec.value(), "resolve " + path.string());
  std::ifstream in(mountinfo);
  if (!in) throwErrno("open " + mountinfo.string());
  std::optional<MountEntry> found;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point, field;
    fields >> id >> parent >> devno >> root >> point;
    while (fields >> field && field != "-") {
    }
    MountEntry entry;
    fields >> entry.fstype >> entry.source;
    // Later lines are mounted on top of earlier ones at the same point.
    if (unescapeMountField(point) == want.string()) {
      entry.source = unescapeMountField(entry.source);
      found = entry;
    }
  }
  return found;
}

}  // namespace storage_detail

}  // namespace plng::node
