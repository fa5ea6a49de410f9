// Admin: sites, organizations, persons, roles and SSH keys, and joining PLC
// (RequestSite, ApproveSite, RegisterPerson). Nodes, node groups and tag types
// are in admin_nodes.cpp; the destination blacklist, PLC keys and events in
// admin_policy.cpp. Every mutation validates its input before it writes, and
// writes in one transaction.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <optional>

#include "plc/admin_access.h"
#include "plc/admin_cascade.h"
#include "plc/admin_views.h"
#include "plc/errors.h"
#include "plc/lookup.h"
#include "plc/plc_limits.h"
#include "plc/services.h"
#include "plc/validate.h"

namespace plng::plc {

namespace {

constexpr std::size_t kMaxNameLength = 254;
constexpr std::size_t kMaxDescriptionLength = 4096;

void validateQuota(const char* field, std::int32_t value) {
  if (value < 0) {
    invalidArgument(std::string(field) + " must be 0 or more, not " + std::to_string(value));
  }
}

void validatePersonName(const char* field, const std::string& value) {
  validateText(field, value, kMaxNameLength, /*required=*/true);
}

struct OrganizationRef {
  std::int64_t organization_id = 0;
  std::string name;
};

OrganizationRef findOrganization(pqxx::transaction_base& tx, const std::string& name) {
  auto rows =
      tx.exec_params("SELECT organization_id, name FROM organizations WHERE name = $1", name);
  if (rows.empty())
    notFound("no organization " + quoteForMessage(name) + " (GetOrganizations lists them)");
  return OrganizationRef{rows[0][0].as<std::int64_t>(), rows[0][1].as<std::string>()};
}

void refuseDuplicateEmail(pqxx::transaction_base& tx, const std::string& email,
                          const std::string& hint = "") {
  if (!tx.exec_params("SELECT 1 FROM persons WHERE lower(email) = lower($1) AND deleted_at IS NULL",
                      email)
           .empty()) {
    alreadyExists("a person with email " + email + " already exists" + hint);
  }
}

// A check whose message names the request field it is about, where a request
// has several emails or passwords: "pi_email: email 'x' is not a valid address".
template <class Check>
void checkField(const char* field, Check check) {
  try {
    check();
  } catch (const ApiError& e) {
    invalidArgument(std::string(field) + ": " + e.what());
  }
}

bool sitePending(pqxx::transaction_base& tx, std::int64_t site_id) {
  return tx
      .exec_params1(std::string("SELECT ") + kSitePending + " FROM sites s WHERE site_id = $1",
                    site_id)[0]
      .as<bool>();
}

// Keeps exactly one live site primary for the person: if their primary site was
// removed (or deleted), the first remaining site by login_base becomes primary.
void ensurePrimarySite(pqxx::work& tx, std::int64_t person_id) {
  if (!tx.exec_params("SELECT 1 FROM person_sites ps JOIN sites s USING (site_id)"
                      " WHERE ps.person_id = $1 AND ps.is_primary AND s.deleted_at IS NULL",
                      person_id)
           .empty()) {
    return;
  }
  tx.exec_params0("UPDATE person_sites SET is_primary = false WHERE person_id = $1 AND is_primary",
                  person_id);
  tx.exec_params0(
      "UPDATE person_sites SET is_primary = true WHERE person_id = $1 AND site_id ="
      " (SELECT ps.site_id FROM person_sites ps JOIN sites s USING (site_id)"
      "  WHERE ps.person_id = $1 AND s.deleted_at IS NULL ORDER BY s.login_base LIMIT 1)",
      person_id);
}

// PLC must keep at least one enabled admin, or nobody could administer it again.
void refuseRemovingLastAdmin(pqxx::transaction_base& tx, const PersonAccount& account,
                             const std::string& what) {
  if (!account.is_admin) return;
  auto others = tx.exec_params1(
                      "SELECT count(*) FROM person_roles r JOIN persons p USING (person_id)"
                      " WHERE r.role = 'admin' AND p.deleted_at IS NULL AND p.enabled"
                      " AND p.person_id <> $1",
                      account.person_id)[0]
                    .as<std::int64_t>();
  if (others == 0) {
    failedPrecondition("cannot " + what + ": " + account.email +
                       " is the last enabled admin; make someone else admin first");
  }
}

// The fields of a new account at a site (AddPerson, RegisterPerson), and the
// objects its event names.
template <class Request>
void checkNewAccount(const Request& req, Call& call) {
  validateEmail(req.email());
  validatePersonName("first_name", req.first_name());
  validatePersonName("last_name", req.last_name());
  validatePassword(req.password());
  validateLoginBase(req.login_base());
  call.object("person:" + req.email());
  call.object("site:" + req.login_base());
}

// A new account, disabled until a PI of its site or an admin vouches for it
// (AddPerson, RegisterPerson, RequestSite's PI).
std::int64_t insertDisabledPerson(pqxx::work& tx, const std::string& email,
                                  const std::string& first_name, const std::string& last_name,
                                  const std::string& password_hash) {
  return tx
      .exec_params1(
          "INSERT INTO persons (email, first_name, last_name, password_hash, enabled)"
          " VALUES ($1, $2, $3, $4, false) RETURNING person_id",
          email, first_name, last_name, password_hash)[0]
      .as<std::int64_t>();
}

// Makes `site_id` the person's primary site, with the least role there: user.
void joinPrimarySite(pqxx::work& tx, std::int64_t person_id, std::int64_t site_id) {
  tx.exec_params0("INSERT INTO person_sites (person_id, site_id, is_primary) VALUES ($1, $2, true)",
                  person_id, site_id);
  tx.exec_params0("INSERT INTO person_roles (person_id, role, site_id) VALUES ($1, 'user', $2)",
                  person_id, site_id);
}

std::int64_t memberSiteId(pqxx::transaction_base& tx, std::int64_t person_id,
                          const std::string& login_base) {
  auto rows = tx.exec_params(
      "SELECT ps.site_id FROM person_sites ps JOIN sites s USING (site_id)"
      " WHERE ps.person_id = $1 AND s.login_base = $2 AND s.deleted_at IS NULL",
      person_id, login_base);
  return rows.empty() ? 0 : rows[0][0].as<std::int64_t>();
}

}  // namespace

// ---------------------------------------------------------------------- sites

grpc::Status AdminService::AddSite(grpc::ServerContext* ctx, const pb::AddSiteRequest* req,
                                   pb::Site* resp) {
  return rpc_.mutate(ctx, "AddSite", *req, [&](Call& call) {
    authorizeAdmin(call);
    validateLoginBase(req->login_base());
    validateText("name", req->name(), kMaxNameLength, /*required=*/true);
    validateUrl(req->url(), /*required=*/false);
    const auto& config = call.plc.config;
    auto max_slices = req->has_max_slices() ? req->max_slices() : config.default_max_slices;
    auto max_slivers = req->has_max_slivers() ? req->max_slivers() : config.default_max_slivers;
    validateQuota("max_slices", max_slices);
    validateQuota("max_slivers", max_slivers);
    call.object("site:" + req->login_base());
    *resp = call.write([&](pqxx::work& tx) {
      if (!tx.exec_params("SELECT 1 FROM sites WHERE login_base = $1 AND deleted_at IS NULL",
                          req->login_base())
               .empty()) {
        alreadyExists("site " + req->login_base() + " already exists");
      }
      auto site_id = tx.exec_params1(
                           "INSERT INTO sites (login_base, name, url, enabled, max_slices,"
                           " max_slivers) VALUES ($1, $2, $3, $4, $5, $6) RETURNING site_id",
                           req->login_base(), req->name(), req->url(),
                           req->has_enabled() ? req->enabled() : true, max_slices, max_slivers)[0]
                         .as<std::int64_t>();
      Database::bumpStateVersion(tx);
      return loadSite(tx, site_id);
    });
  });
}

grpc::Status AdminService::GetSites(grpc::ServerContext* ctx, const pb::GetSitesRequest* req,
                                    pb::GetSitesResponse* resp) {
  return rpc_.query(ctx, "GetSites", *req, [&](Call& call) {
    const auto& caller = call.caller();
    SiteQuery query;
    query.login_bases.assign(req->login_bases().begin(), req->login_bases().end());
    query.include_deleted = req->include_deleted();
    query.pending_only = req->pending_only();
    // Every site is public but a pending request, which only admins and the
    // site's own people (and nodes) see.
    query.everyone = caller.admin;
    query.visible_sites.assign(caller.sites.begin(), caller.sites.end());
    if (caller.isNode()) query.visible_sites.push_back(caller.node_site_id);
    for (auto& site :
         call.plc.db.read([&](pqxx::transaction_base& tx) { return loadSites(tx, query); })) {
      *resp->add_sites() = std::move(site);
    }
  });
}

grpc::Status AdminService::UpdateSite(grpc::ServerContext* ctx, const pb::UpdateSiteRequest* req,
                                      pb::Site* resp) {
  return rpc_.mutate(ctx, "UpdateSite", *req, [&](Call& call) {
    if (req->has_name()) validateText("name", req->name(), kMaxNameLength, /*required=*/true);
    if (req->has_url()) validateUrl(req->url(), /*required=*/false);
    if (req->has_tech_contact_name()) {
      validateText("tech_contact_name", req->tech_contact_name(), kMaxNameLength,
                   /*required=*/false);
    }
    if (req->has_tech_contact_email() && !req->tech_contact_email().empty()) {
      checkField("tech_contact_email", [&] { validateEmail(req->tech_contact_email()); });
    }
    if (req->has_max_slices()) validateQuota("max_slices", req->max_slices());
    if (req->has_max_slivers()) validateQuota("max_slivers", req->max_slivers());
    call.object("site:" + req->login_base());
    *resp = call.write([&](pqxx::work& tx) {
      auto site = findSite(tx, req->login_base(), /*for_update=*/true);
      if (req->has_enabled() || req->has_max_slices() || req->has_max_slivers()) {
        if (!call.caller().admin) {
          permissionDenied("changing enabled, max_slices or max_slivers of site " +
                           site.login_base + " requires role admin; PIs may change name and url (" +
                           call.caller().describe() + " is not an admin)");
        }
        call.usedRole("admin");
      } else {
        authorizeAtSite(call, site.site_id, site.login_base, {Role::kPi});
      }
      // One way in for a requested site: approval also enables the PI who asked.
      if (req->has_enabled() && req->enabled() && sitePending(tx, site.site_id)) {
        failedPrecondition("site " + site.login_base +
                           " is a pending request: approve it with ApproveSite (plcctl site "
                           "approve " +
                           site.login_base + "), which also enables the PI who asked for it");
      }
      tx.exec_params0(
          "UPDATE sites SET name = CASE WHEN $2 THEN $3 ELSE name END,"
          " url = CASE WHEN $4 THEN $5 ELSE url END,"
          " enabled = CASE WHEN $6 THEN $7::boolean ELSE enabled END,"
          " max_slices = CASE WHEN $8 THEN $9::integer ELSE max_slices END,"
          " max_slivers = CASE WHEN $10 THEN $11::integer ELSE max_slivers END,"
          " tech_contact_name = CASE WHEN $12 THEN $13 ELSE tech_contact_name END,"
          " tech_contact_email = CASE WHEN $14 THEN $15 ELSE tech_contact_email END"
          " WHERE site_id = $1",
          site.site_id, req->has_name(), req->name(), req->has_url(), req->url(),
          req->has_enabled(), req->enabled(), req->has_max_slices(), req->max_slices(),
          req->has_max_slivers(), req->max_slivers(), req->has_tech_contact_name(),
          req->tech_contact_name(), req->has_tech_contact_email(), req->tech_contact_email());
      Database::bumpStateVersion(tx);
      return loadSite(tx, site.site_id);
    });
  });
}

grpc::Status AdminService::DeleteSite(grpc::ServerContext* ctx, const pb::DeleteSiteRequest* req,
                                      pb::Empty*) {
  return rpc_.mutate(ctx, "DeleteSite", *req, [&](Call& call) {
    authorizeAdmin(call);
    call.object("site:" + req->login_base());
    call.write([&](pqxx::work& tx) {
      auto site = findSite(tx, req->login_base(), /*for_update=*/true);
      // Deleting a pending request rejects it: the account RequestSite made for
      // its PI goes too (while still disabled and of no other live site), so
      // that the email may ask again.
      for (const auto& r : tx.exec_params(
               std::string("UPDATE persons p SET deleted_at = now() FROM sites s"
                           " WHERE s.site_id = $1 AND ") +
                   kSitePending +
                   " AND p.person_id = s.requested_by AND NOT p.enabled"
                   " AND p.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM person_sites ps"
                   " JOIN sites o USING (site_id) WHERE ps.person_id = p.person_id"
                   " AND o.site_id <> $1 AND o.deleted_at IS NULL) RETURNING p.email",
               site.site_id)) {
        call.object("person:" + r[0].as<std::string>());
      }
      tx.exec_params0("UPDATE sites SET deleted_at = now(), enabled = false WHERE site_id = $1",
                      site.site_id);
      // Its slices go first, so that retiring its nodes below leaves the deleted
      // slices' bindings as history.
      for (const auto& r : tx.exec_params(
               "UPDATE slices SET deleted_at = now() WHERE site_id = $1 AND deleted_at IS NULL"
               " RETURNING name",
               site.site_id)) {
        call.object("slice:" + r[0].as<std::string>());
      }
      std::vector<std::int64_t> node_ids;
      for (const auto& r :
           tx.exec_params("SELECT node_id FROM nodes WHERE site_id = $1 AND deleted_at IS NULL",
                          site.site_id)) {
        node_ids.push_back(r[0].as<std::int64_t>());
      }
      for (const auto& hostname : retireNodes(tx, node_ids)) call.object("node:" + hostname);
      Database::bumpStateVersion(tx);
    });
  });
}

// -------------------------------------------------------------- organizations

grpc::Status AdminService::AddOrganization(grpc::ServerContext* ctx,
                                           const pb::AddOrganizationRequest* req,
                                           pb::Organization* resp) {
  return rpc_.mutate(ctx, "AddOrganization", *req, [&](Call& call) {
    authorizeAdmin(call);
    validateObjectName("organization name", req->name());
    validateText("description", req->description(), kMaxDescriptionLength, /*required=*/false);
    call.object("org:" + req->name());
    *resp = call.write([&](pqxx::work& tx) {
      if (!tx.exec_params("SELECT 1 FROM organizations WHERE name = $1", req->name()).empty()) {
        alreadyExists("organization " + req->name() + " already exists");
      }
      auto id = tx.exec_params1(
                      "INSERT INTO organizations (name, description) VALUES ($1, $2)"
                      " RETURNING organization_id",
                      req->name(), req->description())[0]
                    .as<std::int64_t>();
      return loadOrganization(tx, id);
    });
  });
}

grpc::Status AdminService::GetOrganizations(grpc::ServerContext* ctx,
                                            const pb::GetOrganizationsRequest* req,
                                            pb::GetOrganizationsResponse* resp) {
  return rpc_.query(ctx, "GetOrganizations", *req, [&](Call& call) {
    std::vector<std::string> names(req->names().begin(), req->names().end());
    for (auto& org : call.plc.db.read(
             [&](pqxx::transaction_base& tx) { return loadOrganizations(tx, names); })) {
      *resp->add_organizations() = std::move(org);
    }
  });
}

grpc::Status AdminService::AddSiteToOrganization(grpc::ServerContext* ctx,
                                                 const pb::OrganizationSiteRequest* req,
                                                 pb::Organization* resp) {
  return rpc_.mutate(ctx, "AddSiteToOrganization", *req, [&](Call& call) {
    authorizeAdmin(call);
    call.object("org:" + req->organization());
    call.object("site:" + req->login_base());
    *resp = call.write([&](pqxx::work& tx) {
      auto org = findOrganization(tx, req->organization());
      auto site = findSite(tx, req->login_base());
      if (!tx.exec_params("SELECT 1 FROM organization_sites"
                          " WHERE organization_id = $1 AND site_id = $2",
                          org.organization_id, site.site_id)
               .empty()) {
        alreadyExists("site " + site.login_base + " is already in organization " + org.name);
      }
      tx.exec_params0("INSERT INTO organization_sites (organization_id, site_id) VALUES ($1, $2)",
                      org.organization_id, site.site_id);
      return loadOrganization(tx, org.organization_id);
    });
  });
}

grpc::Status AdminService::RemoveSiteFromOrganization(grpc::ServerContext* ctx,
                                                      const pb::OrganizationSiteRequest* req,
                                                      pb::Organization* resp) {
  return rpc_.mutate(ctx, "RemoveSiteFromOrganization", *req, [&](Call& call) {
    authorizeAdmin(call);
    call.object("org:" + req->organization());
    call.object("site:" + req->login_base());
    *resp = call.write([&](pqxx::work& tx) {
      auto org = findOrganization(tx, req->organization());
      auto site = findSite(tx, req->login_base());
      if (tx.exec_params("DELETE FROM organization_sites WHERE organization_id = $1"
                         " AND site_id = $2 RETURNING site_id",
                         org.organization_id, site.site_id)
              .empty()) {
        notFound("site " + site.login_base + " is not in organization " + org.name);
      }
      return loadOrganization(tx, org.organization_id);
    });
  });
}

grpc::Status AdminService::DeleteOrganization(grpc::ServerContext* ctx,
                                              const pb::DeleteOrganizationRequest* req,
                                              pb::Empty*) {
  return rpc_.mutate(ctx, "DeleteOrganization", *req, [&](Call& call) {
    authorizeAdmin(call);
    call.object("org:" + req->name());
    call.write([&](pqxx::work& tx) {
      // Organizations carry no history of their own: the row goes, with its links.
      auto org = findOrganization(tx, req->name());
      tx.exec_params0("DELETE FROM organizations WHERE organization_id = $1", org.organization_id);
    });
  });
}

// -------------------------------------------------------------------- persons

grpc::Status AdminService::AddPerson(grpc::ServerContext* ctx, const pb::AddPersonRequest* req,
                                     pb::Person* resp) {
  return rpc_.mutate(ctx, "AddPerson", *req, [&](Call& call) {
    checkNewAccount(*req, call);
    auto& db = call.plc.db;
    // Checked before the deliberately slow password hash, and again in the
    // transaction that writes.
    auto check = [&](pqxx::transaction_base& tx) {
      auto site = findSite(tx, req->login_base());
      authorizeAtSite(call, site.site_id, site.login_base, {Role::kPi});
      refuseDuplicateEmail(tx, req->email());
      return site;
    };
    db.read(check);
    auto hash = call.plc.auth.passwords().hash(req->password());
    *resp = call.write([&](pqxx::work& tx) {
      auto site = check(tx);
      auto person_id =
          insertDisabledPerson(tx, req->email(), req->first_name(), req->last_name(), hash);
      joinPrimarySite(tx, person_id, site.site_id);
      Database::bumpStateVersion(tx);
      return loadPerson(tx, person_id);
    });
  });
}

grpc::Status AdminService::GetPersons(grpc::ServerContext* ctx, const pb::GetPersonsRequest* req,
                                      pb::GetPersonsResponse* resp) {
  return rpc_.query(ctx, "GetPersons", *req, [&](Call& call) {
    // Nodes learn the keys they install through GetKeys and their state, not here.
    call.requirePerson();
    const auto& caller = call.caller();
    PersonQuery query;
    query.emails.assign(req->emails().begin(), req->emails().end());
    query.login_base = req->login_base();
    query.include_deleted = req->include_deleted();
    query.pending_only = req->pending_only();
    // Non-admins see themselves and the members of their own sites (a PI, the
    // accounts awaiting them there).
    query.everyone = caller.admin;
    query.self_id = caller.person_id;
    query.visible_sites.assign(caller.sites.begin(), caller.sites.end());
    auto persons = call.plc.db.read([&](pqxx::transaction_base& tx) {
      if (!query.login_base.empty() && !query.include_deleted) findSite(tx, query.login_base);
      return loadPersons(tx, query);
    });
    for (auto& p : persons) *resp->add_persons() = std::move(p);
  });
}

grpc::Status AdminService::UpdatePerson(grpc::ServerContext* ctx,
                                        const pb::UpdatePersonRequest* req, pb::Person* resp) {
  return rpc_.mutate(ctx, "UpdatePerson", *req, [&](Call& call) {
    if (req->has_first_name()) validatePersonName("first_name", req->first_name());
    if (req->has_last_name()) validatePersonName("last_name", req->last_name());
    if (req->has_password()) validatePassword(req->password());
    if (req->has_primary_site()) validateLoginBase(req->primary_site());
    call.object(personObject(call, req->email()));
    auto& db = call.plc.db;
    // The person may change their own names, password and primary site. A PI
    // of one of their sites may change names and primary site; the password and
    // `enabled` (the account itself) take a PI of every one of their sites, or
    // an admin; `enabled` is never the person's own to set.
    const bool credentials = req->has_password() || req->has_enabled();
    auto authorize = [&](pqxx::transaction_base& tx) {
      auto account = loadPersonAccount(tx, personOrSelf(tx, call, req->email()));
      authorizeOverPerson(call, account, /*allow_self=*/!req->has_enabled(),
                          credentials ? PiScope::kEverySite : PiScope::kAnySite);
      return account;
    };
    std::string hash;
    if (req->has_password()) {
      db.read(authorize);
      hash = call.plc.auth.passwords().hash(req->password());
    }
    *resp = call.write([&](pqxx::work& tx) {
      auto account = authorize(tx);
      if (req->has_primary_site()) {
        auto site_id = memberSiteId(tx, account.person_id, req->primary_site());
        if (site_id == 0) {
          failedPrecondition("primary_site must be one of " + account.email + "'s sites; " +
                             req->primary_site() + " is not (AddPersonToSite first)");
        }
        tx.exec_params0(
            "UPDATE person_sites SET is_primary = (site_id = $2) WHERE person_id = $1"
            " AND is_primary <> (site_id = $2)",
            account.person_id, site_id);
      }
      tx.exec_params0(
          "UPDATE persons SET first_name = CASE WHEN $2 THEN $3 ELSE first_name END,"
          " last_name = CASE WHEN $4 THEN $5 ELSE last_name END,"
          " password_hash = CASE WHEN $6 THEN $7 ELSE password_hash END,"
          " enabled = CASE WHEN $8 THEN $9::boolean ELSE enabled END"
          " WHERE person_id = $1",
          account.person_id, req->has_first_name(), req->first_name(), req->has_last_name(),
          req->last_name(), req->has_password(), hash, req->has_enabled(), req->enabled());
      if (req->has_password()) {
        // A new password ends the person's other login sessions (whoever knew the
        // old one) and clears their failed-login count. API tokens stay: the
        // person lists and revokes them (plcctl token list / revoke).
        tx.exec_params0(
            "UPDATE sessions SET revoked_at = now() WHERE person_id = $1 AND kind = 'session'"
            " AND revoked_at IS NULL AND session_id <> $2",
            account.person_id, call.caller().session_id);
        clearLoginFailures(tx, account.email);
      }
      Database::bumpStateVersion(tx);
      return loadPerson(tx, account.person_id);
    });
  });
}

grpc::Status AdminService::DeletePerson(grpc::ServerContext* ctx,
                                        const pb::DeletePersonRequest* req, pb::Empty*) {
  return rpc_.mutate(ctx, "DeletePerson", *req, [&](Call& call) {
    call.object("person:" + req->email());
    call.write([&](pqxx::work& tx) {
      auto account = loadPersonAccount(tx, findPerson(tx, req->email()));
      // Deleting ends the account at every site: a PI of each must agree (a PI
      // of one site removes the person from it with RemovePersonFromSite).
      authorizeOverPerson(call, account, /*allow_self=*/false, PiScope::kEverySite);
      refuseRemovingLastAdmin(tx, account, "delete " + account.email);
      auto id = account.person_id;
      tx.exec_params0("UPDATE persons SET deleted_at = now() WHERE person_id = $1", id);
      tx.exec_params0(
          "UPDATE sessions SET revoked_at = now() WHERE person_id = $1 AND revoked_at IS NULL", id);
      for (const auto& r : tx.exec_params(
               "DELETE FROM slice_members sm USING slices sl WHERE sm.slice_id = sl.slice_id"
               " AND sm.person_id = $1 RETURNING sl.name, sl.deleted_at IS NULL",
               id)) {
        if (r[1].as<bool>()) call.object("slice:" + r[0].as<std::string>());
      }
      tx.exec_params0("DELETE FROM keys WHERE person_id = $1", id);
      Database::bumpStateVersion(tx);
    });
  });
}

grpc::Status AdminService::AddPersonToSite(grpc::ServerContext* ctx,
                                           const pb::PersonSiteRequest* req, pb::Person* resp) {
  return rpc_.mutate(ctx, "AddPersonToSite", *req, [&](Call& call) {
    call.object("person:" + req->email());
    call.object("site:" + req->login_base());
    // Admins only, as in PlanetLab: a PI who could join another site's user to
    // their own site would become "a PI of one of that user's sites".
    authorizeAdmin(call);
    *resp = call.write([&](pqxx::work& tx) {
      auto site = findSite(tx, req->login_base());
      auto account = loadPersonAccount(tx, findPerson(tx, req->email()));
      if (account.site_ids.count(site.site_id)) {
        alreadyExists(account.email + " is already a member of site " + site.login_base);
      }
      tx.exec_params0(
          "INSERT INTO person_sites (person_id, site_id, is_primary) VALUES ($1, $2, false)"
          " ON CONFLICT (person_id, site_id) DO NOTHING",
          account.person_id, site.site_id);
      // Membership comes with the least role, as when the account was created.
      tx.exec_params0(
          "INSERT INTO person_roles (person_id, role, site_id) VALUES ($1, 'user', $2)"
          " ON CONFLICT DO NOTHING",
          account.person_id, site.site_id);
      ensurePrimarySite(tx, account.person_id);
      Database::bumpStateVersion(tx);
      return loadPerson(tx, account.person_id);
    });
  });
}

grpc::Status AdminService::RemovePersonFromSite(grpc::ServerContext* ctx,
                                                const pb::PersonSiteRequest* req,
                                                pb::Person* resp) {
  return rpc_.mutate(ctx, "RemovePersonFromSite", *req, [&](Call& call) {
    call.object("person:" + req->email());
    call.object("site:" + req->login_base());
    *resp = call.write([&](pqxx::work& tx) {
      auto site = findSite(tx, req->login_base());
      auto account = loadPersonAccount(tx, findPerson(tx, req->email()));
      authorizeAtSite(call, site.site_id, site.login_base, {Role::kPi});
      requireMayChangeAccount(call, account);
      if (!account.site_ids.count(site.site_id)) {
        notFound(account.email + " is not a member of site " + site.login_base);
      }
      if (account.site_ids.size() == 1) {
        failedPrecondition(site.login_base + " is the only site of " + account.email +
                           "; a person needs a site (add another first, or delete the person)");
      }
      // Roles at a site go with the membership.
      tx.exec_params0("DELETE FROM person_roles WHERE person_id = $1 AND site_id = $2",
                      account.person_id, site.site_id);
      tx.exec_params0("DELETE FROM person_sites WHERE person_id = $1 AND site_id = $2",
                      account.person_id, site.site_id);
      ensurePrimarySite(tx, account.person_id);
      Database::bumpStateVersion(tx);
      return loadPerson(tx, account.person_id);
    });
  });
}

namespace {

// AddRoleToPerson and DeleteRoleFromPerson: admin for any role; a PI for pi, tech
// and user at their own site, never above their own role there.
pb::Person changeRole(Call& call, const pb::PersonRoleRequest& req, bool grant) {
  auto role = requireRole("role", req.role());
  bool site_role = role != Role::kAdmin;
  if (site_role && req.login_base().empty()) {
    invalidArgument("login_base is required for role " + req.role() +
                    " (roles other than admin apply at one site)");
  }
  if (!site_role) authorizeAdmin(call);
  call.object("person:" + req.email());
  if (site_role) call.object("site:" + req.login_base());
  return call.write([&](pqxx::work& tx) {
    auto account = loadPersonAccount(tx, findPerson(tx, req.email()));
    std::int64_t site_id = 0;
    std::string where = "";
    if (site_role) {
      auto site = findSite(tx, req.login_base());
      site_id = site.site_id;
      where = " at site " + site.login_base;
      auto held = authorizeAtSite(call, site.site_id, site.login_base, {Role::kPi});
      if (!roleAtLeast(held, role)) {
        permissionDenied(std::string(call.method()) + ": changing role " + req.role() + where +
                         " requires role " + req.role() + " there, or admin");
      }
      requireMayChangeAccount(call, account);
      if (!account.site_ids.count(site.site_id)) {
        failedPrecondition(account.email + " is not a member of site " + site.login_base +
                           "; add them first (AddPersonToSite)");
      }
    }
    bool has = !tx.exec_params(
                      "SELECT 1 FROM person_roles WHERE person_id = $1 AND role = $2"
                      " AND coalesce(site_id, 0) = $3",
                      account.person_id, req.role(), site_id)
                    .empty();
    if (grant) {
      if (has) alreadyExists(account.email + " already has role " + req.role() + where);
      tx.exec_params0(
          "INSERT INTO person_roles (person_id, role, site_id) VALUES ($1, $2, NULLIF($3, 0))",
          account.person_id, req.role(), site_id);
    } else {
      if (!has) notFound(account.email + " does not have role " + req.role() + where);
      if (!site_role) refuseRemovingLastAdmin(tx, account, "revoke role admin");
      tx.exec_params0(
          "DELETE FROM person_roles WHERE person_id = $1 AND role = $2"
          " AND coalesce(site_id, 0) = $3",
          account.person_id, req.role(), site_id);
    }
    Database::bumpStateVersion(tx);
    return loadPerson(tx, account.person_id);
  });
}

}  // namespace

grpc::Status AdminService::AddRoleToPerson(grpc::ServerContext* ctx,
                                           const pb::PersonRoleRequest* req, pb::Person* resp) {
  return rpc_.mutate(ctx, "AddRoleToPerson", *req,
                     [&](Call& call) { *resp = changeRole(call, *req, /*grant=*/true); });
}

grpc::Status AdminService::DeleteRoleFromPerson(grpc::ServerContext* ctx,
                                                const pb::PersonRoleRequest* req,
                                                pb::Person* resp) {
  return rpc_.mutate(ctx, "DeleteRoleFromPerson", *req,
                     [&](Call& call) { *resp = changeRole(call, *req, /*grant=*/false); });
}

// ----------------------------------------------------------------------- keys

grpc::Status AdminService::AddPersonKey(grpc::ServerContext* ctx,
                                        const pb::AddPersonKeyRequest* req, pb::Key* resp) {
  return rpc_.mutate(ctx, "AddPersonKey", *req, [&](Call& call) {
    auto parsed = parseSshKey(req->key());
    checkSshKeySize(call.plc.config, parsed);
    call.object(personObject(call, req->email()));
    *resp = call.write([&](pqxx::work& tx) {
      auto account = loadPersonAccount(tx, personOrSelf(tx, call, req->email()));
      // A key is a credential: it logs in to every slice of the person.
      authorizeOverPerson(call, account, /*allow_self=*/true, PiScope::kEverySite);
      lockForPersonKeys(tx, account.person_id);
      if (!tx.exec_params("SELECT 1 FROM key_blacklist WHERE fingerprint = $1", parsed.fingerprint)
               .empty()) {
        permissionDenied("key " + parsed.fingerprint +
                         " is blacklisted by PLC's admins; generate a new key pair");
      }
      auto dup = tx.exec_params("SELECT key_id FROM keys WHERE person_id = $1 AND fingerprint = $2",
                                account.person_id, parsed.fingerprint);
      if (!dup.empty()) {
        alreadyExists(account.email + " already has key " + parsed.fingerprint + " (key_id " +
                      dup[0][0].as<std::string>() + ")");
      }
      auto key_id = tx.exec_params1(
                          "INSERT INTO keys (person_id, key_type, key_text, fingerprint)"
                          " VALUES ($1, $2, $3, $4) RETURNING key_id",
                          account.person_id, parsed.type, parsed.canonical, parsed.fingerprint)[0]
                        .as<std::int64_t>();
      checkPersonKeys(tx, call.plc.config, account.person_id, account.email);
      call.object("key:" + std::to_string(key_id));
      Database::bumpStateVersion(tx);
      return loadKey(tx, key_id);
    });
  });
}

grpc::Status AdminService::GetKeys(grpc::ServerContext* ctx, const pb::GetKeysRequest* req,
                                   pb::GetKeysResponse* resp) {
  return rpc_.query(ctx, "GetKeys", *req, [&](Call& call) {
    const auto& caller = call.caller();
    auto keys = call.plc.db.read([&](pqxx::transaction_base& tx) {
      auto person = personOrSelf(tx, call, req->email());
      // Nodes install members' keys; people see their own, PIs their sites' users'.
      if (!caller.admin && !caller.isNode() && caller.person_id != person.person_id) {
        auto account = loadPersonAccount(tx, person);
        bool pi = false;
        for (auto site : account.site_ids) pi = pi || caller.isPiOf(site);
        if (!pi) {
          permissionDenied(
              "GetKeys for " + person.email +
              " requires being that person, role pi at one of their sites, or admin (" +
              caller.describe() + " is none of these)");
        }
      }
      return loadKeys(tx, person.person_id);
    });
    for (auto& k : keys) *resp->add_keys() = std::move(k);
  });
}

grpc::Status AdminService::DeleteKey(grpc::ServerContext* ctx, const pb::DeleteKeyRequest* req,
                                     pb::Empty*) {
  return rpc_.mutate(ctx, "DeleteKey", *req, [&](Call& call) {
    call.object("key:" + std::to_string(req->key_id()));
    call.write([&](pqxx::work& tx) {
      auto rows = tx.exec_params(
          "SELECT p.person_id, p.email, p.enabled FROM keys k JOIN persons p USING (person_id)"
          " WHERE k.key_id = $1",
          req->key_id());
      if (rows.empty()) notFound("no key with id " + std::to_string(req->key_id()));
      PersonRef owner{rows[0][0].as<std::int64_t>(), rows[0][1].as<std::string>(),
                      rows[0][2].as<bool>()};
      call.object("person:" + owner.email);
      authorizeOverPerson(call, loadPersonAccount(tx, owner), /*allow_self=*/true,
                          PiScope::kEverySite);
      tx.exec_params0("DELETE FROM keys WHERE key_id = $1", req->key_id());
      Database::bumpStateVersion(tx);
    });
  });
}

grpc::Status AdminService::BlacklistKey(grpc::ServerContext* ctx,
                                        const pb::BlacklistKeyRequest* req, pb::Empty*) {
  return rpc_.mutate(ctx, "BlacklistKey", *req, [&](Call& call) {
    authorizeAdmin(call);
    if ((req->key_id() != 0) == !req->key().empty()) {
      invalidArgument("BlacklistKey needs either key_id (an existing key) or key (its text)");
    }
    std::string fingerprint, key_text;
    if (!req->key().empty()) {
      auto parsed = parseSshKey(req->key());
      fingerprint = parsed.fingerprint;
      key_text = parsed.canonical;
    }
    call.write([&](pqxx::work& tx) {
      if (req->key_id() != 0) {
        auto key = loadKey(tx, req->key_id());
        fingerprint = key.fingerprint();
        key_text = key.key();
      }
      call.object("key:" + fingerprint);
      if (!tx.exec_params("SELECT 1 FROM key_blacklist WHERE fingerprint = $1", fingerprint)
               .empty()) {
        alreadyExists("key " + fingerprint + " is already blacklisted");
      }
      tx.exec_params0("INSERT INTO key_blacklist (fingerprint, key_text) VALUES ($1, $2)",
                      fingerprint, key_text);
      for (const auto& r :
           tx.exec_params("DELETE FROM keys k USING persons p WHERE k.person_id = p.person_id"
                          " AND k.fingerprint = $1 RETURNING k.key_id, p.email",
                          fingerprint)) {
        call.object("key:" + r[0].as<std::string>());
        call.object("person:" + r[1].as<std::string>());
      }
      Database::bumpStateVersion(tx);
    });
  });
}

grpc::Status AdminService::GetBlacklistedKeys(grpc::ServerContext* ctx, const pb::Empty* req,
                                              pb::GetBlacklistedKeysResponse* resp) {
  return rpc_.query(ctx, "GetBlacklistedKeys", *req, [&](Call& call) {
    authorizeAdmin(call);
    auto rows = call.plc.db.read([&](pqxx::transaction_base& tx) {
      return tx.exec("SELECT fingerprint FROM key_blacklist ORDER BY created_at, fingerprint");
    });
    for (const auto& r : rows) resp->add_fingerprints(r[0].as<std::string>());
  });
}

// ----------------------------------------------------- joining and registration

namespace {

// Serialises RequestSite's count of pending sites with its insert, across plcd
// replicas (7001: migrations; 7002, 7003: the flow archive).
constexpr int kSiteRequestLock = 7004;

std::string joinRefusal(const std::string& source, const SourceLimiter::Verdict& verdict) {
  auto now = static_cast<std::int64_t>(std::time(nullptr));
  return "too many site requests and registrations from " + source +
         " (join_source_burst, join_source_refill_s); try again after " +
         utcTime(now + verdict.retry_after_s) + " (in " +
         std::to_string(std::max<std::int64_t>(verdict.retry_after_s, 1)) + " s)";
}

}  // namespace

// Every call without a token takes one of its address's tokens, whatever its
// outcome: each may cost a password hash and adds rows and an audit event.
// Beyond the budget only the first refusal is recorded, as for Login, so that a
// flood cannot grow the audit log. A caller with a valid token is known and
// answers for the call: not counted (the pending caps bound it all the same).
grpc::Status AdminService::joinCall(grpc::ServerContext* ctx, const char* method,
                                    const google::protobuf::Message& request,
                                    const std::function<void(Call&)>& body) {
  std::optional<SourceLimiter::Verdict> verdict;
  std::string source;
  if (bearerToken(*ctx).empty()) {
    source = clientSource(clientPeer(*ctx));
    verdict = join_sources_.take(source);
    if (!verdict->allowed && !verdict->first_refusal) {
      spdlog::info("{} from {} refused: source over its join budget", method, source);
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, joinRefusal(source, *verdict));
    }
  }
  return rpc_.mutate(
      ctx, method, request,
      [&](Call& call) {
        if (verdict && !verdict->allowed) {
          resourceExhausted(joinRefusal(source, *verdict) +
                            "; further attempts until then are not recorded");
        }
        body(call);
      },
      Access::kAnonymous);
}

grpc::Status AdminService::RequestSite(grpc::ServerContext* ctx, const pb::RequestSiteRequest* req,
                                       pb::Site* resp) {
  return joinCall(ctx, "RequestSite", *req, [&](Call& call) {
    validateLoginBase(req->login_base());
    validateText("name", req->name(), kMaxNameLength, /*required=*/true);
    validateUrl(req->url(), /*required=*/true);
    checkField("pi_email", [&] { validateEmail(req->pi_email()); });
    validatePersonName("pi_first_name", req->pi_first_name());
    validatePersonName("pi_last_name", req->pi_last_name());
    checkField("pi_password", [&] { validatePassword(req->pi_password()); });
    validatePersonName("tech_contact_name", req->tech_contact_name());
    checkField("tech_contact_email", [&] { validateEmail(req->tech_contact_email()); });
    call.object("site:" + req->login_base());
    call.object("person:" + req->pi_email());
    const auto& config = call.plc.config;
    // Checked before the deliberately slow password hash, and again in the
    // transaction that writes.
    auto check = [&](pqxx::transaction_base& tx) {
      if (!tx.exec_params("SELECT 1 FROM sites WHERE login_base = $1 AND deleted_at IS NULL",
                          req->login_base())
               .empty()) {
        alreadyExists("site " + req->login_base() +
                      " already exists or is already requested; choose another login_base");
      }
      refuseDuplicateEmail(tx, req->pi_email(),
                           "; a site request makes a new account for its PI: give another "
                           "pi_email, or ask PLC's admins to make that account PI of a new site");
      auto pending =
          tx.exec(std::string("SELECT count(*) FROM sites s WHERE ") + kSitePending)[0][0]
              .as<std::int64_t>();
      if (pending >= config.max_pending_sites) {
        resourceExhausted("PLC has " + std::to_string(pending) +
                          " site requests awaiting approval, its limit (max_pending_sites is " +
                          std::to_string(config.max_pending_sites) +
                          "); try again once PLC's admins have handled them");
      }
    };
    call.plc.db.read(check);
    auto hash = call.plc.auth.passwords().hash(req->pi_password());
    *resp = call.write([&](pqxx::work& tx) {
      tx.exec_params("SELECT pg_advisory_xact_lock($1)", kSiteRequestLock);
      check(tx);
      // The PI and the site both start disabled: ApproveSite enables them.
      auto person_id = insertDisabledPerson(tx, req->pi_email(), req->pi_first_name(),
                                            req->pi_last_name(), hash);
      auto site_id =
          tx.exec_params1(
                "INSERT INTO sites (login_base, name, url, enabled, max_slices, max_slivers,"
                " requested_at, requested_by, tech_contact_name, tech_contact_email)"
                " VALUES ($1, $2, $3, false, $4, $5, now(), $6, $7, $8) RETURNING site_id",
                req->login_base(), req->name(), req->url(), config.default_max_slices,
                config.default_max_slivers, person_id, req->tech_contact_name(),
                req->tech_contact_email())[0]
              .as<std::int64_t>();
      // Membership comes with the least role, as for every account; pi on top.
      joinPrimarySite(tx, person_id, site_id);
      tx.exec_params0("INSERT INTO person_roles (person_id, role, site_id) VALUES ($1, 'pi', $2)",
                      person_id, site_id);
      Database::bumpStateVersion(tx);
      return loadSite(tx, site_id);
    });
  });
}

grpc::Status AdminService::ApproveSite(grpc::ServerContext* ctx, const pb::ApproveSiteRequest* req,
                                       pb::Site* resp) {
  return rpc_.mutate(ctx, "ApproveSite", *req, [&](Call& call) {
    authorizeAdmin(call);
    validateLoginBase(req->login_base());
    call.object("site:" + req->login_base());
    *resp = call.write([&](pqxx::work& tx) {
      auto site = findSite(tx, req->login_base(), /*for_update=*/true);
      auto row = tx.exec_params1(
          "SELECT requested_at IS NOT NULL, coalesce(extract(epoch FROM approved_at)::bigint, 0)"
          " FROM sites WHERE site_id = $1",
          site.site_id);
      if (!row[0].as<bool>()) {
        failedPrecondition("site " + site.login_base +
                           " is not pending: an admin created it (AddSite), nobody requested it;"
                           " enable it with UpdateSite (plcctl site update " +
                           site.login_base + " --enabled true)");
      }
      if (auto approved = row[1].as<std::int64_t>()) {
        failedPrecondition("site " + site.login_base + " is not pending: it was approved at " +
                           utcTime(approved));
      }
      tx.exec_params0("UPDATE sites SET enabled = true, approved_at = now() WHERE site_id = $1",
                      site.site_id);
      for (const auto& r : tx.exec_params(
               "UPDATE persons p SET enabled = true FROM sites s WHERE s.site_id = $1"
               " AND p.person_id = s.requested_by AND p.deleted_at IS NULL RETURNING p.email",
               site.site_id)) {
        call.object("person:" + r[0].as<std::string>());
      }
      Database::bumpStateVersion(tx);
      return loadSite(tx, site.site_id);
    });
  });
}

grpc::Status AdminService::RegisterPerson(grpc::ServerContext* ctx,
                                          const pb::RegisterPersonRequest* req, pb::Person* resp) {
  return joinCall(ctx, "RegisterPerson", *req, [&](Call& call) {
    checkNewAccount(*req, call);
    const auto& config = call.plc.config;
    // Checked before the deliberately slow password hash, and again in the
    // transaction that writes (with the site locked, so the cap holds at commit).
    auto check = [&](pqxx::transaction_base& tx, bool for_update) {
      auto site = findSite(tx, req->login_base(), for_update);
      if (!site.enabled) {
        failedPrecondition("site " + site.login_base +
                           " is not enabled (a request awaiting approval, or disabled by PLC's"
                           " admins); register at an enabled site");
      }
      refuseDuplicateEmail(tx, req->email(), "; log in with it instead");
      auto pending = tx.exec_params1(
                           "SELECT count(*) FROM person_sites ps JOIN persons p USING (person_id)"
                           " WHERE ps.site_id = $1 AND NOT p.enabled AND p.deleted_at IS NULL",
                           site.site_id)[0]
                         .as<std::int64_t>();
      if (pending >= config.max_pending_persons_per_site) {
        resourceExhausted("site " + site.login_base + " has " + std::to_string(pending) +
                          " disabled accounts awaiting its PIs, its limit"
                          " (max_pending_persons_per_site is " +
                          std::to_string(config.max_pending_persons_per_site) +
                          "); ask a PI of the site to enable or delete them, then try again");
      }
      return site;
    };
    call.plc.db.read([&](pqxx::transaction_base& tx) { return check(tx, /*for_update=*/false); });
    auto hash = call.plc.auth.passwords().hash(req->password());
    *resp = call.write([&](pqxx::work& tx) {
      auto site = check(tx, /*for_update=*/true);
      auto person_id =
          insertDisabledPerson(tx, req->email(), req->first_name(), req->last_name(), hash);
      joinPrimarySite(tx, person_id, site.site_id);
      Database::bumpStateVersion(tx);
      return loadPerson(tx, person_id);
    });
  });
}

}  // namespace plng::plc
