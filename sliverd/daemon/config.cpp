#include "sliverd/daemon/config.h"

#include <unistd.h>

#include <cstdio>
#include <limits>
#include <optional>
#include <stdexcept>

#include "app/logging.h"

namespace plng::sliverd {

namespace {

// A limit where 0 means none and a small one would starve sliverd itself.
template <class T>
std::function<void(const T&)> zeroOrAtLeast(T minimum, std::string minimum_text) {
  return [minimum, minimum_text](const T& value) {
    if (value != 0 && value < minimum) {
      throw std::invalid_argument("must be 0 or at least " + minimum_text + ", not " +
                                  std::to_string(value));
    }
  };
}

void checkPortSpec(const std::string& value) {
  try {
    proto::parsePortSpec(value);
  } catch (const proto::PortSpecError& e) {
    throw std::invalid_argument(std::string(e.what()) + " (the `ports` tag's grammar)");
  }
}

// A server's port from its address (host:port or [v6]:port: the port after
// the last colon); nullopt for none, or port 0 (any free port, as tests use):
// nothing to keep.
std::optional<std::uint16_t> listenPort(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  try {
    const auto kept = proto::parsePortSpec("tcp:" + address.substr(colon + 1));
    if (kept.size() != 1 || kept[0].first != kept[0].last) return std::nullopt;
    return static_cast<std::uint16_t>(kept[0].first);
  } catch (const proto::PortSpecError&) {
    return std::nullopt;
  }
}

proto::PortRange tcpPort(std::uint16_t port) {
  return proto::PortRange{.transport = proto::Transport::kTcp, .first = port, .last = port};
}

void checkEmptyOrAbsolute(const std::string& value) {
  if (!value.empty() && value.front() != '/') {
    throw std::invalid_argument("must be empty or an absolute path, not '" + value + "'");
  }
}

}  // namespace

std::string instanceName(const std::filesystem::path& state_dir) {
  std::string name;
  for (const auto& part : state_dir.lexically_normal()) {
    const std::string text = part.string();
    if (text.empty() || text == "/") continue;
    if (!name.empty()) name += '-';
    for (std::size_t i = 0; i < text.size(); ++i) {
      const auto c = static_cast<unsigned char>(text[i]);
      const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == ':' ||
                         (c == '.' && !(name.empty() && i == 0));
      if (plain) {
        name += static_cast<char>(c);
      } else {
        char escaped[5];
        std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
        name += escaped;
      }
    }
  }
  return name.empty() ? "-" : name;
}

const plng::base::ConfigTable<SliverdConfig>& sliverdConfigTable() {
  using C = SliverdConfig;
  static const auto kTable =
      plng::base::ConfigTable<SliverdConfig>("sliverd")
          .string("hostname", &C::hostname,
                  "the node's hostname as registered at PLC; empty = the system's")
          .string("plc_address", &C::plc_address, "PLC's gRPC address (host:port)")
          .string("plc_tls_ca", &C::plc_tls_ca,
                  "PEM CA bundle to verify PLC over TLS; empty = plaintext (loopback only)")
          .string("node_key_file", &C::node_key_file,
                  "the node's Ed25519 private key: raw 32-byte seed or 64 hex digits")
          .string("state_dir", &C::state_dir,
                  "persistent state: PLC state, tickets, slivers, storage",
                  plng::base::requireNotEmpty)
          .string("run_dir", &C::run_dir,
                  "runtime state: sliver-init records, the local API socket",
                  plng::base::requireNotEmpty)
          .string("images_dir", &C::images_dir, "reference images; empty = <state_dir>/images")
          .string("listen", &C::listen, "TCP address of the NodeManager service (tickets, rcaps)")
          .string("log_level", &C::log_level, "trace, debug, info, warn or error",
                  plng::app::checkLogLevel)
          // From gRPC's default receive limit to the most it can take.
          .integer("plc_max_state_bytes", &C::plc_max_state_bytes,
                   "largest node state accepted from PLC, bytes (docs/plc.md: worst case for "
                   "1,000 slivers at PLC's default limits)",
                   4ll << 20, 2047ll << 20)
          .integer("poll_interval_s", &C::poll_interval_s,
                   "seconds between GetSlivers polls while the PLC stream is down", 1)
          .integer("reconnect_min_ms", &C::reconnect_min_ms,
                   "first delay before reconnecting to PLC, milliseconds (doubles each time, "
                   "jittered)",
                   1)
          .integer("reconnect_max_ms", &C::reconnect_max_ms,
                   "longest delay between PLC reconnects, milliseconds (how long a node may "
                   "take to notice PLC is back)",
                   1)
          .integer("reconcile_interval_s", &C::reconcile_interval_s,
                   "seconds between periodic reconciliations (also run on every change)", 1)
          .integer("stop_grace_ms", &C::stop_grace_ms,
                   "milliseconds a stopping sliver gets after SIGTERM before SIGKILL", 0)
          .integer("delete_grace_s", &C::delete_grace_s,
                   "seconds an unwanted sliver stays stopped (files kept) before deletion", 0)
          .string("sliver_enter", &C::sliver_enter,
                  "login shell of slice accounts (drops an ssh login into its sliver)")
          .boolean("slice_accounts", &C::slice_accounts,
                   "keep a host account per slice so `ssh <slice>@<node>` works")
          .string("sliver_init", &C::sliver_init,
                  "path of the sliver-init binary (PID 1 of every sliver)")
          .integer("storage_volume_bytes", &C::storage_volume_bytes,
                   "size of the sparse loop volume created when btrfs qgroups hold quotas; 0 = "
                   "80% of the space free where state_dir lies when it is made (a larger size is "
                   "refused: slivers could fill the host's disk)")
          .integer("storage_reserve_pct", &C::storage_reserve_pct,
                   "percent of the sliver storage (at least 256 MiB) that no single sliver may "
                   "take: a larger disk_quota, or none, is clamped, logged and shown in sliverctl",
                   1, 50)
          .boolean("disk_watchdog", &C::disk_watchdog,
                   "stop the largest sliver still writing when the sliver storage nears full; it "
                   "stays stopped (held) until started, and sliverctl says why")
          .integer("disk_watchdog_min_free_pct", &C::disk_watchdog_min_free_pct,
                   "the disk watchdog acts below this percent of the storage free (at least 64 "
                   "MiB)",
                   1, 50)
          .integer("disk_watchdog_interval_ms", &C::disk_watchdog_interval_ms,
                   "milliseconds between disk watchdog checks", 10)
          .integer("daemon_memory_max_bytes", &C::daemon_memory_max_bytes,
                   "memory limit of sliverd itself (its own cgroup, not the slivers'; reclaim "
                   "starts 10% below); 0 = none",
                   0, std::numeric_limits<std::int64_t>::max(),
                   zeroOrAtLeast<std::uint64_t>(64ull << 20, "64 MiB"))
          .integer("daemon_tasks_max", &C::daemon_tasks_max,
                   "processes and threads of sliverd itself; 0 = no limit", 0,
                   std::numeric_limits<std::int64_t>::max(), zeroOrAtLeast<std::uint32_t>(64, "64"))
          .integer("local_api_connections_per_caller", &C::local_api_connections_per_caller,
                   "local API connections one slice (or one host user) may hold open at once", 1)
          .integer("local_api_max_connections", &C::local_api_max_connections,
                   "local API connections of all callers but host root together", 1)
          .integer("local_api_operator_connections", &C::local_api_operator_connections,
                   "local API connections kept for host root (the node operator) on top of "
                   "local_api_max_connections",
                   1)
          .integer("local_api_idle_timeout_ms", &C::local_api_idle_timeout_ms,
                   "milliseconds after which a local API connection with no request is closed", 100)
          .integer("local_api_frame_timeout_ms", &C::local_api_frame_timeout_ms,
                   "milliseconds a local API request may take to arrive whole after its first "
                   "byte, and an answer to be read",
                   100)
          .string("storage_kind", &C::storage_kind,
                  "force a quota mechanism (btrfs-qgroup, xfs-prjquota, ext4-prjquota, none); "
                  "empty = probe")
          .integer("capacity_cpu_shares", &C::capacity_cpu_shares,
                   "CPU shares the node guarantees in all (admission control)", 1)
          .integer("capacity_mem_bytes", &C::capacity_mem_bytes,
                   "memory the node hands out; 0 = physical memory")
          .integer("capacity_disk_bytes", &C::capacity_disk_bytes,
                   "disk the node hands out; 0 = storage_volume_bytes")
          .integer("capacity_net_bps", &C::capacity_net_bps,
                   "the node's uplink limit, bit/s: the HTB tree's root and the sum of "
                   "guarantees (net_min_rate, rcaps)")
          .boolean("watchdog", &C::watchdog, "kill the largest sliver when node memory runs short")
          .integer("sliver_nofile_soft", &C::sliver_nofile_soft,
                   "open files a sliver process may hold at first (RLIMIT_NOFILE soft limit)", 16)
          .integer("sliver_nofile_hard", &C::sliver_nofile_hard,
                   "open files a sliver process may ever hold (RLIMIT_NOFILE hard limit; root "
                   "inside cannot raise it)",
                   64)
          .boolean("disable_legacy_tiocsti", &C::disable_legacy_tiocsti,
                   "set the sysctl dev.tty.legacy_tiocsti to 0 at start (no pushing input into "
                   "a terminal without CAP_SYS_ADMIN) where the kernel has it")
          .boolean("ping_sockets", &C::ping_sockets,
                   "set the sysctl net.ipv4.ping_group_range of sliverd's network namespace to "
                   "cover every slice's gids at start, so stock ping works in every sliver "
                   "without the raw right (ICMP datagram sockets); decommission restores it")
          .integer("watchdog_interval_ms", &C::watchdog_interval_ms,
                   "milliseconds between memory watchdog checks", 10)
          .string("node_ports", &C::node_ports,
                  "ports the node keeps for its own services, never bound by a slice, e.g. "
                  "tcp:22,udp:161,tcp:8000-8100 (the ports tag's grammar, docs/vnet.md); the "
                  "ports of listen, audit_listen, sensor_listen and metrics_listen are always "
                  "kept too",
                  checkPortSpec)
          .string("service_allowlist", &C::service_allowlist,
                  "ports of services the node runs (on loopback or its addresses) that slivers "
                  "may connect to, e.g. tcp:33080 (the sensor); sensor_listen's port is always "
                  "added; slivers reach no other node service",
                  checkPortSpec)
          .boolean("network_isolation", &C::network_isolation,
                   "isolate slivers on the node's network (vnet-bpf: port ownership, node "
                   "services, blacklist, raw sockets); false starts slivers without it, with a "
                   "warning at every start, and is for nodes whose kernel lacks a required "
                   "feature")
          .boolean("bandwidth", &C::bandwidth,
                   "shape slices' outgoing traffic with an HTB tree on the uplink (net_min_rate, "
                   "net_max_rate, net_icmp_pps; the node's limit is capacity_net_bps); needs "
                   "network_isolation")
          .integer("net_budget_threshold_pct", &C::net_budget_threshold_pct,
                   "percent of a slice's net_daily_bytes past which its ceil becomes what is "
                   "left of the budget over what is left of its 24-hour window (PlanetLab's bwmon)",
                   1, 100)
          .integer("net_budget_interval_s", &C::net_budget_interval_s,
                   "seconds between updates of the slices' daily byte budgets (usage read, ceils "
                   "lowered or given back, <state_dir>/net-budgets written)",
                   1)
          .string("uplink", &C::uplink,
                  "the device whose outgoing traffic is shaped; empty = the device of the "
                  "default route in sliverd's network namespace")
          .integer("flow_drain_interval_s", &C::flow_drain_interval_s,
                   "seconds between two drains of the flow records map into "
                   "<state_dir>/flows (a flow idle this long is closed; an active one is written "
                   "as its delta)",
                   1, 3600)
          .integer("flow_retention_days", &C::flow_retention_days,
                   "days the hourly flow record files are kept on the node", 1, 3650)
          .integer("flow_map_entries", &C::flow_map_entries,
                   "flows the BPF map records at once (preallocated, ~140 bytes each); past it "
                   "packets still leave and the drop counter grows; a change replaces the map",
                   1024, 1 << 24)
          .string("audit_listen", &C::audit_listen,
                  "address:port of the node's \"who sent this?\" web page (flow auditing, "
                  "docs/vnet.md); empty = no page")
          .string("sensor_listen", &C::sensor_listen,
                  "address:port of the node's sensor server (CSV over HTTP GET/HEAD, "
                  "docs/sensors.md); its port is a node port slivers may connect to (added to "
                  "service_allowlist); empty = no sensors")
          .string("metrics_listen", &C::metrics_listen,
                  "address:port of sliverd's Prometheus /metrics (docs/metrics.md); its port is "
                  "a node port slivers may not reach; empty = no metrics")
          .integer("status_interval_s", &C::status_interval_s,
                   "seconds between two reports of the node's health and the slices' byte "
                   "budgets to PLC (NodeSync.ReportStatus)",
                   1, 86400)
          .string("plc_url", &C::plc_url,
                  "PLC's web address, linked from the node's audit page for traffic older than "
                  "an hour; empty = only the plcctl command is shown")
          .string("bpf_pin_dir", &C::bpf_pin_dir,
                  "bpffs directory holding this instance's pinned BPF links and maps; empty = "
                  "/sys/fs/bpf/plng/<state_dir escaped as systemd-escape --path does>",
                  checkEmptyOrAbsolute)
          .rule(
              {"reconnect_min_ms", "reconnect_max_ms"},
              [](const C& c) { return c.reconnect_max_ms >= c.reconnect_min_ms; },
              "reconnect_max_ms must be at least reconnect_min_ms")
          .rule(
              {"sliver_nofile_soft", "sliver_nofile_hard"},
              [](const C& c) { return c.sliver_nofile_soft <= c.sliver_nofile_hard; },
              "sliver_nofile_soft must be between 16 and sliver_nofile_hard")
          // Else one sliver at its quota would already trip the watchdog.
          .rule(
              {"storage_reserve_pct", "disk_watchdog_min_free_pct"},
              [](const C& c) { return c.storage_reserve_pct > c.disk_watchdog_min_free_pct; },
              "storage_reserve_pct must be above disk_watchdog_min_free_pct")
          .rule(
              {"local_api_connections_per_caller", "local_api_max_connections"},
              [](const C& c) {
                return c.local_api_max_connections >= c.local_api_connections_per_caller;
              },
              "local_api_max_connections must be at least local_api_connections_per_caller")
          .rule(
              {"metrics_listen", "service_allowlist"},
              [](const C& c) {
                const auto port = listenPort(c.metrics_listen);
                if (!port) return true;
                for (const proto::PortRange& r : proto::parsePortSpec(c.service_allowlist))
                  if (r.contains(proto::Transport::kTcp, *port)) return false;
                return true;
              },
              "metrics_listen's port must not be on service_allowlist: slivers may not read "
              "the node's metrics");
  return kTable;
}

std::string SliverdConfig::effectiveHostname() const {
  if (!hostname.empty()) return hostname;
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

std::vector<proto::PortRange> SliverdConfig::nodePorts() const {
  auto ports = proto::parsePortSpec(node_ports);
  for (const std::string* address : {&listen, &audit_listen, &sensor_listen, &metrics_listen}) {
    if (auto port = listenPort(*address)) ports.push_back(tcpPort(*port));
  }
  return proto::canonicalPortRanges(std::move(ports));
}

std::vector<proto::PortRange> SliverdConfig::serviceAllowlist() const {
  auto ports = proto::parsePortSpec(service_allowlist);
  if (auto port = listenPort(sensor_listen)) ports.push_back(tcpPort(*port));
  return proto::canonicalPortRanges(std::move(ports));
}

std::filesystem::path SliverdConfig::bpfPinDir() const {
  if (!bpf_pin_dir.empty()) return bpf_pin_dir;
  return std::filesystem::path("/sys/fs/bpf/plng") / instanceName(state_dir);
}

plng::node::NodePaths SliverdConfig::paths() const {
  plng::node::NodePaths p;
  p.state_dir = state_dir;
  p.run_dir = run_dir;
  p.images_dir = images_dir;
  return p;
}

}  // namespace plng::sliverd
