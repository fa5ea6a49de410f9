// NodeSync: a node's full desired state, on request (GetSlivers) and as a stream
// that carries a new state whenever anything affecting the node changes
// (WatchSlivers), through whichever plcd made the change: every commit NOTIFYs
// with the nodes it can affect, and each plcd's ChangeBus hands that to its
// NodeStreams, which recomputes those nodes' streams.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "plc/admin_views.h"
#include "plc/errors.h"
#include "plc/lookup.h"
#include "plc/node_state.h"
#include "plc/plcd_metrics.h"
#include "plc/services.h"
#include "plc/validate.h"
#include "proto/node_protocol.h"

namespace plng::plc {

namespace {

struct NodeTarget {
  std::int64_t node_id = 0;
  std::string hostname;
};

// A node reads its own state; an admin may read any node's.
NodeTarget authoriseTarget(const Call& call, pqxx::transaction_base& tx,
                           const std::string& requested) {
  const auto& c = call.caller();
  if (c.isNode()) {
    if (!requested.empty() && !plng::proto::sameHostname(requested, c.hostname)) {
      permissionDenied(std::string(call.method()) + ": node " + c.hostname +
                       " may read only its own state, not that of " + quoteForMessage(requested));
    }
    return NodeTarget{c.node_id, c.hostname};
  }
  if (c.admin) {
    if (requested.empty()) invalidArgument("hostname is required when an admin asks");
    auto node = findNode(tx, requested);
    return NodeTarget{node.node_id, node.hostname};
  }
  permissionDenied(std::string(call.method()) + " is for nodes (their own state) and admins; " +
                   c.describe() + " is neither");
}

// One snapshot: the version matches the content. `node_id`, when given, gets
// the node whose state it is.
pb::NodeState readState(Call& call, const std::string& requested, std::int64_t* node_id = nullptr) {
  return call.plc.db.read([&](pqxx::transaction_base& tx) {
    auto target = authoriseTarget(call, tx, requested);
    if (node_id != nullptr) *node_id = target.node_id;
    return nodeState(tx, call.plc.keys, target.node_id, target.hostname);
  });
}

// Last contact is bookkeeping, not state nodes act on: no version bump.
void touchLastContact(Call& call) {
  if (!call.caller().isNode()) return;
  try {
    call.plc.db.write([&](pqxx::work& tx) {
      tx.exec_params0("UPDATE nodes SET last_contact = now() WHERE node_id = $1",
                      call.caller().node_id);
    });
  } catch (const std::exception& e) {
    spdlog::warn("could not record last contact of node {}: {}", call.caller().hostname, e.what());
  }
}

}  // namespace

grpc::Status NodeSyncService::GetSlivers(grpc::ServerContext* ctx, const pb::GetSliversRequest* req,
                                         pb::NodeState* resp) {
  return rpc_.query(ctx, "GetSlivers", *req, [&](Call& call) {
    *resp = readState(call, req->hostname());
    touchLastContact(call);
  });
}

grpc::ServerWriteReactor<pb::NodeState>* NodeSyncService::WatchSlivers(
    grpc::CallbackServerContext* ctx, const pb::WatchSliversRequest* req) {
  return streams_.open(ctx, req);
}

std::shared_ptr<const BlacklistSnapshot> NodeSyncService::blacklistSnapshotFor(Call& call) {
  // Read after the latest notification this plcd has had: current until the next.
  const auto seen = streams_.notifications();
  std::lock_guard lock(blacklist_mutex_);
  if (blacklist_ && blacklist_seen_ == seen) return blacklist_;
  blacklist_ = std::make_shared<const BlacklistSnapshot>(
      call.plc.db.read([](pqxx::transaction_base& tx) { return blacklistSnapshot(tx); }));
  blacklist_seen_ = seen;
  return blacklist_;
}

NodeStreams::RecordContact NodeSyncService::recordContact(PlcContext& plc) {
  // Last contact is bookkeeping, not state nodes act on: no version bump.
  return [&plc](const std::vector<std::int64_t>& node_ids) {
    plc.db.write([&](pqxx::work& tx) {
      tx.exec_params0("UPDATE nodes SET last_contact = now() WHERE node_id = ANY($1::bigint[])",
                      pgIdArray(node_ids));
    });
  };
}

std::function<void(std::chrono::duration<double>)> NodeSyncService::fanoutLag(PlcContext& plc) {
  if (plc.metrics == nullptr) return {};
  return [metrics = plc.metrics](std::chrono::duration<double> lag) { metrics->fanoutLag(lag); };
}

NodeStreams::Compute NodeSyncService::computeStream() {
  // Each (re)computation goes through RpcRunner: the token is checked again (a
  // deleted node or revoked session ends the stream) and errors map as usual.
  // An open stream is contact: its first state records it, NodeStreams the rest
  // in batches (recordContact).
  return [this](const CallOrigin& origin, const pb::WatchSliversRequest& request,
                NodeStreams::Refresh& refresh, pb::NodeState& state, std::int64_t& node_id) {
    return rpc_.query(origin, "WatchSlivers", request, [&](Call& call) {
      const bool touch = refresh.touch;
      // Only the blacklist changed since the stream's last state: one read of
      // it serves every node (a node's own request was checked when its stream
      // was computed whole).
      if (refresh.base != nullptr && call.caller().isNode()) {
        auto snapshot = blacklistSnapshotFor(call);
        if (snapshot->stamp.epoch == refresh.base->epoch() &&
            snapshot->stamp.version >= refresh.base->version()) {
          state = withBlacklist(*refresh.base, *snapshot);
          node_id = call.caller().node_id;
          refresh.patched = true;
          if (touch) touchLastContact(call);
          return;
        }
      }
      state = readState(call, request.hostname(), &node_id);
      if (touch) touchLastContact(call);
    });
  };
}

}  // namespace plng::plc
