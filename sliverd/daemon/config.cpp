#include "sliverd/daemon/config.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

namespace plng::sliverd {

namespace {

struct Key {
  const char* doc;
  std::function<void(SliverdConfig&, const std::string&)> set;
  std::function<std::string(const SliverdConfig&)> get;
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

bool parseBool(const std::string& v) {
  if (v == "true" || v == "yes" || v == "1") return true;
  if (v == "false" || v == "no" || v == "0") return false;
  throw std::invalid_argument("'" + v + "' is not true or false");
}

template <class Member>
Key stringKey(const char* doc, Member member) {
  return Key{doc, [member](SliverdConfig& c, const std::string& v) { c.*member = v; },
             [member](const SliverdConfig& c) { return c.*member; }};
}

template <class Member>
Key numberKey(const char* doc, Member member) {
  return Key{doc,
             [member](SliverdConfig& c, const std::string& v) {
               c.*member = parseNumber<std::remove_reference_t<decltype(c.*member)>>(v);
             },
             [member](const SliverdConfig& c) { return std::to_string(c.*member); }};
}

Key boolKey(const char* doc, bool SliverdConfig::*member) {
  return Key{
      doc, [member](SliverdConfig& c, const std::string& v) { c.*member = parseBool(v); },
      [member](const SliverdConfig& c) { return std::string(c.*member ? "true" : "false"); }};
}

const std::map<std::string, Key>& keys() {
  using C = SliverdConfig;
  static const std::map<std::string, Key> kKeys = {
      {"hostname",
       stringKey("the node's hostname as registered at PLC; empty = the system's", &C::hostname)},
      {"plc_address", stringKey("PLC's gRPC address (host:port)", &C::plc_address)},
      {"plc_tls_ca",
       stringKey("PEM CA bundle to verify PLC over TLS; empty = plaintext (loopback only)",
                 &C::plc_tls_ca)},
      {"node_key_file",
       stringKey("the node's Ed25519 private key: raw 32-byte seed or 64 hex digits",
                 &C::node_key_file)},
      {"state_dir",
       stringKey("persistent state: PLC state, tickets, slivers, storage", &C::state_dir)},
      {"run_dir",
       stringKey("runtime state: sliver-init records, the local API socket", &C::run_dir)},
      {"images_dir", stringKey("reference images; empty = <state_dir>/images", &C::images_dir)},
      {"listen", stringKey("TCP address of the NodeManager service (tickets, rcaps)", &C::listen)},
      {"log_level", stringKey("trace, debug, info, warn or error", &C::log_level)},
      {"plc_max_state_bytes",
       numberKey("largest node state accepted from PLC, bytes (docs/plc.md: worst case for "
                 "1,000 slivers at PLC's default limits)",
                 &C::plc_max_state_bytes)},
      {"poll_interval_s", numberKey("seconds between GetSlivers polls while the PLC stream is down",
                                    &C::poll_interval_s)},
      {"reconnect_min_ms",
       numberKey("first delay before reconnecting to PLC, milliseconds (doubles each time, "
                 "jittered)",
                 &C::reconnect_min_ms)},
      {"reconnect_max_ms",
       numberKey("longest delay between PLC reconnects, milliseconds (how long a node may "
                 "take to notice PLC is back)",
                 &C::reconnect_max_ms)},
      {"reconcile_interval_s",
       numberKey("seconds between periodic reconciliations (also run on every change)",
                 &C::reconcile_interval_s)},
      {"stop_grace_ms",
       numberKey("milliseconds a stopping sliver gets after SIGTERM before SIGKILL",
                 &C::stop_grace_ms)},
      {"delete_grace_s",
       numberKey("seconds an unwanted sliver stays stopped (files kept) before deletion",
                 &C::delete_grace_s)},
      {"sliver_enter",
       stringKey("login shell of slice accounts (drops an ssh login into its sliver)",
                 &C::sliver_enter)},
      {"slice_accounts",
       boolKey("keep a host account per slice so `ssh <slice>@<node>` works", &C::slice_accounts)},
      {"sliver_init",
       stringKey("path of the sliver-init binary (PID 1 of every sliver)", &C::sliver_init)},
      {"storage_volume_bytes",
       numberKey("size of the sparse loop volume created when btrfs qgroups hold quotas; 0 = "
                 "80% of the space free where state_dir lies when it is made (a larger size is "
                 "refused: slivers could fill the host's disk)",
                 &C::storage_volume_bytes)},
      {"storage_reserve_pct",
       numberKey("percent of the sliver storage (at least 256 MiB) that no single sliver may "
                 "take: a larger disk_quota, or none, is clamped, logged and shown in sliverctl",
                 &C::storage_reserve_pct)},
      {"disk_watchdog",
       boolKey("stop the largest sliver still writing when the sliver storage nears full; it "
               "stays stopped (held) until started, and sliverctl says why",
               &C::disk_watchdog)},
      {"disk_watchdog_min_free_pct",
       numberKey("the disk watchdog acts below this percent of the storage free (at least 64 MiB)",
                 &C::disk_watchdog_min_free_pct)},
      {"disk_watchdog_interval_ms",
       numberKey("milliseconds between disk watchdog checks", &C::disk_watchdog_interval_ms)},
      {"daemon_memory_max_bytes",
       numberKey("memory limit of sliverd itself (its own cgroup, not the slivers'; reclaim "
                 "starts 10% below); 0 = none",
                 &C::daemon_memory_max_bytes)},
      {"daemon_tasks_max",
       numberKey("processes and threads of sliverd itself; 0 = no limit", &C::daemon_tasks_max)},
      {"local_api_connections_per_caller",
       numberKey("local API connections one slice (or one host user) may hold open at once",
                 &C::local_api_connections_per_caller)},
      {"local_api_max_connections",
       numberKey("local API connections of all callers but host root together",
                 &C::local_api_max_connections)},
      {"local_api_operator_connections",
       numberKey("local API connections kept for host root (the node operator) on top of "
                 "local_api_max_connections",
                 &C::local_api_operator_connections)},
      {"local_api_idle_timeout_ms",
       numberKey("milliseconds after which a local API connection with no request is closed",
                 &C::local_api_idle_timeout_ms)},
      {"local_api_frame_timeout_ms",
       numberKey("milliseconds a local API request may take to arrive whole after its first "
                 "byte, and an answer to be read",
                 &C::local_api_frame_timeout_ms)},
      {"storage_kind",
       stringKey("force a quota mechanism (btrfs-qgroup, xfs-prjquota, ext4-prjquota, none); "
                 "empty = probe",
                 &C::storage_kind)},
      {"capacity_cpu_shares", numberKey("CPU shares the node guarantees in all (admission control)",
                                        &C::capacity_cpu_shares)},
      {"capacity_mem_bytes",
       numberKey("memory the node hands out; 0 = physical memory", &C::capacity_mem_bytes)},
      {"capacity_disk_bytes",
       numberKey("disk the node hands out; 0 = storage_volume_bytes", &C::capacity_disk_bytes)},
      {"capacity_net_bps",
       numberKey("uplink bandwidth for guarantees, bit/s", &C::capacity_net_bps)},
      {"watchdog", boolKey("kill the largest sliver when node memory runs short", &C::watchdog)},
      {"sliver_nofile_soft",
       numberKey("open files a sliver process may hold at first (RLIMIT_NOFILE soft limit)",
                 &C::sliver_nofile_soft)},
      {"sliver_nofile_hard",
       numberKey("open files a sliver process may ever hold (RLIMIT_NOFILE hard limit; root "
                 "inside cannot raise it)",
                 &C::sliver_nofile_hard)},
      {"disable_legacy_tiocsti",
       boolKey("set the sysctl dev.tty.legacy_tiocsti to 0 at start (no pushing input into a "
               "terminal without CAP_SYS_ADMIN) where the kernel has it",
               &C::disable_legacy_tiocsti)},
      {"watchdog_interval_ms",
       numberKey("milliseconds between memory watchdog checks", &C::watchdog_interval_ms)},
  };
  return kKeys;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

void validate(const SliverdConfig& c, const std::string& origin) {
  auto fail = [&](const std::string& what) { throw std::invalid_argument(origin + ": " + what); };
  if (c.poll_interval_s < 1) fail("poll_interval_s must be at least 1");
  if (c.plc_max_state_bytes < (4ll << 20) || c.plc_max_state_bytes > 2047ll << 20) {
    fail("plc_max_state_bytes must be between 4 MiB (gRPC's default) and 2047 MiB");
  }
  if (c.reconnect_min_ms < 1) fail("reconnect_min_ms must be at least 1");
  if (c.reconnect_max_ms < c.reconnect_min_ms) {
    fail("reconnect_max_ms must be at least reconnect_min_ms");
  }
  if (c.reconcile_interval_s < 1) fail("reconcile_interval_s must be at least 1");
  if (c.stop_grace_ms < 0) fail("stop_grace_ms must not be negative");
  if (c.delete_grace_s < 0) fail("delete_grace_s must not be negative");
  if (c.capacity_cpu_shares < 1) fail("capacity_cpu_shares must be at least 1");
  if (c.watchdog_interval_ms < 10) fail("watchdog_interval_ms must be at least 10");
  if (c.sliver_nofile_hard < 64) fail("sliver_nofile_hard must be at least 64");
  if (c.sliver_nofile_soft < 16 || c.sliver_nofile_soft > c.sliver_nofile_hard) {
    fail("sliver_nofile_soft must be between 16 and sliver_nofile_hard");
  }
  if (c.disk_watchdog_interval_ms < 10) fail("disk_watchdog_interval_ms must be at least 10");
  if (c.disk_watchdog_min_free_pct < 1 || c.disk_watchdog_min_free_pct > 50) {
    fail("disk_watchdog_min_free_pct must be 1..50");
  }
  if (c.storage_reserve_pct < 1 || c.storage_reserve_pct > 50) {
    fail("storage_reserve_pct must be 1..50");
  }
  if (c.storage_reserve_pct <= c.disk_watchdog_min_free_pct) {
    // Else one sliver at its quota would already trip the watchdog.
    fail("storage_reserve_pct must be above disk_watchdog_min_free_pct");
  }
  if (c.daemon_memory_max_bytes != 0 && c.daemon_memory_max_bytes < (64ull << 20)) {
    fail("daemon_memory_max_bytes must be 0 or at least 64 MiB");
  }
  if (c.daemon_tasks_max != 0 && c.daemon_tasks_max < 64) {
    fail("daemon_tasks_max must be 0 or at least 64");
  }
  if (c.local_api_connections_per_caller < 1) {
    fail("local_api_connections_per_caller must be at least 1");
  }
  if (c.local_api_max_connections < c.local_api_connections_per_caller) {
    fail("local_api_max_connections must be at least local_api_connections_per_caller");
  }
  if (c.local_api_operator_connections < 1)
    fail("local_api_operator_connections must be at least 1");
  if (c.local_api_idle_timeout_ms < 100) fail("local_api_idle_timeout_ms must be at least 100");
  if (c.local_api_frame_timeout_ms < 100) fail("local_api_frame_timeout_ms must be at least 100");
  if (c.state_dir.empty()) fail("state_dir must not be empty");
  if (c.run_dir.empty()) fail("run_dir must not be empty");
}

}  // namespace

SliverdConfig SliverdConfig::parse(const std::string& text, const std::string& origin) {
  SliverdConfig config;
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
                                  "' (sliverd print-config lists every key)");
    }
    try {
      it->second.set(config, value);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + ": " + key + ": " + e.what());
    }
  }
  validate(config, origin);
  return config;
}

SliverdConfig SliverdConfig::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

std::string SliverdConfig::documentedDefaults() {
  SliverdConfig defaults;
  std::string out = "# sliverd configuration. Every key is shown with its default value.\n";
  for (const auto& [name, key] : keys()) {
    out += "\n# " + std::string(key.doc) + "\n" + name + " = " + key.get(defaults) + "\n";
  }
  return out;
}

std::string SliverdConfig::effectiveHostname() const {
  if (!hostname.empty()) return hostname;
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

plng::node::NodePaths SliverdConfig::paths() const {
  plng::node::NodePaths p;
  p.state_dir = state_dir;
  p.run_dir = run_dir;
  p.images_dir = images_dir;
  return p;
}

}  // namespace plng::sliverd
