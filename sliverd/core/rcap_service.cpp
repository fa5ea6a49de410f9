#include "sliverd/core/rcap_service.h"

#include <exception>

#include "proto/node_protocol.h"

namespace plng::sliverd {
namespace {

grpc::Status statusOf(const RcapError& e) {
  switch (e.code()) {
    case RcapErrorCode::kMalformed:
      return {grpc::StatusCode::INVALID_ARGUMENT, e.what()};
    case RcapErrorCode::kUnknown:
      return {grpc::StatusCode::NOT_FOUND, e.what()};
    case RcapErrorCode::kConsumed:
      return {grpc::StatusCode::FAILED_PRECONDITION, e.what()};
    case RcapErrorCode::kExhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, e.what()};
    case RcapErrorCode::kTooLarge:
      return {grpc::StatusCode::OUT_OF_RANGE, e.what()};
  }
  return {grpc::StatusCode::INTERNAL, e.what()};
}

// Runs `body`, turning the errors it may throw into statuses; anything else is
// INTERNAL with its message (a state file that cannot be written, say).
template <typename Body>
grpc::Status guarded(Body&& body) {
  try {
    return body();
  } catch (const RcapError& e) {
    return statusOf(e);
  } catch (const std::exception& e) {
    return {grpc::StatusCode::INTERNAL, std::string("rcap table: ") + e.what()};
  }
}

}  // namespace

ResourceSpec toResourceSpec(const planetlab::v1::RSpec& r) {
  ResourceSpec s;
  s.cpu_share = r.cpu_share();
  s.cpu_cap_pct = r.cpu_cap_pct();
  s.mem_limit_bytes = r.mem_limit_bytes();
  s.tasks = r.tasks();
  s.disk_quota_bytes = r.disk_quota_bytes();
  s.net_min_rate = r.net_min_rate();
  s.net_max_rate = r.net_max_rate();
  return s;
}

planetlab::v1::RSpec toRSpec(const ResourceSpec& s) {
  planetlab::v1::RSpec r;
  r.set_cpu_share(s.cpu_share);
  r.set_cpu_cap_pct(s.cpu_cap_pct);
  r.set_mem_limit_bytes(s.mem_limit_bytes);
  r.set_tasks(s.tasks);
  r.set_disk_quota_bytes(s.disk_quota_bytes);
  r.set_net_min_rate(s.net_min_rate);
  r.set_net_max_rate(s.net_max_rate);
  return r;
}

RcapService::RcapService(RcapTable& table, KeysSource keys, std::string hostname, Clock clock,
                         SliverLookup sliver, BoundCallback on_bound)
    : table_(table),
      keys_(std::move(keys)),
      hostname_(std::move(hostname)),
      clock_(std::move(clock)),
      sliver_(std::move(sliver)),
      on_bound_(std::move(on_bound)) {}

std::optional<grpc::Status> RcapService::authorize(const planetlab::v1::SignedTicket& credential,
                                                   std::int64_t now, Caller& caller) const {
  if (credential.body().empty()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "a credential is required: a PLC ticket of the calling slice");
  }
  std::shared_ptr<const ticket::TrustedKeys> keys = keys_ ? keys_() : nullptr;
  if (!keys || keys->empty()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "this node holds no PLC keys yet; retry once it has synced with PLC");
  }
  planetlab::v1::TicketBody body;
  try {
    body = ticket::verifyTicket(credential, *keys, now);
  } catch (const ticket::TicketError& e) {
    return plng::proto::ticketRefusal(e);
  }
  const planetlab::v1::NodeGrant* grant = nullptr;
  for (const auto& node : body.nodes()) {
    if (plng::proto::sameHostname(node.hostname(), hostname_)) grant = &node;
  }
  if (grant == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "the credential of slice " + body.slice_name() + " does not name node " +
                            hostname_ + "; ask PLC for a ticket covering this node");
  }
  auto it = grant->tags().find("delegations");
  if (it == grant->tags().end() || it->second != "true") {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "slice " + body.slice_name() + " lacks the delegations right on " +
                            hostname_ + " (PLC tag delegations=true)");
  }
  caller.slice = body.slice_name();
  caller.not_after = body.not_after();
  return std::nullopt;
}

grpc::Status RcapService::acquire(grpc::ServerContext*, const planetlab::v1::AcquireRequest& req,
                                  planetlab::v1::AcquireResponse* resp) {
  const std::int64_t now = clock_();
  Caller caller;
  if (auto refused = authorize(req.credential(), now, caller)) return *refused;
  return guarded([&] {
    const ResourceSpec spec = toResourceSpec(req.rspec());
    // An rcap lives no longer than the authority of the slice that acquired it;
    // once bound, it lives as long as the sliver it was bound to.
    resp->set_rcap(table_.acquire(caller.slice, spec, caller.not_after, now));
    *resp->mutable_rspec() = toRSpec(spec);
    return grpc::Status::OK;
  });
}

grpc::Status RcapService::bind(grpc::ServerContext*, const planetlab::v1::BindRequest& req,
                               planetlab::v1::BindResponse* resp) {
  const std::int64_t now = clock_();
  Caller caller;
  if (auto refused = authorize(req.credential(), now, caller)) return *refused;
  return guarded([&] {
    RcapTable::checkFormat(req.rcap());
    const std::string target = req.slice_name().empty() ? caller.slice : req.slice_name();
    if (!sliver_ || !sliver_(target)) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "no sliver of slice " + target + " on " + hostname_ +
                              " to bind to; redeem a ticket for it first");
    }
    table_.bind(req.rcap(), target, now);
    if (on_bound_) on_bound_(target);
    if (auto info = sliver_(target)) *resp->mutable_sliver() = *info;
    return grpc::Status::OK;
  });
}

grpc::Status RcapService::split(grpc::ServerContext*, const planetlab::v1::SplitRequest& req,
                                planetlab::v1::SplitResponse* resp) {
  const std::int64_t now = clock_();
  Caller caller;
  if (auto refused = authorize(req.credential(), now, caller)) return *refused;
  return guarded([&] {
    SplitResult result = table_.split(req.rcap(), toResourceSpec(req.rspec()), caller.slice, now);
    resp->set_rcap(result.rcap);
    *resp->mutable_remaining() = toRSpec(result.remaining);
    return grpc::Status::OK;
  });
}

node::Resources RcapService::boundTo(const std::string& slice) const {
  const ResourceSpec bound = table_.boundTo(slice);
  node::Resources out;
  out.cpu_share = bound.cpu_share;
  out.cpu_cap_pct = bound.cpu_cap_pct;
  out.mem_limit_bytes = bound.mem_limit_bytes;
  out.tasks = bound.tasks;
  out.io_weight = 0;
  return out;
}

}  // namespace plng::sliverd
