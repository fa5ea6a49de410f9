#include "sliverd/daemon/plc_sync.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"
#include "proto/node_protocol.h"

namespace plng::sliverd {

namespace pb = planetlab::v1;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kKeyBytes = 32;

// How often a node waiting to reconnect looks whether gRPC has a connection again.
constexpr std::chrono::milliseconds kChannelCheck{100};

}  // namespace

plng::ticket::PrivateKey readNodeKey(const std::string& path) {
  std::string content;
  try {
    content = base::readFile(path);
  } catch (const base::SysError&) {
    throw std::invalid_argument("cannot read node key file " + path);
  }
  plng::ticket::PrivateKey key{};
  const std::string_view text = base::trim(content);
  std::string bytes;
  if (content.size() == kKeyBytes) {
    bytes = content;
  } else if (text.size() == 2 * kKeyBytes) {
    try {
      bytes = base::fromHex(text);
    } catch (const std::invalid_argument&) {
    }
  }
  if (bytes.size() == kKeyBytes) {
    std::memcpy(key.data(), bytes.data(), kKeyBytes);
    return key;
  }
  throw std::invalid_argument(
      path + ": expected a raw 32-byte Ed25519 key (or 64 hex digits), got " +
      std::to_string(content.size()) + " bytes; create one with `plcctl node keygen`");
}

std::shared_ptr<grpc::Channel> PlcSync::makeChannel(const std::string& address,
                                                    const std::string& tls_ca_pem,
                                                    std::chrono::milliseconds reconnect_min,
                                                    std::chrono::milliseconds reconnect_max,
                                                    std::int64_t max_state_bytes) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(max_state_bytes));
  // plcd (gRPC's default server policy) refuses pings more often than every
  // 5 minutes on an idle connection; more would get the stream closed.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 300000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  // gRPC reads its "minimum reconnect backoff" as the shortest time a connection
  // attempt is given, not as a delay: it must leave room for a handshake.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(kConnectTimeout.count()));
  // Between attempts gRPC backs off from the initial to the maximum delay, with
  // its own jitter (±20%).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(reconnect_min.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(reconnect_max.count()));
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls_ca_pem.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = tls_ca_pem;
    creds = grpc::SslCredentials(ssl);
  }
  return grpc::CreateCustomChannel(address, creds, args);
}

PlcSync::PlcSync(std::shared_ptr<grpc::Channel> channel, Options options, StateHandler on_state,
                 std::function<PlcStatePosition()> known_state)
    : channel_(std::move(channel)),
      auth_(pb::Auth::NewStub(channel_)),
      sync_(pb::NodeSync::NewStub(channel_)),
      options_(std::move(options)),
      on_state_(std::move(on_state)),
      known_state_(std::move(known_state)) {}

PlcSync::~PlcSync() { stop(); }

void PlcSync::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void PlcSync::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (stream_context_ != nullptr) stream_context_->TryCancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string PlcSync::connection() const {
  switch (connection_.load()) {
    case Connection::kStream:
      return "stream";
    case Connection::kPolling:
      return "polling";
    case Connection::kOffline:
      break;
  }
  return "offline";
}

grpc::Status PlcSync::reportStatus(const pb::NodeStatusReport& report) {
  if (connection_.load() == Connection::kOffline)
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "PLC is offline");
  {
    std::lock_guard lock(mutex_);
    if (token_.empty())
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not logged in to PLC yet");
  }
  auto ctx = authedContext();
  ctx->set_deadline(std::chrono::system_clock::now() + kReportTimeout);
  pb::Empty empty;
  return sync_->ReportStatus(ctx.get(), report, &empty);
}

std::chrono::milliseconds PlcSync::jittered(std::chrono::milliseconds backoff) {
  const auto half = backoff.count() / 2;
  std::uniform_int_distribution<std::chrono::milliseconds::rep> draw(half, backoff.count());
  return std::chrono::milliseconds(draw(jitter_));
}

bool PlcSync::sleepUntil(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  wake_.wait_until(lock, deadline, [&] { return stopping_; });
  return !stopping_;
}

std::unique_ptr<grpc::ClientContext> PlcSync::authedContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  std::lock_guard lock(mutex_);
  if (!token_.empty()) ctx->AddMetadata("authorization", "Bearer " + token_);
  return ctx;
}

NodeLogin loginAsNode(pb::Auth::Stub& auth, const std::string& hostname,
                      const plng::ticket::PrivateKey& node_key) {
  pb::NodeChallengeRequest challenge_request;
  challenge_request.set_hostname(hostname);
  pb::NodeChallengeResponse challenge;
  grpc::ClientContext challenge_ctx;
  challenge_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  NodeLogin result;
  result.status = auth.GetNodeChallenge(&challenge_ctx, challenge_request, &challenge);
  if (!result.status.ok()) return result;
  const auto signature =
      plng::ticket::sign(node_key, plng::proto::nodeLoginMessage(hostname, challenge.nonce()));
  pb::NodeLoginRequest request;
  request.set_hostname(hostname);
  request.set_nonce(challenge.nonce());
  request.set_signature(std::string(signature.begin(), signature.end()));
  pb::LoginResponse response;
  grpc::ClientContext login_ctx;
  login_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  result.status = auth.NodeLogin(&login_ctx, request, &response);
  if (result.status.ok()) result.token = response.token();
  return result;
}

bool PlcSync::login() {
  auto [status, token] = loginAsNode(*auth_, options_.hostname, options_.node_key);
  if (status.ok()) {
    std::lock_guard lock(mutex_);
    token_ = std::move(token);
    spdlog::info("logged in to PLC as node {}", options_.hostname);
    return true;
  }
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    spdlog::debug("PLC unreachable for node login: {}", status.error_message());
  } else {
    spdlog::error(
        "node login as {} refused by PLC: {} (is this node's key registered? "
        "plcctl node update {} --public-key-file ...)",
        options_.hostname, status.error_message(), options_.hostname);
  }
  return false;
}

bool PlcSync::watchOnce() {
  auto ctx = authedContext();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    stream_context_ = ctx.get();
  }
  pb::WatchSliversRequest request;
  const auto known = known_state_();
  request.set_since_version(known.version);
  request.set_since_epoch(known.epoch);
  const auto opened = Clock::now();
  auto reader = sync_->WatchSlivers(ctx.get(), request);
  // PLC sends nothing while this node is up to date; a ready channel with the
  // call in flight is the best sign the stream is open.
  if (channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) {
    connection_ = Connection::kStream;
  }
  bool received = false;
  pb::NodeState state;
  while (reader->Read(&state)) {
    if (!received) {
      spdlog::info("PLC stream open (state epoch {}, version {})", state.epoch(), state.version());
    }
    received = true;
    connection_ = Connection::kStream;
    on_state_(state);
  }
  grpc::Status status = reader->Finish();
  {
    std::lock_guard lock(mutex_);
    stream_context_ = nullptr;
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) token_.clear();
  }
  connection_ = Connection::kOffline;
  const bool long_lived = Clock::now() - opened > std::chrono::seconds(5);
  if (status.error_code() != grpc::StatusCode::CANCELLED) {
    if (received || long_lived) {
      spdlog::warn("PLC stream ended: {}", status.ok() ? "closed by PLC" : status.error_message());
    } else {
      spdlog::debug("PLC stream failed: {}", status.error_message());
    }
  }
  return received || long_lived || status.ok();
}

bool PlcSync::pollOnce() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool have_token;
    {
      std::lock_guard lock(mutex_);
      have_token = !token_.empty();
    }
    if (!have_token && !login()) break;
    auto ctx = authedContext();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    pb::GetSliversRequest request;
    pb::NodeState state;
    grpc::Status status = sync_->GetSlivers(ctx.get(), request, &state);
    if (status.ok()) {
      connection_ = Connection::kPolling;
      on_state_(state);
      return true;
    }
    if (status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
      spdlog::debug("GetSlivers failed: {}", status.error_message());
      break;
    }
    std::lock_guard lock(mutex_);
    token_.clear();
  }
  connection_ = Connection::kOffline;
  return false;
}

void PlcSync::run() {
  auto backoff = options_.reconnect_min;
  auto next_poll = Clock::now();
  bool reported_offline = false;
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    bool have_token;
    {
      std::lock_guard lock(mutex_);
      have_token = !token_.empty();
    }
    if (have_token || login()) {
      if (watchOnce()) {
        backoff = options_.reconnect_min;
        reported_offline = false;
      }
    }
    // PLC unreachable, rather than refusing us: try again as soon as gRPC has a
    // connection to it, without sitting out the rest of the backoff.
    const bool unreachable = channel_->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY;
    // The stream is down: poll while waiting to reconnect.
    const auto retry_at = Clock::now() + jittered(backoff);
    while (Clock::now() < retry_at) {
      if (Clock::now() >= next_poll) {
        if (!pollOnce() && !reported_offline) {
          const auto known = known_state_();
          spdlog::warn("PLC unreachable; enforcing the last known state (epoch {}, version {})",
                       known.epoch, known.version);
          reported_offline = true;
        }
        next_poll = Clock::now() + options_.poll_interval;
      }
      if (unreachable && channel_->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY) break;
      if (!sleepUntil(std::min({retry_at, next_poll, Clock::now() + kChannelCheck}))) return;
    }
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

}  // namespace plng::sliverd
