#include "base/proc.h"

#include <cerrno>
#include <charconv>

#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"

namespace plng::base {

namespace {

// procfs files read here are a few KiB; a larger one is not what it claims.
constexpr std::size_t kMaxStatBytes = 4096;
constexpr std::size_t kMaxCgroupBytes = 1 << 20;
constexpr std::size_t kMaxMountInfoBytes = 64 << 20;

[[noreturn]] void malformed(std::string_view file, std::size_t line_number, std::string_view line) {
  throw SysError(EPROTO, "malformed " + std::string(file) + " line " + std::to_string(line_number) +
                             ": '" + std::string(line) + "'");
}

template <typename Number>
bool parseNumber(std::string_view text, Number& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

// The lines of `text`, without a final empty one.
std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out = split(text, '\n');
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

}  // namespace

std::string unescapeMountInfoField(std::string_view field) {
  auto octal = [&](std::size_t i) {
    return i < field.size() && field[i] >= '0' && field[i] <= '7';
  };
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3) && field[i + 1] <= '3') {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

std::vector<MountInfoEntry> parseMountInfo(std::string_view text) {
  std::vector<MountInfoEntry> entries;
  std::size_t number = 0;
  for (const std::string& line : lines(text)) {
    ++number;
    const std::vector<std::string> fields = split(line, ' ');
    // Six fixed fields, optional ones, "-", then three more.
    std::size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash >= fields.size() || fields.size() != dash + 4) {
      malformed("mountinfo", number, line);
    }
    MountInfoEntry entry;
    const std::string& devno = fields[2];
    const auto colon = devno.find(':');
    if (!parseNumber(std::string_view(fields[0]), entry.mount_id) ||
        !parseNumber(std::string_view(fields[1]), entry.parent_id) || colon == std::string::npos ||
        !parseNumber(std::string_view(devno).substr(0, colon), entry.major) ||
        !parseNumber(std::string_view(devno).substr(colon + 1), entry.minor)) {
      malformed("mountinfo", number, line);
    }
    entry.root = unescapeMountInfoField(fields[3]);
    entry.mount_point = unescapeMountInfoField(fields[4]);
    entry.mount_options = fields[5];
    entry.optional_fields.assign(fields.begin() + 6, fields.begin() + static_cast<long>(dash));
    entry.fstype = unescapeMountInfoField(fields[dash + 1]);
    entry.source = unescapeMountInfoField(fields[dash + 2]);
    entry.super_options = unescapeMountInfoField(fields[dash + 3]);
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::vector<MountInfoEntry> readMountInfo(const std::filesystem::path& file) {
  return parseMountInfo(readFile(file, kMaxMountInfoBytes));
}

ProcStat parseProcStat(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  const auto open = text.find(" (");
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open + 1) {
    malformed("/proc/<pid>/stat", 1, text);
  }
  ProcStat stat;
  const std::vector<std::string> rest = split(text.substr(close + 1), ' ');
  // rest[0] is the empty text before the blank after ')'; rest[1] is field 3.
  auto field = [&](std::size_t n) -> std::string_view {
    if (n - 2 >= rest.size()) malformed("/proc/<pid>/stat", 1, text);
    return rest[n - 2];
  };
  if (!rest.empty() && !rest[0].empty()) malformed("/proc/<pid>/stat", 1, text);
  const std::string_view state = field(3);
  bool ok = parseNumber(text.substr(0, open), stat.pid) && state.size() == 1 &&
            parseNumber(field(4), stat.ppid) && parseNumber(field(5), stat.pgrp) &&
            parseNumber(field(6), stat.session) && parseNumber(field(7), stat.tty_nr) &&
            parseNumber(field(14), stat.utime) && parseNumber(field(15), stat.stime) &&
            parseNumber(field(16), stat.cutime) && parseNumber(field(17), stat.cstime) &&
            parseNumber(field(22), stat.start_time);
  if (!ok) malformed("/proc/<pid>/stat", 1, text);
  stat.comm = std::string(text.substr(open + 2, close - open - 2));
  stat.state = state[0];
  return stat;
}

std::optional<ProcStat> readProcStat(pid_t pid, const std::filesystem::path& proc) {
  std::optional<std::string> text;
  try {
    text = readFileIfExists(proc / std::to_string(pid) / "stat", kMaxStatBytes);
  } catch (const SysError& e) {
    // A process that exits while its stat is read.
    if (e.err() == ESRCH) return std::nullopt;
    throw;
  }
  if (!text) return std::nullopt;
  return parseProcStat(*text);
}

std::vector<ProcCgroupEntry> parseProcCgroup(std::string_view text) {
  std::vector<ProcCgroupEntry> entries;
  std::size_t number = 0;
  for (const std::string& line : lines(text)) {
    ++number;
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    ProcCgroupEntry entry;
    if (second == std::string::npos ||
        !parseNumber(std::string_view(line).substr(0, first), entry.hierarchy_id)) {
      malformed("/proc/<pid>/cgroup", number, line);
    }
    const std::string controllers = line.substr(first + 1, second - first - 1);
    if (!controllers.empty()) entry.controllers = split(controllers, ',');
    entry.path = line.substr(second + 1);
    // A removed cgroup2 cgroup that still holds the process (a zombie's) is shown
    // with this suffix; the path is what it was.
    constexpr std::string_view kDeleted = " (deleted)";
    if (entry.path.size() > kDeleted.size() && entry.path.ends_with(kDeleted)) {
      entry.path.resize(entry.path.size() - kDeleted.size());
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::vector<ProcCgroupEntry> readProcCgroup(pid_t pid, const std::filesystem::path& proc) {
  return parseProcCgroup(readFile(proc / std::to_string(pid) / "cgroup", kMaxCgroupBytes));
}

}  // namespace plng::base
