// sliverd's Prometheus metrics of the node and its slivers (docs/metrics.md,
// "sliverd"): read from a NodeObserver at every scrape, so /metrics, the
// sensors and the health report show the same figures.
#pragma once

#include "app/metrics.h"
#include "sliverd/observe/node_reading.h"

namespace plng::sliverd {

// The PLC connection states PlcSync::connection() reports, each a series of
// plng_sliverd_plc_connection (1 for the current one).
inline constexpr const char* kPlcConnectionStates[] = {"stream", "polling", "offline"};

// Registers the collector of plng_node_*, plng_slice_* and the reading-based
// plng_sliverd_* series. `observer` must outlive the registry's scrapes.
void addNodeMetrics(app::MetricsRegistry& registry, const NodeObserver& observer);

// The samples of one reading (the collector's body, for tests).
void writeNodeMetrics(const NodeReading& reading, app::MetricsWriter& out);

}  // namespace plng::sliverd
