// NodeStreams: the open WatchSlivers streams of one plcd (docs/plc.md, "Node
// state and its stream"). Each stream is a gRPC callback reactor: it holds no
// thread while it waits, only its request, the state it last sent and at most
// one state queued behind a write in flight. A few workers compute states:
// when the change bus reports a commit, the streams of the nodes it can affect
// are marked (once, however many changes arrive before a worker takes them:
// changes are batched per stream), and a worker computes each marked stream's
// state once and sends it if its content changed. Every stream is also
// recomputed every `recheck` (slices expire without any commit), and then
// counts as the node's contact.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "plc/db.h"
#include "plc/rpc.h"
#include "proto/plc.grpc.pb.h"

namespace plng::plc {

class NodeStreams {
 public:
  // One computation of a stream's state, through RpcRunner (the token checked
  // again each time: a deleted node or revoked session ends the stream).
  // Fills `state` and the node's id; `touch`: record the node's contact.
  using Compute = std::function<grpc::Status(
      const CallOrigin& origin, const planetlab::v1::WatchSliversRequest& request, bool touch,
      planetlab::v1::NodeState& state, std::int64_t& node_id)>;

  struct Options {
    int workers = 4;
    std::chrono::milliseconds recheck{30000};
    // How soon a stream tries again while the database is away.
    std::chrono::milliseconds retry{1000};
  };

  NodeStreams(Compute compute, Options options);
  // stop().
  ~NodeStreams();
  NodeStreams(const NodeStreams&) = delete;
  NodeStreams& operator=(const NodeStreams&) = delete;

  // The reactor for a new WatchSlivers call (NodeSync's callback method).
  grpc::ServerWriteReactor<planetlab::v1::NodeState>* open(
      grpc::CallbackServerContext* ctx, const planetlab::v1::WatchSliversRequest* request);

  // A committed change (ChangeBus's subscriber): marks the streams of the
  // nodes it can affect.
  void changed(const ChangeScope& scope);

  // Ends every stream (status OK: plcd is stopping; nodes reconnect to another
  // replica) and stops the workers. Idempotent.
  void stop();

  std::size_t size() const;

 private:
  class Stream;
  friend class Stream;

  void mark(const std::shared_ptr<Stream>& stream, bool touch);
  void work();
  void recheckLoop();
  void closed(std::uint64_t id);

  Compute compute_;
  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable recheck_wake_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Stream>> streams_;
  std::deque<std::shared_ptr<Stream>> queue_;
  std::uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::thread recheck_;
};

}  // namespace plng::plc
