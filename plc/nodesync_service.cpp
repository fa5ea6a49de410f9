#include "services.h"

namespace plng::plc {

grpc::Status NodeSyncService::GetSlivers(grpc::ServerContext*, const pb::GetSliversRequest*,
                                         pb::NodeState*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetSlivers is not implemented yet");
}

grpc::Status NodeSyncService::WatchSlivers(grpc::ServerContext*, const pb::WatchSliversRequest*,
                                           grpc::ServerWriter<pb::NodeState>*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "WatchSlivers is not implemented yet");
}

}  // namespace plng::plc
