// Whole files: read in one go, and replaced atomically.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace plng::base {

// Reads the whole file. Throws SysError naming the file: ENOENT and the like
// from open, EFBIG when it holds more than `max_bytes` (for files a hostile
// party could make huge).
std::string readFile(const std::filesystem::path& path,
                     std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

// The same, with nullopt when the file does not exist (ENOENT).
std::optional<std::string> readFileIfExists(
    const std::filesystem::path& path,
    std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

// Reads `fd` to its end (from where it stands), the same way; `what` names the
// file in the SysError. For a file opened relative to a directory or checked
// with fstat first.
std::string readAll(int fd, const std::string& what,
                    std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

// How much a crash of the whole machine (power loss, kernel panic) may cost a
// replaced file. A crash of the writing process alone never costs anything: the
// page cache keeps every write, and the rename makes it all-or-nothing.
enum class Durability {
  // fsync of the file before the rename and of the directory after it: after a
  // machine crash the file is the old or the new one, never empty or torn, and
  // the new one once writeFileAtomic has returned. For state nothing else can
  // rebuild.
  kDurable,
  // fsync of the file before the rename, none of the directory: after a machine
  // crash the file is the old or the new one, never empty or torn, but the new
  // one may be lost. For a change whose loss is safe (and which the next
  // durable write of the same file carries along); saves one disk flush.
  kWholeFile,
  // No fsync: after a machine crash the file may also be empty (filesystems
  // without ext4's replace-on-rename flush). For records that are meaningless
  // after a reboot or that are derived again from elsewhere; saves a disk flush
  // (milliseconds per write on a busy disk).
  kNoSync,
};

struct FileOwner {
  uid_t uid;
  gid_t gid;
};

// Replaces `path` with `content`: written to a fresh temporary file in the same
// directory (".<name>.XXXXXX"), given `mode` (exactly: the umask does not apply)
// and, when asked, `owner`, then renamed over `path`. Readers see the old file
// or the new one, never a part. On failure the temporary file is removed and
// SysError names the step and the file. A symbolic link at `path` is replaced,
// not followed.
void writeFileAtomic(const std::filesystem::path& path, std::string_view content, mode_t mode,
                     Durability durability = Durability::kDurable,
                     std::optional<FileOwner> owner = std::nullopt);

// Writes all of `data` to `fd` (retrying short writes and EINTR); `what` names
// the file in the SysError.
void writeAll(int fd, std::string_view data, const std::string& what);

// fsync of a directory, so that a rename or creation in it survives a machine
// crash. Best effort: a directory that cannot be opened or synced is left as is
// (the rename itself has happened).
void syncDirectory(const std::filesystem::path& dir);

}  // namespace plng::base
