// Nodes' status (docs/vnet.md, "Daily byte budgets"): each node reports its
// slices' use of their daily byte budgets (NodeSync.ReportStatus); PLC keeps the
// latest report of each node as it came (node_status, migration 5) and shows it
// to any enabled person (Admin.GetNodeStatus), as PlanetLab showed its nodes'
// bandwidth use.
#include <string>

#include "base/strings.h"
#include "plc/errors.h"
#include "plc/lookup.h"
#include "plc/services.h"

namespace plng::plc {

namespace {

// A node holds at most this many slices' budgets (vnet-bpf's slices map).
constexpr int kMaxReportedSlices = 4096;

}  // namespace

// A report is bookkeeping of the node, as its last contact is: refreshed every
// net_budget_interval_s by every node, it is stored without an audit event (one
// per node every 30 s would bury the events people read).
grpc::Status NodeSyncService::ReportStatus(grpc::ServerContext* ctx,
                                           const pb::NodeStatusReport* req, pb::Empty*) {
  return rpc_.query(ctx, "ReportStatus", *req, [&](Call& call) {
    const Caller& c = call.caller();
    if (!c.isNode()) {
      permissionDenied("ReportStatus is for nodes (their own status); " + c.describe() +
                       " is not a node");
    }
    if (req->slice_net_size() > kMaxReportedSlices) {
      invalidArgument("slice_net has " + std::to_string(req->slice_net_size()) +
                      " slices; a node reports at most " + std::to_string(kMaxReportedSlices));
    }
    for (const auto& usage : req->slice_net()) {
      if (usage.slice_name().empty()) invalidArgument("slice_net: a slice_name is empty");
    }
    const std::string report = base::toHex(req->SerializeAsString());
    call.plc.db.write([&](pqxx::work& tx) {
      tx.exec_params0(
          "INSERT INTO node_status (node_id, received_at, report)"
          " VALUES ($1, now(), decode($2, 'hex'))"
          " ON CONFLICT (node_id) DO UPDATE"
          " SET received_at = excluded.received_at, report = excluded.report",
          c.node_id, report);
    });
  });
}

grpc::Status AdminService::GetNodeStatus(grpc::ServerContext* ctx,
                                         const pb::GetNodeStatusRequest* req,
                                         pb::GetNodeStatusResponse* resp) {
  return rpc_.query(ctx, "GetNodeStatus", *req, [&](Call& call) {
    call.requirePerson();
    call.plc.db.read([&](pqxx::transaction_base& tx) {
      std::vector<NodeRef> nodes;
      if (req->hostnames().empty()) {
        for (const auto& row : tx.exec("SELECT node_id, hostname FROM nodes WHERE deleted_at IS "
                                       "NULL ORDER BY hostname")) {
          NodeRef node;
          node.node_id = row[0].as<std::int64_t>();
          node.hostname = row[1].c_str();
          nodes.push_back(std::move(node));
        }
      } else {
        for (const std::string& hostname : req->hostnames())
          nodes.push_back(findNode(tx, hostname));
      }
      for (const NodeRef& node : nodes) {
        pb::NodeStatus* out = resp->add_nodes();
        out->set_hostname(node.hostname);
        auto rows = tx.exec_params(
            "SELECT floor(extract(epoch FROM received_at))::bigint, encode(report, 'hex')"
            " FROM node_status WHERE node_id = $1",
            node.node_id);
        if (rows.empty()) continue;
        out->set_received_at(rows[0][0].as<std::int64_t>());
        if (!out->mutable_report()->ParseFromString(base::fromHex(rows[0][1].c_str()))) {
          throw std::runtime_error("the stored status of node " + node.hostname +
                                   " does not parse");
        }
      }
    });
  });
}

}  // namespace plng::plc
