#include "plc/admin_cascade.h"

#include "plc/admin_views.h"

namespace plng::plc {

void revokeNodeSessions(pqxx::work& tx, const std::vector<std::int64_t>& node_ids) {
  auto ids = pgIdArray(node_ids);
  tx.exec_params0(
      "UPDATE sessions SET revoked_at = now()"
      " WHERE node_id = ANY($1::bigint[]) AND revoked_at IS NULL",
      ids);
}

std::vector<std::string> retireNodes(pqxx::work& tx, const std::vector<std::int64_t>& node_ids) {
  std::vector<std::string> hostnames;
  if (node_ids.empty()) return hostnames;
  auto ids = pgIdArray(node_ids);
  for (const auto& r : tx.exec_params(
           "UPDATE nodes SET deleted_at = now()"
           " WHERE node_id = ANY($1::bigint[]) AND deleted_at IS NULL RETURNING hostname",
           ids)) {
    hostnames.push_back(r[0].as<std::string>());
  }
  revokeNodeSessions(tx, node_ids);
  // Deleted slices keep their bindings and tags as history.
  tx.exec_params0(
      "DELETE FROM slice_tags st USING slices sl WHERE st.slice_id = sl.slice_id"
      " AND st.node_id = ANY($1::bigint[]) AND sl.deleted_at IS NULL",
      ids);
  tx.exec_params0(
      "DELETE FROM slice_nodes sn USING slices sl WHERE sn.slice_id = sl.slice_id"
      " AND sn.node_id = ANY($1::bigint[]) AND sl.deleted_at IS NULL",
      ids);
  return hostnames;
}

}  // namespace plng::plc
