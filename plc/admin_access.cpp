#include "plc/admin_access.h"

#include "plc/errors.h"
#include "plc/validate.h"

namespace plng::plc {

Role requireRole(const std::string& field, const std::string& name) {
  auto role = parseRole(name);
  if (!role) {
    invalidArgument(field + " " + quoteForMessage(name) +
                    " is invalid: one of admin, pi, tech, user");
  }
  return *role;
}

std::optional<Role> bestRoleAt(const Caller& caller, std::int64_t site_id) {
  if (caller.admin) return Role::kAdmin;
  auto it = caller.site_roles.find(site_id);
  if (it == caller.site_roles.end() || it->second.empty()) return std::nullopt;
  return *it->second.rbegin();
}

void authorizeAdmin(Call& call) {
  call.requireAdmin();
  call.usedRole("admin");
}

Role authorizeAtSite(Call& call, std::int64_t site_id, const std::string& login_base,
                     std::initializer_list<Role> roles) {
  call.requireRoleAt(site_id, login_base, roles);
  const auto& caller = call.caller();
  // requireRoleAt passed: the caller is an admin or holds one of `roles` there.
  std::optional<Role> used;
  if (caller.admin) {
    used = Role::kAdmin;
  } else {
    for (auto role : roles) {
      if (caller.hasRoleAt(role, site_id) && (!used || role > *used)) used = role;
    }
  }
  call.usedRole(toString(*used));
  return *used;
}

PersonAccount loadPersonAccount(pqxx::transaction_base& tx, const PersonRef& person) {
  PersonAccount account;
  account.person_id = person.person_id;
  account.email = person.email;
  account.is_admin = !tx.exec_params(
                            "SELECT 1 FROM person_roles"
                            " WHERE person_id = $1 AND role = 'admin'",
                            person.person_id)
                          .empty();
  for (const auto& r :
       tx.exec_params("SELECT ps.site_id FROM person_sites ps JOIN sites s USING (site_id)"
                      " WHERE ps.person_id = $1 AND s.deleted_at IS NULL",
                      person.person_id)) {
    account.site_ids.insert(r[0].as<std::int64_t>());
  }
  return account;
}

void authorizeOverPerson(Call& call, const PersonAccount& target, bool allow_self, PiScope scope) {
  const auto& caller = call.caller();
  if (allow_self && caller.isPerson() && caller.person_id == target.person_id) {
    call.usedRole("self");
    return;
  }
  if (caller.admin) {
    call.usedRole("admin");
    return;
  }
  std::size_t pi_of = 0;
  for (auto site : target.site_ids) pi_of += caller.isPiOf(site) ? 1 : 0;
  // A person with no live site left has no PI to answer for them.
  bool pi_allowed =
      scope == PiScope::kAnySite ? pi_of > 0 : pi_of > 0 && pi_of == target.site_ids.size();
  if (caller.isPerson() && !target.is_admin && pi_allowed) {
    call.usedRole("pi");
    return;
  }
  std::string why = std::string(call.method()) + " on " + target.email + " requires ";
  if (allow_self) why += "being that person, ";
  why += scope == PiScope::kAnySite ? "role pi at one of their sites, or admin"
                                    : "role pi at every one of their sites (" +
                                          std::to_string(target.site_ids.size()) + "), or admin";
  if (scope == PiScope::kEverySite && pi_of > 0 && !target.is_admin) {
    why += "; " + caller.describe() + " is pi at " + std::to_string(pi_of) + " of them";
  }
  if (target.is_admin) {
    why += "; " + target.email + " is an admin, whose account only admins may change";
  }
  permissionDenied(why + " (caller: " + caller.describe() + ")");
}

void requireMayChangeAccount(const Call& call, const PersonAccount& target) {
  const auto& caller = call.caller();
  if (!target.is_admin || caller.admin || caller.person_id == target.person_id) return;
  permissionDenied(
      std::string(call.method()) + ": " + target.email +
      " is an admin, whose account only admins may change (caller: " + caller.describe() + ")");
}

PersonRef personOrSelf(pqxx::transaction_base& tx, const Call& call, const std::string& email) {
  if (!email.empty()) return findPerson(tx, email);
  if (!call.caller().isPerson()) {
    invalidArgument(std::string(call.method()) + ": email is required when a node calls");
  }
  return findPerson(tx, call.caller().email);
}

std::string personObject(const Call& call, const std::string& email) {
  return "person:" + (email.empty() ? call.caller().email : email);
}

}  // namespace plng::plc
