#include "sliverd/observe/node_health.h"

#include <cmath>

namespace plng::sliverd {

std::string plcStreamHealth(const std::string& connection) {
  if (connection == "stream") return "open";
  if (connection == "polling") return "down: polling GetSlivers";
  if (connection == "offline") return "down: PLC unreachable";
  return connection;
}

planetlab::v1::NodeHealth toNodeHealth(const NodeReading& r) {
  planetlab::v1::NodeHealth out;
  out.set_load1(r.system.load.load1);
  out.set_load5(r.system.load.load5);
  out.set_load15(r.system.load.load15);
  out.set_uptime_s(static_cast<std::uint64_t>(std::floor(r.system.uptime_s)));
  out.set_memory_total_bytes(r.system.memory_total_bytes);
  out.set_memory_available_bytes(r.system.memory_available_bytes);
  out.set_disk_total_bytes(r.disk_total_bytes);
  out.set_disk_free_bytes(r.disk_free_bytes);
  out.set_software_version(r.software_version);
  out.set_last_reconcile_at(r.reconcile.last_at);
  out.set_last_reconcile_ok(r.reconcile.last_ok);
  std::uint32_t running = 0;
  for (const SliverReading& sliver : r.slivers) {
    if (sliver.state == "running") ++running;
    if (sliver.state != "failed") continue;
    planetlab::v1::SliverFailure* failed = out.add_slivers_failed();
    failed->set_slice_name(sliver.slice);
    failed->set_reason(sliver.failure);
    failed->set_since(sliver.failed_since);
  }
  out.set_slivers_running(running);
  for (const auto& [name, value] : r.features) (*out.mutable_features())[name] = value;
  out.set_plc_stream(plcStreamHealth(r.plc_stream));
  return out;
}

}  // namespace plng::sliverd
