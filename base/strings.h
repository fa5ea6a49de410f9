// Small text helpers every module needs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace plng::base {

// `text` without leading and trailing blanks (space, tab, CR, LF).
std::string_view trim(std::string_view text);

// The parts of `text` between each `separator`: "a,,b" gives {"a", "", "b"}, ""
// gives {""}.
std::vector<std::string> split(std::string_view text, char separator);

// Bytes as lowercase hex digits, two a byte.
std::string toHex(std::string_view bytes);

// Hex digits (either case, no prefix or blanks) as bytes. Throws
// std::invalid_argument for an odd length or a character that is not a hex digit.
std::string fromHex(std::string_view hex);

// `text` as a JSON string literal, quotes included: `"`, `\` and control
// characters escaped (\n, \t, \r or \u00XX); other bytes as they are.
std::string jsonQuoted(std::string_view text);

}  // namespace plng::base
