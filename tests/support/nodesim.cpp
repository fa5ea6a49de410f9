#include "tests/support/nodesim.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <stdexcept>

#include "tests/support/plc_client.h"
#include "tests/support/plc_node_login.h"

namespace plng::test {

namespace pb = planetlab::v1;

struct NodeSim::Channel {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Auth::Stub> auth;
  std::unique_ptr<pb::NodeSync::Stub> nodeSync;
};

struct NodeSim::LoginCall {
  grpc::ClientContext challengeContext;
  pb::NodeChallengeRequest challengeRequest;
  pb::NodeChallengeResponse challenge;
  grpc::ClientContext loginContext;
  pb::NodeLoginRequest loginRequest;
  pb::LoginResponse session;
};

struct NodeSim::WatchState {
  Predicate predicate;
  std::vector<std::size_t> nodes;
  std::vector<long> position;  // per simulated node: its index in `nodes`, or -1
  std::vector<std::optional<Clock::time_point>> satisfiedAt;
  std::size_t remaining = 0;
};

// One node's WatchSlivers stream. gRPC calls OnReadDone and OnDone on its own
// threads; OnDone is the last call, after which gRPC no longer touches the
// reactor, so NodeSim frees it once it has seen every stream's OnDone.
class NodeSim::Stream final : public grpc::ClientReadReactor<pb::NodeState> {
 public:
  Stream(NodeSim& sim, std::size_t node) : sim_(sim), node_(node) {}

  void start(pb::NodeSync::Stub& stub, const std::string& token) {
    context_.AddMetadata("authorization", "Bearer " + token);
    request_.set_hostname(sim_.hostname(node_));
    request_.set_since_version(0);
    stub.async()->WatchSlivers(&context_, &request_, this);
    StartRead(&state_);
    StartCall();
  }

  void cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is over; OnDone follows with its status
    const auto at = Clock::now();
    sim_.received(node_, at, std::move(state_));
    state_.Clear();
    StartRead(&state_);
  }

  void OnDone(const grpc::Status& status) override { sim_.ended(node_, status); }

 private:
  NodeSim& sim_;
  const std::size_t node_;
  grpc::ClientContext context_;
  pb::WatchSliversRequest request_;
  pb::NodeState state_;
};

NodeSim::NodeSim(std::vector<SimulatedNode> nodes, NodeSimOptions options)
    : nodes_(std::move(nodes)), options_(std::move(options)), records_(nodes_.size()) {
  if (options_.addresses.empty()) throw std::invalid_argument("NodeSim: no plcd address");
  if (options_.streamsPerChannel < 1) {
    throw std::invalid_argument("NodeSim: streamsPerChannel must be at least 1");
  }
  const std::size_t replicas = options_.addresses.size();
  const auto perChannel = static_cast<std::size_t>(options_.streamsPerChannel);
  // channels_[first[r] + c] is channel c of replica r.
  std::vector<std::size_t> first(replicas);
  for (std::size_t r = 0; r < replicas; ++r) {
    const std::size_t nodesOfReplica =
        nodes_.size() / replicas + (r < nodes_.size() % replicas ? 1 : 0);
    const std::size_t count = (nodesOfReplica + perChannel - 1) / perChannel;
    first[r] = channels_.size();
    for (std::size_t c = 0; c < count; ++c) {
      grpc::ChannelArguments args;
      // A subchannel pool of its own: without it every channel to the same address
      // shares one subchannel, i.e. one TCP connection for all streams.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      auto channel = std::make_unique<Channel>();
      channel->channel = grpc::CreateCustomChannel(options_.addresses[r],
                                                   grpc::InsecureChannelCredentials(), args);
      channel->auth = pb::Auth::NewStub(channel->channel);
      channel->nodeSync = pb::NodeSync::NewStub(channel->channel);
      channels_.push_back(std::move(channel));
    }
  }
  channelCount_ = channels_.size();
  channelIndex_.resize(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    channelIndex_[i] = first[i % replicas] + (i / replicas) / perChannel;
  }
}

// gRPC may run a callback on the thread that cancels or starts a call (when it
// completes at once), so no call is started or cancelled under mutex_.
NodeSim::~NodeSim() {
  std::size_t started = 0;
  {
    std::lock_guard lock(mutex_);
    stopLogins_ = true;
    started = loginsStarted_;
  }
  for (std::size_t i = 0; i < started; ++i) {
    logins_[i]->challengeContext.TryCancel();
    logins_[i]->loginContext.TryCancel();
  }
  for (auto& stream : streams_) stream->cancel();
  std::unique_lock lock(mutex_);
  changed_.wait(lock,
                [&] { return loginsDone_ == loginsStarted_ && counts_.ended == counts_.opened; });
}

// ------------------------------------------------------------------ logins

NodeSim::LoginResult NodeSim::loginAll() {
  {
    std::lock_guard lock(mutex_);
    if (loginsStarted_ != 0) throw std::logic_error("NodeSim::loginAll: called twice");
  }
  const auto start = Clock::now();
  for (std::size_t i = 0; i < nodes_.size(); ++i) logins_.push_back(std::make_unique<LoginCall>());
  const std::size_t window =
      std::min(nodes_.size(), static_cast<std::size_t>(std::max(1, options_.loginsInFlight)));
  for (std::size_t k = 0; k < window; ++k) startNextLogin();
  const bool complete =
      waitFor([&] { return loginsDone_ == nodes_.size(); }, Clock::time_point::max());
  std::unique_lock lock(mutex_);
  if (!complete) {
    // Start no more and let the outstanding ones end (soon: they are on loopback
    // and have a deadline).
    stopLogins_ = true;
    changed_.wait(lock, [&] { return loginsDone_ == loginsStarted_; });
    loginResult_.interrupted = true;
  }
  loginResult_.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return loginResult_;
}

void NodeSim::startNextLogin() {
  std::size_t node = 0;
  {
    // Under the lock: whoever waits for loginsDone_ == loginsStarted_ sees every
    // login that will start.
    std::lock_guard lock(mutex_);
    if (stopLogins_ || loginsStarted_ == nodes_.size()) return;
    node = loginsStarted_++;
  }
  LoginCall& call = *logins_[node];
  Channel& channel = channelOf(node);
  const auto deadline = std::chrono::system_clock::now() + options_.loginDeadline;
  call.challengeContext.set_deadline(deadline);
  call.loginContext.set_deadline(deadline);
  call.challengeRequest.set_hostname(nodes_[node].hostname);
  channel.auth->async()->GetNodeChallenge(
      &call.challengeContext, &call.challengeRequest, &call.challenge,
      [this, node, &call, &channel](grpc::Status status) {
        if (!status.ok()) {
          loginFinished(node, status, {});
          return;
        }
        call.loginRequest = plng::test::signedNodeLogin(nodes_[node].hostname,
                                                        call.challenge.nonce(), nodes_[node].key);
        channel.auth->async()->NodeLogin(&call.loginContext, &call.loginRequest, &call.session,
                                         [this, node, &call](grpc::Status loginStatus) {
                                           loginFinished(node, loginStatus, call.session.token());
                                         });
      });
}

void NodeSim::loginFinished(std::size_t node, const grpc::Status& status, std::string token) {
  {
    std::lock_guard lock(mutex_);
    if (status.ok()) {
      records_[node].token = std::move(token);
      ++loginResult_.succeeded;
    } else {
      ++loginResult_.failed;
      if (loginResult_.firstFailure.empty()) {
        loginResult_.firstFailure =
            nodes_[node].hostname + ": " + plng::test::describeStatus(status);
      }
    }
    ++loginsDone_;
  }
  changed_.notify_all();
  startNextLogin();
}

// ------------------------------------------------------------------ streams

void NodeSim::openStreams() {
  std::vector<std::size_t> ready;
  {
    std::lock_guard lock(mutex_);
    if (!streams_.empty()) throw std::logic_error("NodeSim::openStreams: streams already open");
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (!records_[i].token.empty()) ready.push_back(i);
    }
    counts_.opened = ready.size();
  }
  // Every stream exists before the first starts: OnDone of an early one may run
  // (and the destructor wait on `opened`) while the later ones are being made.
  for (std::size_t node : ready) streams_.push_back(std::make_unique<Stream>(*this, node));
  for (std::size_t k = 0; k < ready.size(); ++k) {
    streams_[k]->start(*channelOf(ready[k]).nodeSync, records_[ready[k]].token);
  }
}

void NodeSim::received(std::size_t node, Clock::time_point at, pb::NodeState&& state) {
  bool someWatchDone = false;
  {
    std::lock_guard lock(mutex_);
    NodeRecord& record = records_[node];
    record.history.push_back(ReceivedState{at, state.epoch(), state.version()});
    ++counts_.statesReceived;
    for (const auto& watch : watches_) {
      const long position = watch->position[node];
      if (position < 0) continue;
      auto& satisfied = watch->satisfiedAt[static_cast<std::size_t>(position)];
      if (satisfied || !watch->predicate(state)) continue;
      satisfied = at;
      someWatchDone = --watch->remaining == 0 || someWatchDone;
    }
    record.latest = std::move(state);
  }
  if (someWatchDone) changed_.notify_all();
}

void NodeSim::ended(std::size_t node, const grpc::Status& status) {
  {
    std::lock_guard lock(mutex_);
    ++counts_.ended;
    if (counts_.firstEnd.empty()) {
      counts_.firstEnd = nodes_[node].hostname + ": " + plng::test::describeStatus(status);
    }
  }
  changed_.notify_all();
}

NodeSim::StreamCounts NodeSim::streamCounts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

std::optional<pb::NodeState> NodeSim::latest(std::size_t node) const {
  std::lock_guard lock(mutex_);
  return records_.at(node).latest;
}

std::vector<ReceivedState> NodeSim::history(std::size_t node) const {
  std::lock_guard lock(mutex_);
  return records_.at(node).history;
}

// ------------------------------------------------------------------ watches

std::unique_ptr<NodeSim::Watch> NodeSim::watch(std::vector<std::size_t> nodes,
                                               Predicate predicate) {
  auto state = std::make_shared<WatchState>();
  state->predicate = std::move(predicate);
  state->position.assign(nodes_.size(), -1);
  for (std::size_t k = 0; k < nodes.size(); ++k) {
    if (nodes[k] >= nodes_.size()) throw std::out_of_range("NodeSim::watch: no such node");
    if (state->position[nodes[k]] >= 0) {
      throw std::invalid_argument("NodeSim::watch: node " + nodes_[nodes[k]].hostname +
                                  " given twice");
    }
    state->position[nodes[k]] = static_cast<long>(k);
  }
  state->satisfiedAt.resize(nodes.size());
  state->remaining = nodes.size();
  state->nodes = std::move(nodes);
  std::lock_guard lock(mutex_);
  // A node that already holds a satisfying state satisfied it when that came.
  for (std::size_t k = 0; k < state->nodes.size(); ++k) {
    const NodeRecord& record = records_[state->nodes[k]];
    if (record.latest && state->predicate(*record.latest)) {
      state->satisfiedAt[k] = record.history.back().at;
      --state->remaining;
    }
  }
  watches_.push_back(state);
  return std::unique_ptr<Watch>(new Watch(*this, std::move(state)));
}

void NodeSim::unregister(const std::shared_ptr<WatchState>& watch) {
  std::lock_guard lock(mutex_);
  watches_.remove(watch);
}

bool NodeSim::waitFor(const std::function<bool()>& done, Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  while (!done()) {
    if (options_.stopRequested && options_.stopRequested()) return false;
    const auto now = Clock::now();
    if (now >= deadline) return false;
    // Wakes now and then to look at the stop request, which comes from a signal.
    changed_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(100)));
  }
  return true;
}

NodeSim::Watch::~Watch() { sim_.unregister(state_); }

bool NodeSim::Watch::waitUntil(Clock::time_point deadline) {
  return sim_.waitFor([&] { return state_->remaining == 0; }, deadline);
}

std::vector<std::optional<NodeSim::Clock::time_point>> NodeSim::Watch::satisfiedAt() const {
  std::lock_guard lock(sim_.mutex_);
  return state_->satisfiedAt;
}

std::size_t NodeSim::Watch::remaining() const {
  std::lock_guard lock(sim_.mutex_);
  return state_->remaining;
}

}  // namespace plng::test
