#include "services.h"

namespace plng::plc {

grpc::Status SliceService::AddSlice(grpc::ServerContext*, const pb::AddSliceRequest*,
                                    pb::SliceInfo*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddSlice is not implemented yet");
}

grpc::Status SliceService::GetSlices(grpc::ServerContext*, const pb::GetSlicesRequest*,
                                     pb::GetSlicesResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetSlices is not implemented yet");
}

grpc::Status SliceService::UpdateSlice(grpc::ServerContext*, const pb::UpdateSliceRequest*,
                                       pb::SliceInfo*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "UpdateSlice is not implemented yet");
}

grpc::Status SliceService::RenewSlice(grpc::ServerContext*, const pb::RenewSliceRequest*,
                                      pb::SliceInfo*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "RenewSlice is not implemented yet");
}

grpc::Status SliceService::DeleteSlice(grpc::ServerContext*, const pb::DeleteSliceRequest*,
                                       pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeleteSlice is not implemented yet");
}

grpc::Status SliceService::AddSliceMembers(grpc::ServerContext*, const pb::SliceMembersRequest*,
                                           pb::SliceInfo*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddSliceMembers is not implemented yet");
}

grpc::Status SliceService::RemoveSliceMembers(grpc::ServerContext*, const pb::SliceMembersRequest*,
                                              pb::SliceInfo*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "RemoveSliceMembers is not implemented yet");
}

grpc::Status SliceService::AddSliceNodes(grpc::ServerContext*, const pb::SliceNodesRequest*,
                                         pb::SliceInfo*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddSliceNodes is not implemented yet");
}

grpc::Status SliceService::RemoveSliceNodes(grpc::ServerContext*, const pb::SliceNodesRequest*,
                                            pb::SliceInfo*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "RemoveSliceNodes is not implemented yet");
}

grpc::Status SliceService::SetSliceTag(grpc::ServerContext*, const pb::SetSliceTagRequest*,
                                       pb::SliceTag*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "SetSliceTag is not implemented yet");
}

grpc::Status SliceService::DeleteSliceTag(grpc::ServerContext*, const pb::DeleteSliceTagRequest*,
                                          pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeleteSliceTag is not implemented yet");
}

grpc::Status SliceService::GetSliceTags(grpc::ServerContext*, const pb::GetSliceTagsRequest*,
                                        pb::GetSliceTagsResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetSliceTags is not implemented yet");
}

grpc::Status SliceService::GetSliceTicket(grpc::ServerContext*, const pb::GetSliceTicketRequest*,
                                          pb::SignedTicket*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetSliceTicket is not implemented yet");
}

}  // namespace plng::plc
