// Authorisation rules of the Admin service that go beyond Call's checks. Each
// helper either records the role that allowed the call (call.usedRole) or throws
// PERMISSION_DENIED naming what is missing.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>

#include "plc/caller.h"
#include "plc/lookup.h"
#include "plc/rpc.h"

namespace plng::plc {

// Roles are ordered by power: admin > pi > tech > user.
inline bool roleAtLeast(Role have, Role need) { return have >= need; }

// Parses a role name or throws INVALID_ARGUMENT listing the valid ones.
Role requireRole(const std::string& field, const std::string& name);

// The most powerful role the caller holds at the site (admin anywhere counts).
std::optional<Role> bestRoleAt(const Caller& caller, std::int64_t site_id);

// Admin only.
void authorizeAdmin(Call& call);

// Admin, or one of `roles` at the site. Returns the role that allowed the call.
Role authorizeAtSite(Call& call, std::int64_t site_id, const std::string& login_base,
                     std::initializer_list<Role> roles);

// What authorising a change to a person's account depends on.
struct PersonAccount {
  std::int64_t person_id = 0;
  std::string email;
  bool is_admin = false;
  std::set<std::int64_t> site_ids;  // live sites the person belongs to
};
PersonAccount loadPersonAccount(pqxx::transaction_base& tx, const PersonRef& person);

// Which PIs may act on a person: a PI of any one of the person's sites (for
// what only describes the person: names, primary site), or a PI of every one
// of them (for the account itself: password, keys, enabled, deletion), so that
// a PI of one site can never take over an account another site vouches for.
enum class PiScope { kAnySite, kEverySite };

// The person themself (when `allow_self`), an admin, or a PI of the person's
// sites as `scope` says. A non-admin never changes an admin's account but their own.
void authorizeOverPerson(Call& call, const PersonAccount& target, bool allow_self, PiScope scope);

// Refuses a non-admin changing an admin's account (other than their own).
void requireMayChangeAccount(const Call& call, const PersonAccount& target);

// The person identified by `email`, or the calling person when `email` is empty.
PersonRef personOrSelf(pqxx::transaction_base& tx, const Call& call, const std::string& email);
// The audit-log name of that person ("person:<email>"), known before any lookup.
std::string personObject(const Call& call, const std::string& email);

}  // namespace plng::plc
