// What a slice looks like on a node: its effective tags there, and a node's full
// desired state. Shared by Slice.GetSliceTicket (one slice, many nodes) and
// NodeSync.GetSlivers/WatchSlivers (one node, many slices), so that a ticket and
// a node's synced state never disagree about a slice's attributes.
#pragma once

#include <cstdint>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

#include "plc.pb.h"

namespace plng::plc {

class PlcKeys;

// Where a slice tag applies. Higher wins when several apply to one node.
enum class TagScope { kDefault = 0, kSlice = 1, kNodeGroup = 2, kNode = 3 };

using TagMap = std::map<std::string, std::string>;

// Resolves effective tags per (slice, node): a tag type's default, then the
// slice-wide value, then a value for a node group the node belongs to (the
// highest slice_tag_id when several groups match), then a value for that node.
class EffectiveTagResolver {
 public:
  void addDefault(const std::string& tag, const std::string& value);
  void addSliceTag(std::int64_t slice_id, const std::string& tag, const std::string& value,
                   std::int64_t slice_tag_id);
  // A node group or node scoped value, already matched to `node_id`.
  void addNodeTag(std::int64_t slice_id, std::int64_t node_id, TagScope scope,
                  const std::string& tag, const std::string& value, std::int64_t slice_tag_id);

  TagMap resolve(std::int64_t slice_id, std::int64_t node_id) const;

 private:
  struct Candidate {
    TagScope scope = TagScope::kDefault;
    std::int64_t slice_tag_id = 0;
    std::string value;
    bool beats(const Candidate& other) const {
      return std::pair(scope, slice_tag_id) > std::pair(other.scope, other.slice_tag_id);
    }
  };
  static void offer(std::map<std::string, Candidate>& into, const std::string& tag,
                    Candidate candidate);

  TagMap defaults_;
  std::map<std::int64_t, std::map<std::string, Candidate>> slice_;
  std::map<std::pair<std::int64_t, std::int64_t>, std::map<std::string, Candidate>> node_;
};

// The live nodes bound to a slice, each with the slice's effective tags there,
// ordered by hostname; one SQL statement. `hostnames` empty selects every bound
// node; otherwise only those (case-insensitively), and the requested names that
// are not bound live nodes are returned in `unbound`.
std::vector<planetlab::v1::NodeGrant> sliceNodeGrants(pqxx::transaction_base& tx,
                                                      std::int64_t slice_id,
                                                      const std::vector<std::string>& hostnames,
                                                      std::vector<std::string>& unbound);

// A node's full desired state from one snapshot: `tx` must be a REPEATABLE READ
// transaction (Database::read) so that `version` matches the content.
planetlab::v1::NodeState nodeState(pqxx::transaction_base& tx, PlcKeys& keys, std::int64_t node_id,
                                   const std::string& hostname);

// The part of a NodeState a node acts on (slivers, PLC keys, blacklist), as
// deterministic bytes: two states with equal content give equal strings
// whatever their version and generation time.
std::string nodeStateContent(const planetlab::v1::NodeState& state);

}  // namespace plng::plc
