#include "services.h"

namespace plng::plc {

grpc::Status AdminService::AddSite(grpc::ServerContext*, const pb::AddSiteRequest*, pb::Site*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddSite is not implemented yet");
}

grpc::Status AdminService::GetSites(grpc::ServerContext*, const pb::GetSitesRequest*,
                                    pb::GetSitesResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetSites is not implemented yet");
}

grpc::Status AdminService::UpdateSite(grpc::ServerContext*, const pb::UpdateSiteRequest*,
                                      pb::Site*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "UpdateSite is not implemented yet");
}

grpc::Status AdminService::DeleteSite(grpc::ServerContext*, const pb::DeleteSiteRequest*,
                                      pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeleteSite is not implemented yet");
}

grpc::Status AdminService::AddOrganization(grpc::ServerContext*, const pb::AddOrganizationRequest*,
                                           pb::Organization*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddOrganization is not implemented yet");
}

grpc::Status AdminService::GetOrganizations(grpc::ServerContext*,
                                            const pb::GetOrganizationsRequest*,
                                            pb::GetOrganizationsResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetOrganizations is not implemented yet");
}

grpc::Status AdminService::AddSiteToOrganization(grpc::ServerContext*,
                                                 const pb::OrganizationSiteRequest*,
                                                 pb::Organization*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "AddSiteToOrganization is not implemented yet");
}

grpc::Status AdminService::RemoveSiteFromOrganization(grpc::ServerContext*,
                                                      const pb::OrganizationSiteRequest*,
                                                      pb::Organization*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "RemoveSiteFromOrganization is not implemented yet");
}

grpc::Status AdminService::DeleteOrganization(grpc::ServerContext*,
                                              const pb::DeleteOrganizationRequest*, pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeleteOrganization is not implemented yet");
}

grpc::Status AdminService::AddPerson(grpc::ServerContext*, const pb::AddPersonRequest*,
                                     pb::Person*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddPerson is not implemented yet");
}

grpc::Status AdminService::GetPersons(grpc::ServerContext*, const pb::GetPersonsRequest*,
                                      pb::GetPersonsResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetPersons is not implemented yet");
}

grpc::Status AdminService::UpdatePerson(grpc::ServerContext*, const pb::UpdatePersonRequest*,
                                        pb::Person*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "UpdatePerson is not implemented yet");
}

grpc::Status AdminService::DeletePerson(grpc::ServerContext*, const pb::DeletePersonRequest*,
                                        pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeletePerson is not implemented yet");
}

grpc::Status AdminService::AddPersonToSite(grpc::ServerContext*, const pb::PersonSiteRequest*,
                                           pb::Person*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddPersonToSite is not implemented yet");
}

grpc::Status AdminService::RemovePersonFromSite(grpc::ServerContext*, const pb::PersonSiteRequest*,
                                                pb::Person*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "RemovePersonFromSite is not implemented yet");
}

grpc::Status AdminService::AddRoleToPerson(grpc::ServerContext*, const pb::PersonRoleRequest*,
                                           pb::Person*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddRoleToPerson is not implemented yet");
}

grpc::Status AdminService::DeleteRoleFromPerson(grpc::ServerContext*, const pb::PersonRoleRequest*,
                                                pb::Person*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "DeleteRoleFromPerson is not implemented yet");
}

grpc::Status AdminService::AddPersonKey(grpc::ServerContext*, const pb::AddPersonKeyRequest*,
                                        pb::Key*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddPersonKey is not implemented yet");
}

grpc::Status AdminService::GetKeys(grpc::ServerContext*, const pb::GetKeysRequest*,
                                   pb::GetKeysResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetKeys is not implemented yet");
}

grpc::Status AdminService::DeleteKey(grpc::ServerContext*, const pb::DeleteKeyRequest*,
                                     pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeleteKey is not implemented yet");
}

grpc::Status AdminService::BlacklistKey(grpc::ServerContext*, const pb::BlacklistKeyRequest*,
                                        pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "BlacklistKey is not implemented yet");
}

grpc::Status AdminService::GetBlacklistedKeys(grpc::ServerContext*, const pb::Empty*,
                                              pb::GetBlacklistedKeysResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetBlacklistedKeys is not implemented yet");
}

grpc::Status AdminService::AddNode(grpc::ServerContext*, const pb::AddNodeRequest*, pb::Node*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddNode is not implemented yet");
}

grpc::Status AdminService::GetNodes(grpc::ServerContext*, const pb::GetNodesRequest*,
                                    pb::GetNodesResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetNodes is not implemented yet");
}

grpc::Status AdminService::UpdateNode(grpc::ServerContext*, const pb::UpdateNodeRequest*,
                                      pb::Node*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "UpdateNode is not implemented yet");
}

grpc::Status AdminService::DeleteNode(grpc::ServerContext*, const pb::DeleteNodeRequest*,
                                      pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeleteNode is not implemented yet");
}

grpc::Status AdminService::SetNodeTag(grpc::ServerContext*, const pb::SetNodeTagRequest*,
                                      pb::Node*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "SetNodeTag is not implemented yet");
}

grpc::Status AdminService::DeleteNodeTag(grpc::ServerContext*, const pb::DeleteNodeTagRequest*,
                                         pb::Node*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeleteNodeTag is not implemented yet");
}

grpc::Status AdminService::AddNodeGroup(grpc::ServerContext*, const pb::AddNodeGroupRequest*,
                                        pb::NodeGroup*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddNodeGroup is not implemented yet");
}

grpc::Status AdminService::GetNodeGroups(grpc::ServerContext*, const pb::GetNodeGroupsRequest*,
                                         pb::GetNodeGroupsResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetNodeGroups is not implemented yet");
}

grpc::Status AdminService::DeleteNodeGroup(grpc::ServerContext*, const pb::DeleteNodeGroupRequest*,
                                           pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeleteNodeGroup is not implemented yet");
}

grpc::Status AdminService::AddTagType(grpc::ServerContext*, const pb::AddTagTypeRequest*,
                                      pb::TagType*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddTagType is not implemented yet");
}

grpc::Status AdminService::GetTagTypes(grpc::ServerContext*, const pb::GetTagTypesRequest*,
                                       pb::GetTagTypesResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetTagTypes is not implemented yet");
}

grpc::Status AdminService::UpdateTagType(grpc::ServerContext*, const pb::UpdateTagTypeRequest*,
                                         pb::TagType*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "UpdateTagType is not implemented yet");
}

grpc::Status AdminService::DeleteTagType(grpc::ServerContext*, const pb::DeleteTagTypeRequest*,
                                         pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "DeleteTagType is not implemented yet");
}

grpc::Status AdminService::AddBlacklistEntry(grpc::ServerContext*,
                                             const pb::AddBlacklistEntryRequest*,
                                             pb::BlacklistEntry*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "AddBlacklistEntry is not implemented yet");
}

grpc::Status AdminService::GetBlacklist(grpc::ServerContext*, const pb::Empty*,
                                        pb::GetBlacklistResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetBlacklist is not implemented yet");
}

grpc::Status AdminService::DeleteBlacklistEntry(grpc::ServerContext*,
                                                const pb::DeleteBlacklistEntryRequest*,
                                                pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "DeleteBlacklistEntry is not implemented yet");
}

grpc::Status AdminService::GetPlcKeys(grpc::ServerContext*, const pb::Empty*,
                                      pb::GetPlcKeysResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetPlcKeys is not implemented yet");
}

grpc::Status AdminService::RotatePlcKey(grpc::ServerContext*, const pb::Empty*, pb::PlcPublicKey*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "RotatePlcKey is not implemented yet");
}

grpc::Status AdminService::RetirePlcKey(grpc::ServerContext*, const pb::RetirePlcKeyRequest*,
                                        pb::Empty*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "RetirePlcKey is not implemented yet");
}

grpc::Status AdminService::GetEvents(grpc::ServerContext*, const pb::GetEventsRequest*,
                                     pb::GetEventsResponse*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "GetEvents is not implemented yet");
}

}  // namespace plng::plc
