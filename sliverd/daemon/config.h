// sliverd's configuration: a config file read by base::ConfigTable. Every key has a
// documented default (`sliverd print-config`; deploy/sliverd.conf lists them all
// and a test keeps the two identical); unknown keys and bad values are errors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/config.h"
#include "node/paths.h"
#include "node/resources.h"
#include "proto/port_spec.h"

namespace plng::sliverd {

struct SliverdConfig {
  std::string hostname;  // the node's name at PLC; empty = gethostname()
  std::string plc_address = "127.0.0.1:8620";
  std::string plc_tls_ca;  // PEM CA bundle for TLS to PLC; empty = plaintext
  std::string node_key_file = "/etc/planetlab/node.key";
  std::string state_dir = "/var/lib/sliverd";
  std::string run_dir = "/run/sliverd";
  std::string images_dir;  // empty = <state_dir>/images
  std::string listen = "0.0.0.0:8621";
  std::string log_level = "info";

  // The largest NodeState accepted from PLC (gRPC's receive limit): the worst
  // case for 1,000 slivers at PLC's default limits, rounded up (docs/plc.md, Limits).
  std::int64_t plc_max_state_bytes = 128ll << 20;
  int poll_interval_s = 60;
  int reconnect_min_ms = 250;
  int reconnect_max_ms = 2000;
  int reconcile_interval_s = 30;
  int stop_grace_ms = 10000;
  std::int64_t delete_grace_s = 7 * 24 * 3600;

  std::string sliver_init = "/usr/lib/planetlab/sliver-init";
  std::string sliver_enter = "/usr/libexec/planetlab/sliver-enter";
  bool slice_accounts = true;
  std::uint64_t storage_volume_bytes = 0;  // 0 = from the host's free space
  std::string storage_kind;                // empty = probe
  std::uint32_t storage_reserve_pct = 10;

  std::uint32_t capacity_cpu_shares = 1000;
  std::uint64_t capacity_mem_bytes = 0;   // 0 = the node's physical memory
  std::uint64_t capacity_disk_bytes = 0;  // 0 = storage_volume_bytes
  std::uint64_t capacity_net_bps = 100'000'000;

  bool watchdog = true;
  int watchdog_interval_ms = 1000;
  bool disk_watchdog = true;
  std::uint32_t disk_watchdog_min_free_pct = 5;
  int disk_watchdog_interval_ms = 2000;

  // sliverd's own cgroup (<root>/daemon); 0 = no limit.
  std::uint64_t daemon_memory_max_bytes = 1ull << 30;
  std::uint32_t daemon_tasks_max = 4096;

  // The local API (LocalApiLimits).
  std::uint32_t local_api_connections_per_caller = 16;
  std::uint32_t local_api_max_connections = 4096;
  std::uint32_t local_api_operator_connections = 64;
  int local_api_idle_timeout_ms = 60000;
  int local_api_frame_timeout_ms = 10000;

  // RLIMIT_NOFILE of every sliver process (SliverRuntimeOptions::nofile_*).
  std::uint64_t sliver_nofile_soft = 1024;
  std::uint64_t sliver_nofile_hard = 4096;
  // Sets dev.tty.legacy_tiocsti = 0 at start where the kernel has it.
  bool disable_legacy_tiocsti = true;
  // Widens net.ipv4.ping_group_range to every slice's gids at start.
  bool ping_sockets = true;

  // Network isolation (vnet-bpf; docs/vnet.md, "Ports"). Port lists are in the
  // `ports` tag's grammar (proto/port_spec.h). 8621 is `listen`'s default port;
  // 33080 is the sensor server's (DESIGN.md, Monitoring).
  std::string node_ports = "tcp:22,tcp:8621,tcp:33080";  // never bound by a slice
  std::string service_allowlist = "tcp:33080";           // node services slivers may reach
  bool network_isolation = true;  // false: slivers start without isolation (warned at start)
  std::string bpf_pin_dir;        // empty = /sys/fs/bpf/plng/<instance name>
  // Bandwidth (docs/vnet.md, "Bandwidth"): the HTB tree on the uplink, limited
  // to capacity_net_bps.
  bool bandwidth = true;
  std::string uplink;  // empty = the device of the default route
  // Daily byte budgets (docs/vnet.md, "Daily byte budgets"): a slice's ceil is
  // lowered past this percent of its net_daily_bytes; windows updated this often.
  std::uint32_t net_budget_threshold_pct = 90;
  int net_budget_interval_s = 30;

  // Flow auditing (docs/vnet.md, "Flow auditing"): records in
  // <state_dir>/flows, and the node's "who sent this?" page.
  int flow_drain_interval_s = 10;
  int flow_retention_days = 7;
  std::uint32_t flow_map_entries = 65536;
  std::string audit_listen = "0.0.0.0:80";  // empty = no page
  std::string plc_url;                      // PLC's web address, for older traffic

  // Monitoring (docs/sensors.md, docs/metrics.md): the sensor server, which
  // slivers may query (its port joins service_allowlist), /metrics, which they
  // may not (a node port like every other), and the health report to PLC.
  std::string sensor_listen = "127.0.0.1:33080";  // empty = no sensor server
  std::string metrics_listen = "127.0.0.1:8622";  // empty = no /metrics
  int status_interval_s = 30;                     // NodeSync.ReportStatus

  // node_ports plus the ports of sliverd's own servers (`listen`,
  // `audit_listen`, `sensor_listen`, `metrics_listen`), canonical: what no slice
  // may bind, whatever node_ports says.
  std::vector<proto::PortRange> nodePorts() const;
  // service_allowlist plus sensor_listen's port, canonical.
  std::vector<proto::PortRange> serviceAllowlist() const;
  // bpf_pin_dir, or /sys/fs/bpf/plng/<instanceName(state_dir)> when it is empty:
  // each sliverd instance on a host pins its programs and maps apart.
  std::filesystem::path bpfPinDir() const;

  // hostname, or gethostname() when it is empty.
  std::string effectiveHostname() const;
  plng::node::NodePaths paths() const;
};

// A node instance's name for places shared by every instance on the host (bpffs):
// its state directory, which no two instances share, escaped as systemd-escape
// --path does ("/var/lib/sliverd" -> "var-lib-sliverd", "/srv/a-b" -> "srv-a\x2db"),
// so that two directories never give one name.
std::string instanceName(const std::filesystem::path& state_dir);

// Every key of SliverdConfig: its meaning, type and allowed values.
const plng::base::ConfigTable<SliverdConfig>& sliverdConfigTable();

}  // namespace plng::sliverd
