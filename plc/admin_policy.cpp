// Admin: the destination blacklist, PLC's ticket-signing keys and the audit log.
#include "plc/admin_access.h"
#include "plc/admin_views.h"
#include "plc/errors.h"
#include "plc/plc_keys.h"
#include "plc/services.h"
#include "plc/validate.h"

namespace plng::plc {

namespace {

constexpr int kDefaultEventLimit = 100;
constexpr int kMaxEventLimit = 10000;

}  // namespace

// ------------------------------------------------------ destination blacklist

grpc::Status AdminService::AddBlacklistEntry(grpc::ServerContext* ctx,
                                             const pb::AddBlacklistEntryRequest* req,
                                             pb::BlacklistEntry* resp) {
  return rpc_.mutate(ctx, "AddBlacklistEntry", *req, [&](Call& call) {
    authorizeAdmin(call);
    auto prefix = canonicalPrefix(req->prefix());
    validateText("reason", req->reason(), 1000, /*required=*/false);
    call.object("blacklist:" + prefix);
    *resp = call.write([&](pqxx::work& tx) {
      if (!tx.exec_params("SELECT 1 FROM destination_blacklist WHERE prefix = $1::cidr", prefix)
               .empty()) {
        alreadyExists(prefix + " is already blacklisted");
      }
      auto id = tx.exec_params1(
                      "INSERT INTO destination_blacklist (prefix, reason) VALUES ($1::cidr, $2)"
                      " RETURNING entry_id",
                      prefix, req->reason())[0]
                    .as<std::int64_t>();
      Database::bumpStateVersion(tx, ChangeScope::blacklist());
      return loadBlacklist(tx, id).front();
    });
  });
}

grpc::Status AdminService::GetBlacklist(grpc::ServerContext* ctx, const pb::Empty* req,
                                        pb::GetBlacklistResponse* resp) {
  return rpc_.query(ctx, "GetBlacklist", *req, [&](Call& call) {
    const auto& caller = call.caller();
    if (!caller.admin && !caller.isNode()) {
      permissionDenied("GetBlacklist requires role admin or a node's token; " + caller.describe() +
                       " is neither");
    }
    for (auto& e : call.plc.db.read([](pqxx::transaction_base& tx) { return loadBlacklist(tx); })) {
      *resp->add_entries() = std::move(e);
    }
  });
}

grpc::Status AdminService::DeleteBlacklistEntry(grpc::ServerContext* ctx,
                                                const pb::DeleteBlacklistEntryRequest* req,
                                                pb::Empty*) {
  return rpc_.mutate(ctx, "DeleteBlacklistEntry", *req, [&](Call& call) {
    authorizeAdmin(call);
    call.write([&](pqxx::work& tx) {
      auto rows = tx.exec_params(
          "DELETE FROM destination_blacklist WHERE entry_id = $1 RETURNING prefix::text",
          req->entry_id());
      if (rows.empty()) {
        notFound("no blacklist entry with id " + std::to_string(req->entry_id()) +
                 " (GetBlacklist lists them)");
      }
      call.object("blacklist:" + rows[0][0].as<std::string>());
      Database::bumpStateVersion(tx, ChangeScope::blacklist());
    });
  });
}

// ------------------------------------------------------------------- PLC keys

grpc::Status AdminService::GetPlcKeys(grpc::ServerContext* ctx, const pb::Empty* req,
                                      pb::GetPlcKeysResponse* resp) {
  return rpc_.query(ctx, "GetPlcKeys", *req, [&](Call& call) {
    auto& keys = call.plc.keys;
    call.plc.db.read([&](pqxx::transaction_base& tx) {
      for (auto& k : keys.published(tx)) *resp->add_keys() = std::move(k);
      resp->set_signing_key_id(keys.signingKeyId(tx));
    });
  });
}

grpc::Status AdminService::RotatePlcKey(grpc::ServerContext* ctx, const pb::Empty* req,
                                        pb::PlcPublicKey* resp) {
  return rpc_.mutate(ctx, "RotatePlcKey", *req, [&](Call& call) {
    authorizeAdmin(call);
    // The old key keeps verifying for a ticket lifetime: tickets it signed stay good.
    *resp = call.write([&](pqxx::work& tx) {
      auto key = call.plc.keys.rotate(tx, call.plc.config.ticket_lifetime);
      call.object("plckey:" + key.key_id());
      return key;
    });
  });
}

grpc::Status AdminService::RetirePlcKey(grpc::ServerContext* ctx,
                                        const pb::RetirePlcKeyRequest* req, pb::Empty*) {
  return rpc_.mutate(ctx, "RetirePlcKey", *req, [&](Call& call) {
    authorizeAdmin(call);
    validateText("key_id", req->key_id(), 128, /*required=*/true);
    call.object("plckey:" + req->key_id());
    call.write([&](pqxx::work& tx) { call.plc.keys.retire(tx, req->key_id()); });
  });
}

// --------------------------------------------------------------------- events

grpc::Status AdminService::GetEvents(grpc::ServerContext* ctx, const pb::GetEventsRequest* req,
                                     pb::GetEventsResponse* resp) {
  return rpc_.query(ctx, "GetEvents", *req, [&](Call& call) {
    call.requirePerson();
    if (req->limit() < 0 || req->limit() > kMaxEventLimit) {
      invalidArgument("limit must be 0 to " + std::to_string(kMaxEventLimit) + " (0 means " +
                      std::to_string(kDefaultEventLimit) + "), not " +
                      std::to_string(req->limit()));
    }
    if (req->since() < 0) invalidArgument("since must be unix seconds (0 = from the start)");
    int limit = req->limit() == 0 ? kDefaultEventLimit : req->limit();
    const auto& caller = call.caller();
    // Non-admins see only what they did themselves.
    auto who = req->caller();
    if (!caller.admin) {
      if (!who.empty() && who != caller.describe()) {
        permissionDenied("only admins may read other callers' events; " + caller.describe() +
                         " may read its own");
      }
      who = caller.describe();
    }
    auto rows = call.plc.db.read([&](pqxx::transaction_base& tx) {
      return tx.exec_params(
          "SELECT event_id, extract(epoch FROM at)::bigint, caller, role_used, method, arguments,"
          " objects, result, message, duration_us FROM events"
          " WHERE ($1::text = '' OR caller = $1::text)"
          " AND ($2::text = '' OR method = $2::text)"
          " AND ($3::text = '' OR objects @> ARRAY[$3::text])"
          " AND ($4::bigint = 0 OR at >= to_timestamp($4::bigint))"
          " ORDER BY event_id DESC LIMIT $5",
          who, req->method(), req->object(), req->since(), limit);
    });
    for (const auto& r : rows) {
      auto* e = resp->add_events();
      e->set_event_id(r[0].as<std::int64_t>());
      e->set_at(r[1].as<std::int64_t>());
      e->set_caller(r[2].as<std::string>());
      e->set_role_used(r[3].as<std::string>());
      e->set_method(r[4].as<std::string>());
      e->set_arguments(r[5].as<std::string>());
      for (auto& o : parsePgTextArray(r[6])) e->add_objects(std::move(o));
      e->set_result(r[7].as<std::string>());
      e->set_message(r[8].as<std::string>());
      e->set_duration_us(r[9].as<std::int64_t>());
    }
  });
}

}  // namespace plng::plc
