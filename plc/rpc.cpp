#include "rpc.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/text_format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>

#include "change_bus.h"
#include "errors.h"

namespace plng::plc {

void Call::requirePerson() const {
  if (!caller_.isPerson()) {
    permissionDenied(std::string(method_) + " must be called by a person, not " +
                     caller_.describe());
  }
}

void Call::requireAdmin() const {
  if (!caller_.admin) {
    permissionDenied(std::string(method_) + " requires role admin; " + caller_.describe() +
                     " is not an admin");
  }
}

void Call::requireRoleAt(std::int64_t site_id, const std::string& login_base,
                         std::initializer_list<Role> roles) const {
  if (caller_.admin) return;
  std::string wanted;
  for (auto r : roles) {
    if (caller_.isPerson() && caller_.hasRoleAt(r, site_id)) return;
    if (!wanted.empty()) wanted += " or ";
    wanted += toString(r);
  }
  permissionDenied(std::string(method_) + " requires role " + wanted + " at site " + login_base +
                   " (or admin); " + caller_.describe() + " has none of these there");
}

std::string Call::roleUsed() const {
  if (!role_used_.empty()) return role_used_;
  if (caller_.isNode()) return "node";
  auto role = caller_.highestRole();
  return role ? toString(*role) : "";
}

std::string bearerToken(const grpc::ServerContext& ctx) {
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return "";
  std::string value(it->second.data(), it->second.size());
  constexpr std::string_view kPrefix = "Bearer ";
  if (value.size() > kPrefix.size() && value.compare(0, kPrefix.size(), kPrefix) == 0) {
    return value.substr(kPrefix.size());
  }
  return "";
}

namespace {

bool isSecretField(const std::string& name) {
  return name == "password" || name == "token" || name == "nonce" || name == "signature" ||
         name == "private_key";
}

void redact(google::protobuf::Message& m) {
  const auto* desc = m.GetDescriptor();
  const auto* refl = m.GetReflection();
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    if (isSecretField(f->name())) {
      refl->ClearField(&m, f);
    } else if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int j = 0; j < refl->FieldSize(m, f); ++j) {
          redact(*refl->MutableRepeatedMessage(&m, f, j));
        }
      } else if (refl->HasField(m, f)) {
        redact(*refl->MutableMessage(&m, f));
      }
    }
  }
}

}  // namespace

std::string summarizeRequest(const google::protobuf::Message& request) {
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  redact(*copy);
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.SetTruncateStringFieldLongerThan(200);
  std::string out;
  printer.PrintToString(*copy, &out);
  if (out.size() > 2000) out.resize(2000);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

grpc::Status RpcRunner::query(grpc::ServerContext* ctx, const char* method,
                              const std::function<void(Call&)>& body, Access access) {
  return run(ctx, method, nullptr, body, access);
}

grpc::Status RpcRunner::mutate(grpc::ServerContext* ctx, const char* method,
                               const google::protobuf::Message& request,
                               const std::function<void(Call&)>& body, Access access) {
  return run(ctx, method, &request, body, access);
}

grpc::Status RpcRunner::run(grpc::ServerContext* ctx, const char* method,
                            const google::protobuf::Message* request,
                            const std::function<void(Call&)>& body, Access access) {
  auto started = std::chrono::steady_clock::now();
  grpc::Status status;
  Caller caller;
  std::unique_ptr<Call> call;
  try {
    auto token = bearerToken(*ctx);
    if (!token.empty()) {
      caller = plc_.auth.resolve(token);
    } else if (access != Access::kAnonymous) {
      unauthenticated(std::string(method) +
                      " needs a token: log in first (plcctl login) or pass --token");
    }
    call = std::make_unique<Call>(plc_, method, caller);
    body(*call);
    status = grpc::Status::OK;
  } catch (const ApiError& e) {
    status = grpc::Status(e.code(), e.what());
  } catch (const pqxx::broken_connection& e) {
    status =
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "PLC database is unreachable; retry shortly");
    spdlog::error("{}: database connection lost: {}", method, e.what());
  } catch (const pqxx::unique_violation& e) {
    status =
        grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "an object with that name already exists");
    spdlog::warn("{}: unique violation not caught by a check: {}", method, e.what());
  } catch (const pqxx::serialization_failure& e) {
    status = grpc::Status(grpc::StatusCode::ABORTED, "concurrent update; retry the call");
  } catch (const std::exception& e) {
    status = grpc::Status(grpc::StatusCode::INTERNAL,
                          std::string("internal error in ") + method + "; see plcd's log");
    spdlog::error("{}: {}", method, e.what());
  }
  auto duration_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - started)
                         .count();
  if (request == nullptr) {
    if (!status.ok()) {
      spdlog::debug("{} by {}: {} {}", method, caller.describe(),
                    statusCodeName(status.error_code()), status.error_message());
    }
    return status;
  }
  if (status.ok()) {
    // Changes through this plcd are visible to its next call at once; other plcd
    // replicas drop their caches when the change notification reaches them.
    plc_.auth.invalidate();
  }
  std::vector<std::string> objects = call ? call->objects() : std::vector<std::string>{};
  auto role_used = call ? call->roleUsed() : std::string();
  auto arguments = summarizeRequest(*request);
  spdlog::info("{} by {} ({}) [{}] -> {} {} ({} us)", method, caller.describe(), role_used,
               arguments, statusCodeName(status.error_code()), status.error_message(), duration_us);
  try {
    plc_.db.write([&](pqxx::work& tx) {
      tx.exec_params0(
          "INSERT INTO events (caller, person_id, node_id, role_used, method, arguments,"
          " objects, result, message, duration_us)"
          " VALUES ($1, NULLIF($2, 0), NULLIF($3, 0), $4, $5, $6, $7::text[], $8, $9, $10)",
          caller.describe(), caller.person_id, caller.node_id, role_used, method, arguments,
          pgTextArray(objects), statusCodeName(status.error_code()), status.error_message(),
          duration_us);
    });
  } catch (const std::exception& e) {
    spdlog::error("{}: could not record audit event: {}", method, e.what());
  }
  return status;
}

}  // namespace plng::plc
