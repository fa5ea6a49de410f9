// The connection to PLC: one channel, the four service stubs, the bearer
// token and call deadline on every call, and failed calls turned into
// RpcError (telling "PLC refused" from "PLC unreachable").
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "proto/plc.grpc.pb.h"
#include "proto/status_name.h"

namespace plcctl {

struct ConnectionOptions {
  std::string address;         // gRPC target, e.g. "127.0.0.1:8620"
  std::string address_source;  // where the address came from, for messages
  std::string token;           // empty: only anonymous calls are possible
  std::chrono::seconds timeout{30};
  bool tls = false;
  std::string ca_file;  // PEM roots; empty = system roots
};

using plng::statusCodeName;

// A call that did not succeed. unreachable() when the channel never got a
// connection to PLC, as opposed to PLC answering with an error.
class RpcError : public std::runtime_error {
 public:
  RpcError(grpc::Status status, bool unreachable);
  const grpc::Status& status() const { return status_; }
  bool unreachable() const { return unreachable_; }

 private:
  grpc::Status status_;
  bool unreachable_;
};

enum class Auth {
  kToken,      // sends `authorization: Bearer <token>`; requires a token
  kAnonymous,  // Login, GetNodeChallenge, NodeLogin
};

class PlcClient {
 public:
  // Throws LocalError when the TLS CA file cannot be read.
  explicit PlcClient(ConnectionOptions options);

  const ConnectionOptions& options() const { return options_; }

  // One unary call, e.g. call(&v1::Admin::Stub::GetSites, request). Throws
  // RpcError on failure, LocalError when a token is needed and there is none.
  template <class Stub, class Request, class Response>
  Response call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                const Request& request, Auth auth = Auth::kToken) {
    auto context = newContext(auth, /*with_deadline=*/true);
    Response response;
    const grpc::Status status = (stub<Stub>().*method)(context.get(), request, &response);
    if (!status.ok()) throw error(status);
    return response;
  }

  // A context carrying the token and, unless the call is a long-lived
  // stream, the deadline.
  std::unique_ptr<grpc::ClientContext> newContext(Auth auth, bool with_deadline) const;

  // Classifies a failed status as refused or unreachable.
  RpcError error(const grpc::Status& status) const;

  template <class Stub>
  Stub& stub() {
    namespace v1 = planetlab::v1;
    if constexpr (std::is_same_v<Stub, v1::Auth::Stub>) {
      return *auth_;
    } else if constexpr (std::is_same_v<Stub, v1::Admin::Stub>) {
      return *admin_;
    } else if constexpr (std::is_same_v<Stub, v1::Slice::Stub>) {
      return *slice_;
    } else {
      static_assert(std::is_same_v<Stub, v1::NodeSync::Stub>, "not a PLC service stub");
      return *node_sync_;
    }
  }

 private:
  ConnectionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<planetlab::v1::Auth::Stub> auth_;
  std::unique_ptr<planetlab::v1::Admin::Stub> admin_;
  std::unique_ptr<planetlab::v1::Slice::Stub> slice_;
  std::unique_ptr<planetlab::v1::NodeSync::Stub> node_sync_;
};

}  // namespace plcctl
