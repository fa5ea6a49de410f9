// Auth: password logins, API tokens, and node challenge–response logins.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include "base/strings.h"
#include "plc/errors.h"
#include "plc/lookup.h"
#include "plc/services.h"
#include "plc/validate.h"
#include "proto/node_protocol.h"
#include "proto/ticket.h"

namespace plng::plc {

namespace {

// Issues a session row for a person or node and returns the token (shown once).
// What one holder keeps is bounded: its expired and revoked rows go now; beyond
// max_login_sessions the oldest live session of the same kind ends (a new login
// wins); beyond max_api_tokens_per_person a new API token is refused.
std::string issueToken(pqxx::work& tx, const PlcConfig& config, const char* kind,
                       std::int64_t person_id, std::int64_t node_id, std::int64_t expires_at,
                       const std::string& description, std::int64_t* session_id = nullptr) {
  constexpr const char* kHolder =
      "(person_id = NULLIF($1, 0)::bigint OR node_id = NULLIF($2, 0)::bigint)";
  tx.exec_params0(std::string("DELETE FROM sessions WHERE ") + kHolder +
                      " AND (revoked_at IS NOT NULL OR expires_at < now())",
                  person_id, node_id);
  if (std::string_view(kind) == "api") {
    auto live = tx.exec_params1(std::string("SELECT count(*) FROM sessions WHERE ") + kHolder +
                                    " AND kind = 'api'",
                                person_id, node_id)[0]
                    .as<std::int64_t>();
    if (live >= config.max_api_tokens_per_person) {
      resourceExhausted("you have " + std::to_string(live) +
                        " live API tokens; max_api_tokens_per_person is " +
                        std::to_string(config.max_api_tokens_per_person) +
                        " (revoke unused ones: plcctl token list, plcctl token revoke)");
    }
  } else {
    tx.exec_params0(
        std::string("UPDATE sessions SET revoked_at = now() WHERE session_id IN"
                    " (SELECT session_id FROM sessions WHERE ") +
            kHolder +
            " AND kind = $3 AND revoked_at IS NULL ORDER BY created_at DESC, session_id DESC"
            " OFFSET $4)",
        person_id, node_id, kind, config.max_login_sessions - 1);
  }
  auto token = newToken();
  auto row = tx.exec_params1(
      "INSERT INTO sessions (token_hash, kind, person_id, node_id, description, expires_at)"
      " VALUES (decode($1, 'hex'), $2, NULLIF($3, 0), NULLIF($4, 0), $5, to_timestamp($6))"
      " RETURNING session_id",
      tokenHashHex(token), kind, person_id, node_id, description, expires_at);
  if (session_id) *session_id = row[0].as<std::int64_t>();
  return token;
}

std::int64_t unixNow() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string retryAt(std::int64_t at) {
  return "try again after " + utcTime(at) + " (in " +
         std::to_string(std::max<std::int64_t>(at - unixNow(), 1)) + " s)";
}

std::string sourceRefusal(const std::string& source, const SourceLimiter::Verdict& verdict) {
  return "too many failed logins from " + source + "; " +
         retryAt(unixNow() + verdict.retry_after_s);
}

// What counting a login attempt found.
struct LoginCharge {
  std::int64_t locked_until = 0;  // unix seconds; nonzero: the email must wait, nothing was counted
  std::int64_t wait = 0;          // seconds the next attempt must wait if this one fails
};

// Counts a login attempt at `email` as failed before its password is tried (a
// success clears the count), so that concurrent attempts cannot all pass a check
// made before any of them failed: the upsert takes the row's lock and each
// attempt sees the ones before it. Failures are counted under the lower-case
// email whether or not an account has it, so that the answers never tell the two
// apart. Commits on its own: the failed call that follows must not roll it back.
LoginCharge chargeLoginAttempt(Database& db, const PlcConfig& config, const std::string& email) {
  return db.write([&](pqxx::work& tx) {
    // Forget old failures; keep the table within login_failure_rows_max by
    // dropping the oldest rows that name no account.
    tx.exec_params0(
        "DELETE FROM login_failures WHERE last_failure < now() - make_interval(secs => $1)"
        " AND locked_until < now()",
        config.login_failure_window_s);
    auto full =
        tx.exec_params1("SELECT count(*) >= $1 FROM (SELECT 1 FROM login_failures LIMIT $1) s",
                        config.login_failure_rows_max)[0]
            .as<bool>();
    if (full) {
      tx.exec_params0(
          "DELETE FROM login_failures WHERE login IN (SELECT f.login FROM login_failures f"
          " WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE lower(p.email) = f.login"
          " AND p.deleted_at IS NULL) ORDER BY f.last_failure LIMIT greatest($1 / 100, 1))",
          config.login_failure_rows_max);
    }
    auto counted = tx.exec_params(
        "INSERT INTO login_failures AS f (login, failures, last_failure, locked_until)"
        " VALUES (lower($1), 1, now(), now()) ON CONFLICT (login) DO UPDATE SET"
        " failures = CASE WHEN f.last_failure < now() - make_interval(secs => $2) THEN 1"
        " ELSE f.failures + 1 END, last_failure = now()"
        " WHERE f.locked_until <= now() RETURNING failures",
        email, config.login_failure_window_s);
    LoginCharge charge;
    if (counted.empty()) {
      charge.locked_until = tx.exec_params1(
                                  "SELECT ceil(extract(epoch FROM locked_until))::bigint"
                                  " FROM login_failures WHERE login = lower($1)",
                                  email)[0]
                                .as<std::int64_t>();
      return charge;
    }
    // Each failure past the free ones doubles the wait, up to the cap (the
    // exponent is capped too, so the arithmetic cannot overflow).
    auto failures = counted[0][0].as<std::int64_t>();
    if (failures >= config.login_free_failures) {
      auto doublings = std::min<std::int64_t>(failures - config.login_free_failures, 30);
      charge.wait = std::min<std::int64_t>(std::int64_t{config.login_lockout_base_s} << doublings,
                                           config.login_lockout_max_s);
    }
    tx.exec_params0(
        "UPDATE login_failures SET locked_until = now() + make_interval(secs => $2)"
        " WHERE login = lower($1)",
        email, static_cast<double>(charge.wait));
    return charge;
  });
}

}  // namespace

// Login costs the same whether the email names an account or not: the same
// statements (the attempt counted, the account looked up), exactly one key
// derivation at the configured cost (against a dummy hash for an unknown
// email) and the same answer. Failures are limited per account (in the
// database, shared by replicas) and per client address (in this plcd), both
// charged before the password is tried; see docs/plc.md.
grpc::Status AuthService::Login(grpc::ServerContext* ctx, const pb::LoginRequest* req,
                                pb::LoginResponse* resp) {
  const auto source = clientSource(clientPeer(*ctx));
  const auto verdict = sources_.take(source);
  if (!verdict.allowed && !verdict.first_refusal) {
    // Only the first refusal of a blocked period is recorded, so that a flood
    // cannot grow the audit log; plcd's log counts the rest.
    spdlog::info("Login from {} refused: source over its failure budget", source);
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, sourceRefusal(source, verdict));
  }
  bool failed = false;
  auto status = rpc_.mutate(
      ctx, "Login", *req,
      [&](Call& call) {
        if (req->email().empty() || req->password().empty()) {
          invalidArgument("email and password are required");
        }
        // Recorded (bounded) before it is validated: an attempt with a malformed
        // email is an attempt too.
        call.object("person:" + req->email());
        validateEmail(req->email());
        call.usedRole("password");
        if (!verdict.allowed) {
          resourceExhausted(sourceRefusal(source, verdict) +
                            "; further attempts until then are not recorded");
        }
        auto& plc = call.plc;
        failed = true;  // until the password matches
        auto charge = chargeLoginAttempt(plc.db, plc.config, req->email());
        if (charge.locked_until != 0) {
          resourceExhausted("too many failed logins for " + req->email() + "; " +
                            retryAt(charge.locked_until));
        }
        auto row = plc.db.read([&](pqxx::transaction_base& tx) {
          return tx.exec_params(
              "SELECT person_id, password_hash, enabled FROM persons"
              " WHERE lower(email) = lower($1) AND deleted_at IS NULL",
              req->email());
        });
        const bool known = !row.empty();
        // Exactly one key derivation on either path: an unknown email is checked
        // against a dummy hash made at the configured cost.
        const bool matches = plc.auth.passwords().verify(
            req->password(), known ? row[0][1].as<std::string>() : plc.auth.dummyPasswordHash());
        if (!known || !matches) {
          // The same message for an unknown email and a wrong password: a login
          // must not reveal which accounts exist.
          std::string message = "wrong email or password";
          if (charge.wait > 0) {
            message +=
                "; too many failed logins for this email: " + retryAt(unixNow() + charge.wait);
          }
          unauthenticated(message);
        }
        failed = false;
        if (!row[0][2].as<bool>()) {
          permissionDenied("account " + req->email() +
                           " is disabled; a PI of its site or an admin must enable it");
        }
        auto person_id = row[0][0].as<std::int64_t>();
        // A hash made at another cost is replaced, so that every account costs
        // what an unknown email costs.
        std::string rehash;
        if (plc.auth.passwords().outdated(row[0][1].as<std::string>())) {
          rehash = plc.auth.passwords().hash(req->password());
        }
        auto expires = unixNow() + plc.config.session_ttl;
        resp->set_token(call.write([&](pqxx::work& tx) {
          clearLoginFailures(tx, req->email());
          if (!rehash.empty()) {
            tx.exec_params0("UPDATE persons SET password_hash = $2 WHERE person_id = $1", person_id,
                            rehash);
          }
          return issueToken(tx, plc.config, "session", person_id, 0, expires, "login");
        }));
        resp->set_expires_at(expires);
      },
      Access::kAnonymous);
  if (verdict.allowed && !failed) sources_.refund(source);
  return status;
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
    // Only a password session mints API tokens: a node's token never does, and
    // an API token (which a script or broker holds) cannot extend itself with
    // fresh ones that outlive it.
    if (call.caller().token_kind != "session") {
      permissionDenied("CreateApiToken needs a session from Login (plcctl login); " +
                       call.caller().token_kind + " tokens cannot make API tokens");
    }
    validateText("description", req->description(), 200, false);
    auto now = static_cast<std::int64_t>(std::time(nullptr));
    const auto& ttl = call.plc.config.api_token_ttl;
    auto expires = req->expires_at() ? req->expires_at() : now + ttl;
    if (expires <= now) invalidArgument("expires_at is in the past");
    call.object("person:" + call.caller().email);
    if (expires > now + ttl) {
      invalidArgument("expires_at is more than api_token_ttl (" + std::to_string(ttl / 86400) +
                      " days) ahead; the latest allowed is " + utcTime(now + ttl));
    }
    std::int64_t id = 0;
    resp->set_token(call.write([&](pqxx::work& tx) {
      return issueToken(tx, call.plc.config, "api", call.caller().person_id, 0, expires,
                        req->description(), &id);
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
        auto& plc = call.plc;
        auto node =
            plc.db.read([&](pqxx::transaction_base& tx) { return findNode(tx, req->hostname()); });
        // Stateless (see newNodeChallenge): an anonymous caller makes PLC store nothing.
        auto expires =
            static_cast<std::int64_t>(std::time(nullptr)) + plc.config.node_challenge_ttl;
        resp->set_nonce(
            newNodeChallenge(plc.auth.nodeChallengeSecret(), node.node_id, node.hostname, expires));
        resp->set_expires_at(expires);
      },
      Access::kAnonymous);
}

grpc::Status AuthService::NodeLogin(grpc::ServerContext* ctx, const pb::NodeLoginRequest* req,
                                    pb::LoginResponse* resp) {
  const auto source = clientSource(clientPeer(*ctx));
  const auto verdict = sources_.take(source);
  if (!verdict.allowed && !verdict.first_refusal) {
    spdlog::info("NodeLogin from {} refused: source over its failure budget", source);
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, sourceRefusal(source, verdict));
  }
  bool failed = false;
  auto status = rpc_.mutate(
      ctx, "NodeLogin", *req,
      [&](Call& call) {
        if (req->hostname().empty() || req->nonce().size() != 32 || req->signature().size() != 64) {
          invalidArgument(
              "NodeLogin needs hostname, the 32-byte nonce from GetNodeChallenge and a 64-byte"
              " Ed25519 signature");
        }
        call.object("node:" + req->hostname());
        call.usedRole("node");
        if (!verdict.allowed) {
          resourceExhausted(sourceRefusal(source, verdict) +
                            "; further attempts until then are not recorded");
        }
        // Forged or stale challenges and bad signatures count against the source;
        // a challenge already used (two logins racing) does not.
        auto refuse = [&](const std::string& message) {
          failed = true;
          unauthenticated(message);
        };
        auto& plc = call.plc;
        auto secret = plc.auth.nodeChallengeSecret();
        auto now = static_cast<std::int64_t>(std::time(nullptr));
        auto expires = now + plc.config.node_session_ttl;
        const std::string stale = "unknown, expired or used challenge for node " +
                                  quoteForMessage(req->hostname()) +
                                  "; ask for a new one (GetNodeChallenge)";
        resp->set_token(call.write([&](pqxx::work& tx) {
          auto rows = tx.exec_params(
              "SELECT node_id, hostname, encode(public_key, 'hex'), boot_state FROM nodes"
              " WHERE lower(hostname) = lower($1) AND deleted_at IS NULL",
              req->hostname());
          if (rows.empty()) refuse(stale);
          auto node_id = rows[0][0].as<std::int64_t>();
          auto challenge_expires =
              nodeChallengeExpiry(secret, node_id, rows[0][1].as<std::string>(), req->nonce());
          if (!challenge_expires || *challenge_expires <= now) refuse(stale);
          // Strict verification (plng_ticket): a small-order or malformed key registered
          // before keys were vetted verifies nothing.
          auto key = plng::ticket::publicKeyFromBytes(base::fromHex(rows[0][2].as<std::string>()));
          if (!plng::ticket::verifySignature(
                  key, plng::proto::nodeLoginMessage(req->hostname(), req->nonce()),
                  req->signature())) {
            refuse("signature does not match the key registered for node " +
                   quoteForMessage(req->hostname()));
          }
          if (rows[0][3].as<std::string>() == "disabled") {
            permissionDenied("node " + quoteForMessage(req->hostname()) +
                             " is disabled (boot_state disabled)");
          }
          // Consumes the challenge: of concurrent logins with one nonce, the first
          // insert wins and the others wait for its commit, then find the row and
          // insert nothing. (A failed login rolls back and leaves the nonce unused.)
          if (tx.exec_params("INSERT INTO node_challenges_used (nonce, node_id, expires_at)"
                             " VALUES (decode($1, 'hex'), $2, to_timestamp($3))"
                             " ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
                             base::toHex(req->nonce()), node_id, *challenge_expires)
                  .empty()) {
            unauthenticated(stale);
          }
          tx.exec0("DELETE FROM node_challenges_used WHERE expires_at < now()");
          tx.exec_params0("UPDATE nodes SET last_contact = now() WHERE node_id = $1", node_id);
          return issueToken(tx, plc.config, "node", 0, node_id, expires, "node login");
        }));
        resp->set_expires_at(expires);
      },
      Access::kAnonymous);
  if (verdict.allowed && !failed) sources_.refund(source);
  return status;
}

}  // namespace plng::plc
