#include "cli/client_config.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <system_error>

#include "base/strings.h"
#include "cli/args.h"
#include "cli/errors.h"
#include "cli/values.h"

namespace plcctl {

namespace {

constexpr std::array<std::string_view, 5> kKnownKeys = {"plc", "token", "token_expires_at", "tls",
                                                        "ca_file"};

}  // namespace

ConfigFile ConfigFile::parse(std::string_view text, const std::filesystem::path& origin) {
  ConfigFile config;
  config.path_ = origin;
  try {
    config.lines_ = plng::base::splitConfigLines(text, origin.string());
  } catch (const plng::base::ConfigError& e) {
    throw LocalError(e.what());
  }
  for (const plng::base::ConfigLine& line : config.lines_) {
    if (!line.key.empty() &&
        std::find(kKnownKeys.begin(), kKnownKeys.end(), line.key) == kKnownKeys.end()) {
      config.warnings_.push_back(plng::base::configLocation(origin.string(), line.number) +
                                 "unknown key '" + line.key + "' ignored");
    }
  }
  return config;
}

ConfigFile ConfigFile::load(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    ConfigFile empty;
    empty.path_ = path;
    return empty;
  }
  ConfigFile config = parse(readFile(path), path);
  struct stat st {};
  if (config.get("token") && ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    config.warnings_.push_back(path.string() +
                               " holds a token and is readable by other users; run chmod 600 " +
                               path.string());
  }
  return config;
}

const plng::base::ConfigLine* ConfigFile::lastLineOf(std::string_view key) const {
  // The last entry wins, as when a later line overrides an earlier one.
  for (auto it = lines_.rbegin(); it != lines_.rend(); ++it) {
    if (it->key == key) return &*it;
  }
  return nullptr;
}

std::optional<std::string> ConfigFile::get(std::string_view key) const {
  if (const plng::base::ConfigLine* line = lastLineOf(key)) return line->value;
  return std::nullopt;
}

std::string ConfigFile::where(std::string_view key) const {
  const plng::base::ConfigLine* line = lastLineOf(key);
  return plng::base::configLocation(path_.string(), line ? line->number : 0);
}

void ConfigFile::set(std::string_view key, std::string value) {
  plng::base::ConfigLine line{.number = 0, .text = {}, .key = std::string(key), .value = {}};
  try {
    line.text = plng::base::formatConfigLine(key, value);
  } catch (const std::invalid_argument& e) {
    throw LocalError(path_.string() + ": " + e.what());
  }
  line.value = std::move(value);
  erase(key);
  lines_.push_back(std::move(line));
}

void ConfigFile::erase(std::string_view key) {
  std::erase_if(lines_, [&](const plng::base::ConfigLine& line) { return line.key == key; });
}

std::string ConfigFile::render() const {
  std::string text;
  for (const plng::base::ConfigLine& line : lines_) text += line.text + "\n";
  return text;
}

void ConfigFile::save() const {
  const std::filesystem::path parent = path_.parent_path();
  if (!parent.empty()) {
    std::error_code error;
    const bool created = std::filesystem::create_directories(parent, error);
    if (error) {
      throw LocalError("cannot create directory " + parent.string() + ": " + error.message());
    }
    if (created) {
      std::filesystem::permissions(parent, std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, error);
    }
  }
  writeFileAtomic(path_, render(), 0600);
}

EnvLookup processEnvironment() {
  return [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
  };
}

std::filesystem::path resolveConfigPath(const ParsedArgs& args, const EnvLookup& env) {
  if (auto path = args.value("config")) return *path;
  if (auto path = env("PLCCTL_CONFIG")) return *path;
  if (auto xdg = env("XDG_CONFIG_HOME")) return std::filesystem::path(*xdg) / "plcctl" / "config";
  std::string home = env("HOME").value_or("");
  if (home.empty()) {
    if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
      home = pw->pw_dir;
    }
  }
  if (home.empty()) {
    throw LocalError("cannot locate the config file: HOME is not set; pass --config PATH");
  }
  return std::filesystem::path(home) / ".config" / "plcctl" / "config";
}

ClientSettings resolveSettings(const ParsedArgs& args, const EnvLookup& env,
                               const ConfigFile& config) {
  const std::string config_source = "config file " + config.path().string();
  auto pick = [&](std::string_view flag, const char* variable, std::string_view key,
                  std::string_view fallback) -> Setting {
    if (auto value = args.value(flag)) return {*value, "--" + std::string(flag)};
    if (variable != nullptr) {
      if (auto value = env(variable)) return {*value, variable};
    }
    if (auto value = config.get(key); value && !value->empty()) return {*value, config_source};
    return {std::string(fallback), "default"};
  };

  ClientSettings settings;
  settings.config_path = config.path();
  settings.plc = pick("plc", "PLCCTL_PLC", "plc", kDefaultPlc);
  settings.plc.value = normalizePlcAddress(settings.plc.value);
  settings.token = pick("token", "PLCCTL_TOKEN", "token", "");
  if (settings.token.source == config_source) {
    if (auto expires = config.get("token_expires_at")) {
      try {
        settings.token_expires_at = plng::base::parseConfigInteger(*expires, {.min = 0});
      } catch (const std::invalid_argument& e) {
        throw LocalError(config.where("token_expires_at") + "token_expires_at: " + e.what() +
                         " (unix seconds)");
      }
    }
  }
  const Setting tls = pick("tls", nullptr, "tls", "false");
  const Setting ca_file = pick("ca-file", nullptr, "ca_file", "");
  settings.ca_file = ca_file.value;
  // `--tls` is a switch (empty value); in the config file tls takes a boolean.
  try {
    settings.tls = !settings.ca_file.empty() || tls.source == "--tls" ||
                   plng::base::parseConfigBoolean(tls.value);
  } catch (const std::invalid_argument& e) {
    throw LocalError(config.where("tls") + "tls: " + e.what());
  }
  return settings;
}

std::string normalizePlcAddress(std::string_view address) {
  address = plng::base::trim(address);
  if (address.empty()) throw UsageError("--plc: empty PLC address; expected HOST:PORT");
  for (std::string_view scheme : {"unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:"}) {
    if (address.starts_with(scheme)) return std::string(address);
  }
  const bool has_port = address.front() == '[' ? address.find("]:") != std::string_view::npos
                                               : std::count(address.begin(), address.end(), ':') >=
                                                     1;  // bare IPv6 is left alone
  return has_port ? std::string(address) : std::string(address) + ":" + std::string(kDefaultPort);
}

}  // namespace plcctl
