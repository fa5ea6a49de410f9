#include "sliverd/local/local_service.h"

#include <net/if.h>

#include <set>
#include <thread>

#include "sliverd/core/rcap_service.h"
#include "sliverd/core/reconciler.h"
#include "sliverd/local/capture_stream.h"
#include "sliverd/local/local_protocol.h"

namespace plng::sliverd {
namespace {

ResourceSpec specOf(const node::SliverConfig& config) {
  ResourceSpec s;
  s.cpu_share = config.resources.cpu_share;
  s.cpu_cap_pct = config.resources.cpu_cap_pct;
  s.mem_limit_bytes = config.resources.mem_limit_bytes;
  s.tasks = config.resources.tasks;
  s.disk_quota_bytes = config.disk_quota_bytes;
  return s;
}

const char* stateOf(node::SliverPhase phase) {
  return phase == node::SliverPhase::kRunning ? "running" : "stopped";
}

template <typename Request, typename Reply, typename Handler>
std::string dispatch(const std::string& payload, Handler&& handler) {
  Request request;
  if (!request.ParseFromString(payload)) {
    return encodeLocalResponse(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the request does not parse"), nullptr);
  }
  Reply reply;
  grpc::Status status = handler(request, &reply);
  return encodeLocalResponse(status, &reply);
}

}  // namespace

ResourceSpec grantedSpec(const node::SliverConfig& config, const node::NetworkLimits& network) {
  ResourceSpec s = specOf(config);
  s.net_min_rate = network.min_rate_bps;
  s.net_max_rate = network.max_rate_bps;
  return s;
}

LocalService::LocalService(node::SliverRuntime& runtime, const GrantedSlivers& granted,
                           const RcapTable& rcaps, node::NodePaths paths,
                           std::chrono::milliseconds stop_grace, Reports reports,
                           PortHoldings ports, Refusals refusals, CaptureSockets captures,
                           NetUsages net_usage)
    : runtime_(runtime),
      granted_(granted),
      rcaps_(rcaps),
      paths_(std::move(paths)),
      stop_grace_(stop_grace),
      reports_(std::move(reports)),
      ports_(std::move(ports)),
      refusals_(std::move(refusals)),
      captures_(std::move(captures)),
      net_usage_(std::move(net_usage)) {}

bool LocalService::mayControl(const std::string& slice, const std::string& target) const {
  if (slice == target) return true;
  auto grant = granted_.find(slice);
  if (!grant) return false;
  return grant->proper.allowsSliverControl(target);
}

std::optional<grpc::Status> LocalService::authorize(const Peer& peer, const std::string& requested,
                                                    Access access, std::string& target) const {
  if (requested.empty()) {
    if (peer.kind != Peer::Kind::kSliver) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the host has no sliver of its own: name a slice");
    }
    target = peer.slice;
    return std::nullopt;
  }
  target = requested;
  switch (peer.kind) {
    case Peer::Kind::kHostRoot:
      return std::nullopt;
    case Peer::Kind::kHostUser:
      if (access == Access::kRead) return std::nullopt;
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "host user " + std::to_string(peer.uid) +
                              " may only read slivers; starting and stopping them is for root "
                              "(the node operator) and the slice itself");
    case Peer::Kind::kSliver:
      if (mayControl(peer.slice, target)) return std::nullopt;
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "slice " + peer.slice + " may not " +
                              (access == Access::kRead ? "see" : "control") + " the sliver of " +
                              target + " (needs proper=sliver_control:" + target + ")");
  }
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "unknown caller");
}

std::optional<planetlab::v1::SliverInfo> LocalService::describe(const std::string& slice) {
  std::optional<GrantedSliver> grant = granted_.find(slice);
  std::optional<node::SliverStatus> status = runtime_.get(slice);
  if (!grant && !status) return std::nullopt;

  planetlab::v1::SliverInfo info;
  info.set_slice_name(slice);
  const ResourceSpec granted = grant ? grant->rspec : ResourceSpec{};
  ResourceSpec effective = withBound(granted, rcaps_.boundTo(slice));
  if (grant) {
    info.set_xid(grant->xid);
    info.set_source(grant->source);
    info.set_expires_at(grant->expires_at);
    *info.mutable_rspec() = toRSpec(granted);
  }
  if (status) {
    if (!grant) info.set_xid(status->config.xid);
    const ResourceSpec applied = specOf(status->config);
    effective.cpu_share = applied.cpu_share;
    effective.cpu_cap_pct = applied.cpu_cap_pct;
    effective.mem_limit_bytes = applied.mem_limit_bytes;
    effective.tasks = applied.tasks;
    effective.disk_quota_bytes = applied.disk_quota_bytes;
    info.set_state(grant ? stateOf(status->phase) : "deleting");
    if (!grant) info.set_message("no longer granted to this node; it will be deleted");
    if (grant && status->phase != node::SliverPhase::kRunning) {
      try {
        if (auto by = heldBy(paths_, slice)) info.set_message(heldMessage(*by));
      } catch (const std::exception&) {
        // Only the message depends on it.
      }
    }
    info.set_init_pid(status->phase == node::SliverPhase::kRunning
                          ? static_cast<std::uint32_t>(status->init_pid)
                          : 0);
    info.set_memory_bytes(status->usage.memory_bytes);
    info.set_cpu_usage_ns(status->usage.cpu_usage_ns);
    info.set_tasks(status->usage.tasks);
  } else {
    info.set_state("creating");
  }
  *info.mutable_effective() = toRSpec(effective);
  // What the reconciler found, as docs/node.md promises: a sliver it could not
  // create, start or update is "failed", with why.
  if (reports_) {
    const SliverReport report = reports_(slice);
    if (report.failure) {
      info.set_state("failed");
      info.set_message(*report.failure);
    } else if (report.notice && info.message().empty()) {
      info.set_message(*report.notice);
    }
  }
  return info;
}

grpc::Status LocalService::listSlivers(const Peer& peer, const planetlab::v1::ListSliversRequest&,
                                       planetlab::v1::ListSliversResponse* reply) {
  std::set<std::string> names;
  for (const auto& slice : granted_.slices()) names.insert(slice);
  for (const auto& status : runtime_.list()) names.insert(status.config.slice);
  for (const auto& slice : names) {
    if (peer.kind == Peer::Kind::kSliver && !mayControl(peer.slice, slice)) continue;
    if (auto info = describe(slice)) *reply->add_slivers() = *info;
  }
  return grpc::Status::OK;
}

grpc::Status LocalService::getSliver(const Peer& peer,
                                     const planetlab::v1::GetSliverRequest& request,
                                     planetlab::v1::SliverInfo* reply) {
  std::string target;
  if (auto refused = authorize(peer, request.slice_name(), Access::kRead, target)) return *refused;
  auto info = describe(target);
  if (!info) {
    return {grpc::StatusCode::NOT_FOUND, "no sliver of slice " + target + " on this node"};
  }
  *reply = *info;
  return grpc::Status::OK;
}

grpc::Status LocalService::act(const Peer& peer, const std::string& requested, Action action,
                               planetlab::v1::SliverInfo* reply) {
  std::string target;
  if (auto refused = authorize(peer, requested, Access::kAct, target)) return *refused;
  if (!runtime_.get(target)) {
    if (granted_.find(target)) {
      return {grpc::StatusCode::FAILED_PRECONDITION,
              "the sliver of " + target + " is still being created; try again shortly"};
    }
    return {grpc::StatusCode::NOT_FOUND, "no sliver of slice " + target + " on this node"};
  }
  if (action != Action::kStop && !granted_.find(target)) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "slice " + target + " is no longer granted to this node; it cannot be started"};
  }
  try {
    // The mark goes down before the stop, so a reconcile pass in between does
    // not start the sliver again; a start clears it first for the same reason.
    if (action == Action::kStop) {
      holdSliver(paths_, target,
                 peer.kind == Peer::Kind::kSliver ? "slice " + peer.slice : "the node operator");
    } else {
      releaseSliver(paths_, target);
    }
    if (action == Action::kStop || action == Action::kRestart) runtime_.stop(target, stop_grace_);
    if (action == Action::kStart || action == Action::kRestart) runtime_.start(target);
  } catch (const std::exception& e) {
    // The node cannot do it now (a missing image, a full disk): the caller's
    // request is fine, the sliver's state is not.
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "the sliver of " + target + " could not be " +
                (action == Action::kStop ? "stopped" : "started") + ": " + e.what()};
  }
  if (auto info = describe(target)) *reply = *info;
  return grpc::Status::OK;
}

grpc::Status LocalService::startSliver(const Peer& peer,
                                       const planetlab::v1::SliverActionRequest& request,
                                       planetlab::v1::SliverInfo* reply) {
  return act(peer, request.slice_name(), Action::kStart, reply);
}

grpc::Status LocalService::stopSliver(const Peer& peer,
                                      const planetlab::v1::SliverActionRequest& request,
                                      planetlab::v1::SliverInfo* reply) {
  return act(peer, request.slice_name(), Action::kStop, reply);
}

grpc::Status LocalService::restartSliver(const Peer& peer,
                                         const planetlab::v1::SliverActionRequest& request,
                                         planetlab::v1::SliverInfo* reply) {
  return act(peer, request.slice_name(), Action::kRestart, reply);
}

grpc::Status LocalService::getPorts(const Peer& peer, const planetlab::v1::GetPortsRequest& request,
                                    planetlab::v1::GetPortsResponse* reply) {
  if (!ports_) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "network isolation is not running on this node: no port is owned "
                        "(sliverctl node shows why)");
  }
  std::map<std::uint32_t, std::string> names;
  for (const std::string& slice : granted_.slices()) {
    if (auto grant = granted_.find(slice)) names[grant->xid] = slice;
  }
  if (request.slice_name() == "*") {
    if (peer.kind != Peer::Kind::kHostRoot) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "every slice's ports are for the node's root; " + peer.describe() +
                              " may ask for a slice's own (no slice name)");
    }
    for (auto& holding : ports_(std::nullopt, names)) *reply->add_ports() = std::move(holding);
    return grpc::Status::OK;
  }
  std::string target;
  if (auto refused = authorize(peer, request.slice_name(), Access::kRead, target)) {
    return *refused;
  }
  std::optional<GrantedSliver> grant = granted_.find(target);
  std::optional<node::SliverStatus> status = runtime_.get(target);
  if (!grant && !status) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no sliver of " + target + " on this node");
  }
  const std::uint32_t xid = grant ? grant->xid : status->config.xid;
  names[xid] = target;
  for (auto& holding : ports_(xid, names)) *reply->add_ports() = std::move(holding);
  node::NetworkRights rights;
  if (grant) {
    try {
      rights = node::networkRightsFromTags(grant->tags);
    } catch (const node::TagError&) {
      // The sliver's state says why; the default cap applies meanwhile.
    }
  }
  reply->set_max_ports(rights.max_ports);
  if (refusals_) {
    for (const auto& [reason, count] : refusals_(xid)) (*reply->mutable_refusals())[reason] = count;
  }
  return grpc::Status::OK;
}

grpc::Status LocalService::capture(const Peer& peer, const planetlab::v1::CaptureRequest& request,
                                   planetlab::v1::CaptureResponse* reply, Stream* stream) {
  if (peer.kind != Peer::Kind::kSliver) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "a capture is of the caller's own slice's packets: run sliverctl capture "
                        "inside the sliver (" +
                            peer.describe() + " is in none)");
  }
  if (!captures_ || stream == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "packet capture is not available on this node (sliverctl node shows "
                        "whether network isolation runs)");
  }
  std::optional<GrantedSliver> grant = granted_.find(peer.slice);
  if (!grant) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "slice " + peer.slice + " is no longer granted on this node");
  }
  if (request.interface().size() >= IFNAMSIZ) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "interface names have fewer than " + std::to_string(IFNAMSIZ) + " characters");
  }
  auto active = active_captures_;
  if (active->fetch_add(1) >= kMaxCaptures) {
    active->fetch_sub(1);
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "the node runs " + std::to_string(kMaxCaptures) +
                            " captures already; try again when one ends");
  }
  base::UniqueFd socket;
  try {
    socket = captures_(grant->xid, request.interface());
  } catch (const base::SysError& e) {
    active->fetch_sub(1);
    if (e.err() == ENODEV) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "no interface " + request.interface() + " on this node");
    }
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, e.what());
  } catch (const std::exception& e) {
    active->fetch_sub(1);
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, e.what());
  }
  const CaptureLimits limits =
      CaptureLimits::fitted(request.count(), request.seconds(), request.snaplen());
  reply->set_count(limits.count);
  reply->set_seconds(limits.seconds);
  reply->set_snaplen(limits.snaplen);
  auto shared_socket = std::make_shared<base::UniqueFd>(std::move(socket));
  // The capture's slot is given back when the stream is gone, run or not (an
  // answer that could not be written).
  std::shared_ptr<void> slot(nullptr, [active](void*) { active->fetch_sub(1); });
  *stream = [shared_socket, limits, slot](base::UniqueFd connection) {
    streamCapture(shared_socket->get(), connection.get(), limits);
  };
  return grpc::Status::OK;
}

grpc::Status LocalService::getNetUsage(const Peer& peer,
                                       const planetlab::v1::GetNetUsageRequest& request,
                                       planetlab::v1::NetUsage* reply) {
  if (!net_usage_) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "network isolation is not running on this node: no traffic is counted "
                        "(sliverctl node shows why)");
  }
  std::string target;
  if (auto refused = authorize(peer, request.slice_name(), Access::kRead, target)) {
    return *refused;
  }
  std::optional<planetlab::v1::NetUsage> usage = net_usage_(target);
  if (!usage) {
    if (!granted_.find(target) && !runtime_.get(target))
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no sliver of " + target + " on this node");
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the daily byte budget of " + target +
                            " is not counted yet (sliverd updates it every "
                            "net_budget_interval_s): try again shortly");
  }
  *reply = std::move(*usage);
  return grpc::Status::OK;
}

std::string LocalService::handle(const Peer& peer, const std::string& method,
                                 const std::string& payload, Stream* stream) {
  using namespace planetlab::v1;
  try {
    if (method == "ListSlivers") {
      return dispatch<ListSliversRequest, ListSliversResponse>(
          payload, [&](const auto& req, auto* reply) { return listSlivers(peer, req, reply); });
    }
    if (method == "GetSliver") {
      return dispatch<GetSliverRequest, SliverInfo>(
          payload, [&](const auto& req, auto* reply) { return getSliver(peer, req, reply); });
    }
    if (method == "StartSliver") {
      return dispatch<SliverActionRequest, SliverInfo>(
          payload, [&](const auto& req, auto* reply) { return startSliver(peer, req, reply); });
    }
    if (method == "StopSliver") {
      return dispatch<SliverActionRequest, SliverInfo>(
          payload, [&](const auto& req, auto* reply) { return stopSliver(peer, req, reply); });
    }
    if (method == "RestartSliver") {
      return dispatch<SliverActionRequest, SliverInfo>(
          payload, [&](const auto& req, auto* reply) { return restartSliver(peer, req, reply); });
    }
    if (method == "GetPorts") {
      return dispatch<GetPortsRequest, GetPortsResponse>(
          payload, [&](const auto& req, auto* reply) { return getPorts(peer, req, reply); });
    }
    if (method == "Capture") {
      return dispatch<CaptureRequest, CaptureResponse>(
          payload, [&](const auto& req, auto* reply) { return capture(peer, req, reply, stream); });
    }
    if (method == "GetNetUsage") {
      return dispatch<GetNetUsageRequest, NetUsage>(
          payload, [&](const auto& req, auto* reply) { return getNetUsage(peer, req, reply); });
    }
    return encodeLocalResponse(
        grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no local API method " + method), nullptr);
  } catch (const std::exception& e) {
    return encodeLocalResponse(grpc::Status(grpc::StatusCode::INTERNAL, e.what()), nullptr);
  }
}

}  // namespace plng::sliverd
