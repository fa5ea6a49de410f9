// What deleting an AdminDB object does to the objects that depend on it. Shared
// by the methods that delete directly (DeleteNode) and those that cascade
// (DeleteSite). Deleted objects are marked, not erased: history stays readable.
#pragma once

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace plng::plc {

// Marks live nodes deleted: revokes their sessions and pending login challenges,
// unbinds them from live slices and drops live slices' tags scoped to them.
// Returns the hostnames retired. The caller bumps the state version.
std::vector<std::string> retireNodes(pqxx::work& tx, const std::vector<std::int64_t>& node_ids);

// Revokes every session of the given nodes (after a key change or disabling).
void revokeNodeSessions(pqxx::work& tx, const std::vector<std::int64_t>& node_ids);

}  // namespace plng::plc
