// Auth: password logins, API tokens, and node challenge–response logins.
#include <ctime>

#include "errors.h"
#include "lookup.h"
#include "services.h"
#include "ticket.h"
#include "validate.h"

namespace plng::plc {

namespace {

// Issues a session row for a person or node and returns the token (shown once).
std::string issueToken(pqxx::work& tx, const char* kind, std::int64_t person_id,
                       std::int64_t node_id, std::int64_t expires_at,
                       const std::string& description, std::int64_t* session_id = nullptr) {
  auto token = newToken();
  auto row = tx.exec_params1(
      "INSERT INTO sessions (token_hash, kind, person_id, node_id, description, expires_at)"
      " VALUES (decode($1, 'hex'), $2, NULLIF($3, 0), NULLIF($4, 0), $5, to_timestamp($6))"
      " RETURNING session_id",
      tokenHashHex(token), kind, person_id, node_id, description, expires_at);
  if (session_id) *session_id = row[0].as<std::int64_t>();
  return token;
}

}  // namespace

grpc::Status AuthService::Login(grpc::ServerContext* ctx, const pb::LoginRequest* req,
                                pb::LoginResponse* resp) {
  return rpc_.mutate(
      ctx, "Login", *req,
      [&](Call& call) {
        if (req->email().empty() || req->password().empty()) {
          invalidArgument("email and password are required");
        }
        call.object("person:" + req->email());
        auto& plc = call.plc;
        // Hash outside the transaction: scrypt is deliberately slow.
        auto found = plc.db.read([&](pqxx::transaction_base& tx) {
          return tx.exec_params(
              "SELECT person_id, password_hash, enabled FROM persons"
              " WHERE lower(email) = lower($1) AND deleted_at IS NULL",
              req->email());
        });
        // The same message for an unknown email and a wrong password: a login
        // must not reveal which accounts exist.
        const std::string bad = "wrong email or password";
        if (found.empty()) {
          verifyPassword(req->password(), hashPassword("x", plc.config.scrypt_log2_n));
          unauthenticated(bad);
        }
        if (!verifyPassword(req->password(), found[0][1].as<std::string>())) unauthenticated(bad);
        if (!found[0][2].as<bool>()) {
          permissionDenied("account " + req->email() +
                           " is disabled; a PI of its site or an admin must enable it");
        }
        auto person_id = found[0][0].as<std::int64_t>();
        auto expires = static_cast<std::int64_t>(std::time(nullptr)) + plc.config.session_ttl;
        resp->set_token(call.write([&](pqxx::work& tx) {
          return issueToken(tx, "session", person_id, 0, expires, "login");
        }));
        resp->set_expires_at(expires);
      },
      Access::kAnonymous);
}

grpc::Status AuthService::Logout(grpc::ServerContext* ctx, const pb::Empty* req, pb::Empty*) {
  return rpc_.mutate(ctx, "Logout", *req, [&](Call& call) {
    call.write([&](pqxx::work& tx) {
      tx.exec_params0("UPDATE sessions SET revoked_at = now() WHERE session_id = $1",
                      call.caller().session_id);
      Database::bumpStateVersion(tx);
    });
  });
}

grpc::Status AuthService::WhoAmI(grpc::ServerContext* ctx, const pb::Empty* req,
                                 pb::WhoAmIResponse* resp) {
  return rpc_.query(ctx, "WhoAmI", *req, [&](Call& call) {
    const auto& c = call.caller();
    resp->set_token_expires_at(c.session_expires_at);
    if (c.isNode()) {
      resp->set_kind("node");
      resp->set_hostname(c.hostname);
      return;
    }
    resp->set_kind("person");
    resp->set_email(c.email);
    call.plc.db.read([&](pqxx::transaction_base& tx) {
      if (c.admin) {
        auto* g = resp->add_roles();
        g->set_role("admin");
      }
      for (const auto& r : tx.exec_params(
               "SELECT r.role, s.login_base FROM person_roles r JOIN sites s USING (site_id)"
               " WHERE r.person_id = $1 AND s.deleted_at IS NULL ORDER BY s.login_base, r.role",
               c.person_id)) {
        auto* g = resp->add_roles();
        g->set_role(r[0].as<std::string>());
        g->set_login_base(r[1].as<std::string>());
      }
      for (const auto& r :
           tx.exec_params("SELECT s.login_base FROM person_sites ps JOIN sites s USING (site_id)"
                          " WHERE ps.person_id = $1 AND s.deleted_at IS NULL ORDER BY s.login_base",
                          c.person_id)) {
        resp->add_sites(r[0].as<std::string>());
      }
      return 0;
    });
  });
}

grpc::Status AuthService::CreateApiToken(grpc::ServerContext* ctx,
                                         const pb::CreateApiTokenRequest* req,
                                         pb::CreateApiTokenResponse* resp) {
  return rpc_.mutate(ctx, "CreateApiToken", *req, [&](Call& call) {
    call.requirePerson();
    validateText("description", req->description(), 200, false);
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    auto expires = req->expires_at() ? req->expires_at() : now + call.plc.config.api_token_ttl;
    if (expires <= now) invalidArgument("expires_at is in the past");
    call.object("person:" + call.caller().email);
    std::int64_t id = 0;
    resp->set_token(call.write([&](pqxx::work& tx) {
      return issueToken(tx, "api", call.caller().person_id, 0, expires, req->description(), &id);
    }));
    auto* info = resp->mutable_info();
    info->set_id(id);
    info->set_description(req->description());
    info->set_created_at(now);
    info->set_expires_at(expires);
  });
}

grpc::Status AuthService::ListApiTokens(grpc::ServerContext* ctx, const pb::Empty* req,
                                        pb::ListApiTokensResponse* resp) {
  return rpc_.query(ctx, "ListApiTokens", *req, [&](Call& call) {
    call.requirePerson();
    call.plc.db.read([&](pqxx::transaction_base& tx) {
      for (const auto& r :
           tx.exec_params("SELECT session_id, description, extract(epoch FROM created_at)::bigint,"
                          " extract(epoch FROM expires_at)::bigint FROM sessions"
                          " WHERE person_id = $1 AND kind = 'api' AND revoked_at IS NULL"
                          " AND expires_at > now() ORDER BY session_id",
                          call.caller().person_id)) {
        auto* t = resp->add_tokens();
        t->set_id(r[0].as<std::int64_t>());
        t->set_description(r[1].as<std::string>());
        t->set_created_at(r[2].as<std::int64_t>());
        t->set_expires_at(r[3].as<std::int64_t>());
      }
      return 0;
    });
  });
}

grpc::Status AuthService::RevokeApiToken(grpc::ServerContext* ctx,
                                         const pb::RevokeApiTokenRequest* req, pb::Empty*) {
  return rpc_.mutate(ctx, "RevokeApiToken", *req, [&](Call& call) {
    call.requirePerson();
    call.write([&](pqxx::work& tx) {
      // Admins may revoke anyone's token; others only their own.
      auto rows = tx.exec_params(
          "UPDATE sessions SET revoked_at = now() WHERE session_id = $1 AND kind = 'api'"
          " AND revoked_at IS NULL AND (person_id = $2 OR $3) RETURNING session_id",
          req->id(), call.caller().person_id, call.caller().admin);
      if (rows.empty()) notFound("no active API token " + std::to_string(req->id()) + " of yours");
      Database::bumpStateVersion(tx);
    });
  });
}

grpc::Status AuthService::GetNodeChallenge(grpc::ServerContext* ctx,
                                           const pb::NodeChallengeRequest* req,
                                           pb::NodeChallengeResponse* resp) {
  return rpc_.query(
      ctx, "GetNodeChallenge", *req,
      [&](Call& call) {
        if (req->hostname().empty()) invalidArgument("hostname is required");
        auto nonce = plng::ticket::generateKeyPair().private_key;  // 32 random bytes
        std::string nonce_bytes(reinterpret_cast<const char*>(nonce.data()), nonce.size());
        auto expires =
            static_cast<std::int64_t>(std::time(nullptr)) + call.plc.config.node_challenge_ttl;
        call.plc.db.write([&](pqxx::work& tx) {
          auto node = findNode(tx, req->hostname());
          tx.exec0("DELETE FROM node_challenges WHERE expires_at < now()");
          tx.exec_params0(
              "INSERT INTO node_challenges (nonce, node_id, expires_at)"
              " VALUES (decode($1, 'hex'), $2, to_timestamp($3))",
              toHex(nonce_bytes), node.node_id, expires);
        });
        resp->set_nonce(nonce_bytes);
        resp->set_expires_at(expires);
      },
      Access::kAnonymous);
}

grpc::Status AuthService::NodeLogin(grpc::ServerContext* ctx, const pb::NodeLoginRequest* req,
                                    pb::LoginResponse* resp) {
  return rpc_.mutate(
      ctx, "NodeLogin", *req,
      [&](Call& call) {
        if (req->hostname().empty() || req->nonce().size() != 32 || req->signature().size() != 64) {
          invalidArgument(
              "NodeLogin needs hostname, the 32-byte nonce from GetNodeChallenge and a 64-byte"
              " Ed25519 signature");
        }
        call.object("node:" + req->hostname());
        call.usedRole("node");
        auto& plc = call.plc;
        auto expires = static_cast<std::int64_t>(std::time(nullptr)) + plc.config.node_session_ttl;
        resp->set_token(call.write([&](pqxx::work& tx) {
          auto rows = tx.exec_params(
              "SELECT n.node_id, encode(n.public_key, 'hex'), n.boot_state FROM node_challenges c"
              " JOIN nodes n USING (node_id)"
              " WHERE c.nonce = decode($1, 'hex') AND c.expires_at > now()"
              " AND lower(n.hostname) = lower($2) AND n.deleted_at IS NULL",
              toHex(req->nonce()), req->hostname());
          if (rows.empty()) {
            unauthenticated("unknown or expired challenge for node " + req->hostname() +
                            "; ask for a new one (GetNodeChallenge)");
          }
          // A successful login consumes the challenge (a failed one rolls back).
          tx.exec_params0("DELETE FROM node_challenges WHERE nonce = decode($1, 'hex')",
                          toHex(req->nonce()));
          auto key = plng::ticket::publicKeyFromBytes(fromHex(rows[0][1].as<std::string>()));
          if (!plng::ticket::verifySignature(key, nodeLoginMessage(req->hostname(), req->nonce()),
                                             req->signature())) {
            unauthenticated("signature does not match the key registered for node " +
                            req->hostname());
          }
          if (rows[0][2].as<std::string>() == "disabled") {
            permissionDenied("node " + req->hostname() + " is disabled (boot_state disabled)");
          }
          auto node_id = rows[0][0].as<std::int64_t>();
          tx.exec_params0("UPDATE nodes SET last_contact = now() WHERE node_id = $1", node_id);
          return issueToken(tx, "node", 0, node_id, expires, "node login");
        }));
        resp->set_expires_at(expires);
      },
      Access::kAnonymous);
}

}  // namespace plng::plc
