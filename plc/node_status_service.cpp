// Nodes' status (docs/plc.md, "Node health"; docs/vnet.md, "Daily byte
// budgets"): each node reports its health and its slices' use of their daily
// byte budgets (NodeSync.ReportStatus); PLC keeps the latest report of each
// node as it came (node_status, migration 5) and its last node_status_history
// reports (node_status_history, migration 8), and shows them to any enabled
// person with each node's last contact and whether it is down
// (Admin.GetNodeStatus), as PlanetLab's CoMon showed its nodes.
#include <string>

#include "base/strings.h"
#include "plc/admin_views.h"
#include "plc/errors.h"
#include "plc/lookup.h"
#include "plc/services.h"
#include "plc/validate.h"

namespace plng::plc {

namespace {

// A node holds at most this many slices' budgets (vnet-bpf's slices map).
constexpr int kMaxReportedSlices = 4096;
// What one report's health may carry: PLC stores node_status_history of them
// per node, so each is bounded (about 1 MiB at worst, failures included).
constexpr int kMaxReportedFailures = 1000;
constexpr std::size_t kMaxFailureReason = 512;
constexpr int kMaxReportedFeatures = 64;
constexpr std::size_t kMaxFeatureText = 256;
constexpr std::size_t kMaxHealthText = 1024;  // software_version, plc_stream
// History is for a look at a few nodes, not a dump of the fleet.
constexpr int kMaxHistoryNodes = 20;

void checkHealth(const pb::NodeHealth& health) {
  auto bounded = [](const std::string& field, const std::string& value, std::size_t max) {
    if (value.size() > max) {
      invalidArgument("health." + field + " has " + std::to_string(value.size()) +
                      " bytes; at most " + std::to_string(max));
    }
  };
  bounded("software_version", health.software_version(), kMaxHealthText);
  bounded("plc_stream", health.plc_stream(), kMaxHealthText);
  if (health.slivers_failed_size() > kMaxReportedFailures) {
    invalidArgument("health.slivers_failed has " + std::to_string(health.slivers_failed_size()) +
                    " slivers; a node reports at most " + std::to_string(kMaxReportedFailures));
  }
  for (const auto& failure : health.slivers_failed()) {
    if (failure.slice_name().empty()) {
      invalidArgument("health.slivers_failed: a slice_name is empty");
    }
    bounded("slivers_failed.slice_name", failure.slice_name(), kMaxFeatureText);
    bounded("slivers_failed.reason", failure.reason(), kMaxFailureReason);
  }
  if (health.features_size() > kMaxReportedFeatures) {
    invalidArgument("health.features has " + std::to_string(health.features_size()) +
                    " entries; at most " + std::to_string(kMaxReportedFeatures));
  }
  for (const auto& [name, value] : health.features()) {
    if (name.empty()) invalidArgument("health.features: a feature name is empty");
    bounded("features key", name, kMaxFeatureText);
    bounded("features[" + name + "]", value, kMaxFeatureText);
  }
}

void parseReport(const std::string& hex, const std::string& hostname, pb::NodeStatusReport* out) {
  if (!out->ParseFromString(base::fromHex(hex))) {
    throw std::runtime_error("a stored status report of node " + hostname + " does not parse");
  }
}

}  // namespace

// A report is bookkeeping of the node, as its last contact is (and is one):
// refreshed every net_budget_interval_s by every node, it is stored without an
// audit event (one per node every 30 s would bury the events people read).
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
    if (req->has_health()) checkHealth(req->health());
    const std::string report = base::toHex(req->SerializeAsString());
    const int keep = call.plc.config.node_status_history;
    call.plc.db.write([&](pqxx::work& tx) {
      tx.exec_params0(
          "INSERT INTO node_status (node_id, received_at, report)"
          " VALUES ($1, now(), decode($2, 'hex'))"
          " ON CONFLICT (node_id) DO UPDATE"
          " SET received_at = excluded.received_at, report = excluded.report",
          c.node_id, report);
      tx.exec_params0(
          "INSERT INTO node_status_history (node_id, received_at, report)"
          " VALUES ($1, now(), decode($2, 'hex'))",
          c.node_id, report);
      // The node's reports beyond the newest `keep`: at most one, unless the
      // limit was lowered since.
      tx.exec_params0(
          "DELETE FROM node_status_history WHERE node_id = $1 AND report_id <= ("
          " SELECT report_id FROM node_status_history WHERE node_id = $1"
          " ORDER BY report_id DESC OFFSET $2 LIMIT 1)",
          c.node_id, keep);
      tx.exec_params0("UPDATE nodes SET last_contact = now() WHERE node_id = $1", c.node_id);
    });
  });
}

grpc::Status AdminService::GetNodeStatus(grpc::ServerContext* ctx,
                                         const pb::GetNodeStatusRequest* req,
                                         pb::GetNodeStatusResponse* resp) {
  return rpc_.query(ctx, "GetNodeStatus", *req, [&](Call& call) {
    call.requirePerson();
    const auto& config = call.plc.config;
    const auto history = static_cast<std::int64_t>(req->history());
    if (history > config.node_status_history) {
      invalidArgument("history " + std::to_string(history) + ": PLC keeps at most " +
                      std::to_string(config.node_status_history) +
                      " reports per node (node_status_history)");
    }
    if (history > 0 && (req->hostnames().empty() || req->hostnames_size() > kMaxHistoryNodes)) {
      invalidArgument("history is given for named nodes only (1 to " +
                      std::to_string(kMaxHistoryNodes) + " hostnames); " +
                      std::to_string(req->hostnames_size()) + " named");
    }
    call.plc.db.read([&](pqxx::transaction_base& tx) {
      std::int64_t site_id = 0;
      if (!req->login_base().empty()) site_id = findSite(tx, req->login_base()).site_id;
      std::vector<std::int64_t> named;
      for (const std::string& hostname : req->hostnames()) {
        NodeRef node = findNode(tx, hostname);
        if (site_id != 0 && node.site_id != site_id) {
          notFound("node " + node.hostname + " is at site " + node.login_base + ", not " +
                   req->login_base());
        }
        named.push_back(node.node_id);
      }
      resp->set_down_after_s(config.node_down_after_s);
      resp->set_now(
          tx.exec("SELECT floor(extract(epoch FROM now()))::bigint")[0][0].as<std::int64_t>());
      // A node is up when it was heard from (contact or report) within the
      // threshold; greatest() ignores NULLs, and is NULL for a node never heard from.
      const auto rows = tx.exec_params(
          "SELECT n.node_id, n.hostname, s.login_base, n.boot_state,"
          " coalesce(floor(extract(epoch FROM n.last_contact))::bigint, 0),"
          " coalesce(floor(extract(epoch FROM st.received_at))::bigint, 0),"
          " encode(st.report, 'hex'),"
          " coalesce(greatest(n.last_contact, st.received_at)"
          "          < now() - make_interval(secs => $3), true)"
          " FROM nodes n JOIN sites s ON s.site_id = n.site_id"
          " LEFT JOIN node_status st ON st.node_id = n.node_id"
          " WHERE n.deleted_at IS NULL AND ($1::bigint = 0 OR n.site_id = $1::bigint)"
          " AND (cardinality($2::bigint[]) = 0 OR n.node_id = ANY($2::bigint[]))"
          " ORDER BY n.hostname, n.node_id",
          site_id, pgIdArray(named), config.node_down_after_s);
      for (const auto& row : rows) {
        pb::NodeStatus* out = resp->add_nodes();
        const auto node_id = row[0].as<std::int64_t>();
        out->set_hostname(row[1].c_str());
        out->set_login_base(row[2].c_str());
        out->set_boot_state(row[3].c_str());
        out->set_last_contact(row[4].as<std::int64_t>());
        out->set_received_at(row[5].as<std::int64_t>());
        if (!row[6].is_null()) parseReport(row[6].c_str(), out->hostname(), out->mutable_report());
        out->set_down(row[7].as<bool>());
        if (history == 0) continue;
        for (const auto& h : tx.exec_params(
                 "SELECT floor(extract(epoch FROM received_at))::bigint, encode(report, 'hex')"
                 " FROM node_status_history WHERE node_id = $1"
                 " ORDER BY report_id DESC LIMIT $2",
                 node_id, history)) {
          pb::NodeStatusRecord* record = out->add_history();
          record->set_received_at(h[0].as<std::int64_t>());
          parseReport(h[1].c_str(), out->hostname(), record->mutable_report());
        }
      }
    });
  });
}

}  // namespace plng::plc
