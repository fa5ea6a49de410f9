#include "sliverd/observe/node_metrics.h"

#include <string>

namespace plng::sliverd {

namespace {
using Labels = std::vector<std::pair<std::string, std::string>>;
}

void writeNodeMetrics(const NodeReading& r, app::MetricsWriter& out) {
  const SystemReading& s = r.system;
  if (!s.meminfo.empty()) {
    out.gauge("plng_node_load1", "The node's 1-minute load average", {}, s.load.load1);
    out.gauge("plng_node_load5", "The node's 5-minute load average", {}, s.load.load5);
    out.gauge("plng_node_load15", "The node's 15-minute load average", {}, s.load.load15);
    out.gauge("plng_node_uptime_seconds", "Seconds since the node booted", {}, s.uptime_s);
    out.gauge("plng_node_memory_total_bytes", "The node's memory (MemTotal)", {},
              static_cast<double>(s.memory_total_bytes));
    out.gauge("plng_node_memory_available_bytes",
              "Memory available for new work without swapping (MemAvailable)", {},
              static_cast<double>(s.memory_available_bytes));
  }
  if (r.disk_total_bytes != 0) {
    out.gauge("plng_node_disk_total_bytes", "Size of the sliver storage's filesystem", {},
              static_cast<double>(r.disk_total_bytes));
    out.gauge("plng_node_disk_free_bytes", "Space of the sliver storage still writable", {},
              static_cast<double>(r.disk_free_bytes));
  }
  std::map<std::string, int> by_state{{"running", 0}, {"stopped", 0}, {"failed", 0}};
  for (const SliverReading& sliver : r.slivers) ++by_state[sliver.state];
  for (const auto& [state, count] : by_state)
    out.gauge("plng_node_slivers", "Slivers on the node by state", {{"state", state}}, count);

  for (const SliverReading& v : r.slivers) {
    const Labels slice{{"slice", v.slice}};
    out.counter("plng_slice_cpu_seconds_total", "CPU time used by the slice's sliver", slice,
                static_cast<double>(v.cpu_ns) / 1e9);
    out.gauge("plng_slice_memory_bytes", "Memory charged to the sliver's cgroup", slice,
              static_cast<double>(v.memory_bytes));
    out.gauge("plng_slice_tasks", "Processes and threads in the sliver", slice, v.tasks);
    out.gauge("plng_slice_disk_bytes", "Bytes charged to the sliver's disk quota", slice,
              static_cast<double>(v.disk_bytes));
    if (v.traffic_counted) {
      out.counter("plng_slice_network_receive_bytes_total",
                  "IP bytes received by the slice's sockets", slice,
                  static_cast<double>(v.bytes_in));
      out.counter("plng_slice_network_transmit_bytes_total", "IP bytes sent by the slice", slice,
                  static_cast<double>(v.bytes_out));
      out.counter("plng_slice_network_receive_packets_total",
                  "IP packets received by the slice's sockets", slice,
                  static_cast<double>(v.packets_in));
      out.counter("plng_slice_network_transmit_packets_total", "IP packets sent by the slice",
                  slice, static_cast<double>(v.packets_out));
      for (const auto& [reason, count] : v.refusals) {
        out.counter("plng_slice_policy_drops_total",
                    "Operations and packets vnet-bpf refused the slice, by reason",
                    {{"slice", v.slice}, {"reason", reason}}, static_cast<double>(count));
      }
    }
  }

  out.counter("plng_sliverd_reconcile_runs_total", "Reconciliation passes run", {},
              static_cast<double>(r.reconcile.runs));
  out.counter("plng_sliverd_reconcile_failures_total",
              "Passes that could not list the slivers or left a sliver failed", {},
              static_cast<double>(r.reconcile.failures));
  if (r.reconcile.last_at != 0) {
    out.gauge("plng_sliverd_last_reconcile_timestamp_seconds",
              "Unix time the last reconciliation pass ended", {},
              static_cast<double>(r.reconcile.last_at));
    out.gauge("plng_sliverd_last_reconcile_ok", "1 when the last pass left no sliver failed", {},
              r.reconcile.last_ok ? 1 : 0);
  }
  for (const char* state : kPlcConnectionStates) {
    out.gauge("plng_sliverd_plc_connection",
              "1 for the current state of the connection to PLC: stream (WatchSlivers open), "
              "polling (GetSlivers only) or offline",
              {{"state", state}}, r.plc_stream == state ? 1 : 0);
  }
  out.gauge("plng_sliverd_build_info", "Always 1; labelled with sliverd's version",
            {{"version", r.software_version}}, 1);
  if (!r.errors.empty()) {
    out.gauge("plng_sliverd_reading_errors",
              "Parts of the node that could not be read at this scrape", {},
              static_cast<double>(r.errors.size()));
  }
}

void addNodeMetrics(app::MetricsRegistry& registry, const NodeObserver& observer) {
  registry.addCollector(
      [&observer](app::MetricsWriter& out) { writeNodeMetrics(observer.read(), out); });
}

}  // namespace plng::sliverd
