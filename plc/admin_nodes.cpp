// Admin: nodes, node tags, node groups and tag types.
#include <algorithm>
#include <cctype>

#include "base/strings.h"
#include "plc/admin_access.h"
#include "plc/admin_cascade.h"
#include "plc/admin_views.h"
#include "plc/auth.h"
#include "plc/errors.h"
#include "plc/lookup.h"
#include "plc/plc_limits.h"
#include "plc/port_reservations.h"
#include "plc/services.h"
#include "plc/validate.h"
#include "proto/ticket.h"

namespace plng::plc {

namespace {

constexpr std::size_t kMaxDescriptionLength = 4096;

// A default applies to every slice on every node: a `ports` default would have
// every two slices on a node reserve the same ports.
void refusePortsDefault(const std::string& tag, const std::string& default_value) {
  if (tag == kPortsTag && !default_value.empty()) {
    invalidArgument("tag ports takes no default: it would reserve " + default_value +
                    " for every slice on every node, and no two slices may reserve one port on "
                    "a node (set it per slice: plcctl slice tag set)");
  }
}

void validateNodeKey(const std::string& public_key) {
  if (public_key.size() != 32) {
    invalidArgument("public_key must be the node's raw 32-byte Ed25519 public key (got " +
                    std::to_string(public_key.size()) + " bytes)");
  }
  // A small-order or malformed key would let anyone log in as the node.
  try {
    plng::ticket::parsePublicKey(public_key);
  } catch (const std::invalid_argument& e) {
    invalidArgument(std::string("public_key refused: ") + e.what() +
                    "; make the node a key pair with plcctl node keygen");
  }
}

// Hostnames are case-insensitive; PLC stores and reports them in lower case.
std::string canonicalHostname(std::string hostname) {
  std::transform(hostname.begin(), hostname.end(), hostname.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return hostname;
}

void validateValueKind(const std::string& kind) {
  static const char* const kKinds[] = {"int",  "bytes", "rate",        "string",
                                       "bool", "ports", "capabilities"};
  for (const char* k : kKinds) {
    if (kind == k) return;
  }
  invalidArgument("value_kind '" + kind +
                  "' is invalid: one of int, bytes, rate, string, bool, ports, capabilities");
}

// Node tags and node groups use tag types of a "node..." category only.
void requireNodeCategory(const TagTypeRef& tag) {
  if (tag.category.rfind("node", 0) != 0) {
    invalidArgument("tag " + tag.name + " has category '" + tag.category +
                    "', not a node tag; node tags have a category starting with 'node'"
                    " (GetTagTypes lists them)");
  }
}

// A node tag may be set by an admin, or by a PI or tech of the node's site whose
// role there is at least the tag type's min_role.
void authorizeNodeTag(Call& call, const NodeRef& node, const TagTypeRef& tag) {
  requireNodeCategory(tag);
  auto held = authorizeAtSite(call, node.site_id, node.login_base, {Role::kPi, Role::kTech});
  auto need = parseRole(tag.min_role).value_or(Role::kAdmin);
  if (!roleAtLeast(held, need)) {
    permissionDenied(std::string(call.method()) + ": tag " + tag.name + " requires role " +
                     tag.min_role + " or above; " + call.caller().describe() + " has role " +
                     toString(held) + " at site " + node.login_base);
  }
}

// Names the node (and tag) a request is about in the audit log, even when it is refused.
void recordNode(Call& call, const std::string& hostname, const std::string& tag = "") {
  call.object("node:" + canonicalHostname(hostname));
  if (!tag.empty()) call.object("tagtype:" + tag);
}

}  // namespace

// ---------------------------------------------------------------------- nodes

grpc::Status AdminService::AddNode(grpc::ServerContext* ctx, const pb::AddNodeRequest* req,
                                   pb::Node* resp) {
  return rpc_.mutate(ctx, "AddNode", *req, [&](Call& call) {
    validateHostname(req->hostname());
    auto hostname = canonicalHostname(req->hostname());
    validateText("login_base", req->login_base(), 20, /*required=*/true);
    validateNodeKey(req->public_key());
    auto boot_state = req->boot_state().empty() ? std::string("boot") : req->boot_state();
    validateBootState(boot_state);
    call.object("node:" + hostname);
    call.object("site:" + req->login_base());
    *resp = call.write([&](pqxx::work& tx) {
      auto site = findSite(tx, req->login_base());
      authorizeAtSite(call, site.site_id, site.login_base, {Role::kPi, Role::kTech});
      if (!tx.exec_params("SELECT 1 FROM nodes WHERE lower(hostname) = $1 AND deleted_at IS NULL",
                          hostname)
               .empty()) {
        alreadyExists("node " + hostname + " already exists");
      }
      auto node_id = tx.exec_params1(
                           "INSERT INTO nodes (hostname, site_id, boot_state, public_key)"
                           " VALUES ($1, $2, $3, decode($4, 'hex')) RETURNING node_id",
                           hostname, site.site_id, boot_state, base::toHex(req->public_key()))[0]
                         .as<std::int64_t>();
      Database::bumpStateVersion(tx);
      return loadNode(tx, node_id);
    });
  });
}

grpc::Status AdminService::GetNodes(grpc::ServerContext* ctx, const pb::GetNodesRequest* req,
                                    pb::GetNodesResponse* resp) {
  return rpc_.query(ctx, "GetNodes", *req, [&](Call& call) {
    NodeQuery query;
    query.hostnames.assign(req->hostnames().begin(), req->hostnames().end());
    query.login_base = req->login_base();
    query.nodegroup = req->nodegroup();
    query.include_deleted = req->include_deleted();
    auto nodes = call.plc.db.read([&](pqxx::transaction_base& tx) {
      // A misspelt filter is an error, not an empty fleet.
      if (!query.login_base.empty() && !query.include_deleted) findSite(tx, query.login_base);
      if (!query.nodegroup.empty()) findNodeGroup(tx, query.nodegroup);
      return loadNodes(tx, query);
    });
    for (auto& n : nodes) *resp->add_nodes() = std::move(n);
  });
}

grpc::Status AdminService::UpdateNode(grpc::ServerContext* ctx, const pb::UpdateNodeRequest* req,
                                      pb::Node* resp) {
  return rpc_.mutate(ctx, "UpdateNode", *req, [&](Call& call) {
    if (req->has_boot_state()) validateBootState(req->boot_state());
    if (req->has_public_key()) validateNodeKey(req->public_key());
    recordNode(call, req->hostname());
    *resp = call.write([&](pqxx::work& tx) {
      auto node = findNode(tx, req->hostname());
      authorizeAtSite(call, node.site_id, node.login_base, {Role::kPi, Role::kTech});
      auto changed = tx.exec_params1(
          "WITH old AS (SELECT public_key FROM nodes WHERE node_id = $1)"
          " UPDATE nodes n SET boot_state = CASE WHEN $2 THEN $3 ELSE n.boot_state END,"
          " public_key = CASE WHEN $4 THEN decode($5, 'hex') ELSE n.public_key END"
          " FROM old WHERE n.node_id = $1"
          " RETURNING n.public_key <> old.public_key, n.boot_state",
          node.node_id, req->has_boot_state(), req->boot_state(), req->has_public_key(),
          base::toHex(req->public_key()));
      // A new key or a disabled node ends the sessions the old state allowed.
      if (changed[0].as<bool>() || changed[1].as<std::string>() == "disabled") {
        revokeNodeSessions(tx, {node.node_id});
      }
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes({node.node_id}));
      return loadNode(tx, node.node_id);
    });
  });
}

grpc::Status AdminService::DeleteNode(grpc::ServerContext* ctx, const pb::DeleteNodeRequest* req,
                                      pb::Empty*) {
  return rpc_.mutate(ctx, "DeleteNode", *req, [&](Call& call) {
    recordNode(call, req->hostname());
    call.write([&](pqxx::work& tx) {
      auto node = findNode(tx, req->hostname());
      authorizeAtSite(call, node.site_id, node.login_base, {Role::kPi, Role::kTech});
      retireNodes(tx, {node.node_id});
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes({node.node_id}));
    });
  });
}

grpc::Status AdminService::SetNodeTag(grpc::ServerContext* ctx, const pb::SetNodeTagRequest* req,
                                      pb::Node* resp) {
  return rpc_.mutate(ctx, "SetNodeTag", *req, [&](Call& call) {
    validateText("tag", req->tag(), 64, /*required=*/true);
    checkTagValueLength(call.plc.config, "the value of tag " + req->tag(), req->value());
    recordNode(call, req->hostname(), req->tag());
    *resp = call.write([&](pqxx::work& tx) {
      auto node = findNode(tx, req->hostname());
      auto tag = findTagType(tx, req->tag());
      authorizeNodeTag(call, node, tag);
      auto value = canonicalTagValue(tag.name, tag.value_kind, req->value());
      // The node may join or leave node groups, and with them slice tags.
      PortReservationGuard reservations(tx, {node.node_id});
      tx.exec_params0(
          "INSERT INTO node_tags (node_id, tag_type_id, value) VALUES ($1, $2, $3)"
          " ON CONFLICT (node_id, tag_type_id) DO UPDATE SET value = EXCLUDED.value",
          node.node_id, tag.tag_type_id, value);
      reservations.check();
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes({node.node_id}));
      return loadNode(tx, node.node_id);
    });
  });
}

grpc::Status AdminService::DeleteNodeTag(grpc::ServerContext* ctx,
                                         const pb::DeleteNodeTagRequest* req, pb::Node* resp) {
  return rpc_.mutate(ctx, "DeleteNodeTag", *req, [&](Call& call) {
    validateText("tag", req->tag(), 64, /*required=*/true);
    recordNode(call, req->hostname(), req->tag());
    *resp = call.write([&](pqxx::work& tx) {
      auto node = findNode(tx, req->hostname());
      auto tag = findTagType(tx, req->tag());
      authorizeNodeTag(call, node, tag);
      PortReservationGuard reservations(tx, {node.node_id});
      if (tx.exec_params("DELETE FROM node_tags WHERE node_id = $1 AND tag_type_id = $2"
                         " RETURNING node_id",
                         node.node_id, tag.tag_type_id)
              .empty()) {
        notFound("node " + node.hostname + " has no tag " + tag.name);
      }
      reservations.check();
      Database::bumpStateVersion(tx, ChangeScope::onlyNodes({node.node_id}));
      return loadNode(tx, node.node_id);
    });
  });
}

// ---------------------------------------------------------------- node groups

grpc::Status AdminService::AddNodeGroup(grpc::ServerContext* ctx,
                                        const pb::AddNodeGroupRequest* req, pb::NodeGroup* resp) {
  return rpc_.mutate(ctx, "AddNodeGroup", *req, [&](Call& call) {
    authorizeAdmin(call);
    validateObjectName("node group name", req->name());
    validateText("tag", req->tag(), 64, /*required=*/true);
    checkTagValueLength(call.plc.config, "the node group's value", req->value());
    call.object("nodegroup:" + req->name());
    *resp = call.write([&](pqxx::work& tx) {
      auto tag = findTagType(tx, req->tag());
      requireNodeCategory(tag);
      // Canonical, so that it compares equal to node tag values stored the same way.
      auto value = canonicalTagValue(tag.name, tag.value_kind, req->value());
      if (!tx.exec_params("SELECT 1 FROM nodegroups WHERE name = $1", req->name()).empty()) {
        alreadyExists("node group " + req->name() + " already exists");
      }
      tx.exec_params0("INSERT INTO nodegroups (name, tag_type_id, value) VALUES ($1, $2, $3)",
                      req->name(), tag.tag_type_id, value);
      Database::bumpStateVersion(tx);
      return loadNodeGroups(tx, {req->name()}).front();
    });
  });
}

grpc::Status AdminService::GetNodeGroups(grpc::ServerContext* ctx,
                                         const pb::GetNodeGroupsRequest* req,
                                         pb::GetNodeGroupsResponse* resp) {
  return rpc_.query(ctx, "GetNodeGroups", *req, [&](Call& call) {
    std::vector<std::string> names(req->names().begin(), req->names().end());
    for (auto& g :
         call.plc.db.read([&](pqxx::transaction_base& tx) { return loadNodeGroups(tx, names); })) {
      *resp->add_nodegroups() = std::move(g);
    }
  });
}

grpc::Status AdminService::DeleteNodeGroup(grpc::ServerContext* ctx,
                                           const pb::DeleteNodeGroupRequest* req, pb::Empty*) {
  return rpc_.mutate(ctx, "DeleteNodeGroup", *req, [&](Call& call) {
    authorizeAdmin(call);
    call.object("nodegroup:" + req->name());
    call.write([&](pqxx::work& tx) {
      auto group = findNodeGroup(tx, req->name());
      std::vector<std::int64_t> members;
      for (const auto& r :
           tx.exec_params("SELECT nt.node_id FROM nodegroups g JOIN node_tags nt"
                          " ON nt.tag_type_id = g.tag_type_id AND nt.value = g.value"
                          " WHERE g.nodegroup_id = $1",
                          group.nodegroup_id)) {
        members.push_back(r[0].as<std::int64_t>());
      }
      // Slice tags scoped to the group go with it (ON DELETE CASCADE), which
      // uncovers the slices' slice-wide values on its nodes.
      PortReservationGuard reservations(tx, members);
      tx.exec_params0("DELETE FROM nodegroups WHERE nodegroup_id = $1", group.nodegroup_id);
      reservations.check();
      Database::bumpStateVersion(tx);
    });
  });
}

// ------------------------------------------------------------------ tag types

grpc::Status AdminService::AddTagType(grpc::ServerContext* ctx, const pb::AddTagTypeRequest* req,
                                      pb::TagType* resp) {
  return rpc_.mutate(ctx, "AddTagType", *req, [&](Call& call) {
    authorizeAdmin(call);
    validateObjectName("tag type name", req->name());
    validateText("description", req->description(), kMaxDescriptionLength, /*required=*/false);
    validateText("category", req->category(), 64, /*required=*/true);
    requireRole("min_role", req->min_role());
    validateValueKind(req->value_kind());
    checkTagValueLength(call.plc.config, "default_value", req->default_value());
    auto default_value =
        req->default_value().empty()
            ? std::string()
            : canonicalTagValue(req->name(), req->value_kind(), req->default_value());
    refusePortsDefault(req->name(), default_value);
    call.object("tagtype:" + req->name());
    *resp = call.write([&](pqxx::work& tx) {
      if (!tx.exec_params("SELECT 1 FROM tag_types WHERE name = $1", req->name()).empty()) {
        alreadyExists("tag type " + req->name() + " already exists");
      }
      auto id = tx.exec_params1(
                      "INSERT INTO tag_types (name, description, category, min_role, value_kind,"
                      " default_value) VALUES ($1, $2, $3, $4, $5, $6) RETURNING tag_type_id",
                      req->name(), req->description(), req->category(), req->min_role(),
                      req->value_kind(), default_value)[0]
                    .as<std::int64_t>();
      Database::bumpStateVersion(tx);
      return loadTagType(tx, id);
    });
  });
}

grpc::Status AdminService::GetTagTypes(grpc::ServerContext* ctx, const pb::GetTagTypesRequest* req,
                                       pb::GetTagTypesResponse* resp) {
  return rpc_.query(ctx, "GetTagTypes", *req, [&](Call& call) {
    std::vector<std::string> names(req->names().begin(), req->names().end());
    for (auto& t :
         call.plc.db.read([&](pqxx::transaction_base& tx) { return loadTagTypes(tx, names); })) {
      *resp->add_tag_types() = std::move(t);
    }
  });
}

grpc::Status AdminService::UpdateTagType(grpc::ServerContext* ctx,
                                         const pb::UpdateTagTypeRequest* req, pb::TagType* resp) {
  return rpc_.mutate(ctx, "UpdateTagType", *req, [&](Call& call) {
    authorizeAdmin(call);
    if (req->has_description()) {
      validateText("description", req->description(), kMaxDescriptionLength, /*required=*/false);
    }
    if (req->has_min_role()) requireRole("min_role", req->min_role());
    checkTagValueLength(call.plc.config, "default_value", req->default_value());
    call.object("tagtype:" + req->name());
    *resp = call.write([&](pqxx::work& tx) {
      auto tag = findTagType(tx, req->name());
      std::string default_value;
      if (req->has_default_value() && !req->default_value().empty()) {
        default_value = canonicalTagValue(tag.name, tag.value_kind, req->default_value());
      }
      refusePortsDefault(tag.name, default_value);
      tx.exec_params0(
          "UPDATE tag_types SET description = CASE WHEN $2 THEN $3 ELSE description END,"
          " min_role = CASE WHEN $4 THEN $5 ELSE min_role END,"
          " default_value = CASE WHEN $6 THEN $7 ELSE default_value END"
          " WHERE tag_type_id = $1",
          tag.tag_type_id, req->has_description(), req->description(), req->has_min_role(),
          req->min_role(), req->has_default_value(), default_value);
      Database::bumpStateVersion(tx);
      return loadTagType(tx, tag.tag_type_id);
    });
  });
}

grpc::Status AdminService::DeleteTagType(grpc::ServerContext* ctx,
                                         const pb::DeleteTagTypeRequest* req, pb::Empty*) {
  return rpc_.mutate(ctx, "DeleteTagType", *req, [&](Call& call) {
    authorizeAdmin(call);
    call.object("tagtype:" + req->name());
    call.write([&](pqxx::work& tx) {
      auto tag = findTagType(tx, req->name());
      auto uses = tx.exec_params1(
          "SELECT (SELECT count(*) FROM slice_tags st JOIN slices sl USING (slice_id)"
          "        WHERE st.tag_type_id = $1 AND sl.deleted_at IS NULL),"
          " (SELECT count(*) FROM node_tags nt JOIN nodes n USING (node_id)"
          "  WHERE nt.tag_type_id = $1 AND n.deleted_at IS NULL),"
          " (SELECT count(*) FROM nodegroups WHERE tag_type_id = $1)",
          tag.tag_type_id);
      auto slice_tags = uses[0].as<std::int64_t>();
      auto node_tags = uses[1].as<std::int64_t>();
      auto groups = uses[2].as<std::int64_t>();
      if (slice_tags + node_tags + groups > 0) {
        failedPrecondition("tag type " + tag.name + " is still used by " +
                           std::to_string(slice_tags) + " slice tag(s), " +
                           std::to_string(node_tags) + " node tag(s) and " +
                           std::to_string(groups) + " node group(s); delete those first");
      }
      // Only deleted slices and nodes still refer to it: that history goes with it.
      tx.exec_params0("DELETE FROM slice_tags WHERE tag_type_id = $1", tag.tag_type_id);
      tx.exec_params0("DELETE FROM node_tags WHERE tag_type_id = $1", tag.tag_type_id);
      tx.exec_params0("DELETE FROM tag_types WHERE tag_type_id = $1", tag.tag_type_id);
      Database::bumpStateVersion(tx);
    });
  });
}

}  // namespace plng::plc
