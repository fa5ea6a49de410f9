// Clients of PLC's JSON API (plc/portal.h) for tests and benchmarks.
//
//   JsonHttpClient http(plcd.portalAddress());
//   auto reply = http.post("/planetlab.v1.Auth/WhoAmI", "{}", "Bearer " + token);
//   CHECK(reply.status == 200);
//
//   // Every unary call of a PlcClient through JSON over HTTP instead of gRPC:
//   PlcClient admin(jsonBridgeChannel(plcd.portalAddress(), plcd.address()));
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace plng::test {

// One HTTP/1.1 connection (kept alive, reopened when the server closed it).
// Not thread-safe: one per thread.
class JsonHttpClient {
 public:
  explicit JsonHttpClient(std::string address);  // "127.0.0.1:8680"
  ~JsonHttpClient();
  JsonHttpClient(JsonHttpClient&&) noexcept;
  JsonHttpClient& operator=(JsonHttpClient&&) noexcept;

  struct Reply {
    int status = 0;
    std::string content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
    std::string header(const std::string& name) const;
  };

  // POST `target` with Content-Type application/json; `authorization` as the
  // Authorization header when not empty. Throws std::runtime_error when the
  // connection fails.
  Reply post(const std::string& target, const std::string& body,
             const std::string& authorization = {});
  // Any request, with the headers given (and Host).
  Reply request(const std::string& method, const std::string& target, const std::string& body,
                const std::vector<std::pair<std::string, std::string>>& headers);

 private:
  struct Connection;
  std::string address_;
  std::unique_ptr<Connection> connection_;
};

// A channel whose unary calls go to PLC's JSON API at `portalAddress`: each
// request message is written as proto3 JSON, POSTed with the call's
// `authorization` metadata, and the JSON answer (or {"code","message"} error)
// read back into the response message and status, so that code written for
// gRPC stubs runs unchanged through the second encoding. Streaming calls,
// which the JSON API does not serve, go to plcd's gRPC `grpcAddress`.
std::shared_ptr<grpc::Channel> jsonBridgeChannel(const std::string& portalAddress,
                                                 const std::string& grpcAddress);

}  // namespace plng::test
