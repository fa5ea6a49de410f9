#include "plc/config.h"

#include <charconv>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

namespace plng::plc {

namespace {

struct Key {
  const char* doc;
  std::function<void(PlcConfig&, const std::string&)> set;
  std::function<std::string(const PlcConfig&)> get;
};

template <class T>
T parseNumber(const std::string& v) {
  T out{};
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) {
    throw std::invalid_argument("'" + v + "' is not a number");
  }
  return out;
}

#define PLNG_STRING_KEY(name, doc)                                 \
  {                                                                \
#name, Key {                                                   \
      doc, [](PlcConfig& c, const std::string& v) { c.name = v; }, \
          [](const PlcConfig& c) { return c.name; }                \
    }                                                              \
  }
#define PLNG_NUMBER_KEY(name, doc)                                                                \
  {                                                                                               \
#name, Key {                                                                                  \
      doc, [](PlcConfig& c, const std::string& v) { c.name = parseNumber<decltype(c.name)>(v); }, \
          [](const PlcConfig& c) { return std::to_string(c.name); }                               \
    }                                                                                             \
  }

const std::map<std::string, Key>& keys() {
  static const std::map<std::string, Key> kKeys = {
      PLNG_STRING_KEY(listen, "gRPC listen address (host:port)"),
      PLNG_STRING_KEY(database,
                      "libpq connection string of PLC's PostgreSQL database, as a role that "
                      "owns it and nothing more (never a superuser); over a network with "
                      "sslmode=verify-full; the password in a passfile (docs/plc.md)"),
      PLNG_NUMBER_KEY(db_pool_size, "database connections per plcd"),
      PLNG_STRING_KEY(log_level, "trace, debug, info, warn or error"),
      PLNG_STRING_KEY(tls_cert, "PEM certificate chain for TLS; empty = plaintext"),
      PLNG_STRING_KEY(tls_key, "PEM private key for TLS"),
      PLNG_NUMBER_KEY(session_ttl, "seconds a Login session lasts"),
      PLNG_NUMBER_KEY(api_token_ttl, "default and longest lifetime of API tokens, seconds"),
      PLNG_NUMBER_KEY(node_session_ttl, "seconds a node session lasts"),
      PLNG_NUMBER_KEY(node_challenge_ttl, "seconds a node login challenge stays valid"),
      PLNG_NUMBER_KEY(auth_cache_ms,
                      "milliseconds a resolved token is cached (cleared on every change)"),
      PLNG_NUMBER_KEY(scrypt_log2_n, "password hashing cost: scrypt N = 2^value"),
      PLNG_NUMBER_KEY(default_max_slices, "max_slices of a new site"),
      PLNG_NUMBER_KEY(default_max_slivers, "max_slivers of a new site"),
      PLNG_NUMBER_KEY(default_max_nodes, "max_nodes of a new slice"),
      PLNG_NUMBER_KEY(slice_default_lifetime, "seconds a new slice lives before it expires"),
      PLNG_NUMBER_KEY(slice_max_renewal, "non-admins may renew up to now + this many seconds"),
      PLNG_NUMBER_KEY(ticket_lifetime, "seconds a ticket is valid (capped by slice expiry)"),
      PLNG_NUMBER_KEY(ticket_clock_skew, "tickets are valid from this many seconds ago"),
      PLNG_NUMBER_KEY(watch_recheck_s, "WatchSlivers re-evaluates state at least this often"),
      PLNG_NUMBER_KEY(login_free_failures,
                      "failed logins of one account before it must wait between attempts"),
      PLNG_NUMBER_KEY(login_lockout_base_s,
                      "an account's first wait after those, seconds; doubles per further failure"),
      PLNG_NUMBER_KEY(login_lockout_max_s, "the longest an account waits between failed logins"),
      PLNG_NUMBER_KEY(login_failure_window_s,
                      "seconds without a failed login after which an account's count is forgotten"),
      PLNG_NUMBER_KEY(login_failure_rows_max,
                      "login names (known or not) whose failures are remembered at most"),
      PLNG_NUMBER_KEY(
          login_source_burst,
          "failed logins and node logins one client address may make in a row (also: how"
          " many calls without a valid token from one address are recorded as events)"),
      PLNG_NUMBER_KEY(
          login_source_refill_s,
          "a client address gets one more failed login every this many seconds; 0 = no limit"),
      PLNG_NUMBER_KEY(max_login_sessions,
                      "live login sessions of one person or node; a new login ends the oldest"),
      PLNG_NUMBER_KEY(max_api_tokens_per_person, "live API tokens of one person"),
      PLNG_NUMBER_KEY(max_keys_per_person, "SSH keys one person may have"),
      PLNG_NUMBER_KEY(max_key_length, "bytes of an SSH public key line, comment included"),
      PLNG_NUMBER_KEY(max_key_comment_length, "bytes of an SSH key's comment"),
      PLNG_NUMBER_KEY(max_slice_members, "members of one slice"),
      PLNG_NUMBER_KEY(max_slice_key_bytes,
                      "bytes of a slice's member keys on a node (each key: line, email, 16)"),
      PLNG_NUMBER_KEY(max_slice_tags, "slice tags of one slice, every scope counted"),
      PLNG_NUMBER_KEY(max_tag_value_length, "bytes of one tag value (an initscript is one)"),
      PLNG_NUMBER_KEY(max_slice_tag_bytes,
                      "bytes of a slice's tags, every scope (each tag: name, value, 16)"),
  };
  return kKeys;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

PlcConfig PlcConfig::parse(const std::string& text, const std::string& origin) {
  PlcConfig config;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    auto eq = line.find('=');
    auto where = origin + ":" + std::to_string(lineno);
    if (eq == std::string::npos) {
      throw std::invalid_argument(where + ": expected 'key = value', got '" + line + "'");
    }
    auto key = trim(line.substr(0, eq));
    auto value = trim(line.substr(eq + 1));
    auto it = keys().find(key);
    if (it == keys().end()) {
      throw std::invalid_argument(where + ": unknown key '" + key +
                                  "' (plcd --print-config lists every key)");
    }
    try {
      it->second.set(config, value);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + ": " + key + ": " + e.what());
    }
  }
  // Limits of zero or below would refuse everything or nothing: say so at start.
  const std::pair<const char*, std::int64_t> positive[] = {
      {"login_lockout_base_s", config.login_lockout_base_s},
      {"login_lockout_max_s", config.login_lockout_max_s},
      {"login_failure_window_s", config.login_failure_window_s},
      {"login_failure_rows_max", config.login_failure_rows_max},
      {"login_source_burst", config.login_source_burst},
      {"max_login_sessions", config.max_login_sessions},
      {"max_api_tokens_per_person", config.max_api_tokens_per_person},
      {"max_keys_per_person", config.max_keys_per_person},
      {"max_key_length", config.max_key_length},
      {"max_key_comment_length", config.max_key_comment_length},
      {"max_slice_members", config.max_slice_members},
      {"max_slice_key_bytes", config.max_slice_key_bytes},
      {"max_slice_tags", config.max_slice_tags},
      {"max_tag_value_length", config.max_tag_value_length},
      {"max_slice_tag_bytes", config.max_slice_tag_bytes},
  };
  for (const auto& [name, value] : positive) {
    if (value < 1) {
      throw std::invalid_argument(origin + ": " + name + " must be at least 1, not " +
                                  std::to_string(value));
    }
  }
  if (config.login_free_failures < 0 || config.login_source_refill_s < 0) {
    throw std::invalid_argument(
        origin + ": login_free_failures and login_source_refill_s must be 0 or more");
  }
  return config;
}

PlcConfig PlcConfig::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

std::string PlcConfig::documentedDefaults() {
  PlcConfig defaults;
  std::string out = "# plcd configuration. Every key is shown with its default value.\n";
  for (const auto& [name, key] : keys()) {
    out += "\n# " + std::string(key.doc) + "\n" + name + " = " + key.get(defaults) + "\n";
  }
  return out;
}

}  // namespace plng::plc
