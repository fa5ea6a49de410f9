// Small on-disk state files: one "key=value" per line, written atomically.
//
// Values may hold any bytes: '%', '\n' and '\r' are stored percent-escaped
// (%25, %0A, %0D). Used for sliverd's records (id ranges, sliver configs, init
// pids) so that a crash mid-write never leaves half a file.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace plng::node {

using KvMap = std::map<std::string, std::string>;

// Throws SysError (ENOENT when missing) or std::runtime_error naming the file
// and line for a malformed line.
KvMap readKvFile(const std::filesystem::path& path);
// How much a crash of the whole machine (power loss, kernel panic) may cost a
// state file. A crash of sliverd alone never costs anything: the page cache
// keeps every write, and the rename makes it all-or-nothing.
enum class KvDurability {
  // fsync before the rename: after a machine crash the file is the old or the
  // new one, never empty or torn. For state nothing else can rebuild (id ranges).
  kCrashAtomic,
  // No fsync: after a machine crash the file may also be empty (filesystems
  // without ext4's replace-on-rename flush). For records that are meaningless
  // after a reboot (an init pid) or that the reader treats as absent when empty
  // and that are derived again from elsewhere (a sliver's config, from PLC).
  // Saves a disk flush: milliseconds per write on a busy disk.
  kRederivable,
};

// Writes to a temporary file in the same directory and renames it over `path`,
// fsyncing it first for kCrashAtomic.
void writeKvFileAtomic(const std::filesystem::path& path, const KvMap& values,
                       KvDurability durability = KvDurability::kCrashAtomic);

}  // namespace plng::node
