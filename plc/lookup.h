// Finding live objects by their public names, shared by every service. Each
// lookup throws ApiError NOT_FOUND naming what was missing.
#pragma once

#include <cstdint>
#include <pqxx/pqxx>
#include <set>
#include <string>

namespace plng::plc {

struct SiteRef {
  std::int64_t site_id = 0;
  std::string login_base;
  bool enabled = true;
  int max_slices = 0;
  int max_slivers = 0;
};
struct PersonRef {
  std::int64_t person_id = 0;
  std::string email;
  bool enabled = false;
};
struct NodeRef {
  std::int64_t node_id = 0;
  std::string hostname;
  std::int64_t site_id = 0;
  std::string login_base;
};
struct SliceRef {
  std::int64_t slice_id = 0;
  std::string name;
  std::int64_t site_id = 0;
  std::string login_base;
  std::int64_t expires_at = 0;
  int max_nodes = 0;
  std::uint32_t xid = 0;
  std::string description;
  std::string url;
};
struct TagTypeRef {
  std::int64_t tag_type_id = 0;
  std::string name;
  std::string min_role;
  std::string value_kind;
  std::string category;
};
struct NodeGroupRef {
  std::int64_t nodegroup_id = 0;
  std::string name;
};

// `for_update` locks the row until the transaction ends (use it before checks
// that must hold at commit, such as quotas).
SiteRef findSite(pqxx::transaction_base& tx, const std::string& login_base,
                 bool for_update = false);
PersonRef findPerson(pqxx::transaction_base& tx, const std::string& email);
NodeRef findNode(pqxx::transaction_base& tx, const std::string& hostname);
SliceRef findSlice(pqxx::transaction_base& tx, const std::string& name, bool for_update = false);
TagTypeRef findTagType(pqxx::transaction_base& tx, const std::string& name);
NodeGroupRef findNodeGroup(pqxx::transaction_base& tx, const std::string& name);

// Is the person a member of at least one site where the caller holds `site_roles`?
bool sharesSite(pqxx::transaction_base& tx, std::int64_t person_id,
                const std::set<std::int64_t>& site_ids);

}  // namespace plng::plc
