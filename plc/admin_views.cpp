#include "plc/admin_views.h"

#include <map>

#include "base/strings.h"
#include "plc/auth.h"
#include "plc/db.h"
#include "plc/errors.h"

namespace plng::plc {

namespace {

const std::string& siteColumns() {
  static const std::string kColumns =
      "SELECT s.site_id, s.login_base, s.name, s.url, s.enabled, s.max_slices, s.max_slivers,"
      " extract(epoch FROM s.created_at)::bigint,"
      " coalesce(extract(epoch FROM s.deleted_at)::bigint, 0),"
      " ARRAY(SELECT o.name FROM organization_sites os JOIN organizations o"
      "       USING (organization_id) WHERE os.site_id = s.site_id ORDER BY o.name),"
      " coalesce(extract(epoch FROM s.requested_at)::bigint, 0), " +
      std::string(kSitePending) + ", s.tech_contact_name, s.tech_contact_email FROM sites s";
  return kColumns;
}

constexpr const char* kOrganizationColumns =
    "SELECT o.organization_id, o.name, o.description,"
    " ARRAY(SELECT s.login_base FROM organization_sites os JOIN sites s USING (site_id)"
    "       WHERE os.organization_id = o.organization_id AND s.deleted_at IS NULL"
    "       ORDER BY s.login_base),"
    " extract(epoch FROM o.created_at)::bigint"
    " FROM organizations o";

constexpr const char* kKeyColumns =
    "SELECT k.key_id, p.email, k.key_type, k.key_text, k.fingerprint,"
    " extract(epoch FROM k.created_at)::bigint, k.person_id"
    " FROM keys k JOIN persons p USING (person_id)";

constexpr const char* kTagTypeColumns =
    "SELECT tag_type_id, name, description, category, min_role, value_kind, default_value"
    " FROM tag_types";

pb::Site siteFromRow(const pqxx::row& r) {
  pb::Site s;
  s.set_site_id(r[0].as<std::int64_t>());
  s.set_login_base(r[1].as<std::string>());
  s.set_name(r[2].as<std::string>());
  s.set_url(r[3].as<std::string>());
  s.set_enabled(r[4].as<bool>());
  s.set_max_slices(r[5].as<int>());
  s.set_max_slivers(r[6].as<int>());
  s.set_created_at(r[7].as<std::int64_t>());
  s.set_deleted_at(r[8].as<std::int64_t>());
  for (auto& org : parsePgTextArray(r[9])) s.add_organizations(std::move(org));
  s.set_requested_at(r[10].as<std::int64_t>());
  s.set_pending(r[11].as<bool>());
  s.set_tech_contact_name(r[12].as<std::string>());
  s.set_tech_contact_email(r[13].as<std::string>());
  return s;
}

pb::Organization organizationFromRow(const pqxx::row& r) {
  pb::Organization o;
  o.set_organization_id(r[0].as<std::int64_t>());
  o.set_name(r[1].as<std::string>());
  o.set_description(r[2].as<std::string>());
  for (auto& site : parsePgTextArray(r[3])) o.add_sites(std::move(site));
  o.set_created_at(r[4].as<std::int64_t>());
  return o;
}

pb::Key keyFromRow(const pqxx::row& r) {
  pb::Key k;
  k.set_key_id(r[0].as<std::int64_t>());
  k.set_person_email(r[1].as<std::string>());
  k.set_key_type(r[2].as<std::string>());
  k.set_key(r[3].as<std::string>());
  k.set_fingerprint(r[4].as<std::string>());
  k.set_created_at(r[5].as<std::int64_t>());
  return k;
}

pb::TagType tagTypeFromRow(const pqxx::row& r) {
  pb::TagType t;
  t.set_tag_type_id(r[0].as<std::int64_t>());
  t.set_name(r[1].as<std::string>());
  t.set_description(r[2].as<std::string>());
  t.set_category(r[3].as<std::string>());
  t.set_min_role(r[4].as<std::string>());
  t.set_value_kind(r[5].as<std::string>());
  t.set_default_value(r[6].as<std::string>());
  return t;
}

// Indexes a list of messages by id so that per-id detail rows can be attached.
template <class Message, class IdOf>
std::map<std::int64_t, Message*> indexById(std::vector<Message>& items, IdOf id_of,
                                           std::vector<std::int64_t>& ids) {
  std::map<std::int64_t, Message*> index;
  for (auto& item : items) {
    ids.push_back(id_of(item));
    index[ids.back()] = &item;
  }
  return index;
}

}  // namespace

std::string pgIdArray(const std::vector<std::int64_t>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  return out + "}";
}

// ------------------------------------------------------------------ sites

std::vector<pb::Site> loadSites(pqxx::transaction_base& tx, const SiteQuery& query) {
  std::vector<pb::Site> sites;
  for (const auto& r :
       tx.exec_params(siteColumns() +
                          " WHERE ($1::text[] = '{}' OR s.login_base = ANY($1::text[]))"
                          " AND ($2::bigint = 0 OR s.site_id = $2::bigint)"
                          " AND ($3::boolean OR s.deleted_at IS NULL)"
                          " AND (NOT $4::boolean OR " +
                          kSitePending + ") AND ($5::boolean OR NOT " + kSitePending +
                          " OR s.site_id = ANY($6::bigint[]))"
                          " ORDER BY s.login_base, s.site_id",
                      pgTextArray(query.login_bases), query.site_id, query.include_deleted,
                      query.pending_only, query.everyone, pgIdArray(query.visible_sites))) {
    sites.push_back(siteFromRow(r));
  }
  return sites;
}

pb::Site loadSite(pqxx::transaction_base& tx, std::int64_t site_id) {
  SiteQuery query;
  query.site_id = site_id;
  query.include_deleted = true;
  auto sites = loadSites(tx, query);
  if (sites.empty()) notFound("no site with id " + std::to_string(site_id));
  return sites.front();
}

// ---------------------------------------------------------- organizations

std::vector<pb::Organization> loadOrganizations(pqxx::transaction_base& tx,
                                                const std::vector<std::string>& names) {
  std::vector<pb::Organization> orgs;
  for (const auto& r :
       tx.exec_params(std::string(kOrganizationColumns) +
                          " WHERE ($1::text[] = '{}' OR o.name = ANY($1::text[])) ORDER BY o.name",
                      pgTextArray(names))) {
    orgs.push_back(organizationFromRow(r));
  }
  return orgs;
}

pb::Organization loadOrganization(pqxx::transaction_base& tx, std::int64_t organization_id) {
  auto rows = tx.exec_params(std::string(kOrganizationColumns) + " WHERE o.organization_id = $1",
                             organization_id);
  if (rows.empty()) notFound("no organization with id " + std::to_string(organization_id));
  return organizationFromRow(rows[0]);
}

// ---------------------------------------------------------------- persons

std::vector<pb::Person> loadPersons(pqxx::transaction_base& tx, const PersonQuery& query) {
  std::vector<pb::Person> persons;
  for (const auto& r : tx.exec_params(
           "SELECT p.person_id, p.email, p.first_name, p.last_name, p.enabled,"
           " extract(epoch FROM p.created_at)::bigint,"
           " coalesce(extract(epoch FROM p.deleted_at)::bigint, 0)"
           " FROM persons p"
           " WHERE ($1::text[] = '{}'"
           "        OR lower(p.email) = ANY(SELECT lower(e) FROM unnest($1::text[]) e))"
           " AND ($2::text = '' OR EXISTS (SELECT 1 FROM person_sites ps JOIN sites s"
           "      USING (site_id) WHERE ps.person_id = p.person_id AND s.login_base = $2::text))"
           " AND ($3::bigint = 0 OR p.person_id = $3::bigint)"
           " AND ($4::boolean OR p.deleted_at IS NULL)"
           " AND ($5::boolean OR p.person_id = $6::bigint OR EXISTS (SELECT 1 FROM person_sites ps"
           "      WHERE ps.person_id = p.person_id AND ps.site_id = ANY($7::bigint[])))"
           " AND (NOT $8::boolean OR (NOT p.enabled AND p.deleted_at IS NULL))"
           " ORDER BY lower(p.email), p.person_id",
           pgTextArray(query.emails), query.login_base, query.person_id, query.include_deleted,
           query.everyone, query.self_id, pgIdArray(query.visible_sites), query.pending_only)) {
    pb::Person p;
    p.set_person_id(r[0].as<std::int64_t>());
    p.set_email(r[1].as<std::string>());
    p.set_first_name(r[2].as<std::string>());
    p.set_last_name(r[3].as<std::string>());
    p.set_enabled(r[4].as<bool>());
    p.set_created_at(r[5].as<std::int64_t>());
    p.set_deleted_at(r[6].as<std::int64_t>());
    persons.push_back(std::move(p));
  }
  if (persons.empty()) return persons;

  std::vector<std::int64_t> ids;
  auto index = indexById(
      persons, [](const pb::Person& p) { return p.person_id(); }, ids);
  auto id_array = pgIdArray(ids);

  // Roles and sites at deleted sites no longer confer anything: leave them out.
  for (const auto& r : tx.exec_params(
           "SELECT r.person_id, r.role, coalesce(s.login_base, '') FROM person_roles r"
           " LEFT JOIN sites s ON s.site_id = r.site_id"
           " WHERE r.person_id = ANY($1::bigint[]) AND (r.site_id IS NULL OR s.deleted_at IS NULL)"
           " ORDER BY r.site_id IS NOT NULL, s.login_base, r.role",
           id_array)) {
    auto* grant = index.at(r[0].as<std::int64_t>())->add_roles();
    grant->set_role(r[1].as<std::string>());
    grant->set_login_base(r[2].as<std::string>());
  }
  for (const auto& r :
       tx.exec_params("SELECT ps.person_id, s.login_base, ps.is_primary FROM person_sites ps"
                      " JOIN sites s USING (site_id)"
                      " WHERE ps.person_id = ANY($1::bigint[]) AND s.deleted_at IS NULL"
                      " ORDER BY s.login_base",
                      id_array)) {
    auto* person = index.at(r[0].as<std::int64_t>());
    person->add_sites(r[1].as<std::string>());
    if (r[2].as<bool>()) person->set_primary_site(r[1].as<std::string>());
  }
  for (const auto& r : tx.exec_params(
           std::string(kKeyColumns) + " WHERE k.person_id = ANY($1::bigint[]) ORDER BY k.key_id",
           id_array)) {
    *index.at(r[6].as<std::int64_t>())->add_keys() = keyFromRow(r);
  }
  return persons;
}

pb::Person loadPerson(pqxx::transaction_base& tx, std::int64_t person_id) {
  PersonQuery query;
  query.person_id = person_id;
  query.include_deleted = true;
  auto persons = loadPersons(tx, query);
  if (persons.empty()) notFound("no person with id " + std::to_string(person_id));
  return persons.front();
}

// ------------------------------------------------------------------- keys

std::vector<pb::Key> loadKeys(pqxx::transaction_base& tx, std::int64_t person_id) {
  std::vector<pb::Key> keys;
  for (const auto& r : tx.exec_params(
           std::string(kKeyColumns) + " WHERE k.person_id = $1 ORDER BY k.key_id", person_id)) {
    keys.push_back(keyFromRow(r));
  }
  return keys;
}

pb::Key loadKey(pqxx::transaction_base& tx, std::int64_t key_id) {
  auto rows = tx.exec_params(std::string(kKeyColumns) + " WHERE k.key_id = $1", key_id);
  if (rows.empty()) notFound("no key with id " + std::to_string(key_id));
  return keyFromRow(rows[0]);
}

// ------------------------------------------------------------------ nodes

std::vector<pb::Node> loadNodes(pqxx::transaction_base& tx, const NodeQuery& query) {
  std::vector<pb::Node> nodes;
  for (const auto& r : tx.exec_params(
           "SELECT n.node_id, n.hostname, s.login_base, n.boot_state, encode(n.public_key, 'hex'),"
           " coalesce(extract(epoch FROM n.last_contact)::bigint, 0),"
           " extract(epoch FROM n.created_at)::bigint,"
           " coalesce(extract(epoch FROM n.deleted_at)::bigint, 0)"
           " FROM nodes n JOIN sites s USING (site_id)"
           " WHERE ($1::text[] = '{}'"
           "        OR lower(n.hostname) = ANY(SELECT lower(h) FROM unnest($1::text[]) h))"
           " AND ($2::text = '' OR s.login_base = $2::text)"
           " AND ($3::text = '' OR EXISTS (SELECT 1 FROM nodegroups g JOIN node_tags t"
           "      ON t.tag_type_id = g.tag_type_id AND t.value = g.value"
           "      WHERE g.name = $3::text AND t.node_id = n.node_id))"
           " AND ($4::bigint = 0 OR n.node_id = $4::bigint)"
           " AND ($5::boolean OR n.deleted_at IS NULL)"
           " ORDER BY lower(n.hostname), n.node_id",
           pgTextArray(query.hostnames), query.login_base, query.nodegroup, query.node_id,
           query.include_deleted)) {
    pb::Node n;
    n.set_node_id(r[0].as<std::int64_t>());
    n.set_hostname(r[1].as<std::string>());
    n.set_login_base(r[2].as<std::string>());
    n.set_boot_state(r[3].as<std::string>());
    n.set_public_key(base::fromHex(r[4].as<std::string>()));
    n.set_last_contact(r[5].as<std::int64_t>());
    n.set_created_at(r[6].as<std::int64_t>());
    n.set_deleted_at(r[7].as<std::int64_t>());
    nodes.push_back(std::move(n));
  }
  if (nodes.empty()) return nodes;

  std::vector<std::int64_t> ids;
  auto index = indexById(
      nodes, [](const pb::Node& n) { return n.node_id(); }, ids);
  auto id_array = pgIdArray(ids);

  for (const auto& r :
       tx.exec_params("SELECT t.node_id, tt.name, t.value FROM node_tags t"
                      " JOIN tag_types tt USING (tag_type_id) WHERE t.node_id = ANY($1::bigint[])",
                      id_array)) {
    (*index.at(r[0].as<std::int64_t>())->mutable_tags())[r[1].as<std::string>()] =
        r[2].as<std::string>();
  }
  for (const auto& r : tx.exec_params("SELECT t.node_id, g.name FROM nodegroups g JOIN node_tags t"
                                      " ON t.tag_type_id = g.tag_type_id AND t.value = g.value"
                                      " WHERE t.node_id = ANY($1::bigint[]) ORDER BY g.name",
                                      id_array)) {
    index.at(r[0].as<std::int64_t>())->add_nodegroups(r[1].as<std::string>());
  }
  for (const auto& r :
       tx.exec_params("SELECT sn.node_id, sl.name FROM slice_nodes sn JOIN slices sl USING"
                      " (slice_id) WHERE sn.node_id = ANY($1::bigint[]) AND sl.deleted_at IS NULL"
                      " ORDER BY sl.name",
                      id_array)) {
    index.at(r[0].as<std::int64_t>())->add_slices(r[1].as<std::string>());
  }
  return nodes;
}

pb::Node loadNode(pqxx::transaction_base& tx, std::int64_t node_id) {
  NodeQuery query;
  query.node_id = node_id;
  query.include_deleted = true;
  auto nodes = loadNodes(tx, query);
  if (nodes.empty()) notFound("no node with id " + std::to_string(node_id));
  return nodes.front();
}

// ------------------------------------------------- node groups, tag types

std::vector<pb::NodeGroup> loadNodeGroups(pqxx::transaction_base& tx,
                                          const std::vector<std::string>& names) {
  std::vector<pb::NodeGroup> groups;
  for (const auto& r :
       tx.exec_params("SELECT g.nodegroup_id, g.name, tt.name, g.value,"
                      " ARRAY(SELECT n.hostname FROM node_tags t JOIN nodes n USING (node_id)"
                      "       WHERE t.tag_type_id = g.tag_type_id AND t.value = g.value"
                      "       AND n.deleted_at IS NULL ORDER BY lower(n.hostname))"
                      " FROM nodegroups g JOIN tag_types tt USING (tag_type_id)"
                      " WHERE ($1::text[] = '{}' OR g.name = ANY($1::text[])) ORDER BY g.name",
                      pgTextArray(names))) {
    pb::NodeGroup g;
    g.set_nodegroup_id(r[0].as<std::int64_t>());
    g.set_name(r[1].as<std::string>());
    g.set_tag(r[2].as<std::string>());
    g.set_value(r[3].as<std::string>());
    for (auto& host : parsePgTextArray(r[4])) g.add_hostnames(std::move(host));
    groups.push_back(std::move(g));
  }
  return groups;
}

std::vector<pb::TagType> loadTagTypes(pqxx::transaction_base& tx,
                                      const std::vector<std::string>& names) {
  std::vector<pb::TagType> types;
  for (const auto& r : tx.exec_params(std::string(kTagTypeColumns) +
                                          " WHERE ($1::text[] = '{}' OR name = ANY($1::text[]))"
                                          " ORDER BY name",
                                      pgTextArray(names))) {
    types.push_back(tagTypeFromRow(r));
  }
  return types;
}

pb::TagType loadTagType(pqxx::transaction_base& tx, std::int64_t tag_type_id) {
  auto rows = tx.exec_params(std::string(kTagTypeColumns) + " WHERE tag_type_id = $1", tag_type_id);
  if (rows.empty()) notFound("no tag type with id " + std::to_string(tag_type_id));
  return tagTypeFromRow(rows[0]);
}

// -------------------------------------------------------------- blacklist

std::vector<pb::BlacklistEntry> loadBlacklist(pqxx::transaction_base& tx, std::int64_t entry_id) {
  std::vector<pb::BlacklistEntry> entries;
  for (const auto& r : tx.exec_params(
           "SELECT entry_id, prefix::text, reason, extract(epoch FROM created_at)::bigint"
           " FROM destination_blacklist WHERE ($1::bigint = 0 OR entry_id = $1::bigint)"
           " ORDER BY prefix",
           entry_id)) {
    pb::BlacklistEntry e;
    e.set_entry_id(r[0].as<std::int64_t>());
    e.set_prefix(r[1].as<std::string>());
    e.set_reason(r[2].as<std::string>());
    e.set_created_at(r[3].as<std::int64_t>());
    entries.push_back(std::move(e));
  }
  return entries;
}

}  // namespace plng::plc
