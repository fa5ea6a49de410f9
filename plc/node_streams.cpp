#include "plc/node_streams.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "plc/node_state.h"

namespace plng::plc {

namespace pb = planetlab::v1;
using Clock = std::chrono::steady_clock;

class NodeStreams::Stream : public grpc::ServerWriteReactor<pb::NodeState> {
 public:
  Stream(NodeStreams& owner, std::uint64_t id, CallOrigin origin, pb::WatchSliversRequest request)
      : owner_(owner), id_(id), origin_(std::move(origin)), request_(std::move(request)) {}

  // Computes the node's state and sends it if the node does not have it. On a
  // worker; never two at once for one stream. `whole`: something other than
  // the blacklist may have changed for this node.
  // `due_since`: when the earliest change this refresh serves was notified (none
  // for a stream's first state and resyncs), for the fan-out lag.
  void refresh(bool record_contact, bool whole, std::optional<Clock::time_point> due_since) {
    bool first;
    std::shared_ptr<const pb::NodeState> base;
    {
      std::lock_guard lock(mutex_);
      if (ending_) return;
      first = first_;
      if (!whole) base = last_;
    }
    pb::NodeState state;
    std::int64_t computed_node = 0;
    Refresh refresh{.touch = record_contact, .base = base.get()};
    grpc::Status status = owner_.compute_(origin_, request_, refresh, state, computed_node);
    if (status.ok() && refresh.patched) {
      // Only if this plcd has seen every change up to the patched version, and
      // none of them marked this node for a whole computation since it was
      // taken (notifications arrive in commit order).
      bool valid;
      {
        std::lock_guard registry(owner_.mutex_);
        valid = !full_pending && owner_.notified_version_ >= state.version();
        // The whole computation below starts after every change marked so far.
        if (!valid) full_pending = false;
      }
      if (valid) {
        ++owner_.patches_;
      } else {
        state.Clear();
        Refresh again{.touch = false};
        status = owner_.compute_(origin_, request_, again, state, computed_node);
        ++owner_.computations_;
      }
    } else {
      ++owner_.computations_;
    }
    if (!first && status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      // The database is away (restarting): keep the stream and try again
      // shortly rather than send every node into reconnect backoff at once.
      std::lock_guard lock(owner_.mutex_);
      next_resync = Clock::now() + owner_.options_.retry;
      return;
    }
    std::lock_guard lock(mutex_);
    if (!status.ok()) {
      endLocked(status);
      return;
    }
    if (ending_) return;
    {
      std::lock_guard registry(owner_.mutex_);
      node_id = computed_node;
    }
    std::string content = nodeStateContent(state);
    last_ = std::make_shared<const pb::NodeState>(state);
    if (first_) {
      first_ = false;
      // Versions compare only within one epoch: a node that holds a version of
      // another epoch (PLC's database restarted or was restored since) gets the
      // state whatever the numbers say.
      const bool node_behind =
          state.epoch() != request_.since_epoch() || state.version() > request_.since_version();
      sent_ = std::move(content);
      sent_stamp_ = StateStamp{state.epoch(), state.version()};
      if (node_behind) sendLocked(std::move(state));
      return;
    }
    // A new epoch goes out even with the same content, so the node compares the
    // next versions against this epoch's, not against the old one's.
    const bool new_epoch = state.epoch() != sent_stamp_.epoch;
    if (content == sent_ && !new_epoch) return;
    // Content changed without a newer version: a slice expired and
    // ExpirySweeper has not announced it yet. Its version bump marks this
    // stream again shortly. Within an epoch, versions a stream sends rise
    // strictly from the state it started with.
    if (!new_epoch && state.version() <= sent_stamp_.version) return;
    sent_ = std::move(content);
    sent_stamp_ = StateStamp{state.epoch(), state.version()};
    sendLocked(std::move(state));
    if (due_since && owner_.options_.fanout_lag) {
      owner_.options_.fanout_lag(Clock::now() - *due_since);
    }
  }

  // Finishes the stream with `status` once the write in flight, if any, is done.
  void end(const grpc::Status& status) {
    std::lock_guard lock(mutex_);
    endLocked(status);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mutex_);
    writing_ = false;
    if (!ok) {
      // The client is gone (or the call was cancelled): nothing more to say.
      endLocked(grpc::Status::OK);
    }
    if (ending_) {
      if (!finished_) {
        finished_ = true;
        Finish(end_status_);
      }
      return;
    }
    if (queued_) {
      in_flight_ = std::move(*queued_);
      queued_.reset();
      writing_ = true;
      StartWrite(&in_flight_);
    }
  }

  void OnCancel() override { end(grpc::Status::CANCELLED); }

  void OnDone() override {
    // Drops the registry's reference: the last holder (maybe a worker still
    // computing) deletes the stream; nothing of it is used after this.
    NodeStreams& owner = owner_;
    const std::uint64_t id = id_;
    owner.closed(id);
  }

  std::uint64_t id() const { return id_; }

  // The registry's bookkeeping, under owner_.mutex_.
  bool queued = false;                   // in owner_.queue_
  bool busy = false;                     // a worker is refreshing it
  bool marked_while_busy = false;        // refresh again when that worker is done
  bool touch = false;                    // the next refresh records the node's contact
  bool full_pending = false;             // the next refresh computes the whole state
  std::optional<Clock::time_point> due;  // the earliest change notified since the last refresh
  std::int64_t node_id = 0;              // 0 until the first refresh knows it
  Clock::time_point next_contact;
  Clock::time_point next_resync;

 private:
  void sendLocked(pb::NodeState state) {
    if (ending_) return;
    if (writing_) {
      // Only the newest state matters to a node that reads slowly.
      queued_ = std::move(state);
      return;
    }
    in_flight_ = std::move(state);
    writing_ = true;
    StartWrite(&in_flight_);
  }

  void endLocked(const grpc::Status& status) {
    if (ending_) return;
    ending_ = true;
    end_status_ = status;
    queued_.reset();
    if (!writing_) {
      finished_ = true;
      Finish(status);
    }
  }

  NodeStreams& owner_;
  const std::uint64_t id_;
  const CallOrigin origin_;
  const pb::WatchSliversRequest request_;
  std::mutex mutex_;
  bool first_ = true;
  std::shared_ptr<const pb::NodeState> last_;  // last computed (sent or not)
  std::string sent_;
  StateStamp sent_stamp_;
  bool writing_ = false;
  pb::NodeState in_flight_;
  std::optional<pb::NodeState> queued_;
  bool ending_ = false;
  bool finished_ = false;
  grpc::Status end_status_;
};

NodeStreams::NodeStreams(Compute compute, RecordContact record_contact, Options options)
    : compute_(std::move(compute)), record_contact_(std::move(record_contact)), options_(options) {
  options_.workers = std::max(1, options_.workers);
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { work(); });
  recheck_ = std::thread([this] { recheckLoop(); });
}

NodeStreams::~NodeStreams() { stop(); }

grpc::ServerWriteReactor<pb::NodeState>* NodeStreams::open(grpc::CallbackServerContext* ctx,
                                                           const pb::WatchSliversRequest* request) {
  std::lock_guard lock(mutex_);
  auto stream = std::make_shared<Stream>(*this, next_id_++, CallOrigin::of(*ctx), *request);
  streams_.emplace(stream->id(), stream);
  if (stopping_) {
    stream->end(grpc::Status(grpc::StatusCode::UNAVAILABLE, "plcd is stopping; reconnect"));
    return stream.get();
  }
  const auto now = Clock::now();
  stream->next_contact = now + options_.contact;
  stream->next_resync = now + options_.resync;
  // The first state, and the first contact.
  mark(stream, /*touch=*/true);
  return stream.get();
}

void NodeStreams::changed(const ChangeScope& scope) {
  const auto now = Clock::now();
  std::lock_guard lock(mutex_);
  for (auto& [id, stream] : streams_) {
    if (stream->node_id == 0 || scope.affects(stream->node_id)) {
      if (!stream->due) stream->due = now;
      mark(stream, /*touch=*/false, /*whole=*/!scope.blacklist_only);
    }
  }
  // After the marks: a patch checks this against its version (Stream::refresh).
  notified_version_ = scope.version;
  ++notifications_;
}

std::uint64_t NodeStreams::notifications() const {
  std::lock_guard lock(mutex_);
  return notifications_;
}

void NodeStreams::mark(const std::shared_ptr<Stream>& stream, bool touch, bool whole) {
  if (touch) stream->touch = true;
  if (whole) stream->full_pending = true;
  if (stream->queued) return;
  if (stream->busy) {
    stream->marked_while_busy = true;
    return;
  }
  stream->queued = true;
  queue_.push_back(stream);
  work_ready_.notify_one();
}

void NodeStreams::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::shared_ptr<Stream> stream = std::move(queue_.front());
    queue_.pop_front();
    stream->queued = false;
    stream->busy = true;
    const bool touch = std::exchange(stream->touch, false);
    const bool whole = std::exchange(stream->full_pending, false);
    const auto due = std::exchange(stream->due, std::nullopt);
    lock.unlock();
    try {
      stream->refresh(touch, whole, due);
    } catch (const std::exception& e) {
      spdlog::error("WatchSlivers: {}", e.what());
      stream->end(grpc::Status(grpc::StatusCode::INTERNAL, "internal error in WatchSlivers"));
    }
    lock.lock();
    stream->busy = false;
    // full_pending, if set meanwhile, is still set: mark() keeps it.
    if (std::exchange(stream->marked_while_busy, false)) {
      mark(stream, /*touch=*/false, /*whole=*/false);
    }
  }
}

void NodeStreams::recheckLoop() {
  const auto tick = std::min<std::chrono::milliseconds>(
      {options_.contact, options_.retry, std::chrono::milliseconds(500)});
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    recheck_wake_.wait_for(lock, tick, [&] { return stopping_; });
    if (stopping_) return;
    const auto now = Clock::now();
    std::vector<std::int64_t> seen;
    for (auto& [id, stream] : streams_) {
      if (stream->node_id != 0 && stream->next_contact <= now) {
        stream->next_contact = now + options_.contact;
        seen.push_back(stream->node_id);
      }
      if (stream->next_resync <= now) {
        stream->next_resync = now + options_.resync;
        mark(stream, /*touch=*/false);
      }
    }
    if (seen.empty() || !record_contact_) continue;
    lock.unlock();
    try {
      record_contact_(seen);
    } catch (const std::exception& e) {
      spdlog::warn("could not record the contact of {} nodes with open streams: {}", seen.size(),
                   e.what());
    }
    lock.lock();
  }
}

void NodeStreams::closed(std::uint64_t id) {
  std::shared_ptr<Stream> last;
  std::lock_guard lock(mutex_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  // Destroyed outside the lock when this was the last reference.
  last = std::move(it->second);
  streams_.erase(it);
}

void NodeStreams::stop() {
  std::vector<std::shared_ptr<Stream>> open;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    queue_.clear();
    for (auto& [id, stream] : streams_) open.push_back(stream);
  }
  work_ready_.notify_all();
  recheck_wake_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
  if (recheck_.joinable()) recheck_.join();
  for (auto& stream : open) stream->end(grpc::Status::OK);
}

std::size_t NodeStreams::size() const {
  std::lock_guard lock(mutex_);
  return streams_.size();
}

}  // namespace plng::plc
