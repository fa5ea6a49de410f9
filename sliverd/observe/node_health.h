// The node's health as PLC learns it (NodeStatusReport.health; docs/plc.md,
// "Node health"): a rendering of one NodeReading.
#pragma once

#include <string>

#include "proto/plc.pb.h"
#include "sliverd/observe/node_reading.h"

namespace plng::sliverd {

planetlab::v1::NodeHealth toNodeHealth(const NodeReading& reading);

// PlcSync::connection() in NodeHealth.plc_stream's words: "open" (stream),
// "down: polling GetSlivers" (polling), "down: PLC unreachable" (offline).
std::string plcStreamHealth(const std::string& connection);

}  // namespace plng::sliverd
