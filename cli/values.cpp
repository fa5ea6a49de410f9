#include "cli/values.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "base/config.h"
#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"
#include "cli/errors.h"

namespace plcctl {

namespace {

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

bool allDigits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// Reads exactly `width` digits at `pos`; false if they are not there.
bool readDigits(std::string_view text, std::size_t& pos, std::size_t width, int& out) {
  if (pos + width > text.size()) return false;
  const char* first = text.data() + pos;
  auto [end, ec] = std::from_chars(first, first + width, out);
  if (ec != std::errc() || end != first + width) return false;
  pos += width;
  return true;
}

bool expect(std::string_view text, std::size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

std::optional<std::int64_t> parseIsoTime(std::string_view text) {
  namespace chr = std::chrono;
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!readDigits(text, pos, 4, year) || !expect(text, pos, '-') ||
      !readDigits(text, pos, 2, month) || !expect(text, pos, '-') ||
      !readDigits(text, pos, 2, day)) {
    return std::nullopt;
  }
  const chr::year_month_day date{chr::year{year}, chr::month{static_cast<unsigned>(month)},
                                 chr::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return std::nullopt;

  std::int64_t offset_seconds = 0;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ') return std::nullopt;
    ++pos;
    if (!readDigits(text, pos, 2, hour) || !expect(text, pos, ':') ||
        !readDigits(text, pos, 2, minute)) {
      return std::nullopt;
    }
    if (pos < text.size() && text[pos] == ':' && !readDigits(text, ++pos, 2, second)) {
      return std::nullopt;
    }
    if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
    if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
      ++pos;
    } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
      const int sign = text[pos] == '-' ? -1 : 1;
      int offset_hours = 0, offset_minutes = 0;
      ++pos;
      if (!readDigits(text, pos, 2, offset_hours)) return std::nullopt;
      expect(text, pos, ':');
      if (!readDigits(text, pos, 2, offset_minutes)) return std::nullopt;
      if (offset_hours > 14 || offset_minutes > 59) return std::nullopt;
      offset_seconds = sign * (offset_hours * 3600 + offset_minutes * 60);
    }
    if (pos != text.size()) return std::nullopt;
  }
  const std::int64_t days = chr::sys_days{date}.time_since_epoch().count();
  return days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
}

}  // namespace

std::int64_t parseInteger(std::string_view text, std::string_view what, std::int64_t min,
                          std::int64_t max) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && (value < min || value > max))) {
    throw UsageError(std::string(what) + ": " + quoted(text) + " is out of range (" +
                     std::to_string(min) + ".." + std::to_string(max) + ")");
  }
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw UsageError(std::string(what) + ": expected an integer, got " + quoted(text));
  }
  return value;
}

std::int32_t parseInt32(std::string_view text, std::string_view what, std::int32_t min) {
  return static_cast<std::int32_t>(parseInteger(text, what, min, INT32_MAX));
}

bool parseBool(std::string_view text, std::string_view what) {
  if (auto value = plng::base::parseBooleanWord(text)) return *value;
  throw UsageError(std::string(what) + ": expected true or false, got " + quoted(text));
}

std::int64_t parseDuration(std::string_view text, std::string_view what,
                           std::int64_t bare_unit_seconds) {
  static constexpr std::string_view kUnitNames = "smhdw";
  static constexpr std::array<std::int64_t, 5> kUnitSeconds = {1, 60, 3600, 86400, 7 * 86400};
  std::int64_t unit = bare_unit_seconds;
  std::string_view number = text;
  if (auto found = text.empty() ? std::string_view::npos : kUnitNames.find(text.back());
      found != std::string_view::npos) {
    unit = kUnitSeconds[found];
    number.remove_suffix(1);
  }
  if (!allDigits(number)) {
    throw UsageError(std::string(what) + ": expected a duration like 30s, 15m, 2h or 14d, got " +
                     quoted(text));
  }
  return parseInteger(number, what, 0, INT64_MAX / (7 * 86400)) * unit;
}

std::int64_t parseTime(std::string_view text, std::string_view what) {
  if (allDigits(text)) return parseInteger(text, what, 0);
  if (auto seconds = parseIsoTime(text)) return *seconds;
  throw UsageError(std::string(what) +
                   ": expected a date (2026-12-31), a date and time (2026-12-31T18:00, UTC "
                   "unless followed by Z or +HH:MM) or unix seconds, got " +
                   quoted(text));
}

std::int64_t parseTimeOrAgo(std::string_view text, std::string_view what, std::int64_t now) {
  if (!text.empty() && !allDigits(text) && allDigits(text.substr(0, text.size() - 1)) &&
      std::string_view("smhdw").find(text.back()) != std::string_view::npos) {
    return now - parseDuration(text, what);
  }
  return parseTime(text, what);
}

std::int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string formatTime(std::int64_t unix_seconds) {
  if (unix_seconds == 0) return "-";
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  std::array<char, 32> text{};
  if (gmtime_r(&t, &tm) == nullptr ||
      std::strftime(text.data(), text.size(), "%Y-%m-%d %H:%M", &tm) == 0) {
    return std::to_string(unix_seconds);
  }
  return text.data();
}

std::string formatDuration(std::int64_t seconds) {
  if (seconds < 0) seconds = -seconds;
  if (seconds >= 2 * 86400) return std::to_string(seconds / 86400) + "d";
  if (seconds >= 2 * 3600) return std::to_string(seconds / 3600) + "h";
  if (seconds >= 2 * 60) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

std::string formatExpiry(std::int64_t expires_at, std::int64_t now) {
  if (expires_at == 0) return "-";
  const std::int64_t left = expires_at - now;
  if (left <= 0) return "expired";
  std::string text = "in ";
  if (left >= 86400) {
    text += std::to_string(left / 86400) + "d " + std::to_string(left % 86400 / 3600) + "h";
  } else if (left >= 3600) {
    text += std::to_string(left / 3600) + "h " + std::to_string(left % 3600 / 60) + "m";
  } else {
    text += std::to_string(std::max<std::int64_t>(left / 60, 1)) + "m";
  }
  return left < kExpiryWarning ? text + " (!)" : text;
}

std::string formatTimeFromNow(std::int64_t unix_seconds, std::int64_t now) {
  if (unix_seconds == 0) return "-";
  const std::int64_t delta = unix_seconds - now;
  return formatTime(unix_seconds) + (delta >= 0 ? " (in " + formatDuration(delta) + ")"
                                                : " (" + formatDuration(delta) + " ago)");
}

std::string parseHex(std::string_view text, std::string_view what) {
  text = plng::base::trim(text);
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  if (!text.empty()) {
    try {
      return plng::base::fromHex(text);
    } catch (const std::invalid_argument&) {
    }
  }
  throw UsageError(std::string(what) + ": expected hex digits, got " + quoted(text));
}

std::string readFile(const std::filesystem::path& path) {
  try {
    return plng::base::readFile(path);
  } catch (const plng::base::SysError& error) {
    throw LocalError("cannot read " + path.string() + ": " + error.code().message());
  }
}

std::string firstLine(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  return std::string(line);
}

void writeFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode) {
  try {
    plng::base::writeFileAtomic(path, data, static_cast<mode_t>(mode));
  } catch (const plng::base::SysError& error) {
    throw LocalError("cannot write " + path.string() + ": " + error.what());
  }
}

}  // namespace plcctl
