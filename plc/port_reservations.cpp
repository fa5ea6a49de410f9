#include "plc/port_reservations.h"

#include <map>
#include <utility>

#include "plc/errors.h"
#include "plc/node_state.h"
#include "proto/port_spec.h"

namespace plng::plc {

PortReservationGuard::PortReservationGuard(pqxx::transaction_base& tx,
                                           std::vector<std::int64_t> node_ids)
    : tx_(tx), node_ids_(std::move(node_ids)) {
  for (const auto& c : collisions()) before_.insert(c.pair);
}

std::vector<PortReservationGuard::Collision> PortReservationGuard::collisions() const {
  std::vector<Collision> found;
  if (node_ids_.empty()) return found;
  struct Reservation {
    const SliceTagOnNode* slice;
    std::vector<proto::PortRange> ranges;
  };
  std::map<std::int64_t, std::vector<Reservation>> by_node;
  const auto entries = effectiveTagOnNodes(tx_, kPortsTag, node_ids_);
  for (const auto& entry : entries) {
    std::vector<proto::PortRange> ranges;
    try {
      ranges = proto::parsePortSpec(entry.value);
    } catch (const proto::PortSpecError&) {
      // Stored before PLC knew the grammar; the node refuses it, and it reserves
      // nothing here.
      continue;
    }
    if (!ranges.empty()) by_node[entry.node_id].push_back({&entry, std::move(ranges)});
  }
  for (const auto& [node_id, reservations] : by_node) {
    for (std::size_t i = 0; i < reservations.size(); ++i) {
      for (std::size_t j = i + 1; j < reservations.size(); ++j) {
        const auto& a = reservations[i];
        const auto& b = reservations[j];
        auto port = proto::firstCollision(a.ranges, b.ranges);
        if (port.empty()) continue;
        const auto ids = std::minmax(a.slice->slice_id, b.slice->slice_id);
        found.push_back({Pair{node_id, ids.first, ids.second}, a.slice->hostname,
                         a.slice->slice_name, b.slice->slice_name, std::move(port)});
      }
    }
  }
  return found;
}

void PortReservationGuard::check() {
  // Two changes checked at once would each miss the other's reservation (READ
  // COMMITTED). Every write ends by bumping plc_state's one row; taking its lock
  // now orders this check after any concurrent write's commit, and the
  // statements below see what that write committed.
  tx_.exec("SELECT version FROM plc_state FOR UPDATE");
  for (const auto& c : collisions()) {
    if (before_.count(c.pair) != 0) continue;
    failedPrecondition("slices " + c.first_slice + " and " + c.second_slice +
                       " would both reserve " + c.port + " on node " + c.hostname +
                       ": a port is reserved by one slice at most on a node (change the ports tag "
                       "of one of them: plcctl slice tag list <slice>)");
  }
}

std::vector<std::int64_t> sliceNodeIds(pqxx::transaction_base& tx, std::int64_t slice_id) {
  std::vector<std::int64_t> ids;
  for (const auto& r :
       tx.exec_params("SELECT sn.node_id FROM slice_nodes sn JOIN nodes n USING (node_id)"
                      " WHERE sn.slice_id = $1 AND n.deleted_at IS NULL ORDER BY sn.node_id",
                      slice_id)) {
    ids.push_back(r[0].as<std::int64_t>());
  }
  return ids;
}

}  // namespace plng::plc
