// What a slice looks like on a node: its effective tags there, and a node's full
// desired state. Shared by Slice.GetSliceTicket (one slice, many nodes) and
// NodeSync.GetSlivers/WatchSlivers (one node, many slices), so that a ticket and
// a node's synced state never disagree about a slice's attributes.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proto/plc.pb.h"

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
// ordered by hostname; one SQL statement.
std::vector<planetlab::v1::NodeGrant> sliceNodeGrants(pqxx::transaction_base& tx,
                                                      std::int64_t slice_id);

// One live slice bound to a live node, with the effective value of one tag there.
struct SliceTagOnNode {
  std::int64_t slice_id = 0;
  std::string slice_name;
  std::int64_t node_id = 0;
  std::string hostname;
  std::string value;  // the tag's effective value; "" when none applies
};

// The effective value of `tag` for every live slice (expired or not: renewing
// brings it back) bound to each live node of `node_ids`, ordered by node then
// slice name; resolved as for tickets and node states (EffectiveTagResolver).
// When `tag` has no default, slices without a value of their own for it at any
// scope are left out (their value is "" everywhere).
std::vector<SliceTagOnNode> effectiveTagOnNodes(pqxx::transaction_base& tx, const std::string& tag,
                                                const std::vector<std::int64_t>& node_ids);

// Everything a ticket for a live slice states, read from one snapshot.
struct SliceGrants {
  std::int64_t slice_id = 0;
  std::string name;
  std::int64_t site_id = 0;
  std::string login_base;
  std::uint32_t xid = 0;
  std::string instantiation;
  std::int64_t expires_at = 0;
  std::vector<std::int64_t> member_ids;            // sorted; every member, for authorisation
  std::vector<planetlab::v1::SshKey> member_keys;  // of live, enabled members
  std::vector<planetlab::v1::NodeGrant> nodes;     // every live bound node
};

// Two SQL statements; nullptr when there is no live slice of that name.
std::shared_ptr<const SliceGrants> loadSliceGrants(pqxx::transaction_base& tx,
                                                   const std::string& name);

// Where PLC's state stands: the epoch of its database's history (see
// NodeState.epoch in proto/plc.proto) and the version within it. Versions only
// compare within one epoch.
struct StateStamp {
  std::string epoch;
  std::int64_t version = 0;
  bool operator==(const StateStamp&) const = default;
};

// The stamp as of `tx`'s snapshot. The epoch is made of what changes when the
// database's history may have been cut short or replaced, so every plcd on one
// database computes the same one without writing anything: the cluster's system
// identifier (a new cluster: restored from a dump), the postmaster's start time
// (any restart: a crash that lost commits, a base backup restored, a failover to
// a standby, which runs a postmaster of its own), the database's oid (dropped and
// restored) and plc_state's file node (the table recreated or truncated by a
// restore in place).
StateStamp stateStamp(pqxx::transaction_base& tx);

// SliceGrants by slice name, valid for one PLC state stamp. Every change to PLC's
// state bumps the version in its own transaction, so an entry read at stamp S is
// exact for as long as the stamp is still S, on any replica; entries are keyed by
// epoch too, because a version seen before a database restart may come back
// after it with other content.
//
// Asking the database for the stamp costs a round trip per ticket; instead the
// last stamp read is trusted, as the caller cache trusts its entries, while
// Authenticator::epoch() (`cache_epoch`; it moves after every change through this
// plcd, on every change notification from any plcd and when the change listener
// reconnects) has not moved, and for at most kTrustFor. A change through another
// plcd is thus seen once its notification arrives (milliseconds), and never
// later than kTrustFor.
class SliceGrantCache {
 public:
  static constexpr std::chrono::milliseconds kTrustFor{1000};

  // The stamp to use, when it may be trusted without asking the database.
  std::optional<StateStamp> trustedStamp(std::uint64_t cache_epoch) const;
  // Records a stamp read from the database; `cache_epoch` was read before it.
  void stampRead(const StateStamp& stamp, std::uint64_t cache_epoch);

  std::shared_ptr<const SliceGrants> find(const StateStamp& stamp, const std::string& name) const;
  // Entries of another stamp are dropped; one of an older version of the same
  // epoch is ignored.
  void put(const StateStamp& stamp, std::shared_ptr<const SliceGrants> grants);

 private:
  static constexpr std::size_t kMaxNodeGrants = 200000;  // bounds memory
  mutable std::shared_mutex mutex_;
  StateStamp stamp_;
  std::size_t node_grants_ = 0;
  std::unordered_map<std::string, std::shared_ptr<const SliceGrants>> entries_;
  struct StampRead {
    StateStamp stamp;
    std::uint64_t cache_epoch = 0;
    std::chrono::steady_clock::time_point at;
  };
  std::optional<StampRead> last_read_;
};

// A node's full desired state from one snapshot: `tx` must be a REPEATABLE READ
// transaction (Database::read) so that `version` and `epoch` match the content.
planetlab::v1::NodeState nodeState(pqxx::transaction_base& tx, PlcKeys& keys, std::int64_t node_id,
                                   const std::string& hostname);

// PLC's destination blacklist, as every node's state carries it.
std::vector<planetlab::v1::BlacklistEntry> destinationBlacklist(pqxx::transaction_base& tx);

// The one part of a node's state a blacklist change touches, with its stamp,
// from one snapshot (`tx` REPEATABLE READ): read once for every node.
struct BlacklistSnapshot {
  StateStamp stamp;
  std::vector<planetlab::v1::BlacklistEntry> entries;
};
BlacklistSnapshot blacklistSnapshot(pqxx::transaction_base& tx);

// `base` (a node's state) with the snapshot's blacklist and stamp: the node's
// state as of that stamp provided nothing else affecting the node was committed
// between base's version and the snapshot's (NodeStreams checks that).
planetlab::v1::NodeState withBlacklist(const planetlab::v1::NodeState& base,
                                       const BlacklistSnapshot& snapshot);

// The part of a NodeState a node acts on (slivers, PLC keys, blacklist), as
// deterministic bytes: two states with equal content give equal strings
// whatever their epoch, version and generation time.
std::string nodeStateContent(const planetlab::v1::NodeState& state);

}  // namespace plng::plc
