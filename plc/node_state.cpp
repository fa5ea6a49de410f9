#include "plc/node_state.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <ctime>
#include <tuple>

#include "plc/admin_views.h"
#include "plc/db.h"
#include "plc/plc_keys.h"
#include "plc/slice_contacts.h"

namespace plng::plc {

namespace pb = planetlab::v1;

namespace {

// Every tag value that may apply to the (slice_id, node_id) pairs of the CTE
// `pairs`, as rows (kind, slice_id, node_id, tag, value, slice_tag_id) with kind
// d(efault), s(lice), g(roup) or n(ode). Slice-wide values and defaults come
// once, not once per node: a ticket for 500 nodes stays small.
constexpr const char* kTagCandidates = R"SQL(
SELECT 'd', 0::bigint, 0::bigint, tt.name, tt.default_value, 0::bigint
  FROM tag_types tt
 WHERE tt.category LIKE 'slice%' AND tt.default_value <> ''
UNION ALL
SELECT 's', st.slice_id, 0, tt.name, st.value, st.slice_tag_id
  FROM slice_tags st JOIN tag_types tt USING (tag_type_id)
 WHERE st.slice_id IN (SELECT slice_id FROM pairs)
   AND st.node_id IS NULL AND st.nodegroup_id IS NULL AND tt.category LIKE 'slice%'
UNION ALL
SELECT 'g', p.slice_id, p.node_id, tt.name, st.value, st.slice_tag_id
  FROM pairs p
  JOIN slice_tags st ON st.slice_id = p.slice_id
  JOIN nodegroups g ON g.nodegroup_id = st.nodegroup_id
  JOIN node_tags nt ON nt.node_id = p.node_id AND nt.tag_type_id = g.tag_type_id
                   AND nt.value = g.value
  JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
 WHERE tt.category LIKE 'slice%'
UNION ALL
SELECT 'n', p.slice_id, p.node_id, tt.name, st.value, st.slice_tag_id
  FROM pairs p
  JOIN slice_tags st ON st.slice_id = p.slice_id AND st.node_id = p.node_id
  JOIN tag_types tt ON tt.tag_type_id = st.tag_type_id
 WHERE tt.category LIKE 'slice%'
)SQL";

// Feeds one kTagCandidates row into `resolver`; false when the row is of
// another kind (the caller's own rows in the same result).
bool addCandidate(EffectiveTagResolver& resolver, const pqxx::row& r) {
  auto kind = r[0].as<std::string>();
  auto slice_id = r[1].as<std::int64_t>();
  auto node_id = r[2].as<std::int64_t>();
  auto tag = r[3].as<std::string>();
  auto value = r[4].as<std::string>();
  auto id = r[5].as<std::int64_t>();
  if (kind == "d") {
    resolver.addDefault(tag, value);
  } else if (kind == "s") {
    resolver.addSliceTag(slice_id, tag, value, id);
  } else if (kind == "g") {
    resolver.addNodeTag(slice_id, node_id, TagScope::kNodeGroup, tag, value, id);
  } else if (kind == "n") {
    resolver.addNodeTag(slice_id, node_id, TagScope::kNode, tag, value, id);
  } else {
    return false;
  }
  return true;
}

// The statement text is also its prepared-statement name's key: preparing the
// same definition again on a connection is a no-op in libpqxx 6, and a prepared
// plan spares PostgreSQL re-planning these joins on every ticket.
pqxx::result execPrepared(pqxx::transaction_base& tx, const char* name, const std::string& sql,
                          const auto&... args) {
  tx.conn().prepare(name, sql);
  return tx.exec_prepared(name, args...);
}

}  // namespace

void EffectiveTagResolver::offer(std::map<std::string, Candidate>& into, const std::string& tag,
                                 Candidate candidate) {
  auto it = into.find(tag);
  if (it == into.end()) {
    into.emplace(tag, std::move(candidate));
  } else if (candidate.beats(it->second)) {
    it->second = std::move(candidate);
  }
}

void EffectiveTagResolver::addDefault(const std::string& tag, const std::string& value) {
  defaults_[tag] = value;
}

void EffectiveTagResolver::addSliceTag(std::int64_t slice_id, const std::string& tag,
                                       const std::string& value, std::int64_t slice_tag_id) {
  offer(slice_[slice_id], tag, Candidate{TagScope::kSlice, slice_tag_id, value});
}

void EffectiveTagResolver::addNodeTag(std::int64_t slice_id, std::int64_t node_id, TagScope scope,
                                      const std::string& tag, const std::string& value,
                                      std::int64_t slice_tag_id) {
  offer(node_[{slice_id, node_id}], tag, Candidate{scope, slice_tag_id, value});
}

TagMap EffectiveTagResolver::resolve(std::int64_t slice_id, std::int64_t node_id) const {
  TagMap out = defaults_;
  if (auto it = slice_.find(slice_id); it != slice_.end()) {
    for (const auto& [tag, c] : it->second) out[tag] = c.value;
  }
  if (auto it = node_.find({slice_id, node_id}); it != node_.end()) {
    for (const auto& [tag, c] : it->second) out[tag] = c.value;
  }
  return out;
}

std::vector<pb::NodeGrant> sliceNodeGrants(pqxx::transaction_base& tx, std::int64_t slice_id) {
  static const std::string kSql = std::string(R"SQL(
WITH pairs AS (
  SELECT sn.slice_id, nd.node_id, nd.hostname
    FROM slice_nodes sn JOIN nodes nd USING (node_id)
   WHERE sn.slice_id = $1 AND nd.deleted_at IS NULL
)
SELECT 'N', slice_id, node_id, hostname, '', 0::bigint FROM pairs
UNION ALL
)SQL") + kTagCandidates;

  EffectiveTagResolver resolver;
  std::vector<std::pair<std::int64_t, std::string>> nodes;
  for (const auto& r : execPrepared(tx, "plng_slice_node_grants", kSql, slice_id)) {
    if (!addCandidate(resolver, r)) {
      nodes.emplace_back(r[2].as<std::int64_t>(), r[3].as<std::string>());
    }
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });
  std::vector<pb::NodeGrant> grants;
  grants.reserve(nodes.size());
  for (const auto& [node_id, hostname] : nodes) {
    pb::NodeGrant grant;
    grant.set_hostname(hostname);
    for (auto& [tag, value] : resolver.resolve(slice_id, node_id)) {
      (*grant.mutable_tags())[tag] = std::move(value);
    }
    grants.push_back(std::move(grant));
  }
  return grants;
}

std::vector<SliceTagOnNode> effectiveTagOnNodes(pqxx::transaction_base& tx, const std::string& tag,
                                                const std::vector<std::int64_t>& node_ids) {
  static const std::string kSql = std::string(R"SQL(
WITH pairs AS (
  SELECT sn.slice_id, sn.node_id, sl.name, nd.hostname
    FROM slice_nodes sn
    JOIN slices sl USING (slice_id)
    JOIN nodes nd USING (node_id)
   WHERE sn.node_id = ANY($1::bigint[]) AND sl.deleted_at IS NULL AND nd.deleted_at IS NULL
     -- Without a default, only slices with a value of their own have one:
     -- adding 1,000 nodes to a slice reads the few slices that reserve ports.
     AND (EXISTS (SELECT 1 FROM slice_tags st JOIN tag_types tt USING (tag_type_id)
                   WHERE st.slice_id = sn.slice_id AND tt.name = $2)
          OR EXISTS (SELECT 1 FROM tag_types WHERE name = $2 AND default_value <> ''))
)
SELECT 'P', slice_id, node_id, name, hostname, 0::bigint FROM pairs
UNION ALL
SELECT * FROM (
)SQL") + kTagCandidates + R"SQL(
) candidates (kind, slice_id, node_id, tag, value, slice_tag_id) WHERE tag = $2
)SQL";

  std::vector<SliceTagOnNode> out;
  if (node_ids.empty()) return out;
  EffectiveTagResolver resolver;
  for (const auto& r :
       execPrepared(tx, "plng_effective_tag_on_nodes", kSql, pgIdArray(node_ids), tag)) {
    if (addCandidate(resolver, r)) continue;
    SliceTagOnNode entry;
    entry.slice_id = r[1].as<std::int64_t>();
    entry.node_id = r[2].as<std::int64_t>();
    entry.slice_name = r[3].as<std::string>();
    entry.hostname = r[4].as<std::string>();
    out.push_back(std::move(entry));
  }
  for (auto& entry : out) {
    auto tags = resolver.resolve(entry.slice_id, entry.node_id);
    if (auto it = tags.find(tag); it != tags.end()) entry.value = std::move(it->second);
  }
  std::sort(out.begin(), out.end(), [](const SliceTagOnNode& a, const SliceTagOnNode& b) {
    return std::tie(a.node_id, a.slice_name) < std::tie(b.node_id, b.slice_name);
  });
  return out;
}

std::shared_ptr<const SliceGrants> loadSliceGrants(pqxx::transaction_base& tx,
                                                   const std::string& name) {
  // One row per member key (or one row with NULLs for a member without keys,
  // or for a slice without members): member ids for authorisation, keys of
  // live, enabled members for the ticket.
  static const std::string kSliceSql = R"SQL(
SELECT sl.slice_id, sl.site_id, s.login_base, sl.xid, sl.instantiation,
       extract(epoch FROM sl.expires_at)::bigint, m.person_id, p.email, k.key_text
  FROM slices sl
  JOIN sites s USING (site_id)
  LEFT JOIN slice_members m ON m.slice_id = sl.slice_id
  LEFT JOIN persons p ON p.person_id = m.person_id AND p.deleted_at IS NULL AND p.enabled
  LEFT JOIN keys k ON k.person_id = p.person_id
                  AND NOT EXISTS (SELECT 1 FROM key_blacklist b
                                   WHERE b.fingerprint = k.fingerprint)
 WHERE sl.name = $1 AND sl.deleted_at IS NULL
 ORDER BY p.email, k.key_id
)SQL";
  auto rows = execPrepared(tx, "plng_slice_grants", kSliceSql, name);
  if (rows.empty()) return nullptr;
  auto g = std::make_shared<SliceGrants>();
  const auto& head = rows[0];
  g->slice_id = head[0].as<std::int64_t>();
  g->name = name;
  g->site_id = head[1].as<std::int64_t>();
  g->login_base = head[2].as<std::string>();
  g->xid = head[3].as<std::uint32_t>();
  g->instantiation = head[4].as<std::string>();
  g->expires_at = head[5].as<std::int64_t>();
  for (const auto& r : rows) {
    if (!r[6].is_null()) g->member_ids.push_back(r[6].as<std::int64_t>());
    if (r[8].is_null()) continue;
    pb::SshKey key;
    key.set_person_email(r[7].as<std::string>());
    key.set_key(r[8].as<std::string>());
    g->member_keys.push_back(std::move(key));
  }
  std::sort(g->member_ids.begin(), g->member_ids.end());
  g->member_ids.erase(std::unique(g->member_ids.begin(), g->member_ids.end()), g->member_ids.end());
  g->nodes = sliceNodeGrants(tx, g->slice_id);
  return g;
}

std::optional<StateStamp> SliceGrantCache::trustedStamp(std::uint64_t cache_epoch) const {
  std::shared_lock lock(mutex_);
  if (!last_read_ || last_read_->cache_epoch != cache_epoch ||
      std::chrono::steady_clock::now() - last_read_->at >= kTrustFor) {
    return std::nullopt;
  }
  return last_read_->stamp;
}

void SliceGrantCache::stampRead(const StateStamp& stamp, std::uint64_t cache_epoch) {
  auto now = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  // Keep the newest knowledge: a slower reader must not roll it back. Across
  // epochs there is no order: the last read wins, and a stale one is trusted no
  // longer than kTrustFor (the listener's reconnect moves cache_epoch sooner).
  if (last_read_ && last_read_->stamp.epoch == stamp.epoch &&
      (last_read_->stamp.version > stamp.version ||
       (last_read_->stamp.version == stamp.version && last_read_->cache_epoch > cache_epoch))) {
    return;
  }
  last_read_ = StampRead{stamp, cache_epoch, now};
}

std::shared_ptr<const SliceGrants> SliceGrantCache::find(const StateStamp& stamp,
                                                         const std::string& name) const {
  std::shared_lock lock(mutex_);
  if (stamp != stamp_) return nullptr;
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second;
}

void SliceGrantCache::put(const StateStamp& stamp, std::shared_ptr<const SliceGrants> grants) {
  std::unique_lock lock(mutex_);
  const bool same_epoch = stamp.epoch == stamp_.epoch;
  if (same_epoch && stamp.version < stamp_.version) return;
  if (stamp != stamp_ || node_grants_ + grants->nodes.size() > kMaxNodeGrants) {
    entries_.clear();
    node_grants_ = 0;
    stamp_ = stamp;
  }
  node_grants_ += grants->nodes.size();
  entries_[grants->name] = std::move(grants);
}

StateStamp stateStamp(pqxx::transaction_base& tx) {
  // pg_control_system() reads the control file: a few microseconds, and this runs
  // at most once a second per replica on the ticket path.
  static const std::string kSql = R"SQL(
SELECT s.version,
       concat_ws('-', c.system_identifier,
                 (extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint,
                 d.oid, pg_relation_filenode('plc_state'))
  FROM plc_state s, pg_control_system() c, pg_database d
 WHERE d.datname = current_database()
)SQL";
  auto row = execPrepared(tx, "plng_state_stamp", kSql)[0];
  return StateStamp{row[1].as<std::string>(), row[0].as<std::int64_t>()};
}

pb::NodeState nodeState(pqxx::transaction_base& tx, PlcKeys& keys, std::int64_t node_id,
                        const std::string& hostname) {
  static const std::string kSliversSql = R"SQL(
SELECT sl.slice_id, sl.name, sl.xid, sl.instantiation,
       extract(epoch FROM sl.expires_at)::bigint, p.email, k.key_text
  FROM slice_nodes sn
  JOIN slices sl USING (slice_id)
  LEFT JOIN (slice_members m
             JOIN persons p ON p.person_id = m.person_id
                           AND p.deleted_at IS NULL AND p.enabled
             JOIN keys k ON k.person_id = p.person_id
                        AND NOT EXISTS (SELECT 1 FROM key_blacklist b
                                         WHERE b.fingerprint = k.fingerprint))
         ON m.slice_id = sl.slice_id
 WHERE sn.node_id = $1 AND sl.deleted_at IS NULL AND sl.expires_at > now()
 ORDER BY sl.name, p.email, k.key_id
)SQL";
  static const std::string kTagsSql = std::string(R"SQL(
WITH pairs AS (
  SELECT sl.slice_id, $1::bigint AS node_id
    FROM slice_nodes sn JOIN slices sl USING (slice_id)
   WHERE sn.node_id = $1 AND sl.deleted_at IS NULL AND sl.expires_at > now()
)
)SQL") + kTagCandidates;

  pb::NodeState state;
  auto stamp = stateStamp(tx);
  state.set_version(stamp.version);
  state.set_epoch(std::move(stamp.epoch));
  state.set_hostname(hostname);
  state.set_generated_at(static_cast<std::int64_t>(std::time(nullptr)));

  std::vector<std::int64_t> slice_ids;
  pb::SliverSpec* sliver = nullptr;
  for (const auto& r : execPrepared(tx, "plng_node_slivers", kSliversSql, node_id)) {
    auto slice_id = r[0].as<std::int64_t>();
    if (slice_ids.empty() || slice_ids.back() != slice_id) {
      slice_ids.push_back(slice_id);
      sliver = state.add_slivers();
      sliver->set_slice_name(r[1].as<std::string>());
      sliver->set_xid(r[2].as<std::uint32_t>());
      sliver->set_instantiation(r[3].as<std::string>());
      sliver->set_expires_at(r[4].as<std::int64_t>());
    }
    if (!r[6].is_null()) {
      auto* key = sliver->add_keys();
      key->set_person_email(r[5].as<std::string>());
      key->set_key(r[6].as<std::string>());
    }
  }

  // Who answers for each slice, for the node's "who sent this?" page.
  auto contacts = sliceContacts(tx, slice_ids);
  for (int i = 0; i < state.slivers_size(); ++i) {
    auto& c = contacts[slice_ids[static_cast<std::size_t>(i)]];
    auto* spec = state.mutable_slivers(i);
    spec->set_description(std::move(c.description));
    spec->set_url(std::move(c.url));
    for (auto& contact : c.contacts) *spec->add_contacts() = std::move(contact);
  }

  if (!slice_ids.empty()) {
    EffectiveTagResolver resolver;
    for (const auto& r : execPrepared(tx, "plng_node_sliver_tags", kTagsSql, node_id)) {
      addCandidate(resolver, r);
    }
    for (int i = 0; i < state.slivers_size(); ++i) {
      auto* tags = state.mutable_slivers(i)->mutable_tags();
      for (auto& [tag, value] : resolver.resolve(slice_ids[static_cast<std::size_t>(i)], node_id)) {
        (*tags)[tag] = std::move(value);
      }
    }
  }

  for (auto& key : keys.published(tx)) *state.add_plc_keys() = std::move(key);
  for (auto& entry : destinationBlacklist(tx)) *state.add_blacklist() = std::move(entry);
  // The tags set on the node itself; a tag type's default is the node's own
  // configuration's to give (net_node_cap: sliverd's capacity_net_bps).
  static const std::string kNodeTagsSql =
      "SELECT tt.name, t.value FROM node_tags t JOIN tag_types tt USING (tag_type_id)"
      " WHERE t.node_id = $1";
  for (const auto& r : execPrepared(tx, "plng_node_own_tags", kNodeTagsSql, node_id)) {
    (*state.mutable_node_tags())[r[0].as<std::string>()] = r[1].as<std::string>();
  }
  return state;
}

std::vector<pb::BlacklistEntry> destinationBlacklist(pqxx::transaction_base& tx) {
  std::vector<pb::BlacklistEntry> entries;
  for (const auto& r :
       tx.exec("SELECT entry_id, prefix::text, reason, extract(epoch FROM created_at)::bigint"
               " FROM destination_blacklist ORDER BY entry_id")) {
    auto& e = entries.emplace_back();
    e.set_entry_id(r[0].as<std::int64_t>());
    e.set_prefix(r[1].as<std::string>());
    e.set_reason(r[2].as<std::string>());
    e.set_created_at(r[3].as<std::int64_t>());
  }
  return entries;
}

BlacklistSnapshot blacklistSnapshot(pqxx::transaction_base& tx) {
  return BlacklistSnapshot{stateStamp(tx), destinationBlacklist(tx)};
}

pb::NodeState withBlacklist(const pb::NodeState& base, const BlacklistSnapshot& snapshot) {
  pb::NodeState state = base;
  state.clear_blacklist();
  for (const auto& entry : snapshot.entries) *state.add_blacklist() = entry;
  state.set_version(snapshot.stamp.version);
  state.set_epoch(snapshot.stamp.epoch);
  state.set_generated_at(static_cast<std::int64_t>(std::time(nullptr)));
  return state;
}

std::string nodeStateContent(const pb::NodeState& state) {
  pb::NodeState content = state;
  content.clear_version();
  content.clear_epoch();
  content.clear_generated_at();
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    // Map fields (tags) serialise in hash order unless asked otherwise.
    coded.SetSerializationDeterministic(true);
    content.SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace plng::plc
