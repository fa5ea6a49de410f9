// PLC's HTTP face (docs/portal.md): the gRPC services as JSON, in the Connect
// protocol's unary form, and the portal's built files. A JSON call
// (POST /planetlab.v1.<Service>/<Method>, Content-Type: application/json, a
// proto3 JSON body) is converted to the method's request message and made
// through gRPC's in-process channel to the same server, so the same handler,
// authentication, role checks, input limits, audit events and metrics apply as
// to a gRPC client: there is no second implementation of any rule. The caller's
// bearer token goes as the `authorization` metadata, its address as
// kClientAddressMetadata (plc/rpc.h: trusted from the in-process channel only).
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "app/http_server.h"

namespace google::protobuf {
class Message;
}

namespace plng::plc {

class PortalHandler {
 public:
  // The policy of the portal's pages: its own script and style files, calls to
  // its own origin, nothing inline, nothing from elsewhere.
  static constexpr const char* kPortalContentSecurityPolicy =
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
      "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
  // How long a JSON call may take before it fails with deadline_exceeded.
  static constexpr std::chrono::seconds kCallDeadline{30};
  // The most the portal's files may weigh together (they are held in memory).
  static constexpr std::size_t kMaxPortalBytes = 64 << 20;

  // `server` is the in-process channel of plcd's own gRPC server. `portal_root`:
  // the directory of the built portal (index.html and its files), read whole
  // now; "" serves the JSON API only. Throws std::runtime_error when the
  // directory cannot be read, has no index.html or is too large.
  PortalHandler(std::shared_ptr<grpc::Channel> server, const std::string& portal_root);

  // app::HttpServer's handler; thread-safe.
  app::HttpResponse operator()(const app::HttpRequest& request) const;

  // Errors as the Connect protocol has them: {"code": "...", "message": "..."}.
  static app::HttpResponse errorResponse(int http_status, std::string_view code,
                                         std::string_view message);
  // app::HttpServer::Options::error_page: what the server refuses itself.
  static app::HttpResponse errorPage(int http_status, std::string_view reason);

  std::size_t methodCount() const { return methods_.size(); }
  std::size_t fileCount() const { return files_.size(); }

 private:
  struct Method {
    std::string name;                                    // "Login"
    const google::protobuf::Message* request = nullptr;  // prototypes
    const google::protobuf::Message* response = nullptr;
    bool streaming = false;
  };
  struct File {
    std::string content_type;
    std::string body;
  };

  app::HttpResponse call(const app::HttpRequest& request, const std::string& path,
                         const Method& method) const;
  app::HttpResponse file(const app::HttpRequest& request) const;

  std::shared_ptr<grpc::Channel> server_;
  std::unique_ptr<grpc::GenericStub> stub_;
  std::map<std::string, Method, std::less<>> methods_;  // by path: "/planetlab.v1.Auth/Login"
  std::map<std::string, File, std::less<>> files_;      // by path: "/index.html"
};

// The HTTP status and the Connect code name ("permission_denied") of a gRPC status code.
int httpStatusOf(int grpc_code);
std::string_view connectCodeName(int grpc_code);

}  // namespace plng::plc
