// NodeSim: thousands of PLC nodes in one process, each with its own Ed25519 key,
// its own node session (Auth.GetNodeChallenge, then Auth.NodeLogin with the
// challenge signed) and its own NodeSync.WatchSlivers stream, as sliverd holds
// one. Unlike sliverd (a blocking reader on a thread of its own), every call here
// goes through gRPC's callback API, so an open stream costs a ClientContext and a
// buffer, not a thread: 5,000 nodes run on gRPC's few executor threads.
//
// Streams are spread over the plcd replicas given (node i talks to replica
// i mod R, as nodes configured with several PLC addresses would spread) and, per
// replica, over channels of at most streamsPerChannel streams each; every channel
// has a subchannel pool of its own, so each is a separate TCP connection (HTTP/2
// multiplexes a channel's streams over one connection).
//
// Every state a node receives is recorded (steady-clock receive time, epoch,
// version) and the latest kept whole. A Watch asks "every node of this set holds
// a state satisfying this predicate" and answers when each node first did: the
// predicate is tried on each node's latest state when the watch is made and on
// every state received after, at the moment it arrives.
//
//   NodeSim sim(nodes, options);
//   sim.loginAll();
//   sim.openStreams();
//   auto watch = sim.watch(everyNode, [](const NodeState& s) { return s.blacklist_size() > 0; });
//   ... AddBlacklistEntry ...
//   watch->waitUntil(deadline);
//   for (auto at : watch->satisfiedAt()) ...
//
// A stream that ends (plcd refused it, went away, the session expired) is not
// reopened: the bench reports it, since a reconnect would hide the failure.
#pragma once

#include <grpcpp/channel.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proto/plc.grpc.pb.h"
#include "proto/ticket.h"

namespace plng::test {

struct SimulatedNode {
  std::string hostname;
  plng::ticket::PrivateKey key{};  // whose public half PLC holds (AddNode)
};

struct NodeSimOptions {
  std::vector<std::string> addresses;  // plcd replicas, "127.0.0.1:<port>"
  int streamsPerChannel = 200;
  int loginsInFlight = 64;  // node logins outstanding at once
  std::chrono::seconds loginDeadline{30};
  // Polled while waiting (loginAll, Watch::waitUntil); true ends the wait early.
  std::function<bool()> stopRequested;
};

// One state as a node received it.
struct ReceivedState {
  std::chrono::steady_clock::time_point at;
  std::string epoch;
  std::int64_t version = 0;
};

class NodeSim {
 public:
  using Clock = std::chrono::steady_clock;
  // Runs on gRPC's threads under NodeSim's lock: keep it quick, and do not call
  // back into the NodeSim.
  using Predicate = std::function<bool(const planetlab::v1::NodeState&)>;

  NodeSim(std::vector<SimulatedNode> nodes, NodeSimOptions options);
  // Cancels every stream and waits until gRPC is done with each.
  ~NodeSim();
  NodeSim(const NodeSim&) = delete;
  NodeSim& operator=(const NodeSim&) = delete;

  std::size_t size() const { return nodes_.size(); }
  const std::string& hostname(std::size_t node) const { return nodes_[node].hostname; }
  std::size_t channelCount() const { return channelCount_; }

  struct LoginResult {
    std::size_t succeeded = 0;
    std::size_t failed = 0;
    std::string firstFailure;  // "<hostname>: <status>"
    double seconds = 0;
    bool interrupted = false;
  };
  // Logs every node in, at most loginsInFlight at a time; returns when all have
  // answered (or a stop was requested).
  LoginResult loginAll();

  // Opens WatchSlivers for every node that is logged in, with since_version 0 so
  // that plcd sends the current state at once. Returns once all are started.
  void openStreams();

  class Watch;
  // Watches `nodes` (distinct indexes) for a state satisfying `predicate`. The
  // Watch must not outlive the NodeSim.
  std::unique_ptr<Watch> watch(std::vector<std::size_t> nodes, Predicate predicate);

  struct StreamCounts {
    std::size_t opened = 0;
    std::size_t ended = 0;  // OnDone seen: refused, cancelled or broken
    std::uint64_t statesReceived = 0;
    std::string firstEnd;  // "<hostname>: <status>" of the first stream that ended
  };
  StreamCounts streamCounts() const;

  std::optional<planetlab::v1::NodeState> latest(std::size_t node) const;
  std::vector<ReceivedState> history(std::size_t node) const;

 private:
  struct Channel;
  struct LoginCall;
  class Stream;
  struct WatchState;

  Channel& channelOf(std::size_t node) { return *channels_[channelIndex_[node]]; }
  void startNextLogin();
  void loginFinished(std::size_t node, const grpc::Status& status, std::string token);
  void received(std::size_t node, Clock::time_point at, planetlab::v1::NodeState&& state);
  void ended(std::size_t node, const grpc::Status& status);
  void unregister(const std::shared_ptr<WatchState>& watch);
  bool waitFor(const std::function<bool()>& done, Clock::time_point deadline);

  struct NodeRecord {
    std::string token;
    std::optional<planetlab::v1::NodeState> latest;
    std::vector<ReceivedState> history;
  };

  const std::vector<SimulatedNode> nodes_;
  const NodeSimOptions options_;
  std::vector<std::unique_ptr<Channel>> channels_;
  std::vector<std::size_t> channelIndex_;  // per node
  std::size_t channelCount_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<NodeRecord> records_;
  std::list<std::shared_ptr<WatchState>> watches_;
  StreamCounts counts_;
  // Logins.
  std::vector<std::unique_ptr<LoginCall>> logins_;
  bool stopLogins_ = false;
  std::size_t loginsStarted_ = 0;  // also the next node to log in
  std::size_t loginsDone_ = 0;
  LoginResult loginResult_;
  // Streams: destroyed only after every one of them saw OnDone.
  std::vector<std::unique_ptr<Stream>> streams_;
};

class NodeSim::Watch {
 public:
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Waits until every watched node satisfied the predicate, `deadline` passed or
  // a stop was requested; true when every node did.
  bool waitUntil(Clock::time_point deadline);
  // When each watched node (in the order given) first held a satisfying state.
  std::vector<std::optional<Clock::time_point>> satisfiedAt() const;
  std::size_t remaining() const;

 private:
  friend class NodeSim;
  Watch(NodeSim& sim, std::shared_ptr<WatchState> state) : sim_(sim), state_(std::move(state)) {}

  NodeSim& sim_;
  std::shared_ptr<WatchState> state_;
};

}  // namespace plng::test
