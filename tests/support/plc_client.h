// A gRPC client of PLC for tests, and Catch2 helpers for grpc::Status.
//
//   PlcClient admin(plcd.channel());
//   REQUIRE_OK(admin.login("admin@plc.test", "secret"));
//   planetlab::v1::AddSiteRequest req;
//   req.set_login_base("princeton");
//   auto [status, site] = admin.call(&planetlab::v1::Admin::Stub::AddSite, req);
//   REQUIRE_OK(status);
//   CHECK_STATUS(admin.call(&planetlab::v1::Admin::Stub::AddSite, req).first,
//                grpc::StatusCode::ALREADY_EXISTS, "princeton");
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "proto/plc.grpc.pb.h"

namespace plng::test {

// Holds a channel, one stub per PLC service and the caller's bearer token. Copies
// share the channel and stubs (both are thread-safe) but not the token.
class PlcClient {
 public:
  static constexpr std::chrono::seconds kDefaultDeadline{10};

  explicit PlcClient(std::shared_ptr<grpc::Channel> channel, std::string token = {});

  // A context carrying `authorization: Bearer <token>` (when there is a token) and
  // a deadline `timeout` from now.
  std::unique_ptr<grpc::ClientContext> context(
      std::chrono::milliseconds timeout = kDefaultDeadline) const;

  // Auth.Login; on success keeps the session token for later calls.
  grpc::Status login(const std::string& email, const std::string& password);

  const std::string& token() const { return token_; }
  void setToken(std::string token) { token_ = std::move(token); }
  // The same channel with another identity (or none, for an empty token).
  PlcClient withToken(std::string token) const;

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  planetlab::v1::Auth::Stub& auth() const { return *auth_; }
  planetlab::v1::Admin::Stub& admin() const { return *admin_; }
  planetlab::v1::Slice::Stub& slice() const { return *slice_; }
  planetlab::v1::NodeSync::Stub& nodeSync() const { return *nodeSync_; }

  // A unary call with a fresh context():
  //   Site site; auto s = client.call(&Admin::Stub::AddSite, request, &site);
  template <class Stub, class Request, class Response>
  grpc::Status call(grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const std::type_identity_t<Request>& request, Response* response) const {
    auto ctx = context();
    return (stub<Stub>().*method)(ctx.get(), request, response);
  }

  //   auto [status, site] = client.call(&Admin::Stub::AddSite, request);
  template <class Stub, class Request, class Response>
  std::pair<grpc::Status, Response> call(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                                      const Request&, Response*),
                                         const std::type_identity_t<Request>& request) const {
    Response response;
    grpc::Status status = call(method, request, &response);
    return {std::move(status), std::move(response)};
  }

  template <class Stub>
  Stub& stub() const {
    if constexpr (std::is_same_v<Stub, planetlab::v1::Auth::Stub>) {
      return *auth_;
    } else if constexpr (std::is_same_v<Stub, planetlab::v1::Admin::Stub>) {
      return *admin_;
    } else if constexpr (std::is_same_v<Stub, planetlab::v1::Slice::Stub>) {
      return *slice_;
    } else {
      static_assert(std::is_same_v<Stub, planetlab::v1::NodeSync::Stub>, "not a PLC stub");
      return *nodeSync_;
    }
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::shared_ptr<planetlab::v1::Auth::Stub> auth_;
  std::shared_ptr<planetlab::v1::Admin::Stub> admin_;
  std::shared_ptr<planetlab::v1::Slice::Stub> slice_;
  std::shared_ptr<planetlab::v1::NodeSync::Stub> nodeSync_;
  std::string token_;
};

// "NOT_FOUND", "PERMISSION_DENIED", ...
std::string statusCodeName(grpc::StatusCode code);
// "OK" or "NOT_FOUND: no site 'x'".
std::string describeStatus(const grpc::Status& status);

// Matches a status with the given code whose message contains `messagePart`.
class StatusMatcher : public Catch::MatcherBase<grpc::Status> {
 public:
  StatusMatcher(grpc::StatusCode code, std::string messagePart)
      : code_(code), messagePart_(std::move(messagePart)) {}
  bool match(const grpc::Status& status) const override;
  std::string describe() const override;

 private:
  grpc::StatusCode code_;
  std::string messagePart_;
};

inline StatusMatcher StatusIs(grpc::StatusCode code, std::string messagePart = {}) {
  return StatusMatcher(code, std::move(messagePart));
}
inline StatusMatcher IsOk() { return StatusMatcher(grpc::StatusCode::OK, {}); }

// CHECKs that `status` has `code` and a message containing `messagePart`; on
// failure Catch prints the actual code and message, and the caller's location.
void expectStatus(const grpc::Status& status, grpc::StatusCode code,
                  std::string_view messagePart = {},
                  std::source_location where = std::source_location::current());

}  // namespace plng::test

namespace Catch {
template <>
struct StringMaker<grpc::Status> {
  static std::string convert(const grpc::Status& status) {
    return plng::test::describeStatus(status);
  }
};
}  // namespace Catch

// Assertion macros reporting the test's own line.
#define REQUIRE_OK(status) REQUIRE_THAT((status), ::plng::test::IsOk())
#define CHECK_OK(status) CHECK_THAT((status), ::plng::test::IsOk())
#define REQUIRE_STATUS(status, code, messagePart) \
  REQUIRE_THAT((status), ::plng::test::StatusIs((code), (messagePart)))
#define CHECK_STATUS(status, code, messagePart) \
  CHECK_THAT((status), ::plng::test::StatusIs((code), (messagePart)))
