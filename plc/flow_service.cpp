// The flow archive's two methods (plc/flow_archive.h):
//
// NodeSync.ReportFlows: a node, and only a node, reports the flows its slivers
// sent, for itself (the session names the node; a request names none). No audit
// event per batch: a node reports every few minutes, and an event each time
// would make the events table mostly flow reports. flow_batches is the record
// of each batch instead (node, batch id, time, flows stored, records the node
// dropped), and refusals go to plcd's log.
//
// Admin.GetFlows: any enabled person may ask who sent traffic to an address.
// PlanetLab's auditing service answered anyone, because the people who ask are
// the administrators of the networks slices send to, and the answer (the slice,
// its description and the PIs who answer for it) is what they need to reach
// someone. A query is no state change: no audit event.
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

#include "plc/errors.h"
#include "plc/flow_archive.h"
#include "plc/lookup.h"
#include "plc/services.h"
#include "plc/validate.h"

namespace plng::plc {

grpc::Status NodeSyncService::ReportFlows(grpc::ServerContext* ctx,
                                          const pb::ReportFlowsRequest* req,
                                          pb::ReportFlowsResponse* resp) {
  return rpc_.query(ctx, "ReportFlows", *req, [&](Call& call) {
    const auto& caller = call.caller();
    if (!caller.isNode()) {
      permissionDenied("ReportFlows is for nodes, reporting their own flows; " + caller.describe() +
                       " is not a node");
    }
    const auto now = std::chrono::system_clock::now();
    const auto now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    try {
      validateFlowBatch(*req, call.plc.config, now_ns);
      resp->set_stored(storeFlowBatch(call.plc.db, call.plc.config, caller.node_id, *req, now));
    } catch (const ApiError& e) {
      spdlog::warn("ReportFlows from node {} refused: {}", caller.hostname, e.what());
      throw;
    }
    if (req->dropped() > 0) {
      spdlog::warn("node {} dropped {} flow record(s) before batch {}", caller.hostname,
                   req->dropped(), req->batch_id());
    }
  });
}

grpc::Status AdminService::GetFlows(grpc::ServerContext* ctx, const pb::GetFlowsRequest* req,
                                    pb::GetFlowsResponse* resp) {
  return rpc_.query(ctx, "GetFlows", *req, [&](Call& call) {
    call.requirePerson();
    if (req->dst().empty()) {
      invalidArgument(
          "dst is required: the address (or CIDR prefix) whose traffic to look up, e.g. "
          "192.0.2.7 or 2001:db8::/64");
    }
    FlowQuery query;
    try {
      query.dst = canonicalPrefix(req->dst());
    } catch (const ApiError& e) {
      invalidArgument(std::string("dst: ") + e.what());
    }
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    query.until = req->until() == 0 ? now : req->until();
    query.since = req->since() == 0 ? query.until - kDefaultFlowWindow : req->since();
    if (query.since > query.until) {
      invalidArgument("since (" + utcTime(query.since) + ") is after until (" +
                      utcTime(query.until) + ")");
    }
    if (req->limit() < 0 || req->limit() > kMaxFlowLimit) {
      invalidArgument("limit must be 0 to " + std::to_string(kMaxFlowLimit) + " (0 means " +
                      std::to_string(kDefaultFlowLimit) + "), not " + std::to_string(req->limit()));
    }
    query.limit = req->limit() == 0 ? kDefaultFlowLimit : req->limit();
    query.slice = req->slice();
    if (!query.slice.empty()) validateSliceName(query.slice);
    *resp = call.plc.db.read([&](pqxx::transaction_base& tx) {
      if (!req->node().empty()) query.node_id = findNode(tx, req->node()).node_id;
      return queryFlows(tx, query);
    });
  });
}

}  // namespace plng::plc
