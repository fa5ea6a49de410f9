// AdminDB rows as the proto messages the Admin service returns. A list costs a
// fixed number of queries however long it is: the details of every listed
// person or node (roles, sites, keys, tags, groups, slices) are fetched for all
// of them at once with `= ANY($1::bigint[])`, so listing 1,000 nodes stays fast.
#pragma once

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "proto/plc.pb.h"

namespace plng::plc {

namespace pb = planetlab::v1;

// A PostgreSQL bigint[] literal ("{1,2,3}") for binding a list of ids as one parameter.
std::string pgIdArray(const std::vector<std::int64_t>& ids);

// A site is pending (requested with RequestSite, not yet approved) while this
// SQL condition on its row `s` holds.
inline constexpr const char* kSitePending =
    "(s.requested_at IS NOT NULL AND s.approved_at IS NULL AND s.deleted_at IS NULL)";

struct SiteQuery {
  std::vector<std::string> login_bases;  // empty = all
  std::int64_t site_id = 0;              // 0 = any
  bool include_deleted = false;
  bool pending_only = false;
  // Visibility of pending sites for non-admins: only those in `visible_sites`
  // (the caller's own). Other sites are visible to everyone.
  bool everyone = true;
  std::vector<std::int64_t> visible_sites;
};
std::vector<pb::Site> loadSites(pqxx::transaction_base& tx, const SiteQuery& query);
pb::Site loadSite(pqxx::transaction_base& tx, std::int64_t site_id);

std::vector<pb::Organization> loadOrganizations(pqxx::transaction_base& tx,
                                                const std::vector<std::string>& names);
pb::Organization loadOrganization(pqxx::transaction_base& tx, std::int64_t organization_id);

struct PersonQuery {
  std::vector<std::string> emails;  // empty = all (case-insensitive match)
  std::string login_base;           // "" = any; else members of this site
  std::int64_t person_id = 0;       // 0 = any
  bool include_deleted = false;
  bool pending_only = false;  // only disabled, not deleted persons
  // Visibility for non-admins: only `self_id` and members of `visible_sites`.
  bool everyone = true;
  std::int64_t self_id = 0;
  std::vector<std::int64_t> visible_sites;
};
std::vector<pb::Person> loadPersons(pqxx::transaction_base& tx, const PersonQuery& query);
pb::Person loadPerson(pqxx::transaction_base& tx, std::int64_t person_id);

std::vector<pb::Key> loadKeys(pqxx::transaction_base& tx, std::int64_t person_id);
pb::Key loadKey(pqxx::transaction_base& tx, std::int64_t key_id);

struct NodeQuery {
  std::vector<std::string> hostnames;  // empty = all (case-insensitive match)
  std::string login_base;              // "" = any
  std::string nodegroup;               // "" = any
  std::int64_t node_id = 0;            // 0 = any
  bool include_deleted = false;
};
std::vector<pb::Node> loadNodes(pqxx::transaction_base& tx, const NodeQuery& query);
pb::Node loadNode(pqxx::transaction_base& tx, std::int64_t node_id);

std::vector<pb::NodeGroup> loadNodeGroups(pqxx::transaction_base& tx,
                                          const std::vector<std::string>& names);
std::vector<pb::TagType> loadTagTypes(pqxx::transaction_base& tx,
                                      const std::vector<std::string>& names);
pb::TagType loadTagType(pqxx::transaction_base& tx, std::int64_t tag_type_id);

std::vector<pb::BlacklistEntry> loadBlacklist(pqxx::transaction_base& tx,
                                              std::int64_t entry_id = 0);

}  // namespace plng::plc
