#include "base/config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "base/strings.h"

namespace plng::base {

namespace {

bool isBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Where a comment starts: a '#' first on the line or after a blank, so that a value
// may hold a '#' of its own ("password=a#b" in a connection string).
std::size_t commentStart(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || isBlank(line[i - 1]))) return i;
  }
  return std::string_view::npos;
}

std::string_view unquote(std::string_view value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
    value = value.substr(1, value.size() - 2);
  }
  return value;
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

}  // namespace

std::string configLocation(std::string_view origin, int line) {
  std::string where(origin);
  if (line > 0) where += ":" + std::to_string(line);
  return where + ": ";
}

std::vector<ConfigLine> splitConfigLines(std::string_view text, std::string_view origin) {
  std::vector<ConfigLine> lines;
  int number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view raw = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    ConfigLine line{.number = ++number, .text = std::string(raw), .key = {}, .value = {}};
    const std::string_view content = trim(raw.substr(0, commentStart(raw)));
    if (!content.empty()) {
      const std::size_t eq = content.find('=');
      const std::string_view key =
          eq == std::string_view::npos ? std::string_view() : trim(content.substr(0, eq));
      if (key.empty()) {
        throw ConfigError(configLocation(origin, line.number) + "expected 'key = value', got " +
                          quoted(content));
      }
      line.key = std::string(key);
      line.value = std::string(unquote(trim(content.substr(eq + 1))));
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string formatConfigLine(std::string_view key, std::string_view value) {
  const bool control = std::any_of(value.begin(), value.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  auto edge = [](char c) { return isBlank(c) || c == '"'; };
  const bool edges = !value.empty() && (edge(value.front()) || edge(value.back()));
  if (control || edges || commentStart(value) != std::string_view::npos) {
    throw std::invalid_argument(std::string(key) + ": " + quoted(value) +
                                " cannot be written to a config file");
  }
  return std::string(key) + " = " + std::string(value);
}

std::optional<bool> parseBooleanWord(std::string_view text) {
  for (std::string_view word : {"true", "yes", "on", "1"}) {
    if (text == word) return true;
  }
  for (std::string_view word : {"false", "no", "off", "0"}) {
    if (text == word) return false;
  }
  return std::nullopt;
}

bool parseConfigBoolean(std::string_view text) {
  if (auto value = parseBooleanWord(text)) return *value;
  throw std::invalid_argument(quoted(text) + " is not true or false");
}

std::int64_t parseConfigInteger(std::string_view text, IntegerRange allowed,
                                IntegerRange representable) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() && error != std::errc::result_out_of_range) {
    throw std::invalid_argument(quoted(text) + " is not an integer");
  }
  if (end != text.data() + text.size()) {
    throw std::invalid_argument(quoted(text) + " is not an integer");
  }
  const bool representable_value =
      error == std::errc() && value >= representable.min && value <= representable.max;
  if (representable_value && value >= allowed.min && value <= allowed.max) return value;
  const bool has_min = allowed.min > representable.min;
  const bool has_max = allowed.max < representable.max;
  if (!has_min && !has_max) throw std::invalid_argument(quoted(text) + " is out of range");
  const std::string range =
      !has_max   ? "at least " + std::to_string(allowed.min)
      : !has_min ? "at most " + std::to_string(allowed.max)
                 : "between " + std::to_string(allowed.min) + " and " + std::to_string(allowed.max);
  throw std::invalid_argument("must be " + range + ", not " + std::string(text));
}

void requireNotEmpty(const std::string& value) {
  if (value.empty()) throw std::invalid_argument("must not be empty");
}

std::string readConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read config file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string documentConfig(std::string_view program, std::vector<DocumentedKey> keys) {
  std::sort(keys.begin(), keys.end(),
            [](const DocumentedKey& a, const DocumentedKey& b) { return a.name < b.name; });
  std::string out =
      "# " + std::string(program) + " configuration. Every key is shown with its default value.\n";
  for (const DocumentedKey& key : keys) {
    out += "\n# " + key.meaning + "\n" + key.name + " = " + key.default_value + "\n";
  }
  return out;
}

}  // namespace plng::base
