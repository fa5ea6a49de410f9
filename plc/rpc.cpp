#include "plc/rpc.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/text_format.h>
#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "plc/change_bus.h"
#include "plc/errors.h"
#include "plc/validate.h"

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

void Call::beginWrite() {
  if (wrote_) {
    throw std::logic_error(std::string(method_) +
                           " wrote twice: a call makes its changes in one transaction");
  }
  wrote_ = true;
}

std::string Call::roleUsed() const {
  if (!role_used_.empty()) return role_used_;
  if (caller_.isNode()) return "node";
  auto role = caller_.highestRole();
  return role ? toString(*role) : "";
}

CallOrigin CallOrigin::of(const grpc::ServerContextBase& ctx) {
  return CallOrigin{bearerToken(ctx), clientPeer(ctx)};
}

const std::string& portalCallKey() {
  static const std::string key = newToken();  // 256 random bits
  return key;
}

std::string clientPeer(const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  auto address = md.find(kClientAddressMetadata);
  auto key = md.find(kPortalKeyMetadata);
  if (address == md.end() || key == md.end()) return ctx.peer();
  const auto& expected = portalCallKey();
  if (key->second.size() != expected.size() ||
      CRYPTO_memcmp(key->second.data(), expected.data(), expected.size()) != 0)
    return ctx.peer();
  return std::string(address->second.data(), address->second.size());
}

std::string bearerToken(const grpc::ServerContextBase& ctx) {
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
  return name == "password" || name.ends_with("_password") || name == "token" || name == "nonce" ||
         name == "signature" || name == "private_key";
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

// Start of the UTF-8 character holding byte `i` of `s`.
std::size_t utf8Boundary(std::string_view s, std::size_t i) {
  while (i > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) --i;
  return i;
}

// Control characters written as escapes: what a status message or log line carries
// is one line of text, whatever went into it.
std::string escapeControls(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c != 0x7f) {
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// Every status leaves here bounded and on one line, so a client always gets the
// real code: gRPC refuses a status whose message outgrows its metadata limit
// (8 KiB by default) and the client sees a local RESOURCE_EXHAUSTED instead.
grpc::Status boundStatus(const grpc::Status& status) {
  if (status.ok()) return status;
  const auto& message = status.error_message();
  bool plain = message.size() <= kMaxStatusMessage;
  for (char c : message) {
    auto u = static_cast<unsigned char>(c);
    plain = plain && u >= 0x20 && u != 0x7f;
  }
  if (plain) return status;
  return grpc::Status(status.error_code(), boundText(escapeControls(message), kMaxStatusMessage));
}

struct AuditEvent {
  std::string caller;
  std::int64_t person_id = 0;
  std::int64_t node_id = 0;
  std::string role_used;
  const char* method = "";
  std::string arguments;
  std::vector<std::string> objects;
  std::string result;
  std::string message;
  std::int64_t duration_us = 0;
};

// Object names, each and all bounded (a GIN index entry must fit in a third of a
// page, and a call touching thousands of objects should not store them all).
std::vector<std::string> boundObjects(const std::vector<std::string>& objects) {
  std::vector<std::string> out;
  for (const auto& o : objects) {
    auto bounded = boundText(o, kMaxAuditObjectLength);
    if (std::find(out.begin(), out.end(), bounded) != out.end()) continue;
    if (out.size() == kMaxAuditObjects) {
      out.push_back("(" + std::to_string(objects.size() - kMaxAuditObjects) + " more)");
      break;
    }
    out.push_back(std::move(bounded));
  }
  return out;
}

AuditEvent auditEvent(const Caller& caller, const char* method, const std::string& role_used,
                      const google::protobuf::Message& request,
                      const std::vector<std::string>& objects, const grpc::Status& status,
                      std::chrono::steady_clock::time_point started) {
  AuditEvent e;
  e.caller = boundText(caller.describe(), kMaxAuditObjectLength);
  e.person_id = caller.person_id;
  e.node_id = caller.node_id;
  e.role_used = role_used;
  e.method = method;
  e.arguments = summarizeRequest(request);
  e.objects = boundObjects(objects);
  e.result = statusCodeName(status.error_code());
  e.message = boundText(status.error_message(), kMaxStatusMessage);
  e.duration_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  return e;
}

void insertEvent(pqxx::work& tx, const AuditEvent& e) {
  tx.exec_params0(
      "INSERT INTO events (caller, person_id, node_id, role_used, method, arguments,"
      " objects, result, message, duration_us)"
      " VALUES ($1, NULLIF($2, 0), NULLIF($3, 0), $4, $5, $6, $7::text[], $8, $9, $10)",
      e.caller, e.person_id, e.node_id, e.role_used, e.method, e.arguments, pgTextArray(e.objects),
      e.result, e.message, e.duration_us);
}

const std::string kInDoubt =
    "the connection to PLC's database was lost while committing: the change may have been"
    " applied or not; check its result (e.g. with a Get call) before retrying";

}  // namespace

std::string boundText(std::string_view text, std::size_t max_bytes) {
  std::string out;
  if (text.size() <= max_bytes) {
    out.assign(text);
  } else {
    const std::string note = "\u2026 (" + std::to_string(text.size()) + " bytes)";
    auto keep = max_bytes > note.size() ? max_bytes - note.size() : 0;
    out.assign(text.substr(0, utf8Boundary(text, keep)));
    out += note;
  }
  // PostgreSQL's text cannot hold NUL (libpq would cut the value there).
  for (auto pos = out.find('\0'); pos != std::string::npos; pos = out.find('\0', pos)) {
    out.replace(pos, 1, "\\0");
  }
  return out;
}

std::string summarizeRequest(const google::protobuf::Message& request) {
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  redact(*copy);
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.SetTruncateStringFieldLongerThan(200);
  std::string out;
  printer.PrintToString(*copy, &out);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  // TextFormat escapes every non-ASCII and control byte: the text is ASCII, cut anywhere.
  return boundText(out, kMaxAuditArguments);
}

void Call::recordEvent(pqxx::work& tx) const {
  if (!audited_) return;
  auto status =
      failure_ ? boundStatus(grpc::Status(failure_->code(), failure_->what())) : grpc::Status::OK;
  insertEvent(tx, auditEvent(caller_, method_, roleUsed(), request_, objects_, status, started_));
}

void Call::committed() {
  event_committed_ = audited_;
  if (failure_) throw *failure_;
}

grpc::Status RpcRunner::query(grpc::ServerContextBase* ctx, const char* method,
                              const google::protobuf::Message& request,
                              const std::function<void(Call&)>& body, Access access) {
  // The peer address matters only to audited calls.
  return run(CallOrigin{bearerToken(*ctx), {}}, method, request, body, access,
             /*audited=*/false);
}

grpc::Status RpcRunner::query(const CallOrigin& origin, const char* method,
                              const google::protobuf::Message& request,
                              const std::function<void(Call&)>& body, Access access) {
  return run(origin, method, request, body, access, /*audited=*/false);
}

grpc::Status RpcRunner::mutate(grpc::ServerContextBase* ctx, const char* method,
                               const google::protobuf::Message& request,
                               const std::function<void(Call&)>& body, Access access) {
  return run(CallOrigin::of(*ctx), method, request, body, access, /*audited=*/true);
}

grpc::Status RpcRunner::run(const CallOrigin& origin, const char* method,
                            const google::protobuf::Message& request,
                            const std::function<void(Call&)>& body, Access access, bool audited) {
  auto started = std::chrono::steady_clock::now();
  grpc::Status status;
  Caller caller;
  std::unique_ptr<Call> call;
  try {
    if (!origin.token.empty()) {
      caller = plc_.auth.resolve(origin.token);
    } else if (access != Access::kAnonymous) {
      unauthenticated(std::string(method) +
                      " needs a token: log in first (plcctl login) or pass --token");
    }
    call = std::make_unique<Call>(plc_, method, caller, request, audited, started);
    // One check for every method, before any of its code runs.
    validateRequestFields(request);
    body(*call);
    status = grpc::Status::OK;
  } catch (const ApiError& e) {
    status = grpc::Status(e.code(), e.what());
  } catch (const pqxx::in_doubt_error& e) {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(method) + ": " + kInDoubt);
    spdlog::error("{}: commit in doubt: {}", method, boundText(e.what(), kMaxStatusMessage));
  } catch (const pqxx::statement_completion_unknown& e) {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(method) + ": " + kInDoubt);
    spdlog::error("{}: statement outcome unknown: {}", method,
                  boundText(e.what(), kMaxStatusMessage));
  } catch (const pqxx::broken_connection& e) {
    status =
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "PLC database is unreachable; retry shortly");
    spdlog::error("{}: database connection lost: {}", method,
                  boundText(e.what(), kMaxStatusMessage));
  } catch (const pqxx::unique_violation& e) {
    status =
        grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "an object with that name already exists");
    spdlog::warn("{}: unique violation not caught by a check: {}", method,
                 boundText(e.what(), kMaxStatusMessage));
  } catch (const pqxx::transaction_rollback& e) {
    // Serialization failures and deadlocks: nothing was changed.
    status = grpc::Status(grpc::StatusCode::ABORTED, "concurrent update; retry the call");
  } catch (const pqxx::data_exception& e) {
    // A value the edge's checks let through and PostgreSQL refused (out of range,
    // malformed): the caller's input, not PLC, is at fault.
    status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string(method) +
                              ": a value in the request is out of range or malformed for PLC's"
                              " database; check the request's values");
    spdlog::warn("{}: data exception not caught by validation: {}", method,
                 boundText(e.what(), kMaxStatusMessage));
  } catch (const pqxx::insufficient_resources& e) {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "PLC's database is out of resources (disk or memory); retry later");
    spdlog::error("{}: {}", method, boundText(e.what(), kMaxStatusMessage));
  } catch (const pqxx::sql_error& e) {
    if (!serverCannotServe(e)) {
      status = grpc::Status(grpc::StatusCode::INTERNAL,
                            std::string("internal error in ") + method + "; see plcd's log");
      spdlog::error("{}: {}", method, boundText(e.what(), kMaxStatusMessage));
    } else {
      // A standby, or a primary going away: a failover is under way. Nothing was
      // committed, and the pool has dropped the connection.
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "PLC's database server cannot take changes now (read-only or shutting"
                            " down: a failover may be under way); retry shortly");
      spdlog::error("{}: database server cannot serve: {}", method,
                    boundText(e.what(), kMaxStatusMessage));
    }
  } catch (const std::exception& e) {
    status = grpc::Status(grpc::StatusCode::INTERNAL,
                          std::string("internal error in ") + method + "; see plcd's log");
    spdlog::error("{}: {}", method, boundText(e.what(), kMaxStatusMessage));
  }
  status = boundStatus(status);
  auto duration_us = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now() - started)
                         .count();
  if (!audited) {
    if (!status.ok()) {
      spdlog::debug("{} by {}: {} {}", method, caller.describe(),
                    statusCodeName(status.error_code()), status.error_message());
    }
    return status;
  }
  if (!call && status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    const auto source = clientSource(origin.peer);
    const auto verdict = unauthenticated_sources_.take(source);
    if (!verdict.allowed && !verdict.first_refusal) {
      spdlog::debug("{} from {} refused without a valid token; not recorded (over budget)", method,
                    source);
      return status;
    }
  }
  bool committed = call && call->eventCommitted();
  if (status.ok() || committed) {
    // Changes through this plcd are visible to its next call at once; other plcd
    // replicas drop their caches when the change notification reaches them.
    plc_.auth.invalidate();
  }
  std::vector<std::string> objects = call ? call->objects() : std::vector<std::string>{};
  auto role_used = call ? call->roleUsed() : std::string();
  auto event = auditEvent(caller, method, role_used, request, objects, status, started);
  spdlog::info("{} by {} ({}) [{}] -> {} {} ({} us)", method, event.caller, role_used,
               event.arguments, event.result, event.message, duration_us);
  // The event that committed with the change says what the client is told.
  if (committed && status.error_code() == call->committedCode()) return status;
  if (committed) {
    spdlog::error("{} failed after its change and event committed: {}", method, event.message);
  } else if (status.ok()) {
    spdlog::warn("{} succeeded without Call::write; its event is written on its own", method);
  }
  // Nothing changed (or the outcome is unknown): the event goes in a transaction
  // of its own, and its failure cannot change the call's result.
  try {
    plc_.db.write([&](pqxx::work& tx) { insertEvent(tx, event); });
  } catch (const std::exception& e) {
    spdlog::error("{}: could not record audit event: {}", method,
                  boundText(e.what(), kMaxStatusMessage));
  }
  return status;
}

namespace {

// See unparsableRequestInterceptor() in rpc.h.
class UnparsableRequest final : public grpc::experimental::Interceptor {
 public:
  explicit UnparsableRequest(grpc::experimental::ServerRpcInfo* info) : info_(info) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    // A unary or server-streaming method receives exactly one message, before its
    // handler runs; no message there means gRPC could not parse the request.
    if (!seen_request_ && methods->QueryInterceptionHookPoint(Hook::POST_RECV_MESSAGE)) {
      seen_request_ = true;
      unparsable_ = methods->GetRecvMessage() == nullptr;
    }
    // Synchronous methods answer INTERNAL then, callback ones (WatchSlivers)
    // UNIMPLEMENTED: neither ran.
    if (unparsable_ && methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS) &&
        (methods->GetSendStatus().error_code() == grpc::StatusCode::INTERNAL ||
         methods->GetSendStatus().error_code() == grpc::StatusCode::UNIMPLEMENTED)) {
      methods->ModifySendStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message()));
    }
    methods->Proceed();
  }

 private:
  std::string message() const {
    std::string method = info_->method() ? info_->method() : "";
    std::string type = "the message this method takes";
    // "/planetlab.v1.Auth/Login" -> planetlab.v1.Auth.Login
    std::string full = method.size() > 1 ? method.substr(1) : method;
    std::replace(full.begin(), full.end(), '/', '.');
    if (const auto* m =
            google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full)) {
      type = m->input_type()->full_name();
    }
    return "the request to " + method + " is not a valid " + type +
           ": either not protobuf wire format, or a string field holding bytes that are not"
           " UTF-8 (send text as UTF-8; only bytes fields take arbitrary bytes)";
  }

  grpc::experimental::ServerRpcInfo* info_;
  bool seen_request_ = false;
  bool unparsable_ = false;
};

class UnparsableRequestFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    using Type = grpc::experimental::ServerRpcInfo::Type;
    if (info->type() != Type::UNARY && info->type() != Type::SERVER_STREAMING) return nullptr;
    return new UnparsableRequest(info);
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
unparsableRequestInterceptor() {
  return std::make_unique<UnparsableRequestFactory>();
}

}  // namespace plng::plc
