// Slice: slices, their members, nodes and tags, and the tickets PLC signs for
// them. PlanetLab's rules: a site's PI owns its slices (named after the site's
// login_base), members may renew them, add nodes and set user-level tags, and
// admins may do anything.
#include <openssl/rand.h>

#include <algorithm>
#include <ctime>
#include <optional>
#include <set>
#include <unordered_map>

#include "base/strings.h"
#include "plc/change_bus.h"
#include "plc/errors.h"
#include "plc/lookup.h"
#include "plc/node_state.h"
#include "plc/plc_keys.h"
#include "plc/plc_limits.h"
#include "plc/plcd_metrics.h"
#include "plc/port_reservations.h"
#include "plc/services.h"
#include "plc/validate.h"

namespace plng::plc {

namespace {

constexpr std::size_t kMaxDescription = 2048;
constexpr const char* kDefaultInstantiation = "plc-instantiated";

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// RenewSlice's rule, and the bound every SliceInfo reports (max_expires_at):
// the latest expiry a caller of `standing` may give the slice at `at`.
struct RenewalLimit {
  std::int64_t latest = 0;  // 0: no renewal at all
  std::string refusal;      // why not, when latest is 0 and the caller has standing
};

RenewalLimit renewalLimit(std::optional<Role> standing, const std::string& slice_name,
                          const std::string& description, const std::string& url, std::int64_t at,
                          const PlcConfig& config) {
  if (!standing) return {};
  // Admins have no bound of their own: any time a request may carry.
  if (*standing == Role::kAdmin) return {kMaxRequestTime, {}};
  if (description.empty() || url.empty()) {
    return {0, "slice " + slice_name +
                   " needs a description and a URL before it can be renewed; set a"
                   " description and URL first: plcctl slice update " +
                   slice_name + " --description ... --url ..."};
  }
  return {at + config.slice_max_renewal, {}};
}

std::optional<Role> standingFor(const Caller& c, std::int64_t slice_site_id, bool member);

// Which slices GetSlices (and every method answering with a SliceInfo) reads.
struct SliceFilter {
  std::int64_t slice_id = 0;  // 0 = any
  std::vector<std::string> names;
  std::string login_base;
  std::string member;
  std::string hostname;
  bool include_deleted = false;
};

// Two statements whatever the number of slices: the slices, then the members
// and nodes of all of them at once. (Per-slice subqueries cost ~0.1 ms each:
// a list of 10,000 slices took seconds.) The filters fold away at planning, as
// exec_params plans with the parameters' values. Each slice's max_expires_at is
// what RenewSlice would accept from `call`'s caller now.
std::vector<pb::SliceInfo> loadSlices(pqxx::transaction_base& tx, const SliceFilter& f,
                                      const Call& call) {
  auto rows = tx.exec_params(
      "SELECT sl.slice_id, sl.name, s.login_base, sl.description, sl.url, sl.instantiation,"
      " extract(epoch FROM sl.created_at)::bigint, extract(epoch FROM sl.expires_at)::bigint,"
      " sl.max_nodes, sl.xid, coalesce(extract(epoch FROM sl.deleted_at)::bigint, 0),"
      " coalesce(c.email, ''), sl.site_id"
      " FROM slices sl JOIN sites s USING (site_id)"
      " LEFT JOIN persons c ON c.person_id = sl.creator_id"
      " WHERE ($1 OR sl.deleted_at IS NULL)"
      " AND ($2::bigint = 0 OR sl.slice_id = $2::bigint)"
      " AND (cardinality($3::text[]) = 0 OR sl.name = ANY($3::text[]))"
      " AND ($4 = '' OR s.login_base = $4)"
      " AND ($5 = '' OR EXISTS (SELECT 1 FROM slice_members m JOIN persons p USING (person_id)"
      "      WHERE m.slice_id = sl.slice_id AND lower(p.email) = lower($5)"
      "      AND p.deleted_at IS NULL))"
      " AND ($6 = '' OR EXISTS (SELECT 1 FROM slice_nodes sn JOIN nodes n USING (node_id)"
      "      WHERE sn.slice_id = sl.slice_id AND lower(n.hostname) = lower($6)"
      "      AND n.deleted_at IS NULL))"
      " ORDER BY sl.name, sl.slice_id",
      f.include_deleted, f.slice_id, pgTextArray(f.names), f.login_base, f.member, f.hostname);
  std::vector<pb::SliceInfo> out;
  out.reserve(rows.size());
  std::vector<std::int64_t> site_ids;  // of out[i]
  std::unordered_map<std::int64_t, std::size_t> index;
  std::string ids = "{";
  for (const auto& r : rows) {
    pb::SliceInfo s;
    s.set_slice_id(r[0].as<std::int64_t>());
    s.set_name(r[1].as<std::string>());
    s.set_login_base(r[2].as<std::string>());
    s.set_description(r[3].as<std::string>());
    s.set_url(r[4].as<std::string>());
    s.set_instantiation(r[5].as<std::string>());
    s.set_created_at(r[6].as<std::int64_t>());
    s.set_expires_at(r[7].as<std::int64_t>());
    s.set_max_nodes(r[8].as<int>());
    s.set_xid(r[9].as<std::uint32_t>());
    s.set_deleted_at(r[10].as<std::int64_t>());
    s.set_creator(r[11].as<std::string>());
    site_ids.push_back(r[12].as<std::int64_t>());
    if (ids.size() > 1) ids += ',';
    ids += std::to_string(s.slice_id());
    index.emplace(s.slice_id(), out.size());
    out.push_back(std::move(s));
  }
  if (out.empty()) return out;
  ids += '}';
  const auto& caller = call.caller();
  std::vector<bool> caller_is_member(out.size(), false);
  for (const auto& r :
       tx.exec_params("SELECT m.slice_id, 'm', p.email, p.person_id FROM slice_members m"
                      " JOIN persons p USING (person_id)"
                      " WHERE m.slice_id = ANY($1::bigint[]) AND p.deleted_at IS NULL"
                      " UNION ALL"
                      " SELECT sn.slice_id, 'n', n.hostname, 0 FROM slice_nodes sn"
                      " JOIN nodes n USING (node_id)"
                      " WHERE sn.slice_id = ANY($1::bigint[]) AND n.deleted_at IS NULL"
                      " ORDER BY 1, 2, 3",
                      ids)) {
    auto i = index.at(r[0].as<std::int64_t>());
    auto& s = out[i];
    if (r[1].as<std::string>() == "m") {
      s.add_members(r[2].as<std::string>());
      if (caller.isPerson() && r[3].as<std::int64_t>() == caller.person_id) {
        caller_is_member[i] = true;
      }
    } else {
      s.add_nodes(r[2].as<std::string>());
    }
  }
  const auto at = now();
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto& s = out[i];
    if (s.deleted_at() != 0) continue;  // RenewSlice finds live slices only
    auto standing = standingFor(caller, site_ids[i], caller_is_member[i]);
    s.set_max_expires_at(
        renewalLimit(standing, s.name(), s.description(), s.url(), at, call.plc.config).latest);
  }
  return out;
}

pb::SliceInfo loadSlice(pqxx::transaction_base& tx, std::int64_t slice_id, const Call& call) {
  SliceFilter f;
  f.slice_id = slice_id;
  f.include_deleted = true;
  auto slices = loadSlices(tx, f, call);
  if (slices.empty()) notFound("slice " + std::to_string(slice_id) + " vanished");
  return std::move(slices.front());
}

bool isMember(pqxx::transaction_base& tx, std::int64_t slice_id, std::int64_t person_id) {
  return !tx.exec_params("SELECT 1 FROM slice_members WHERE slice_id = $1 AND person_id = $2",
                         slice_id, person_id)
              .empty();
}

// The caller's standing for a slice, strongest first: admin, PI of the slice's
// site, member (rank "user"); nullopt for none of these.
std::optional<Role> standingFor(const Caller& c, std::int64_t slice_site_id, bool member) {
  if (c.admin) return Role::kAdmin;
  if (!c.isPerson()) return std::nullopt;
  if (c.isPiOf(slice_site_id)) return Role::kPi;
  if (member) return Role::kUser;
  return std::nullopt;
}
std::optional<Role> standingFor(const Call& call, pqxx::transaction_base& tx,
                                const SliceRef& slice) {
  const auto& c = call.caller();
  return standingFor(c, slice.site_id,
                     c.isPerson() && !c.admin && !c.isPiOf(slice.site_id) &&
                         isMember(tx, slice.slice_id, c.person_id));
}

// Admin, PI of the slice's site, or member of the slice; records the role used.
Role requireSliceStanding(Call& call, pqxx::transaction_base& tx, const SliceRef& slice) {
  auto standing = standingFor(call, tx, slice);
  if (!standing) {
    permissionDenied(std::string(call.method()) + " requires role pi at site " + slice.login_base +
                     " or membership of slice " + slice.name + " (or admin); " +
                     call.caller().describe() + " has neither");
  }
  call.usedRole(toString(*standing));
  return *standing;
}

// Admin or PI of the slice's site; records the role used.
void requireSlicePi(Call& call, const SliceRef& slice) {
  call.requireRoleAt(slice.site_id, slice.login_base, {Role::kPi});
  call.usedRole(call.caller().admin ? "admin" : "pi");
}

void requireNames(const char* what, const google::protobuf::RepeatedPtrField<std::string>& names) {
  if (names.empty()) invalidArgument(std::string("give at least one ") + what);
}

// Tag types a slice may carry: category "slice", "slice/rspec", "slice/config", ...
void requireSliceCategory(const TagTypeRef& type) {
  if (type.category.rfind("slice", 0) != 0) {
    invalidArgument("tag " + type.name + " is not a slice tag (its category is '" + type.category +
                    "'); plcctl tagtype list shows slice tags");
  }
}

void requireTagRank(const char* verb, Role standing, const TagTypeRef& type, const Call& call) {
  auto needed = parseRole(type.min_role).value_or(Role::kAdmin);
  if (standing < needed) {
    permissionDenied(std::string(verb) + " tag " + type.name + " requires role " + type.min_role +
                     "; " + call.caller().describe() + " acts as " + toString(standing) +
                     " for this slice");
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string randomTicketId() {
  unsigned char id[16];
  if (RAND_bytes(id, sizeof id) != 1) throw std::runtime_error("RAND_bytes failed");
  return base::toHex(std::string_view(reinterpret_cast<const char*>(id), sizeof id));
}

}  // namespace

grpc::Status SliceService::AddSlice(grpc::ServerContext* ctx, const pb::AddSliceRequest* req,
                                    pb::SliceInfo* resp) {
  return rpc_.mutate(ctx, "AddSlice", *req, [&](Call& call) {
    call.object("slice:" + req->name());
    auto login_base = validateSliceName(req->name());
    validateText("description", req->description(), kMaxDescription, false);
    validateUrl(req->url(), false);
    std::string instantiation =
        req->instantiation().empty() ? kDefaultInstantiation : req->instantiation();
    validateInstantiation(instantiation);
    const auto& config = call.plc.config;
    int max_nodes = req->has_max_nodes() ? req->max_nodes() : config.default_max_nodes;
    if (max_nodes < 0) invalidArgument("max_nodes must be 0 or more");

    *resp = call.write([&](pqxx::work& tx) {
      // The lock serialises slice creation per site, so the quota holds at commit.
      auto site = findSite(tx, login_base, /*for_update=*/true);
      call.requireRoleAt(site.site_id, site.login_base, {Role::kPi});
      call.usedRole(call.caller().admin ? "admin" : "pi");
      if (max_nodes > config.default_max_nodes && !call.caller().admin) {
        permissionDenied("max_nodes above " + std::to_string(config.default_max_nodes) +
                         " requires role admin");
      }
      if (!site.enabled) {
        failedPrecondition("site " + site.login_base +
                           " is disabled; an admin must enable it before it can create slices");
      }
      if (!tx.exec_params("SELECT 1 FROM slices WHERE name = $1 AND deleted_at IS NULL",
                          req->name())
               .empty()) {
        alreadyExists("slice " + req->name() + " already exists");
      }
      auto count =
          tx.exec_params1("SELECT count(*) FROM slices WHERE site_id = $1 AND deleted_at IS NULL",
                          site.site_id)[0]
              .as<int>();
      if (count >= site.max_slices) {
        resourceExhausted("site " + site.login_base + " has " + std::to_string(count) + " of " +
                          std::to_string(site.max_slices) +
                          " slices; ask an admin to raise max_slices");
      }
      auto slice_id =
          tx.exec_params1(
                "INSERT INTO slices (name, site_id, description, url, instantiation, creator_id,"
                " expires_at, max_nodes)"
                " VALUES ($1, $2, $3, $4, $5, NULLIF($6, 0),"
                " now() + make_interval(secs => $7), $8) RETURNING slice_id",
                req->name(), site.site_id, req->description(), req->url(), instantiation,
                call.caller().person_id, config.slice_default_lifetime, max_nodes)[0]
              .as<std::int64_t>();
      // Bound to no node yet: no node's state changes.
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes({}));
      return loadSlice(tx, slice_id, call);
    });
  });
}

grpc::Status SliceService::GetSlices(grpc::ServerContext* ctx, const pb::GetSlicesRequest* req,
                                     pb::GetSlicesResponse* resp) {
  return rpc_.query(ctx, "GetSlices", *req, [&](Call& call) {
    call.requirePerson();
    SliceFilter f;
    f.names.assign(req->names().begin(), req->names().end());
    f.login_base = req->login_base();
    f.member = req->member();
    f.hostname = req->hostname();
    f.include_deleted = req->include_deleted();
    auto slices =
        call.plc.db.read([&](pqxx::transaction_base& tx) { return loadSlices(tx, f, call); });
    resp->mutable_slices()->Reserve(static_cast<int>(slices.size()));
    for (auto& s : slices) *resp->add_slices() = std::move(s);
  });
}

grpc::Status SliceService::UpdateSlice(grpc::ServerContext* ctx, const pb::UpdateSliceRequest* req,
                                       pb::SliceInfo* resp) {
  return rpc_.mutate(ctx, "UpdateSlice", *req, [&](Call& call) {
    call.object("slice:" + req->name());
    validateSliceName(req->name());
    if (!req->has_description() && !req->has_url() && !req->has_instantiation() &&
        !req->has_max_nodes()) {
      invalidArgument("nothing to update: set description, url, instantiation or max_nodes");
    }
    if (req->has_description()) {
      validateText("description", req->description(), kMaxDescription, false);
    }
    if (req->has_url()) validateUrl(req->url(), false);
    if (req->has_instantiation()) validateInstantiation(req->instantiation());
    if (req->has_max_nodes() && req->max_nodes() < 0) {
      invalidArgument("max_nodes must be 0 or more");
    }
    *resp = call.write([&](pqxx::work& tx) {
      auto slice = findSlice(tx, req->name(), /*for_update=*/true);
      requireSlicePi(call, slice);
      if (req->has_max_nodes() && req->max_nodes() > slice.max_nodes && !call.caller().admin) {
        permissionDenied("raising max_nodes of " + slice.name + " above " +
                         std::to_string(slice.max_nodes) + " requires role admin");
      }
      tx.exec_params0(
          "UPDATE slices SET"
          " description = CASE WHEN $2 THEN $3 ELSE description END,"
          " url = CASE WHEN $4 THEN $5 ELSE url END,"
          " instantiation = CASE WHEN $6 THEN $7 ELSE instantiation END,"
          " max_nodes = CASE WHEN $8 THEN $9 ELSE max_nodes END"
          " WHERE slice_id = $1",
          slice.slice_id, req->has_description(), req->description(), req->has_url(), req->url(),
          req->has_instantiation(),
          req->has_instantiation() ? req->instantiation() : kDefaultInstantiation,
          req->has_max_nodes(), req->max_nodes());
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes(sliceNodeIds(tx, slice.slice_id)));
      return loadSlice(tx, slice.slice_id, call);
    });
  });
}

grpc::Status SliceService::RenewSlice(grpc::ServerContext* ctx, const pb::RenewSliceRequest* req,
                                      pb::SliceInfo* resp) {
  return rpc_.mutate(ctx, "RenewSlice", *req, [&](Call& call) {
    call.object("slice:" + req->name());
    validateSliceName(req->name());
    auto t = now();
    if (req->expires_at() <= t) {
      invalidArgument("expires_at " + utcTime(req->expires_at()) +
                      " is not in the future; give a later date");
    }
    *resp = call.write([&](pqxx::work& tx) {
      auto slice = findSlice(tx, req->name(), /*for_update=*/true);
      auto standing = requireSliceStanding(call, tx, slice);
      auto limit =
          renewalLimit(standing, slice.name, slice.description, slice.url, t, call.plc.config);
      if (limit.latest == 0) failedPrecondition(limit.refusal);
      if (req->expires_at() > limit.latest) {
        invalidArgument("expires_at " + utcTime(req->expires_at()) +
                        " is too far ahead: the latest allowed is " + utcTime(limit.latest) +
                        " (only admins may renew further)");
      }
      tx.exec_params0("UPDATE slices SET expires_at = to_timestamp($2) WHERE slice_id = $1",
                      slice.slice_id, req->expires_at());
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes(sliceNodeIds(tx, slice.slice_id)));
      return loadSlice(tx, slice.slice_id, call);
    });
  });
}

grpc::Status SliceService::DeleteSlice(grpc::ServerContext* ctx, const pb::DeleteSliceRequest* req,
                                       pb::Empty*) {
  return rpc_.mutate(ctx, "DeleteSlice", *req, [&](Call& call) {
    call.object("slice:" + req->name());
    validateSliceName(req->name());
    call.write([&](pqxx::work& tx) {
      auto slice = findSlice(tx, req->name(), /*for_update=*/true);
      requireSlicePi(call, slice);
      // Members, nodes and tags stay for history (GetSlices include_deleted).
      tx.exec_params0("UPDATE slices SET deleted_at = now() WHERE slice_id = $1", slice.slice_id);
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes(sliceNodeIds(tx, slice.slice_id)));
    });
  });
}

namespace {

// AddSliceMembers and RemoveSliceMembers differ only in the statement applied to
// each (slice, person) pair; all persons are looked up first, so an unknown email
// changes nothing.
pb::SliceInfo changeSliceMembers(Call& call, const pb::SliceMembersRequest& req,
                                 const char* per_person_sql) {
  call.object("slice:" + req.name());
  validateSliceName(req.name());
  for (const auto& e : req.emails()) call.object("person:" + e);
  requireNames("email", req.emails());
  for (const auto& e : req.emails()) validateEmail(e);
  return call.write([&](pqxx::work& tx) {
    auto slice = findSlice(tx, req.name(), /*for_update=*/true);
    requireSlicePi(call, slice);
    std::vector<std::int64_t> person_ids;
    for (const auto& e : req.emails()) person_ids.push_back(findPerson(tx, e).person_id);
    std::size_t changed = 0;
    for (auto person_id : person_ids) {
      changed += tx.exec_params0(per_person_sql, slice.slice_id, person_id).affected_rows();
    }
    if (changed > 0) {
      checkSliceMembers(tx, call.plc.config, slice.slice_id, slice.name);
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes(sliceNodeIds(tx, slice.slice_id)));
    }
    return loadSlice(tx, slice.slice_id, call);
  });
}

}  // namespace

grpc::Status SliceService::AddSliceMembers(grpc::ServerContext* ctx,
                                           const pb::SliceMembersRequest* req,
                                           pb::SliceInfo* resp) {
  return rpc_.mutate(ctx, "AddSliceMembers", *req, [&](Call& call) {
    *resp = changeSliceMembers(call, *req,
                               "INSERT INTO slice_members (slice_id, person_id) VALUES ($1, $2)"
                               " ON CONFLICT DO NOTHING");
  });
}

grpc::Status SliceService::RemoveSliceMembers(grpc::ServerContext* ctx,
                                              const pb::SliceMembersRequest* req,
                                              pb::SliceInfo* resp) {
  return rpc_.mutate(ctx, "RemoveSliceMembers", *req, [&](Call& call) {
    *resp = changeSliceMembers(call, *req,
                               "DELETE FROM slice_members WHERE slice_id = $1 AND person_id = $2");
  });
}

grpc::Status SliceService::AddSliceNodes(grpc::ServerContext* ctx, const pb::SliceNodesRequest* req,
                                         pb::SliceInfo* resp) {
  return rpc_.mutate(ctx, "AddSliceNodes", *req, [&](Call& call) {
    call.object("slice:" + req->name());
    validateSliceName(req->name());
    for (const auto& h : req->hostnames()) call.object("node:" + h);
    requireNames("hostname", req->hostnames());
    for (const auto& h : req->hostnames()) validateHostname(h);
    *resp = call.write([&](pqxx::work& tx) {
      // Lock order everywhere: site, then slice. The site lock makes the sliver
      // quota (summed over the site's slices) hold at commit.
      auto unlocked = findSlice(tx, req->name());
      auto site = findSite(tx, unlocked.login_base, /*for_update=*/true);
      auto slice = findSlice(tx, req->name(), /*for_update=*/true);
      requireSliceStanding(call, tx, slice);
      std::vector<std::int64_t> node_ids;
      for (const auto& h : req->hostnames()) node_ids.push_back(findNode(tx, h).node_id);
      // The slice's `ports` now apply on these nodes too.
      PortReservationGuard reservations(tx, node_ids);
      std::size_t added = 0;
      for (auto node_id : node_ids) {
        added += tx.exec_params0(
                       "INSERT INTO slice_nodes (slice_id, node_id) VALUES ($1, $2)"
                       " ON CONFLICT DO NOTHING",
                       slice.slice_id, node_id)
                     .affected_rows();
      }
      if (added > 0) {
        reservations.check();
        auto nodes = tx.exec_params1(
                           "SELECT count(*) FROM slice_nodes sn JOIN nodes n USING (node_id)"
                           " WHERE sn.slice_id = $1 AND n.deleted_at IS NULL",
                           slice.slice_id)[0]
                         .as<int>();
        if (nodes > slice.max_nodes) {
          resourceExhausted("slice " + slice.name + " would have " + std::to_string(nodes) +
                            " nodes but its max_nodes is " + std::to_string(slice.max_nodes) +
                            "; remove nodes first or ask an admin to raise max_nodes");
        }
        auto slivers =
            tx.exec_params1(
                  "SELECT count(*) FROM slice_nodes sn JOIN slices sl USING (slice_id)"
                  " JOIN nodes n USING (node_id)"
                  " WHERE sl.site_id = $1 AND sl.deleted_at IS NULL AND n.deleted_at IS NULL",
                  site.site_id)[0]
                .as<int>();
        if (slivers > site.max_slivers) {
          resourceExhausted("site " + site.login_base + " would have " + std::to_string(slivers) +
                            " slivers but its max_slivers is " + std::to_string(site.max_slivers) +
                            "; remove nodes from its slices or ask an admin to raise max_slivers");
        }
        Database::bumpStateVersion(tx, ChangeScope::onlyNodes(node_ids));
      }
      return loadSlice(tx, slice.slice_id, call);
    });
  });
}

grpc::Status SliceService::RemoveSliceNodes(grpc::ServerContext* ctx,
                                            const pb::SliceNodesRequest* req, pb::SliceInfo* resp) {
  return rpc_.mutate(ctx, "RemoveSliceNodes", *req, [&](Call& call) {
    call.object("slice:" + req->name());
    validateSliceName(req->name());
    for (const auto& h : req->hostnames()) call.object("node:" + h);
    requireNames("hostname", req->hostnames());
    for (const auto& h : req->hostnames()) validateHostname(h);
    *resp = call.write([&](pqxx::work& tx) {
      auto slice = findSlice(tx, req->name(), /*for_update=*/true);
      requireSliceStanding(call, tx, slice);
      std::vector<std::int64_t> removed;
      for (const auto& h : req->hostnames()) {
        auto node = findNode(tx, h);
        if (tx.exec_params0("DELETE FROM slice_nodes WHERE slice_id = $1 AND node_id = $2",
                            slice.slice_id, node.node_id)
                .affected_rows() > 0) {
          removed.push_back(node.node_id);
        }
      }
      if (!removed.empty()) Database::bumpStateVersion(tx, ChangeScope::onlyNodes(removed));
      return loadSlice(tx, slice.slice_id, call);
    });
  });
}

grpc::Status SliceService::SetSliceTag(grpc::ServerContext* ctx, const pb::SetSliceTagRequest* req,
                                       pb::SliceTag* resp) {
  return rpc_.mutate(ctx, "SetSliceTag", *req, [&](Call& call) {
    call.object("slice:" + req->slice());
    validateSliceName(req->slice());
    if (req->tag().empty()) invalidArgument("tag is required (plcctl tagtype list shows them)");
    if (!req->node().empty() && !req->nodegroup().empty()) {
      invalidArgument(
          "a slice tag applies to the whole slice, one node or one node group:"
          " give node or nodegroup, not both");
    }
    if (!req->node().empty()) {
      call.object("node:" + req->node());
      validateHostname(req->node());
    }
    checkTagValueLength(call.plc.config, "the value of tag " + req->tag(), req->value());
    *resp = call.write([&](pqxx::work& tx) {
      auto slice = findSlice(tx, req->slice(), /*for_update=*/true);
      auto standing = requireSliceStanding(call, tx, slice);
      auto type = findTagType(tx, req->tag());
      requireSliceCategory(type);
      requireTagRank("setting", standing, type, call);
      auto value = canonicalTagValue(type.name, type.value_kind, req->value());
      std::int64_t node_id = 0;
      std::int64_t nodegroup_id = 0;
      pb::SliceTag tag;
      if (!req->node().empty()) {
        auto node = findNode(tx, req->node());
        node_id = node.node_id;
        tag.set_node(node.hostname);
      } else if (!req->nodegroup().empty()) {
        auto group = findNodeGroup(tx, req->nodegroup());
        nodegroup_id = group.nodegroup_id;
        tag.set_nodegroup(group.name);
      }
      std::optional<PortReservationGuard> reservations;
      if (type.name == kPortsTag) {
        reservations.emplace(tx, node_id != 0 ? std::vector<std::int64_t>{node_id}
                                              : sliceNodeIds(tx, slice.slice_id));
      }
      // One value per (slice, tag, scope): setting it again replaces the value.
      auto id = tx.exec_params1(
                      "INSERT INTO slice_tags (slice_id, tag_type_id, value, node_id, nodegroup_id)"
                      " VALUES ($1, $2, $3, NULLIF($4, 0), NULLIF($5, 0))"
                      " ON CONFLICT (slice_id, tag_type_id, coalesce(node_id, 0),"
                      " coalesce(nodegroup_id, 0)) DO UPDATE SET value = EXCLUDED.value"
                      " RETURNING slice_tag_id",
                      slice.slice_id, type.tag_type_id, value, node_id, nodegroup_id)[0]
                    .as<std::int64_t>();
      checkSliceTags(tx, call.plc.config, slice.slice_id, slice.name);
      if (reservations) reservations->check();
      Database::bumpStateVersion(
          tx, ChangeScope::onlyNodes(node_id != 0 ? std::vector<std::int64_t>{node_id}
                                                  : sliceNodeIds(tx, slice.slice_id)));
      tag.set_slice_tag_id(id);
      tag.set_slice(slice.name);
      tag.set_tag(type.name);
      tag.set_value(value);
      return tag;
    });
  });
}

grpc::Status SliceService::DeleteSliceTag(grpc::ServerContext* ctx,
                                          const pb::DeleteSliceTagRequest* req, pb::Empty*) {
  return rpc_.mutate(ctx, "DeleteSliceTag", *req, [&](Call& call) {
    if (req->slice_tag_id() <= 0) invalidArgument("slice_tag_id is required");
    call.write([&](pqxx::work& tx) {
      auto rows = tx.exec_params(
          "SELECT sl.name, tt.name FROM slice_tags st"
          " JOIN slices sl USING (slice_id) JOIN tag_types tt USING (tag_type_id)"
          " WHERE st.slice_tag_id = $1 AND sl.deleted_at IS NULL",
          req->slice_tag_id());
      if (rows.empty()) {
        notFound("no slice tag " + std::to_string(req->slice_tag_id()) +
                 " (plcctl slice tag list <slice> lists them)");
      }
      auto slice = findSlice(tx, rows[0][0].as<std::string>(), /*for_update=*/true);
      call.object("slice:" + slice.name);
      auto standing = requireSliceStanding(call, tx, slice);
      auto type = findTagType(tx, rows[0][1].as<std::string>());
      requireTagRank("deleting", standing, type, call);
      // A narrower value going away uncovers a wider one (node > group > slice).
      std::optional<PortReservationGuard> reservations;
      if (type.name == kPortsTag) reservations.emplace(tx, sliceNodeIds(tx, slice.slice_id));
      tx.exec_params0("DELETE FROM slice_tags WHERE slice_tag_id = $1", req->slice_tag_id());
      if (reservations) reservations->check();
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes(sliceNodeIds(tx, slice.slice_id)));
    });
  });
}

grpc::Status SliceService::GetSliceTags(grpc::ServerContext* ctx,
                                        const pb::GetSliceTagsRequest* req,
                                        pb::GetSliceTagsResponse* resp) {
  return rpc_.query(ctx, "GetSliceTags", *req, [&](Call& call) {
    call.requirePerson();
    validateSliceName(req->slice());
    call.plc.db.read([&](pqxx::transaction_base& tx) {
      auto slice = findSlice(tx, req->slice());
      for (const auto& r :
           tx.exec_params("SELECT st.slice_tag_id, tt.name, st.value, coalesce(n.hostname, ''),"
                          " coalesce(g.name, '')"
                          " FROM slice_tags st JOIN tag_types tt USING (tag_type_id)"
                          " LEFT JOIN nodes n ON n.node_id = st.node_id"
                          " LEFT JOIN nodegroups g ON g.nodegroup_id = st.nodegroup_id"
                          " WHERE st.slice_id = $1"
                          // In order of precedence: slice-wide, node group, node.
                          " ORDER BY tt.name, (st.node_id IS NOT NULL), (st.nodegroup_id IS NOT"
                          " NULL), g.name, n.hostname",
                          slice.slice_id)) {
        auto* t = resp->add_tags();
        t->set_slice_tag_id(r[0].as<std::int64_t>());
        t->set_slice(slice.name);
        t->set_tag(r[1].as<std::string>());
        t->set_value(r[2].as<std::string>());
        t->set_node(r[3].as<std::string>());
        t->set_nodegroup(r[4].as<std::string>());
      }
      return 0;
    });
  });
}

// The hot path of slice creation by brokers. While nothing changes, the
// slice's grants come from memory (SliceGrantCache) and a ticket costs no
// query, only a signature; after a change, two statements reload them.
grpc::Status SliceService::GetSliceTicket(grpc::ServerContext* ctx,
                                          const pb::GetSliceTicketRequest* req,
                                          pb::SignedTicket* resp) {
  return rpc_.query(ctx, "GetSliceTicket", *req, [&](Call& call) {
    if (req->slice().empty()) invalidArgument("slice is required");
    validateSliceName(req->slice());
    std::vector<std::string> wanted;
    for (const auto& h : req->hostnames()) {
      validateHostname(h);
      wanted.push_back(lower(h));
    }
    const auto& caller = call.caller();
    if (!caller.isPerson()) {
      permissionDenied(
          "GetSliceTicket must be called by a person (admin, PI or slice member), not " +
          caller.describe());
    }
    auto& db = call.plc.db;
    auto cache_epoch = call.plc.auth.epoch();
    auto stamp = ticket_grants_.trustedStamp(cache_epoch);
    if (!stamp || !call.plc.bus.listening()) {
      stamp = db.readStatement([](pqxx::transaction_base& tx) { return stateStamp(tx); });
      ticket_grants_.stampRead(*stamp, cache_epoch);
    }
    auto grants = ticket_grants_.find(*stamp, req->slice());
    if (!grants) {
      grants = db.read([&](pqxx::transaction_base& tx) {
        auto snapshot_stamp = stateStamp(tx);
        ticket_grants_.stampRead(snapshot_stamp, cache_epoch);
        auto loaded = loadSliceGrants(tx, req->slice());
        if (loaded) ticket_grants_.put(snapshot_stamp, loaded);
        return loaded;
      });
    }
    if (!grants) notFound("no slice named '" + req->slice() + "' (plcctl slice list shows them)");
    if (!caller.admin && !caller.isPiOf(grants->site_id) &&
        !std::binary_search(grants->member_ids.begin(), grants->member_ids.end(),
                            caller.person_id)) {
      permissionDenied("GetSliceTicket requires role pi at site " + grants->login_base +
                       " or membership of slice " + grants->name + " (or admin); " +
                       caller.describe() + " has neither");
    }
    auto issued = now();
    if (grants->expires_at <= issued) {
      failedPrecondition("slice " + grants->name + " expired at " + utcTime(grants->expires_at) +
                         "; renew it (plcctl slice renew " + grants->name + ")");
    }

    pb::TicketBody body;
    if (wanted.empty()) {
      body.mutable_nodes()->Reserve(static_cast<int>(grants->nodes.size()));
      for (const auto& g : grants->nodes) *body.add_nodes() = g;
    } else {
      std::sort(wanted.begin(), wanted.end());
      wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
      for (const auto& h : wanted) {
        auto it = std::find_if(grants->nodes.begin(), grants->nodes.end(),
                               [&](const pb::NodeGrant& g) { return lower(g.hostname()) == h; });
        if (it == grants->nodes.end()) {
          failedPrecondition("node " + h + " is not in slice " + grants->name +
                             "; add it first (plcctl slice nodes add " + grants->name + " " + h +
                             ")");
        }
        *body.add_nodes() = *it;
      }
    }
    body.set_ticket_id(randomTicketId());
    body.set_slice_name(grants->name);
    body.set_xid(grants->xid);
    for (const auto& k : grants->member_keys) *body.add_member_keys() = k;
    body.set_not_before(issued - call.plc.config.ticket_clock_skew);
    body.set_not_after(std::min(grants->expires_at, issued + call.plc.config.ticket_lifetime));
    body.set_issued_at(issued);
    body.set_instantiation(grants->instantiation);
    *resp = call.plc.keys.sign(std::move(body));
    if (call.plc.metrics != nullptr) call.plc.metrics->ticketSigned();
  });
}

}  // namespace plng::plc
