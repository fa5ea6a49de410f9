// Configuration files: `key = value` lines read against a table of documented keys.
//
//   # a comment: '#' at the start of a line, or after a blank
//   max_slices = 10        # a trailing comment
//   tls_cert = "/etc/plc/cert.pem"   (surrounding double quotes are removed)
//
// A ConfigTable<Config> names every key a program reads, with its type (string,
// integer in a range, boolean), its meaning (the comment print-config writes
// above it), its default (the member's value in a default-constructed Config)
// and optionally a check of the value; rules across keys are checked once the
// whole file is read. Unknown keys, a key set twice and bad values are refused
// with a ConfigError naming the file, the line and the key:
//   /etc/plcd.conf:12: db_pool_size: 'abc' is not an integer
// docs/architecture.md (Configuration) says why this is not Boost.Program_options.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace plng::base {

// A config file, a line or a value that cannot be used. The message names where.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// One line of a config file.
struct ConfigLine {
  int number = 0;     // 1-based
  std::string text;   // as written
  std::string key;    // empty for a blank line or a comment
  std::string value;  // blanks, comment and surrounding quotes removed
};

// Splits `text` into lines. Throws ConfigError "<origin>:<line>: expected 'key = value', ..."
// for a line that is neither blank, a comment nor an entry.
std::vector<ConfigLine> splitConfigLines(std::string_view text, std::string_view origin);

// The line `key = value`, which splitConfigLines reads back as `value`. Throws
// std::invalid_argument for a value it cannot hold: a control character, a blank
// or a quote at either end, or a '#' after a blank.
std::string formatConfigLine(std::string_view key, std::string_view value);

// true/yes/on/1 and false/no/off/0; nullopt for any other word.
std::optional<bool> parseBooleanWord(std::string_view text);

// Value parsers for ConfigTable (and anything reading config values): they throw
// std::invalid_argument saying what is wrong with the value; the caller adds where.
// An integer must lie in `allowed`; `representable` is the range of the type it
// is stored in, which the message leaves unsaid ("must be at least 1, not 0").
struct IntegerRange {
  std::int64_t min = std::numeric_limits<std::int64_t>::min();
  std::int64_t max = std::numeric_limits<std::int64_t>::max();
};
std::int64_t parseConfigInteger(std::string_view text, IntegerRange allowed,
                                IntegerRange representable = {});
bool parseConfigBoolean(std::string_view text);

// A check for a string key that must not be empty: throws "must not be empty".
void requireNotEmpty(const std::string& value);

// The text of the config file at `path`; throws ConfigError "cannot read config file <path>".
std::string readConfigFile(const std::string& path);

// "# <program> configuration. ..." followed by each key's meaning and `key = value`,
// sorted by key: what print-config prints.
struct DocumentedKey {
  std::string name;
  std::string meaning;
  std::string default_value;
};
std::string documentConfig(std::string_view program, std::vector<DocumentedKey> keys);

// "<origin>:<line>: " for a key set on `line`, "<origin>: " when line is 0.
std::string configLocation(std::string_view origin, int line);

template <class Config>
class ConfigTable {
 public:
  // Checks one parsed value; throws std::invalid_argument saying what is wrong.
  template <class T>
  using Check = std::function<void(const T& value)>;

  // `program` names the command in messages ("plcd print-config lists every key").
  explicit ConfigTable(std::string program) : program_(std::move(program)) {}

  ConfigTable& string(std::string name, std::string Config::*member, std::string meaning,
                      Check<std::string> check = {}) {
    return add(
        std::move(name), std::move(meaning),
        [member, check](Config& config, std::string_view text) {
          std::string value(text);
          if (check) check(value);
          config.*member = std::move(value);
        },
        [member](const Config& config) { return config.*member; });
  }

  // An integer key accepts min..max (the member type's range unless narrower).
  template <std::integral T>
  requires(!std::same_as<T, bool>) ConfigTable& integer(std::string name, T Config::*member,
                                                        std::string meaning,
                                                        std::int64_t min = lowest<T>(),
                                                        std::int64_t max = highest<T>(),
                                                        std::type_identity_t<Check<T>> check = {}) {
    const IntegerRange representable{lowest<T>(), highest<T>()};
    const IntegerRange allowed{std::max(min, representable.min), std::min(max, representable.max)};
    return add(
        std::move(name), std::move(meaning),
        [member, allowed, representable, check](Config& config, std::string_view text) {
          const T value = static_cast<T>(parseConfigInteger(text, allowed, representable));
          if (check) check(value);
          config.*member = value;
        },
        [member](const Config& config) { return std::to_string(config.*member); });
  }

  ConfigTable& boolean(std::string name, bool Config::*member, std::string meaning) {
    return add(
        std::move(name), std::move(meaning),
        [member](Config& config, std::string_view text) {
          config.*member = parseConfigBoolean(text);
        },
        [member](const Config& config) { return std::string(config.*member ? "true" : "false"); });
  }

  // A rule across keys, checked after the whole file is read: when `holds` is false
  // the error is `message` at the last line that set one of `keys`.
  ConfigTable& rule(std::vector<std::string> keys, std::function<bool(const Config&)> holds,
                    std::string message) {
    rules_.push_back(Rule{std::move(keys), std::move(holds), std::move(message)});
    return *this;
  }

  // Reads `text` over the defaults. Throws ConfigError.
  Config parse(std::string_view text, std::string_view origin) const {
    Config config;
    std::map<std::string, int, std::less<>> set_on_line;
    for (const ConfigLine& line : splitConfigLines(text, origin)) {
      if (line.key.empty()) continue;
      const std::string where = configLocation(origin, line.number);
      if (auto earlier = set_on_line.find(line.key); earlier != set_on_line.end()) {
        throw ConfigError(where + line.key + ": already set on line " +
                          std::to_string(earlier->second));
      }
      assignAt(config, line.key, line.value, where);
      set_on_line.emplace(line.key, line.number);
    }
    for (const Rule& rule : rules_) {
      if (rule.holds(config)) continue;
      int line = 0;
      for (const std::string& key : rule.keys) {
        if (auto it = set_on_line.find(key); it != set_on_line.end()) {
          line = std::max(line, it->second);
        }
      }
      throw ConfigError(configLocation(origin, line) + rule.message);
    }
    return config;
  }

  Config load(const std::string& path) const { return parse(readConfigFile(path), path); }

  // Sets one key from elsewhere than a file (a command-line option named by
  // `origin`, e.g. "--listen"), checked as in a file. Throws ConfigError.
  void assign(Config& config, std::string_view key, std::string_view value,
              std::string_view origin) const {
    assignAt(config, key, value, std::string(origin) + ": ");
  }

  // A key's value as print-config writes it.
  std::string value(const Config& config, std::string_view key) const {
    return find(key, "").format(config);
  }

  std::string documentedDefaults() const {
    const Config defaults;
    std::vector<DocumentedKey> documented;
    for (const Key& key : keys_)
      documented.push_back({key.name, key.meaning, key.format(defaults)});
    return documentConfig(program_, std::move(documented));
  }

 private:
  struct Key {
    std::string name;
    std::string meaning;
    std::function<void(Config&, std::string_view)> assign;  // throws std::invalid_argument
    std::function<std::string(const Config&)> format;
  };
  struct Rule {
    std::vector<std::string> keys;
    std::function<bool(const Config&)> holds;
    std::string message;
  };

  template <class T>
  static constexpr std::int64_t lowest() {
    return static_cast<std::int64_t>(std::numeric_limits<T>::min());
  }
  template <class T>
  static constexpr std::int64_t highest() {
    if constexpr (std::cmp_greater(std::numeric_limits<T>::max(),
                                   std::numeric_limits<std::int64_t>::max())) {
      return std::numeric_limits<std::int64_t>::max();
    } else {
      return static_cast<std::int64_t>(std::numeric_limits<T>::max());
    }
  }

  ConfigTable& add(std::string name, std::string meaning,
                   std::function<void(Config&, std::string_view)> assign,
                   std::function<std::string(const Config&)> format) {
    keys_.push_back(Key{std::move(name), std::move(meaning), std::move(assign), std::move(format)});
    return *this;
  }

  const Key& find(std::string_view name, const std::string& where) const {
    for (const Key& key : keys_) {
      if (key.name == name) return key;
    }
    throw ConfigError(where + "unknown key '" + std::string(name) + "' (" + program_ +
                      " print-config lists every key)");
  }

  void assignAt(Config& config, std::string_view name, std::string_view value,
                const std::string& where) const {
    const Key& key = find(name, where);
    try {
      key.assign(config, value);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(where + key.name + ": " + e.what());
    }
  }

  std::string program_;
  std::vector<Key> keys_;
  std::vector<Rule> rules_;
};

}  // namespace plng::base
