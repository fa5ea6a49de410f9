// NodeSync: a node's full desired state, on request (GetSlivers) and as a stream
// that carries a new state whenever anything affecting the node changes
// (WatchSlivers), through whichever plcd made the change: every commit NOTIFYs,
// and each plcd's ChangeBus wakes its streams.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "plc/change_bus.h"
#include "plc/errors.h"
#include "plc/lookup.h"
#include "plc/node_state.h"
#include "plc/services.h"
#include "plc/validate.h"
#include "proto/node_protocol.h"

namespace plng::plc {

namespace {

// How often a stream looks whether its client went away while nothing changes.
constexpr auto kCancelPoll = std::chrono::milliseconds(500);

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

// One snapshot: the version matches the content.
pb::NodeState readState(Call& call, const std::string& requested) {
  return call.plc.db.read([&](pqxx::transaction_base& tx) {
    auto target = authoriseTarget(call, tx, requested);
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

grpc::Status NodeSyncService::WatchSlivers(grpc::ServerContext* ctx,
                                           const pb::WatchSliversRequest* req,
                                           grpc::ServerWriter<pb::NodeState>* writer) {
  auto& plc = rpc_.plc();
  // Taken before the first snapshot: a change committed after that snapshot
  // advances the generation and so is never missed.
  auto generation = plc.bus.generation();
  pb::NodeState state;
  // Each (re)computation goes through RpcRunner: the token is checked again (a
  // deleted node or revoked session ends the stream) and errors map as usual.
  // An open stream is contact: last_contact is refreshed on the periodic rechecks.
  auto compute = [&](bool touch) {
    return rpc_.query(ctx, "WatchSlivers", *req, [&](Call& call) {
      state = readState(call, req->hostname());
      if (touch) touchLastContact(call);
    });
  };
  auto status = compute(/*touch=*/true);
  if (!status.ok()) return status;
  // Versions compare only within one epoch: a node that holds a version of
  // another epoch (PLC's database restarted or was restored since) gets the
  // state whatever the numbers say.
  const bool node_behind =
      state.epoch() != req->since_epoch() || state.version() > req->since_version();
  if (node_behind && !writer->Write(state)) return grpc::Status::OK;
  auto sent = nodeStateContent(state);
  // Within an epoch, versions a stream sends rise strictly from the state it
  // started with (the client's since_version only decides whether that first
  // state is sent).
  StateStamp sent_stamp{state.epoch(), state.version()};

  const auto recheck = std::chrono::seconds(std::max(1, plc.config.watch_recheck_s));
  auto next_recheck = std::chrono::steady_clock::now() + recheck;
  while (true) {
    auto now_generation = plc.bus.waitForChange(generation, kCancelPoll);
    if (ctx->IsCancelled() || plc.bus.stopping()) break;
    // Slices expire without any commit, so the state is recomputed now and then
    // even when nothing was notified.
    bool changed = now_generation != generation;
    if (!changed && std::chrono::steady_clock::now() < next_recheck) continue;
    generation = now_generation;
    next_recheck = std::chrono::steady_clock::now() + recheck;
    status = compute(/*touch=*/!changed);
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      // The database is away (restarting): keep the stream and try again shortly
      // rather than send every node into reconnect backoff at once.
      next_recheck = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      continue;
    }
    if (!status.ok()) return status;
    auto content = nodeStateContent(state);
    // A new epoch goes out even with the same content, so the node compares the
    // next versions against this epoch's, not against the old one's.
    const bool new_epoch = state.epoch() != sent_stamp.epoch;
    if (content == sent && !new_epoch) continue;
    // Content changed without a newer version: a slice expired and ExpirySweeper
    // has not announced it yet. Its version bump wakes this loop again shortly.
    if (!new_epoch && state.version() <= sent_stamp.version) continue;
    if (!writer->Write(state)) break;
    sent = std::move(content);
    sent_stamp = StateStamp{state.epoch(), state.version()};
  }
  return grpc::Status::OK;
}

}  // namespace plng::plc
