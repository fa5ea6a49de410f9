#include "cli/values.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "base/config.h"
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

std::string formatTimeFromNow(std::int64_t unix_seconds, std::int64_t now) {
  if (unix_seconds == 0) return "-";
  const std::int64_t delta = unix_seconds - now;
  return formatTime(unix_seconds) + (delta >= 0 ? " (in " + formatDuration(delta) + ")"
                                                : " (" + formatDuration(delta) + " ago)");
}

std::string toHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 0xf]);
  }
  return hex;
}

std::string parseHex(std::string_view text, std::string_view what) {
  text = trim(text);
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string bytes;
  for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
    const int high = nibble(text[i]);
    const int low = nibble(text[i + 1]);
    if (high < 0 || low < 0) break;
    bytes.push_back(static_cast<char>(high * 16 + low));
  }
  if (text.empty() || bytes.size() * 2 != text.size()) {
    throw UsageError(std::string(what) + ": expected hex digits, got " + quoted(text));
  }
  return bytes;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw LocalError("cannot read " + path.string() + ": " + std::strerror(errno));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw LocalError("cannot read " + path.string() + ": " + std::strerror(errno));
  return content.str();
}

std::string firstLine(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  return std::string(line);
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

namespace {

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace

void writeFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode) {
  const std::string target = path.string();
  std::string temp = target + ".XXXXXX";
  auto fail = [&](const std::string& step) {
    const int saved = errno;
    ::unlink(temp.c_str());
    throw LocalError("cannot write " + target + ": " + step + ": " + std::strerror(saved));
  };
  UniqueFd fd(::mkostemp(temp.data(), O_CLOEXEC));
  if (fd.get() < 0) {
    throw LocalError("cannot write " + target + ": " + std::strerror(errno));
  }
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) fail("chmod");
  for (std::size_t done = 0; done < data.size();) {
    const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) fail("fsync");
  if (::close(fd.release()) != 0) fail("close");
  if (::rename(temp.c_str(), target.c_str()) != 0) fail("rename");
}

}  // namespace plcctl
