// The `ports` slice tag reserves ports for a slice on the nodes it runs on
// (proto/port_spec.h): no two slices may reserve one port on one node. PLC
// checks the rule wherever a slice's effective `ports` on a node can change
// (docs/plc.md, "Port reservations"); the node refuses a collision too if one
// slips through.
#pragma once

#include <cstdint>
#include <pqxx/pqxx>
#include <set>
#include <tuple>
#include <vector>

namespace plng::plc {

// The slice tag whose values are port reservations.
inline constexpr const char* kPortsTag = "ports";

// Guards one change inside one write transaction: constructed before the change
// with the nodes whose slices' effective `ports` it may change, and check()ed
// after it. check() throws FAILED_PRECONDITION, naming both slices, the node and
// a port, for two slices that reserve one port on one of those nodes and did not
// before the change; the transaction then rolls back and nothing changes. A
// collision already there before (a database older than the rule) does not
// block changes that leave it as it was. check() locks plc_state's row, as the
// version bump that ends every write does, so that concurrent changes are
// checked one after the other: call it last before that bump.
class PortReservationGuard {
 public:
  PortReservationGuard(pqxx::transaction_base& tx, std::vector<std::int64_t> node_ids);
  void check();

 private:
  // (node_id, slice_id, slice_id), the lower slice id first.
  using Pair = std::tuple<std::int64_t, std::int64_t, std::int64_t>;
  struct Collision {
    Pair pair;
    std::string hostname, first_slice, second_slice, port;
  };
  std::vector<Collision> collisions() const;

  pqxx::transaction_base& tx_;
  std::vector<std::int64_t> node_ids_;
  std::set<Pair> before_;
};

// The nodes a slice is bound to (live ones), for a guard over a slice's change.
std::vector<std::int64_t> sliceNodeIds(pqxx::transaction_base& tx, std::int64_t slice_id);

}  // namespace plng::plc
