#include "tests/support/plc_client.h"

#include "proto/status_name.h"

namespace plng::test {

PlcClient::PlcClient(std::shared_ptr<grpc::Channel> channel, std::string token)
    : channel_(std::move(channel)),
      auth_(planetlab::v1::Auth::NewStub(channel_)),
      admin_(planetlab::v1::Admin::NewStub(channel_)),
      slice_(planetlab::v1::Slice::NewStub(channel_)),
      nodeSync_(planetlab::v1::NodeSync::NewStub(channel_)),
      token_(std::move(token)) {}

std::unique_ptr<grpc::ClientContext> PlcClient::context(std::chrono::milliseconds timeout) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token_.empty()) ctx->AddMetadata("authorization", "Bearer " + token_);
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

grpc::Status PlcClient::login(const std::string& email, const std::string& password) {
  planetlab::v1::LoginRequest request;
  request.set_email(email);
  request.set_password(password);
  planetlab::v1::LoginResponse response;
  auto ctx = context();
  grpc::Status status = auth_->Login(ctx.get(), request, &response);
  if (status.ok()) token_ = response.token();
  return status;
}

PlcClient PlcClient::withToken(std::string token) const {
  PlcClient copy(*this);
  copy.token_ = std::move(token);
  return copy;
}

std::string statusCodeName(grpc::StatusCode code) { return plng::statusCodeName(code); }

std::string describeStatus(const grpc::Status& status) {
  if (status.ok()) return "OK";
  return statusCodeName(status.error_code()) + ": " + status.error_message();
}

bool StatusMatcher::match(const grpc::Status& status) const {
  return status.error_code() == code_ &&
         status.error_message().find(messagePart_) != std::string::npos;
}

std::string StatusMatcher::describe() const {
  std::string d = "has code " + statusCodeName(code_);
  if (!messagePart_.empty()) d += " and a message containing \"" + messagePart_ + "\"";
  return d;
}

void expectStatus(const grpc::Status& status, grpc::StatusCode code, std::string_view messagePart,
                  std::source_location where) {
  INFO("expectStatus called from " << where.file_name() << ":" << where.line());
  CHECK_THAT(status, StatusIs(code, std::string(messagePart)));
}

}  // namespace plng::test
