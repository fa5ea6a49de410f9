// NodeManager (proto/node.proto) on TCP: ticket redemption, resource
// capabilities (forwarded to RcapService) and node information.
//
// Ticket refusals, each with a message saying what to do:
//   INVALID_ARGUMENT     the ticket is missing or malformed (body does not parse,
//                        signature of the wrong length, key id mismatch)
//   UNAUTHENTICATED      not signed by a key PLC publishes: unknown key id, bad
//                        signature (forged or tampered), or a retired key
//   FAILED_PRECONDITION  expired, not yet valid, or this node not named in it
//   UNAVAILABLE          this node has not learned PLC's keys yet (retry later)
// Redeeming the same ticket again succeeds with created = false.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <string>

#include "proto/node.grpc.pb.h"
#include "sliverd/core/desired_state.h"

namespace plng::sliverd {

class RcapService;  // sliverd/core/rcap_service.h

class NodeManagerService final : public planetlab::v1::NodeManager::Service {
 public:
  struct Hooks {
    // A ticket changed the desired state: reconcile (may wait until applied).
    std::function<void()> changed;
    // The sliver as the API reports it.
    std::function<planetlab::v1::SliverInfo(const std::string& slice)> describe;
    std::function<planetlab::v1::NodeInfo()> node_info;
    // Unix seconds; tests move time.
    std::function<std::int64_t()> clock;
  };

  // `rcaps` may be null: Acquire, Bind and Split then answer UNIMPLEMENTED.
  NodeManagerService(DesiredState& desired, RcapService* rcaps, Hooks hooks);

  grpc::Status RedeemTicket(grpc::ServerContext* context,
                            const planetlab::v1::RedeemTicketRequest* request,
                            planetlab::v1::RedeemTicketResponse* response) override;
  grpc::Status Acquire(grpc::ServerContext* context, const planetlab::v1::AcquireRequest* request,
                       planetlab::v1::AcquireResponse* response) override;
  grpc::Status Bind(grpc::ServerContext* context, const planetlab::v1::BindRequest* request,
                    planetlab::v1::BindResponse* response) override;
  grpc::Status Split(grpc::ServerContext* context, const planetlab::v1::SplitRequest* request,
                     planetlab::v1::SplitResponse* response) override;
  grpc::Status GetNodeInfo(grpc::ServerContext* context,
                           const planetlab::v1::GetNodeInfoRequest* request,
                           planetlab::v1::NodeInfo* response) override;

 private:
  DesiredState& desired_;
  RcapService* rcaps_;
  Hooks hooks_;
};

}  // namespace plng::sliverd
