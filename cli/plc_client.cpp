#include "cli/plc_client.h"

#include "app/version.h"
#include "cli/errors.h"
#include "cli/values.h"

namespace plcctl {

namespace {

// NodeState for a busy node and long event lists can pass gRPC's 4 MB default.
constexpr int kMaxReceiveBytes = 64 * 1024 * 1024;

std::shared_ptr<grpc::ChannelCredentials> credentialsFor(const ConnectionOptions& options) {
  if (!options.tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!options.ca_file.empty()) ssl.pem_root_certs = readFile(options.ca_file);
  return grpc::SslCredentials(ssl);
}

}  // namespace

RpcError::RpcError(grpc::Status status, bool unreachable)
    : std::runtime_error(std::string(statusCodeName(status.error_code())) +
                         (status.error_message().empty() ? "" : ": " + status.error_message())),
      status_(std::move(status)),
      unreachable_(unreachable) {}

PlcClient::PlcClient(ConnectionOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  arguments.SetUserAgentPrefix("plcctl/" + std::string(plng::app::projectVersion()));
  channel_ = grpc::CreateCustomChannel(options_.address, credentialsFor(options_), arguments);
  auth_ = planetlab::v1::Auth::NewStub(channel_);
  admin_ = planetlab::v1::Admin::NewStub(channel_);
  slice_ = planetlab::v1::Slice::NewStub(channel_);
  node_sync_ = planetlab::v1::NodeSync::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> PlcClient::newContext(Auth auth, bool with_deadline) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (auth == Auth::kToken) {
    if (options_.token.empty()) {
      throw LocalError(
          "not logged in: run 'plcctl login --email EMAIL', set PLCCTL_TOKEN, or pass --token");
    }
    context->AddMetadata("authorization", "Bearer " + options_.token);
  }
  if (with_deadline) context->set_deadline(std::chrono::system_clock::now() + options_.timeout);
  return context;
}

RpcError PlcClient::error(const grpc::Status& status) const {
  // UNAVAILABLE (connection refused, no route, DNS failure) or a deadline
  // spent connecting leaves the channel without a connection; the same codes
  // from a connected channel are PLC's own answer.
  const grpc::StatusCode code = status.error_code();
  const bool unreachable =
      (code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED) &&
      channel_->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY;
  return RpcError(status, unreachable);
}

}  // namespace plcctl
