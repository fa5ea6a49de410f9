// The edge between gRPC and PLC's logic: every handler runs its body through
// RpcRunner, which authenticates the caller, maps ApiError and database errors
// to gRPC statuses with messages a person can act on, and for state-changing
// methods writes one audit event (caller, role used, method, arguments summary,
// affected objects, result, duration).
#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "auth.h"
#include "caller.h"
#include "config.h"
#include "db.h"

namespace plng::plc {

class PlcKeys;
class ChangeBus;

// Everything a service needs; owned by the server.
struct PlcContext {
  Database& db;
  const PlcConfig& config;
  Authenticator& auth;
  PlcKeys& keys;
  ChangeBus& bus;
};

// One request in flight.
class Call {
 public:
  Call(PlcContext& context, const char* method, Caller caller)
      : plc(context), method_(method), caller_(std::move(caller)) {}

  PlcContext& plc;
  const Caller& caller() const { return caller_; }
  const char* method() const { return method_; }

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

 private:
  const char* method_;
  Caller caller_;
  std::vector<std::string> objects_;
  std::string role_used_;
};

enum class Access {
  kAnonymous,      // no token needed (Login, node challenge)
  kAuthenticated,  // any valid person or node token
};

class RpcRunner {
 public:
  explicit RpcRunner(PlcContext& plc) : plc_(plc) {}

  // A read-only method: no audit event.
  grpc::Status query(grpc::ServerContext* ctx, const char* method,
                     const std::function<void(Call&)>& body,
                     Access access = Access::kAuthenticated);
  // A state-changing method: writes an audit event whatever the outcome.
  grpc::Status mutate(grpc::ServerContext* ctx, const char* method,
                      const google::protobuf::Message& request,
                      const std::function<void(Call&)>& body,
                      Access access = Access::kAuthenticated);

  PlcContext& plc() { return plc_; }

 private:
  grpc::Status run(grpc::ServerContext* ctx, const char* method,
                   const google::protobuf::Message* request, const std::function<void(Call&)>& body,
                   Access access);

  PlcContext& plc_;
};

// The request as text for the audit log, with secrets (passwords, tokens, nonces,
// signatures, private keys) removed and long values cut.
std::string summarizeRequest(const google::protobuf::Message& request);

// The bearer token of a request, or "" when there is none.
std::string bearerToken(const grpc::ServerContext& ctx);

}  // namespace plng::plc
