// Where plcctl finds PLC and its token: the config file and the precedence
// flag > environment > config file > built-in default.
//
// The config file has the syntax of every config file here (base/config.h):
// `key = value` lines and `#` comments. Keys: plc, token, token_expires_at, tls,
// ca_file; an unknown key is a warning, not an error, so that an older plcctl
// reads a newer one's file. Saving keeps comments and unknown lines, and writes
// the file with mode 0600 since it holds a token.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/config.h"

namespace plcctl {

class ParsedArgs;

inline constexpr std::string_view kDefaultPlc = "127.0.0.1:8620";
inline constexpr std::string_view kDefaultPort = "8620";

class ConfigFile {
 public:
  // Reads `path`; a missing file is an empty config. Throws LocalError when
  // the file cannot be read or a line is not `key = value`.
  static ConfigFile load(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  std::optional<std::string> get(std::string_view key) const;
  // "<path>:<line>: " of the line `get` reads `key` from, for messages.
  std::string where(std::string_view key) const;
  // Throws LocalError for a value a config file line cannot hold (a line break).
  void set(std::string_view key, std::string value);
  void erase(std::string_view key);
  // Creates missing parent directories (0700) and replaces the file
  // atomically with mode 0600. Throws LocalError.
  void save() const;

  // Things the user should hear about: unknown keys, a token readable by
  // other users.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Parses config text; `origin` names it in error messages.
  static ConfigFile parse(std::string_view text, const std::filesystem::path& origin);
  std::string render() const;

 private:
  const plng::base::ConfigLine* lastLineOf(std::string_view key) const;

  std::filesystem::path path_;
  std::vector<plng::base::ConfigLine> lines_;  // text verbatim, for comments and unknown keys
  std::vector<std::string> warnings_;
};

using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
// The process environment; empty variables count as unset.
EnvLookup processEnvironment();

// A resolved setting and where it came from, for messages ("PLCCTL_PLC",
// "--plc", "config file /home/a/.config/plcctl/config", "default").
struct Setting {
  std::string value;
  std::string source;
};

struct ClientSettings {
  std::filesystem::path config_path;
  Setting plc;
  Setting token;                      // value empty: not logged in
  std::int64_t token_expires_at = 0;  // known only for a token from the config file
  bool tls = false;
  std::string ca_file;  // PEM roots for TLS; empty = system roots
};

// --config > $PLCCTL_CONFIG > $XDG_CONFIG_HOME/plcctl/config > ~/.config/plcctl/config.
std::filesystem::path resolveConfigPath(const ParsedArgs& args, const EnvLookup& env);

// Applies flag > environment > config > default for plc and token.
ClientSettings resolveSettings(const ParsedArgs& args, const EnvLookup& env,
                               const ConfigFile& config);

// "host" gets the default port; "host:port", "[v6]:port" and gRPC target URIs
// ("unix:/run/plcd.sock", "dns:///plc.example.org:8620") are kept as they are.
// Throws UsageError for an empty address.
std::string normalizePlcAddress(std::string_view address);

}  // namespace plcctl
