// Small on-disk state files: one "key=value" per line, written atomically.
//
// Values may hold any bytes: '%', '\n' and '\r' are stored percent-escaped
// (%25, %0A, %0D). Used for sliverd's records (id ranges, sliver configs, init
// pids) so that a crash mid-write never leaves half a file.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "base/file.h"

namespace plng::node {

using KvMap = std::map<std::string, std::string>;

// Throws SysError (ENOENT when missing) or std::runtime_error naming the file
// and line for a malformed line.
KvMap readKvFile(const std::filesystem::path& path);
// Writes to a temporary file in the same directory and renames it over `path`
// (base::writeFileAtomic, mode 0600). kDurable for state nothing else can
// rebuild (id ranges); kNoSync for records that are meaningless after a reboot
// (an init pid) or that the reader treats as absent when empty and that are
// derived again from elsewhere (a sliver's config, from PLC).
void writeKvFileAtomic(const std::filesystem::path& path, const KvMap& values,
                       base::Durability durability = base::Durability::kDurable);

}  // namespace plng::node
