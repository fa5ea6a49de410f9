// NodeStreams (plc/node_streams.h) behind a real gRPC server in this process,
// with a state computation of the test's own (no database): a change reaches
// only the streams of the nodes it names, changes that pile up while a stream
// waits for a worker are computed once, streams cost no thread each, and
// stop() ends every stream.
#include "plc/node_streams.h"

#include <dirent.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proto/plc.grpc.pb.h"

namespace {

namespace pb = planetlab::v1;
using namespace std::chrono_literals;
using plng::plc::CallOrigin;
using plng::plc::ChangeScope;
using plng::plc::NodeStreams;

// A node's state is its hostname ("node<id>") and a content counter per node,
// which the test advances; the version is a global counter.
class World {
 public:
  // A commit; returns its version.
  std::int64_t bump(const std::vector<std::int64_t>& nodes) {
    std::lock_guard lock(mutex_);
    for (auto id : nodes) ++content_[id];
    return ++version_;
  }
  std::int64_t bumpBlacklist() {
    std::lock_guard lock(mutex_);
    ++blacklist_;
    return ++version_;
  }

  grpc::Status compute(const pb::WatchSliversRequest& request, NodeStreams::Refresh& refresh,
                       pb::NodeState& state, std::int64_t& node_id) {
    if (request.hostname().rfind("node", 0) != 0) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such node");
    }
    node_id = std::stoll(request.hostname().substr(4));
    std::this_thread::sleep_for(compute_time);
    std::lock_guard lock(mutex_);
    if (refresh.base != nullptr) {
      state = *refresh.base;
      refresh.patched = true;
    } else {
      ++computations_[node_id];
      state.set_hostname(request.hostname());
      state.set_epoch("test");
      (*state.mutable_node_tags())["content"] = std::to_string(content_[node_id]);
    }
    state.set_version(version_);
    (*state.mutable_node_tags())["blacklist"] = std::to_string(blacklist_);
    return grpc::Status::OK;
  }

  int computations(std::int64_t node_id) {
    std::lock_guard lock(mutex_);
    return computations_[node_id];
  }

  std::chrono::milliseconds compute_time{0};

 private:
  std::mutex mutex_;
  std::int64_t version_ = 1;
  int blacklist_ = 0;
  std::map<std::int64_t, int> content_;
  std::map<std::int64_t, int> computations_;
};

class Service : public pb::NodeSync::WithCallbackMethod_WatchSlivers<pb::NodeSync::Service> {
 public:
  explicit Service(NodeStreams& streams) : streams_(streams) {}
  grpc::ServerWriteReactor<pb::NodeState>* WatchSlivers(
      grpc::CallbackServerContext* ctx, const pb::WatchSliversRequest* request) override {
    return streams_.open(ctx, request);
  }

 private:
  NodeStreams& streams_;
};

// One node's stream, read by the callback client API (no thread of its own).
class Watcher : public grpc::ClientReadReactor<pb::NodeState> {
 public:
  Watcher(pb::NodeSync::Stub& stub, const std::string& hostname) {
    pb::WatchSliversRequest request;
    request.set_hostname(hostname);
    stub.async()->WatchSlivers(&context_, &request, this);
    StartRead(&incoming_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    {
      std::lock_guard lock(mutex_);
      states_.push_back(incoming_);
    }
    changed_.notify_all();
    StartRead(&incoming_);
  }

  void OnDone(const grpc::Status& status) override {
    // Notified under the lock: the test may delete this watcher once it sees done_.
    std::lock_guard lock(mutex_);
    status_ = status;
    done_ = true;
    changed_.notify_all();
  }

  // The states received once there are at least `n` (or after 5 s).
  std::vector<pb::NodeState> waitFor(std::size_t n) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 5s, [&] { return states_.size() >= n || done_; });
    return states_;
  }

  std::optional<grpc::Status> waitDone() {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 5s, [&] { return done_; });
    if (!done_) return std::nullopt;
    return status_;
  }

  void cancel() { context_.TryCancel(); }

 private:
  grpc::ClientContext context_;
  pb::NodeState incoming_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<pb::NodeState> states_;
  grpc::Status status_;
  bool done_ = false;
};

int threadCount() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/task");
  REQUIRE(dir != nullptr);
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  ::closedir(dir);
  return n;
}

struct Harness {
  explicit Harness(int workers = 2, std::chrono::milliseconds contact = std::chrono::hours(1))
      : streams(
            [this](const CallOrigin&, const pb::WatchSliversRequest& request,
                   NodeStreams::Refresh& refresh, pb::NodeState& state, std::int64_t& node_id) {
              return world.compute(request, refresh, state, node_id);
            },
            [this](const std::vector<std::int64_t>& nodes) {
              std::lock_guard lock(contact_mutex);
              contacts.push_back(nodes);
            },
            NodeStreams::Options{.workers = workers,
                                 .contact = contact,
                                 .resync = std::chrono::hours(1),
                                 .fanout_lag = {}}),
        service(streams) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(server);
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
    stub = pb::NodeSync::NewStub(channel);
  }
  ~Harness() {
    // A client reactor must outlive its call: every stream ends first.
    streams.stop();
    for (auto& w : watchers) {
      if (!w->waitDone()) w->cancel();
      w->waitDone();
    }
    server->Shutdown(std::chrono::system_clock::now() + 2s);
    watchers.clear();
  }

  Watcher& watch(const std::string& hostname) {
    watchers.push_back(std::make_unique<Watcher>(*stub, hostname));
    return *watchers.back();
  }

  // A stream that has had its first state.
  Watcher& watchReady(const std::string& hostname) {
    Watcher& watcher = watch(hostname);
    REQUIRE(watcher.waitFor(1).size() == 1);
    return watcher;
  }

  World world;
  std::mutex contact_mutex;
  std::vector<std::vector<std::int64_t>> contacts;
  NodeStreams streams;
  Service service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::NodeSync::Stub> stub;
  std::vector<std::unique_ptr<Watcher>> watchers;
};

}  // namespace

TEST_CASE("a change reaches only the streams of the nodes it names", "[plc]") {
  Harness h;
  Watcher& one = h.watchReady("node1");
  Watcher& two = h.watchReady("node2");
  const int two_before = h.world.computations(2);

  h.world.bump({1});
  h.streams.changed(ChangeScope::onlyNodes({1}));
  auto states = one.waitFor(2);
  REQUIRE(states.size() == 2);
  CHECK(states[1].version() > states[0].version());
  CHECK(states[1].node_tags().at("content") == "1");
  std::this_thread::sleep_for(200ms);
  CHECK(h.world.computations(2) == two_before);  // node2's stream was not even computed
  CHECK(two.waitFor(1).size() == 1);

  // Every node: both recompute; only node2's content changed.
  h.world.bump({2});
  h.streams.changed(ChangeScope::everyNode());
  CHECK(two.waitFor(2).size() == 2);
  std::this_thread::sleep_for(200ms);
  CHECK(one.waitFor(2).size() == 2);  // same content: nothing sent
  CHECK(h.world.computations(2) == two_before + 1);
}

TEST_CASE("changes that pile up while a stream waits are computed once", "[plc]") {
  Harness h(/*workers=*/1);
  Watcher& one = h.watchReady("node1");
  const int before = h.world.computations(1);
  // The one worker is busy 100 ms per computation: 50 changes in a burst are
  // batched into at most two computations (the one running, and one more).
  h.world.compute_time = 100ms;
  for (int i = 0; i < 50; ++i) {
    h.world.bump({1});
    h.streams.changed(ChangeScope::onlyNodes({1}));
  }
  std::this_thread::sleep_for(600ms);
  CHECK(h.world.computations(1) - before <= 2);
  const auto states = one.waitFor(2);
  REQUIRE(states.size() >= 2);
  CHECK(states.back().node_tags().at("content") == "50");
}

TEST_CASE("open streams hold no thread, and stop() ends them all", "[plc]") {
  Harness h;
  for (int i = 0; i < 10; ++i) h.watch("node" + std::to_string(i + 1));
  for (auto& w : h.watchers) REQUIRE(w->waitFor(1).size() == 1);
  const int with_ten = threadCount();
  for (int i = 10; i < 500; ++i) h.watch("node" + std::to_string(i + 1));
  for (auto& w : h.watchers) REQUIRE(w->waitFor(1).size() == 1);
  CHECK(h.streams.size() == 500);
  INFO("threads with 10 streams: " << with_ten << ", with 500: " << threadCount());
  // gRPC's executor may add a few threads under load; a thread per stream would add 490.
  CHECK(threadCount() < with_ten + 25);

  // A client that goes away leaves the registry.
  h.watchers.front()->cancel();
  REQUIRE(h.watchers.front()->waitDone());
  for (int i = 0; i < 50 && h.streams.size() != 499; ++i) std::this_thread::sleep_for(20ms);
  CHECK(h.streams.size() == 499);

  h.streams.stop();
  for (auto& w : h.watchers) {
    auto status = w->waitDone();
    REQUIRE(status);
  }
  CHECK(h.watchers.back()->waitDone()->ok());
}

TEST_CASE("a stream whose computation fails ends with that status", "[plc]") {
  Harness h;
  Watcher& stranger = h.watch("printer.example.org");
  auto status = stranger.waitDone();
  REQUIRE(status);
  CHECK(status->error_code() == grpc::StatusCode::NOT_FOUND);
  for (int i = 0; i < 50 && h.streams.size() != 0; ++i) std::this_thread::sleep_for(20ms);
  CHECK(h.streams.size() == 0);
}

TEST_CASE("a blacklist change patches each stream's last state instead of computing it", "[plc]") {
  Harness h;
  Watcher& one = h.watchReady("node1");
  Watcher& two = h.watchReady("node2");
  const auto whole = h.streams.computations();

  auto scope = ChangeScope::blacklist();
  scope.version = h.world.bumpBlacklist();
  h.streams.changed(scope);
  for (Watcher* w : {&one, &two}) {
    const auto states = w->waitFor(2);
    REQUIRE(states.size() == 2);
    CHECK(states[1].node_tags().at("blacklist") == "1");
    CHECK(states[1].version() == scope.version);
  }
  CHECK(h.streams.patches() == 2);
  CHECK(h.streams.computations() == whole);

  // A change to node1 notified before the next blacklist change: node1 is
  // computed whole (its content changes), node2 patched.
  auto node_change = ChangeScope::onlyNodes({1});
  node_change.version = h.world.bump({1});
  h.streams.changed(node_change);
  scope.version = h.world.bumpBlacklist();
  h.streams.changed(scope);
  const auto states = one.waitFor(4);
  REQUIRE(states.size() >= 3);
  CHECK(states.back().node_tags().at("content") == "1");
  CHECK(states.back().node_tags().at("blacklist") == "2");
  CHECK(two.waitFor(3).back().node_tags().at("blacklist") == "2");
}

TEST_CASE("a patch newer than the notifications seen is computed whole", "[plc]") {
  Harness h;
  Watcher& one = h.watchReady("node1");
  // node1 changed in a commit whose notification has not arrived, after the
  // blacklist change being notified: a patch would claim that commit's version
  // without its content.
  auto scope = ChangeScope::blacklist();
  scope.version = h.world.bumpBlacklist();
  h.world.bump({1});
  h.streams.changed(scope);
  const auto states = one.waitFor(2);
  REQUIRE(states.size() == 2);
  CHECK(states[1].node_tags().at("content") == "1");
  CHECK(h.streams.patches() == 0);
}

TEST_CASE("open streams record their nodes' contact in batches, without computing", "[plc]") {
  Harness h(/*workers=*/2, /*contact=*/200ms);
  h.watchReady("node1");
  h.watchReady("node2");
  const auto whole = h.streams.computations();
  std::this_thread::sleep_for(700ms);
  CHECK(h.streams.computations() == whole);
  std::lock_guard lock(h.contact_mutex);
  REQUIRE_FALSE(h.contacts.empty());
  auto batch = h.contacts.back();
  std::sort(batch.begin(), batch.end());
  CHECK(batch == std::vector<std::int64_t>{1, 2});
}

TEST_CASE("a change's payload names its nodes, or every node when they do not fit", "[plc]") {
  using plng::plc::changePayload;
  using plng::plc::parseChangePayload;
  CHECK(changePayload(42, ChangeScope::everyNode()) == "42");
  CHECK(changePayload(42, ChangeScope::onlyNodes({17, 3, 17})) == "42 n:3,17");
  CHECK(parseChangePayload("42").all);
  CHECK(parseChangePayload("42").version == 42);
  CHECK(changePayload(43, ChangeScope::blacklist()) == "43 b");
  CHECK(parseChangePayload("43 b").blacklist_only);
  CHECK(parseChangePayload("43 b").all);
  CHECK(parseChangePayload("43 b").version == 43);
  const auto scope = parseChangePayload("42 n:3,17");
  CHECK_FALSE(scope.all);
  CHECK(scope.nodes == std::vector<std::int64_t>{3, 17});
  CHECK(scope.affects(17));
  CHECK_FALSE(scope.affects(4));
  // No node at all (a slice bound to none): nobody recomputes.
  CHECK(changePayload(7, ChangeScope::onlyNodes({})) == "7 n:");
  CHECK_FALSE(parseChangePayload("7 n:").all);
  CHECK(parseChangePayload("7 n:").nodes.empty());
  // What this plcd cannot read wakes every stream rather than none.
  CHECK(parseChangePayload("7 n:3,x").all);
  CHECK(parseChangePayload("7 n:3,,4").all);
  std::vector<std::int64_t> many;
  for (std::int64_t i = 1000000; i < 1002000; ++i) many.push_back(i);
  const auto big = changePayload(9, ChangeScope::onlyNodes(many));
  CHECK(big == "9");
}
