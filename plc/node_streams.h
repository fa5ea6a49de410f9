// NodeStreams: the open WatchSlivers streams of one plcd (docs/plc.md, "Node
// state and its stream"). Each stream is a gRPC callback reactor: it holds no
// thread while it waits, only its request, the state it last sent and at most
// one state queued behind a write in flight. A few workers compute states:
// when the change bus reports a commit, the streams of the nodes it can affect
// are marked (once, however many changes arrive before a worker takes them:
// changes are batched per stream), and a worker computes each marked stream's
// state once and sends it if its content changed. An open stream is its
// node's contact: every `contact` the nodes of open streams are recorded as
// seen, in one batch. Every change notifies (slice expiry too, through
// ExpirySweeper), so states are recomputed whole without one only every
// `resync`, a safety net that costs each stream one computation.
//
// A change to the destination blacklist alone (every node's state, one part of
// it) does not recompute every node: a stream whose node had no other change
// since its last state gets that state with the new blacklist (Refresh::base),
// valid when every change this plcd was told of up to the new version has been
// seen and none of them named the node.
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
  struct Refresh {
    bool touch = false;  // record the node's contact
    // The stream's last state, when only the blacklist changed since (as far
    // as this plcd was told): the computation may give it back with the new
    // blacklist and stamp instead of computing the whole state, and says so.
    const planetlab::v1::NodeState* base = nullptr;
    bool patched = false;
  };
  // One computation of a stream's state, through RpcRunner (the token checked
  // again each time: a deleted node or revoked session ends the stream).
  // Fills `state` and the node's id.
  using Compute = std::function<grpc::Status(
      const CallOrigin& origin, const planetlab::v1::WatchSliversRequest& request, Refresh& refresh,
      planetlab::v1::NodeState& state, std::int64_t& node_id)>;

  // Records the nodes as seen now (last contact). On the contact thread;
  // may throw (logged).
  using RecordContact = std::function<void(const std::vector<std::int64_t>& node_ids)>;

  struct Options {
    int workers = 4;
    std::chrono::milliseconds contact{30000};
    std::chrono::milliseconds resync{600000};
    // How soon a stream tries again while the database is away.
    std::chrono::milliseconds retry{1000};
    // Called with the time from a change's notification to the new state it
    // made written to a stream (metrics); on a worker, so it must be quick.
    std::function<void(std::chrono::duration<double>)> fanout_lag;
  };

  NodeStreams(Compute compute, RecordContact record_contact, Options options);
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
  // How many notifications changed() has had: a cache of something read after
  // the latest one is current while this stays the same.
  std::uint64_t notifications() const;
  // Whole computations and blacklist patches so far (tests, benchmarks).
  std::uint64_t computations() const { return computations_; }
  std::uint64_t patches() const { return patches_; }

 private:
  class Stream;
  friend class Stream;

  void mark(const std::shared_ptr<Stream>& stream, bool touch, bool whole = true);
  void work();
  void recheckLoop();
  void closed(std::uint64_t id);

  Compute compute_;
  RecordContact record_contact_;
  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable recheck_wake_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Stream>> streams_;
  std::deque<std::shared_ptr<Stream>> queue_;
  std::uint64_t next_id_ = 1;
  std::int64_t notified_version_ = 0;  // of the latest notification (0: unknown)
  std::uint64_t notifications_ = 0;
  std::atomic<std::uint64_t> computations_{0};
  std::atomic<std::uint64_t> patches_{0};
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::thread recheck_;
};

}  // namespace plng::plc
