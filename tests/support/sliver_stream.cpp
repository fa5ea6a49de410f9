#include "tests/support/sliver_stream.h"

#include <algorithm>

namespace plng::test {

namespace pb = planetlab::v1;

SliverStream::SliverStream(const PlcClient& client, std::int64_t since_version,
                           const std::string& hostname, const std::string& since_epoch,
                           std::chrono::seconds deadline)
    : ctx_(client.context(deadline)) {
  pb::WatchSliversRequest request;
  request.set_hostname(hostname);
  request.set_since_version(since_version);
  request.set_since_epoch(since_epoch);
  reader_ = client.nodeSync().WatchSlivers(ctx_.get(), request);
  thread_ = std::thread([this] {
    pb::NodeState state;
    while (reader_->Read(&state)) {
      std::lock_guard lock(mutex_);
      states_.push_back(state);
      changed_.notify_all();
    }
    grpc::Status status = reader_->Finish();
    std::lock_guard lock(mutex_);
    finished_ = std::move(status);
    changed_.notify_all();
  });
}

SliverStream::~SliverStream() {
  ctx_->TryCancel();
  thread_.join();
}

std::optional<pb::NodeState> SliverStream::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return taken_ < states_.size() || finished_; });
  if (taken_ >= states_.size()) return std::nullopt;
  return states_[taken_++];
}

std::vector<pb::NodeState> SliverStream::states() const {
  std::lock_guard lock(mutex_);
  return states_;
}

bool SliverStream::waitForSlices(const std::set<std::string>& slices,
                                 std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    if (states_.empty()) return false;
    std::set<std::string> held;
    for (const auto& sliver : states_.back().slivers()) held.insert(sliver.slice_name());
    return std::includes(held.begin(), held.end(), slices.begin(), slices.end());
  });
}

std::optional<grpc::Status> SliverStream::finished(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return finished_.has_value(); });
  return finished_;
}

void SliverStream::cancel() { ctx_->TryCancel(); }

}  // namespace plng::test
