// Who is calling, and with which roles: resolved once per request from the
// bearer token. Authorisation questions are asked of this object.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace plng::plc {

// Ordered by power: a non-admin may not grant a role above their own.
enum class Role { kUser = 1, kTech = 2, kPi = 3, kAdmin = 4 };

const char* toString(Role role);
std::optional<Role> parseRole(std::string_view name);

struct Caller {
  enum class Kind { kAnonymous, kPerson, kNode };
  Kind kind = Kind::kAnonymous;
  std::int64_t session_id = 0;
  std::int64_t session_expires_at = 0;
  // How the token was made: "session" (Login), "api" (CreateApiToken) or "node"
  // (NodeLogin). Only a session, which proves the password, mints API tokens.
  std::string token_kind;
  std::int64_t person_id = 0;
  std::string email;
  bool admin = false;
  std::map<std::int64_t, std::set<Role>> site_roles;  // site_id → roles there
  std::set<std::int64_t> sites;                       // sites the person belongs to
  std::int64_t node_id = 0;
  std::string hostname;
  std::int64_t node_site_id = 0;

  bool isPerson() const { return kind == Kind::kPerson; }
  bool isNode() const { return kind == Kind::kNode; }
  bool hasRoleAt(Role role, std::int64_t site_id) const {
    if (admin) return true;
    auto it = site_roles.find(site_id);
    return it != site_roles.end() && it->second.count(role) > 0;
  }
  bool isPiOf(std::int64_t site_id) const { return hasRoleAt(Role::kPi, site_id); }
  bool isTechOf(std::int64_t site_id) const { return hasRoleAt(Role::kTech, site_id); }
  // The caller's most powerful role anywhere (admin, or the best site role).
  std::optional<Role> highestRole() const;
  // The role a request was allowed under, for the audit log.
  std::string describe() const;
};

}  // namespace plng::plc
