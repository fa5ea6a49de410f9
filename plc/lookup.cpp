#include "plc/lookup.h"

#include "plc/errors.h"
#include "plc/validate.h"

namespace plng::plc {

SiteRef findSite(pqxx::transaction_base& tx, const std::string& login_base, bool for_update) {
  auto rows = tx.exec_params(std::string("SELECT site_id, login_base, enabled, max_slices,"
                                         " max_slivers FROM sites"
                                         " WHERE login_base = $1 AND deleted_at IS NULL") +
                                 (for_update ? " FOR UPDATE" : ""),
                             login_base);
  if (rows.empty()) {
    notFound("no site with login_base " + quoteForMessage(login_base) +
             " (plcctl site list shows them)");
  }
  const auto& r = rows[0];
  return SiteRef{r[0].as<std::int64_t>(), r[1].as<std::string>(), r[2].as<bool>(), r[3].as<int>(),
                 r[4].as<int>()};
}

PersonRef findPerson(pqxx::transaction_base& tx, const std::string& email) {
  auto rows = tx.exec_params(
      "SELECT person_id, email, enabled FROM persons"
      " WHERE lower(email) = lower($1) AND deleted_at IS NULL",
      email);
  if (rows.empty()) notFound("no person with email " + quoteForMessage(email));
  const auto& r = rows[0];
  return PersonRef{r[0].as<std::int64_t>(), r[1].as<std::string>(), r[2].as<bool>()};
}

NodeRef findNode(pqxx::transaction_base& tx, const std::string& hostname) {
  auto rows = tx.exec_params(
      "SELECT n.node_id, n.hostname, n.site_id, s.login_base FROM nodes n"
      " JOIN sites s USING (site_id)"
      " WHERE lower(n.hostname) = lower($1) AND n.deleted_at IS NULL",
      hostname);
  if (rows.empty()) notFound("no node with hostname " + quoteForMessage(hostname));
  const auto& r = rows[0];
  return NodeRef{r[0].as<std::int64_t>(), r[1].as<std::string>(), r[2].as<std::int64_t>(),
                 r[3].as<std::string>()};
}

SliceRef findSlice(pqxx::transaction_base& tx, const std::string& name, bool for_update) {
  auto rows =
      tx.exec_params(std::string("SELECT sl.slice_id, sl.name, sl.site_id, s.login_base,"
                                 " extract(epoch FROM sl.expires_at)::bigint, sl.max_nodes, sl.xid,"
                                 " sl.description, sl.url"
                                 " FROM slices sl JOIN sites s USING (site_id)"
                                 " WHERE sl.name = $1 AND sl.deleted_at IS NULL") +
                         (for_update ? " FOR UPDATE OF sl" : ""),
                     name);
  if (rows.empty())
    notFound("no slice named " + quoteForMessage(name) + " (plcctl slice list shows them)");
  const auto& r = rows[0];
  return SliceRef{r[0].as<std::int64_t>(),  r[1].as<std::string>(),  r[2].as<std::int64_t>(),
                  r[3].as<std::string>(),   r[4].as<std::int64_t>(), r[5].as<int>(),
                  r[6].as<std::uint32_t>(), r[7].as<std::string>(),  r[8].as<std::string>()};
}

TagTypeRef findTagType(pqxx::transaction_base& tx, const std::string& name) {
  auto rows = tx.exec_params(
      "SELECT tag_type_id, name, min_role, value_kind, category FROM tag_types WHERE name = $1",
      name);
  if (rows.empty())
    notFound("no tag type " + quoteForMessage(name) + " (plcctl tagtype list shows them)");
  const auto& r = rows[0];
  return TagTypeRef{r[0].as<std::int64_t>(), r[1].as<std::string>(), r[2].as<std::string>(),
                    r[3].as<std::string>(), r[4].as<std::string>()};
}

NodeGroupRef findNodeGroup(pqxx::transaction_base& tx, const std::string& name) {
  auto rows = tx.exec_params("SELECT nodegroup_id, name FROM nodegroups WHERE name = $1", name);
  if (rows.empty()) notFound("no node group " + quoteForMessage(name));
  return NodeGroupRef{rows[0][0].as<std::int64_t>(), rows[0][1].as<std::string>()};
}

bool sharesSite(pqxx::transaction_base& tx, std::int64_t person_id,
                const std::set<std::int64_t>& site_ids) {
  for (auto site : site_ids) {
    if (!tx.exec_params("SELECT 1 FROM person_sites WHERE person_id = $1 AND site_id = $2",
                        person_id, site)
             .empty()) {
      return true;
    }
  }
  return false;
}

}  // namespace plng::plc
