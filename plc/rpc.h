// The edge between gRPC and PLC's logic: every handler runs its body through
// RpcRunner, which authenticates the caller, checks the request's strings and
// times (validateRequestFields), maps ApiError and database errors to gRPC
// statuses with messages a person can act on (at most kMaxStatusMessage bytes),
// and for state-changing methods records one audit event (caller, role used,
// method, arguments summary, affected objects, result, duration) — in the
// transaction of the change itself when the call succeeds (Call::write).
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "plc/auth.h"
#include "plc/caller.h"
#include "plc/config.h"
#include "plc/db.h"
#include "plc/errors.h"

namespace plng::plc {

class PlcKeys;
class ChangeBus;
class PlcdMetrics;

// Everything a service needs; owned by the server.
struct PlcContext {
  Database& db;
  const PlcConfig& config;
  Authenticator& auth;
  PlcKeys& keys;
  ChangeBus& bus;
  PlcdMetrics* metrics = nullptr;  // null: not measured (tests, tools)
};

// Bounds of what one call can make PLC store and log about itself.
inline constexpr std::size_t kMaxStatusMessage = 1024;     // bytes of a status message
inline constexpr std::size_t kMaxAuditArguments = 2000;    // bytes of the arguments summary
inline constexpr std::size_t kMaxAuditObjectLength = 200;  // bytes of one object name
inline constexpr std::size_t kMaxAuditObjects = 100;       // object names per event

// One request in flight.
class Call {
 public:
  Call(PlcContext& context, const char* method, Caller caller,
       const google::protobuf::Message& request, bool audited,
       std::chrono::steady_clock::time_point started)
      : plc(context),
        method_(method),
        caller_(std::move(caller)),
        request_(request),
        audited_(audited),
        started_(started) {}

  PlcContext& plc;
  const Caller& caller() const { return caller_; }
  const char* method() const { return method_; }

  // Runs `body` in a read-write transaction and commits it; a state-changing
  // method makes all its changes here, in one transaction. Its audit event (result
  // OK) is inserted in the same transaction just before COMMIT, so the change and
  // its record commit together or not at all: if the event cannot be written, the
  // call fails and changes nothing. Whatever the body throws rolls back both, and
  // RpcRunner records the failure on its own. Once per call (a second call is a
  // bug: std::logic_error, INTERNAL). Everything the event names (object(),
  // usedRole()) must be known before the body returns.
  template <class F>
  auto write(F&& body) {
    beginWrite();
    using Result = std::invoke_result_t<F&, pqxx::work&>;
    if constexpr (std::is_void_v<Result>) {
      plc.db.write([&](pqxx::work& tx) {
        failure_.reset();  // a retried body decides afresh
        body(tx);
        recordEvent(tx);
      });
      committed();
    } else {
      auto result = plc.db.write([&](pqxx::work& tx) {
        failure_.reset();
        auto r = body(tx);
        recordEvent(tx);
        return r;
      });
      committed();
      return result;
    }
  }

  // For a call that must keep what it wrote and still fail (a refused login that
  // counts against its account, say). Called inside write()'s body: the event in
  // the transaction records this status instead of OK, the transaction commits,
  // and write() then throws ApiError(code, message).
  void failAfterCommit(grpc::StatusCode code, std::string message) {
    failure_ = ApiError(code, std::move(message));
  }

  // Whether write() committed this call's audit event with its change, and the
  // status that event recorded.
  bool eventCommitted() const { return event_committed_; }
  grpc::StatusCode committedCode() const {
    return failure_ ? failure_->code() : grpc::StatusCode::OK;
  }

  // Authorisation checks; each throws PERMISSION_DENIED naming what is missing.
  void requirePerson() const;
  void requireAdmin() const;
  // Admin, or one of `roles` at `site_id` (named `login_base` in messages).
  void requireRoleAt(std::int64_t site_id, const std::string& login_base,
                     std::initializer_list<Role> roles) const;

  // Records what the call touched ("site:princeton") and which role allowed it.
  void object(std::string name) { objects_.push_back(std::move(name)); }
  void usedRole(std::string role) { role_used_ = std::move(role); }
  const std::vector<std::string>& objects() const { return objects_; }
  std::string roleUsed() const;

  const google::protobuf::Message& request() const { return request_; }
  std::chrono::steady_clock::time_point started() const { return started_; }

 private:
  void beginWrite();
  void recordEvent(pqxx::work& tx) const;
  // After write()'s COMMIT: notes the event, and throws a deferred failure.
  void committed();

  const char* method_;
  Caller caller_;
  const google::protobuf::Message& request_;
  bool audited_;
  std::chrono::steady_clock::time_point started_;
  std::vector<std::string> objects_;
  std::string role_used_;
  bool wrote_ = false;
  bool event_committed_ = false;
  std::optional<ApiError> failure_;
};

// Who sent a request, as far as RpcRunner needs it: copied out of the gRPC
// context so that work done later for a long-lived call (a WatchSlivers
// stream's recomputations) does not depend on the context's lifetime.
struct CallOrigin {
  std::string token;  // the bearer token, "" when none
  std::string peer;   // gRPC's peer address (only audited calls read it)
  static CallOrigin of(const grpc::ServerContextBase& ctx);
};

enum class Access {
  kAnonymous,      // no token needed (Login, node challenge)
  kAuthenticated,  // any valid person or node token
};

class RpcRunner {
 public:
  explicit RpcRunner(PlcContext& plc)
      : plc_(plc),
        unauthenticated_sources_(plc.config.login_source_burst, plc.config.login_source_refill_s) {}

  // A read-only method: no audit event. The request is checked at the edge all the same.
  grpc::Status query(grpc::ServerContextBase* ctx, const char* method,
                     const google::protobuf::Message& request,
                     const std::function<void(Call&)>& body,
                     Access access = Access::kAuthenticated);
  grpc::Status query(const CallOrigin& origin, const char* method,
                     const google::protobuf::Message& request,
                     const std::function<void(Call&)>& body,
                     Access access = Access::kAuthenticated);
  // A state-changing method: records an audit event whatever the outcome (with the
  // change, through Call::write, when it succeeds).
  grpc::Status mutate(grpc::ServerContextBase* ctx, const char* method,
                      const google::protobuf::Message& request,
                      const std::function<void(Call&)>& body,
                      Access access = Access::kAuthenticated);

  PlcContext& plc() { return plc_; }

 private:
  grpc::Status run(const CallOrigin& origin, const char* method,
                   const google::protobuf::Message& request, const std::function<void(Call&)>& body,
                   Access access, bool audited);

  PlcContext& plc_;
  // Calls refused for want of a valid token, per client address: only so many
  // are recorded as events, so that nobody without a token can grow the events
  // table at request rate (the log keeps a debug line for the rest).
  SourceLimiter unauthenticated_sources_;
};

// The request as text for the audit log, with secrets (passwords, tokens, nonces,
// signatures, private keys) removed and long values cut: at most
// kMaxAuditArguments bytes plus a note of the full length.
std::string summarizeRequest(const google::protobuf::Message& request);

// `text` if it has at most `max_bytes` bytes, else its first bytes (cut on a UTF-8
// boundary) and "… (N bytes)"; NUL bytes are written as \0 either way.
std::string boundText(std::string_view text, std::size_t max_bytes);

// gRPC answers a request it cannot parse (not protobuf, or a proto3 string that is
// not UTF-8) with INTERNAL (UNIMPLEMENTED for a callback method) and an empty
// message, before any handler runs. This
// server interceptor turns that answer into INVALID_ARGUMENT naming the message
// type the method takes. Register it with ServerBuilder::experimental().
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
unparsableRequestInterceptor();

// The client address of a request: gRPC's peer address, or for a call the
// portal makes for an HTTP client (plc/portal.h) the address it put in
// kClientAddressMetadata. That is believed only next to kPortalKeyMetadata
// holding portalCallKey(): a random secret of this process, which the portal
// sends over the in-process channel only, so no network client can choose the
// address a limit applies to.
inline constexpr const char* kClientAddressMetadata = "x-plng-client-address";
inline constexpr const char* kPortalKeyMetadata = "x-plng-portal-key";
const std::string& portalCallKey();
std::string clientPeer(const grpc::ServerContextBase& ctx);

// The bearer token of a request, or "" when there is none.
std::string bearerToken(const grpc::ServerContextBase& ctx);

}  // namespace plng::plc
