// Human-friendly input and output values: integers, booleans, times and
// durations, hex, and the files a command reads its data from. Parsers throw
// UsageError naming the option (`what`) so the message says what to fix.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/strings.h"

namespace plcctl {

std::int64_t parseInteger(std::string_view text, std::string_view what,
                          std::int64_t min = INT64_MIN, std::int64_t max = INT64_MAX);
std::int32_t parseInt32(std::string_view text, std::string_view what, std::int32_t min = 0);
// true/false, yes/no, on/off, 1/0.
bool parseBool(std::string_view text, std::string_view what);

// A duration: a number with an optional unit s, m, h, d or w ("90", "15m",
// "14d"); a bare number is `bare_unit_seconds` units.
std::int64_t parseDuration(std::string_view text, std::string_view what,
                           std::int64_t bare_unit_seconds = 1);

// An absolute time as unix seconds: unix seconds ("1798675200"), an ISO date
// ("2026-12-31", midnight UTC) or date and time ("2026-12-31T18:00",
// "2026-12-31 18:00:30", optionally with "Z" or "+02:00"; UTC when absent).
std::int64_t parseTime(std::string_view text, std::string_view what);
// Like parseTime, and also a duration meaning that long before `now` ("2h").
std::int64_t parseTimeOrAgo(std::string_view text, std::string_view what, std::int64_t now);

std::int64_t unixNow();

// "2026-11-23 10:00" in UTC; "-" for 0 (unset).
std::string formatTime(std::int64_t unix_seconds);
// formatTime plus how far it is from now: "2026-12-31 00:00 (in 38d)".
std::string formatTimeFromNow(std::int64_t unix_seconds, std::int64_t now);
// "38d", "5h", "12m", "40s": the largest whole unit.
std::string formatDuration(std::int64_t seconds);
// How long until a slice expires, for `slice list`: "in 38d", "in 3d 4h (!)" within
// kExpiryWarning (when PLC mails its first reminder, by default), "in 5h 12m (!)",
// "expired"; "-" for 0 (unset).
inline constexpr std::int64_t kExpiryWarning = 7 * 86400;
std::string formatExpiry(std::int64_t expires_at, std::int64_t now);

// Hex digits (either case, optional "0x") to bytes.
std::string parseHex(std::string_view text, std::string_view what);

// The whole file (plng::base::readFile). Throws LocalError naming the file
// when it cannot be read: plcctl's errors say "cannot read <file>: <why>".
std::string readFile(const std::filesystem::path& path);
// The first line of a file or stream text, without its line ending.
std::string firstLine(std::string_view text);

// Writes `data` to `path` atomically (plng::base::writeFileAtomic, durable)
// with `mode`. Throws LocalError naming the file.
void writeFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode);

}  // namespace plcctl
