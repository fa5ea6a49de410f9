// The gRPC services PLC offers. Each handler is a thin adapter: it runs its body
// through RpcRunner (authentication, error mapping, audit) and converts between
// proto messages and SQL at this edge.
#pragma once

#include <algorithm>
#include <chrono>

#include "plc/change_bus.h"
#include "plc/node_state.h"
#include "plc/node_streams.h"
#include "plc/rpc.h"
#include "proto/plc.grpc.pb.h"

namespace plng::plc {

namespace pb = planetlab::v1;

class AuthService final : public pb::Auth::Service {
 public:
  explicit AuthService(PlcContext& plc)
      : rpc_(plc), sources_(plc.config.login_source_burst, plc.config.login_source_refill_s) {}
  grpc::Status Login(grpc::ServerContext*, const pb::LoginRequest*, pb::LoginResponse*) override;
  grpc::Status Logout(grpc::ServerContext*, const pb::Empty*, pb::Empty*) override;
  grpc::Status WhoAmI(grpc::ServerContext*, const pb::Empty*, pb::WhoAmIResponse*) override;
  grpc::Status CreateApiToken(grpc::ServerContext*, const pb::CreateApiTokenRequest*,
                              pb::CreateApiTokenResponse*) override;
  grpc::Status ListApiTokens(grpc::ServerContext*, const pb::Empty*,
                             pb::ListApiTokensResponse*) override;
  grpc::Status RevokeApiToken(grpc::ServerContext*, const pb::RevokeApiTokenRequest*,
                              pb::Empty*) override;
  grpc::Status GetNodeChallenge(grpc::ServerContext*, const pb::NodeChallengeRequest*,
                                pb::NodeChallengeResponse*) override;
  grpc::Status NodeLogin(grpc::ServerContext*, const pb::NodeLoginRequest*,
                         pb::LoginResponse*) override;

 private:
  RpcRunner rpc_;
  SourceLimiter sources_;  // failed Login and NodeLogin per client address
};

class AdminService final : public pb::Admin::Service {
 public:
  explicit AdminService(PlcContext& plc)
      : rpc_(plc), join_sources_(plc.config.join_source_burst, plc.config.join_source_refill_s) {}
#define PLNG_RPC(name, req, resp) \
  grpc::Status name(grpc::ServerContext*, const pb::req*, pb::resp*) override;
  PLNG_RPC(AddSite, AddSiteRequest, Site)
  PLNG_RPC(GetSites, GetSitesRequest, GetSitesResponse)
  PLNG_RPC(UpdateSite, UpdateSiteRequest, Site)
  PLNG_RPC(DeleteSite, DeleteSiteRequest, Empty)
  PLNG_RPC(RequestSite, RequestSiteRequest, Site)
  PLNG_RPC(ApproveSite, ApproveSiteRequest, Site)
  PLNG_RPC(RegisterPerson, RegisterPersonRequest, Person)
  PLNG_RPC(AddOrganization, AddOrganizationRequest, Organization)
  PLNG_RPC(GetOrganizations, GetOrganizationsRequest, GetOrganizationsResponse)
  PLNG_RPC(AddSiteToOrganization, OrganizationSiteRequest, Organization)
  PLNG_RPC(RemoveSiteFromOrganization, OrganizationSiteRequest, Organization)
  PLNG_RPC(DeleteOrganization, DeleteOrganizationRequest, Empty)
  PLNG_RPC(AddPerson, AddPersonRequest, Person)
  PLNG_RPC(GetPersons, GetPersonsRequest, GetPersonsResponse)
  PLNG_RPC(UpdatePerson, UpdatePersonRequest, Person)
  PLNG_RPC(DeletePerson, DeletePersonRequest, Empty)
  PLNG_RPC(AddPersonToSite, PersonSiteRequest, Person)
  PLNG_RPC(RemovePersonFromSite, PersonSiteRequest, Person)
  PLNG_RPC(AddRoleToPerson, PersonRoleRequest, Person)
  PLNG_RPC(DeleteRoleFromPerson, PersonRoleRequest, Person)
  PLNG_RPC(AddPersonKey, AddPersonKeyRequest, Key)
  PLNG_RPC(GetKeys, GetKeysRequest, GetKeysResponse)
  PLNG_RPC(DeleteKey, DeleteKeyRequest, Empty)
  PLNG_RPC(BlacklistKey, BlacklistKeyRequest, Empty)
  PLNG_RPC(GetBlacklistedKeys, Empty, GetBlacklistedKeysResponse)
  PLNG_RPC(AddNode, AddNodeRequest, Node)
  PLNG_RPC(GetNodes, GetNodesRequest, GetNodesResponse)
  PLNG_RPC(UpdateNode, UpdateNodeRequest, Node)
  PLNG_RPC(DeleteNode, DeleteNodeRequest, Empty)
  PLNG_RPC(SetNodeTag, SetNodeTagRequest, Node)
  PLNG_RPC(DeleteNodeTag, DeleteNodeTagRequest, Node)
  PLNG_RPC(AddNodeGroup, AddNodeGroupRequest, NodeGroup)
  PLNG_RPC(GetNodeGroups, GetNodeGroupsRequest, GetNodeGroupsResponse)
  PLNG_RPC(DeleteNodeGroup, DeleteNodeGroupRequest, Empty)
  PLNG_RPC(AddTagType, AddTagTypeRequest, TagType)
  PLNG_RPC(GetTagTypes, GetTagTypesRequest, GetTagTypesResponse)
  PLNG_RPC(UpdateTagType, UpdateTagTypeRequest, TagType)
  PLNG_RPC(DeleteTagType, DeleteTagTypeRequest, Empty)
  PLNG_RPC(AddBlacklistEntry, AddBlacklistEntryRequest, BlacklistEntry)
  PLNG_RPC(GetBlacklist, Empty, GetBlacklistResponse)
  PLNG_RPC(DeleteBlacklistEntry, DeleteBlacklistEntryRequest, Empty)
  PLNG_RPC(GetPlcKeys, Empty, GetPlcKeysResponse)
  PLNG_RPC(RotatePlcKey, Empty, PlcPublicKey)
  PLNG_RPC(RetirePlcKey, RetirePlcKeyRequest, Empty)
  PLNG_RPC(GetEvents, GetEventsRequest, GetEventsResponse)
  PLNG_RPC(GetNodeStatus, GetNodeStatusRequest, GetNodeStatusResponse)
  PLNG_RPC(GetFlows, GetFlowsRequest, GetFlowsResponse)  // flow_service.cpp

 private:
  // RequestSite and RegisterPerson: anonymous, each call without a token
  // charged to its client address in join_sources_.
  grpc::Status joinCall(grpc::ServerContext* ctx, const char* method,
                        const google::protobuf::Message& request,
                        const std::function<void(Call&)>& body);

  RpcRunner rpc_;
  SourceLimiter join_sources_;  // RequestSite and RegisterPerson per client address
};

class SliceService final : public pb::Slice::Service {
 public:
  explicit SliceService(PlcContext& plc) : rpc_(plc) {}
  PLNG_RPC(AddSlice, AddSliceRequest, SliceInfo)
  PLNG_RPC(GetSlices, GetSlicesRequest, GetSlicesResponse)
  PLNG_RPC(UpdateSlice, UpdateSliceRequest, SliceInfo)
  PLNG_RPC(RenewSlice, RenewSliceRequest, SliceInfo)
  PLNG_RPC(DeleteSlice, DeleteSliceRequest, Empty)
  PLNG_RPC(AddSliceMembers, SliceMembersRequest, SliceInfo)
  PLNG_RPC(RemoveSliceMembers, SliceMembersRequest, SliceInfo)
  PLNG_RPC(AddSliceNodes, SliceNodesRequest, SliceInfo)
  PLNG_RPC(RemoveSliceNodes, SliceNodesRequest, SliceInfo)
  PLNG_RPC(SetSliceTag, SetSliceTagRequest, SliceTag)
  PLNG_RPC(DeleteSliceTag, DeleteSliceTagRequest, Empty)
  PLNG_RPC(GetSliceTags, GetSliceTagsRequest, GetSliceTagsResponse)
  PLNG_RPC(GetSliceTicket, GetSliceTicketRequest, SignedTicket)

 private:
  RpcRunner rpc_;
  SliceGrantCache ticket_grants_;  // tickets are the hot path: see GetSliceTicket
};

// WatchSlivers is on gRPC's callback API (an open stream holds no thread:
// NodeStreams); the unary methods are synchronous.
class NodeSyncService final
    : public pb::NodeSync::WithCallbackMethod_WatchSlivers<pb::NodeSync::Service> {
 public:
  // Subscribes its streams to plc.bus: construct before plc.bus.start().
  explicit NodeSyncService(PlcContext& plc)
      : rpc_(plc),
        streams_(computeStream(), recordContact(plc),
                 NodeStreams::Options{
                     .workers = plc.config.stream_workers,
                     .contact = std::chrono::seconds(std::max(1, plc.config.watch_recheck_s)),
                     .resync = std::chrono::seconds(std::max(1, plc.config.watch_resync_s)),
                     .fanout_lag = fanoutLag(plc)}) {
    plc.bus.subscribe([this](const ChangeScope& scope) { streams_.changed(scope); });
  }
  PLNG_RPC(GetSlivers, GetSliversRequest, NodeState)
  PLNG_RPC(ReportStatus, NodeStatusReport, Empty)
  PLNG_RPC(ReportFlows, ReportFlowsRequest, ReportFlowsResponse)  // flow_service.cpp
  grpc::ServerWriteReactor<pb::NodeState>* WatchSlivers(grpc::CallbackServerContext*,
                                                        const pb::WatchSliversRequest*) override;
#undef PLNG_RPC

  // Ends every open stream (plcd stopping): before the server's Shutdown.
  void stopStreams() { streams_.stop(); }
  std::size_t openStreams() const { return streams_.size(); }

 private:
  NodeStreams::Compute computeStream();
  static NodeStreams::RecordContact recordContact(PlcContext& plc);
  static std::function<void(std::chrono::duration<double>)> fanoutLag(PlcContext& plc);
  std::shared_ptr<const BlacklistSnapshot> blacklistSnapshotFor(Call& call);

  RpcRunner rpc_;
  std::mutex blacklist_mutex_;
  std::shared_ptr<const BlacklistSnapshot> blacklist_;  // for blacklist_seen_
  std::uint64_t blacklist_seen_ = 0;
  NodeStreams streams_;
};

}  // namespace plng::plc
