#include "sliverd/nodemanager/node_manager_service.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "proto/node_protocol.h"
#include "proto/ticket.h"
#include "sliverd/core/rcap_service.h"

namespace plng::sliverd {

namespace pb = planetlab::v1;
using grpc::Status;
using grpc::StatusCode;

namespace {

std::string hostList(const pb::TicketBody& body) {
  std::string out;
  for (const auto& g : body.nodes()) out += (out.empty() ? "" : ", ") + g.hostname();
  return out.empty() ? "no nodes" : out;
}

}  // namespace

NodeManagerService::NodeManagerService(DesiredState& desired, RcapService* rcaps, Hooks hooks)
    : desired_(desired), rcaps_(rcaps), hooks_(std::move(hooks)) {
  if (!hooks_.clock) hooks_.clock = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
}

Status NodeManagerService::RedeemTicket(grpc::ServerContext*,
                                        const pb::RedeemTicketRequest* request,
                                        pb::RedeemTicketResponse* response) {
  if (!request->has_ticket() || request->ticket().body().empty()) {
    return Status(StatusCode::INVALID_ARGUMENT, "RedeemTicket needs a ticket (SignedTicket)");
  }
  auto keys = desired_.trustedKeys();
  if (!keys || keys->empty()) {
    return Status(StatusCode::UNAVAILABLE,
                  "node " + desired_.hostname() +
                      " has not received PLC's public keys yet; retry once it has synced with PLC");
  }
  pb::TicketBody body;
  try {
    body = plng::ticket::verifyTicket(request->ticket(), *keys, hooks_.clock());
  } catch (const plng::ticket::TicketError& e) {
    spdlog::info("ticket refused: {} ({})", e.what(), plng::ticket::toString(e.code()));
    return plng::proto::ticketRefusal(e);
  }
  bool named = false;
  for (const auto& g : body.nodes())
    named = named || plng::proto::sameHostname(g.hostname(), desired_.hostname());
  if (!named) {
    return Status(StatusCode::FAILED_PRECONDITION,
                  "ticket " + body.ticket_id() + " for slice " + body.slice_name() + " is for " +
                      hostList(body) + ", not this node (" + desired_.hostname() +
                      "); redeem it at one of those nodes");
  }
  bool created = false;
  try {
    created = desired_.addTicket(request->ticket(), body);
  } catch (const std::invalid_argument& e) {
    return Status(StatusCode::INVALID_ARGUMENT, e.what());
  } catch (const std::exception& e) {
    spdlog::error("cannot record ticket {}: {}", body.ticket_id(), e.what());
    return Status(StatusCode::INTERNAL, std::string("cannot record the ticket: ") + e.what());
  }
  if (created) {
    spdlog::info("ticket {} redeemed: slice {} (xid {}) until {}", body.ticket_id(),
                 body.slice_name(), body.xid(), body.not_after());
    if (hooks_.changed) hooks_.changed();
  }
  response->set_created(created);
  if (hooks_.describe) {
    *response->mutable_sliver() = hooks_.describe(body.slice_name());
  } else {
    response->mutable_sliver()->set_slice_name(body.slice_name());
    response->mutable_sliver()->set_xid(body.xid());
  }
  return Status::OK;
}

Status NodeManagerService::Acquire(grpc::ServerContext* context, const pb::AcquireRequest* request,
                                   pb::AcquireResponse* response) {
  if (rcaps_ == nullptr) {
    return Status(StatusCode::UNIMPLEMENTED, "resource capabilities are not enabled on this node");
  }
  return rcaps_->acquire(context, *request, response);
}
Status NodeManagerService::Bind(grpc::ServerContext* context, const pb::BindRequest* request,
                                pb::BindResponse* response) {
  if (rcaps_ == nullptr) {
    return Status(StatusCode::UNIMPLEMENTED, "resource capabilities are not enabled on this node");
  }
  Status status = rcaps_->bind(context, *request, response);
  if (status.ok() && hooks_.changed) hooks_.changed();
  return status;
}
Status NodeManagerService::Split(grpc::ServerContext* context, const pb::SplitRequest* request,
                                 pb::SplitResponse* response) {
  if (rcaps_ == nullptr) {
    return Status(StatusCode::UNIMPLEMENTED, "resource capabilities are not enabled on this node");
  }
  return rcaps_->split(context, *request, response);
}

Status NodeManagerService::GetNodeInfo(grpc::ServerContext*, const pb::GetNodeInfoRequest*,
                                       pb::NodeInfo* response) {
  if (hooks_.node_info) {
    *response = hooks_.node_info();
  } else {
    response->set_hostname(desired_.hostname());
    response->set_plc_state_version(desired_.plcVersion());
  }
  return Status::OK;
}

}  // namespace plng::sliverd
