// RcapService: Acquire, Bind and Split of the NodeManager gRPC service (the
// daemon's NodeManager forwards those three calls here).
//
// Who may call: the request's `credential` is a PLC-signed ticket of the calling
// slice. It must verify against PLC's current keys, be valid now, name this node,
// and its tags for this node must carry delegations=true. rcaps themselves are
// bearer capabilities (rcaps.h): any slice with the right may split or bind an
// rcap it was handed, and Bind may target another slice's sliver — that is
// delegation — as long as that sliver exists on this node.
//
// Status codes a caller can act on:
//   UNAUTHENTICATED      no credential, or signed by a key PLC does not vouch for
//   FAILED_PRECONDITION  credential expired / not yet valid / for another node;
//                        rcap already bound
//   PERMISSION_DENIED    the slice lacks the delegations right
//   INVALID_ARGUMENT     malformed credential, rcap or rspec
//   NOT_FOUND            unknown rcap; no sliver of the Bind target on this node
//   RESOURCE_EXHAUSTED   admission control (the message says what is left)
//   OUT_OF_RANGE         Split asks for more than the rcap holds
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "proto/node.pb.h"
#include "proto/ticket.h"
#include "sliverd/core/rcaps.h"

namespace plng::sliverd {

ResourceSpec toResourceSpec(const planetlab::v1::RSpec& rspec);
planetlab::v1::RSpec toRSpec(const ResourceSpec& spec);

class RcapService {
 public:
  // PLC's current keys; a new set is swapped in whole when PLC rotates them.
  using KeysSource = std::function<std::shared_ptr<const ticket::TrustedKeys>()>;
  using Clock = std::function<std::int64_t()>;  // unix seconds
  // The sliver of `slice` on this node as the local API describes it, or
  // nullopt when there is none (Bind's target must exist).
  using SliverLookup =
      std::function<std::optional<planetlab::v1::SliverInfo>(const std::string& slice)>;
  // Called after an rcap was bound to `slice`, so its resources get applied.
  using BoundCallback = std::function<void(const std::string& slice)>;

  RcapService(RcapTable& table, KeysSource keys, std::string hostname, Clock clock,
              SliverLookup sliver, BoundCallback on_bound = {});

  grpc::Status acquire(grpc::ServerContext* context, const planetlab::v1::AcquireRequest& request,
                       planetlab::v1::AcquireResponse* response);
  grpc::Status bind(grpc::ServerContext* context, const planetlab::v1::BindRequest& request,
                    planetlab::v1::BindResponse* response);
  grpc::Status split(grpc::ServerContext* context, const planetlab::v1::SplitRequest& request,
                     planetlab::v1::SplitResponse* response);

  // Extra resources bound to `slice` by rcaps: cpu_share is the sum of the
  // bound guarantees; cpu_cap_pct, mem_limit_bytes and tasks the largest bound
  // limits (0 = none bound); io_weight is 0 (rcaps carry none). Apply with
  // withBound(granted, table.boundTo(slice)) to get what is enforced.
  node::Resources boundTo(const std::string& slice) const;

 private:
  struct Caller {
    std::string slice;
    std::int64_t not_after = 0;
  };
  // Verifies the credential; on failure returns the status to send.
  std::optional<grpc::Status> authorize(const planetlab::v1::SignedTicket& credential,
                                        std::int64_t now, Caller& caller) const;

  RcapTable& table_;
  KeysSource keys_;
  std::string hostname_;
  Clock clock_;
  SliverLookup sliver_;
  BoundCallback on_bound_;
};

}  // namespace plng::sliverd
