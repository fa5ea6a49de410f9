#include "sliverd/daemon/flow_shipper.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "base/error.h"
#include "base/file.h"
#include "sliverd/daemon/plc_sync.h"

namespace plng::sliverd {

namespace pb = planetlab::v1;
namespace fs = std::filesystem;

namespace {

constexpr const char* kBatchSuffix = ".batch";
// A spooled batch file is at most this big (max_batch_flows records of ~100 bytes
// and then some): a larger one is not ours.
constexpr std::size_t kMaxBatchFileBytes = 64u << 20;
constexpr auto kCallTimeout = std::chrono::seconds(30);

// "00000000000000000042.batch": names sort as the batches were made.
std::string batchFileName(std::uint64_t sequence) {
  auto digits = std::to_string(sequence);
  return std::string(20 - std::min<std::size_t>(20, digits.size()), '0') + digits + kBatchSuffix;
}

std::optional<std::uint64_t> batchSequence(const fs::path& path) {
  const auto name = path.filename().string();
  if (path.extension() != kBatchSuffix || name.front() == '.') return std::nullopt;
  std::uint64_t sequence = 0;
  const auto stem = path.stem().string();
  auto [end, ec] = std::from_chars(stem.data(), stem.data() + stem.size(), sequence);
  if (ec != std::errc() || end != stem.data() + stem.size()) return std::nullopt;
  return sequence;
}

std::int64_t unixNanoseconds() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

FlowShipper::FlowShipper(std::shared_ptr<grpc::Channel> channel, Options options)
    : channel_(std::move(channel)),
      auth_(pb::Auth::NewStub(channel_)),
      sync_(pb::NodeSync::NewStub(channel_)),
      options_(std::move(options)) {
  fs::create_directories(options_.spool_dir);
  for (const auto& path : spooledLocked()) {
    next_sequence_ = std::max(next_sequence_, *batchSequence(path) + 1);
  }
}

FlowShipper::~FlowShipper() { stop(); }

void FlowShipper::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void FlowShipper::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (call_context_ != nullptr) call_context_->TryCancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<fs::path> FlowShipper::spooledLocked() const {
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(options_.spool_dir)) {
    if (entry.is_regular_file() && batchSequence(entry.path())) out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::size_t FlowShipper::pending() const {
  std::lock_guard lock(mutex_);
  return spooledLocked().size();
}

std::uint64_t FlowShipper::sent() const {
  std::lock_guard lock(mutex_);
  return sent_;
}

void FlowShipper::ship(const std::vector<pb::FlowRecord>& flows, std::uint64_t dropped) {
  const std::size_t per_batch = std::max<std::size_t>(1, options_.max_batch_flows);
  {
    std::lock_guard lock(mutex_);
    dropped_unreported_ += dropped;
    for (std::size_t start = 0; start < flows.size() || (start == 0 && dropped_unreported_ > 0);
         start += per_batch) {
      pb::ReportFlowsRequest batch;
      const auto end = std::min(flows.size(), start + per_batch);
      for (auto i = start; i < end; ++i) *batch.add_flows() = flows[i];
      spoolLocked(std::move(batch));
    }
  }
  wake_.notify_all();
}

void FlowShipper::spoolLocked(pb::ReportFlowsRequest batch) {
  auto spooled = spooledLocked();
  while (!spooled.empty() && spooled.size() >= options_.max_spooled_batches) {
    // The oldest batch goes; PLC learns how many records it held.
    pb::ReportFlowsRequest oldest;
    auto content = base::readFileIfExists(spooled.front(), kMaxBatchFileBytes);
    if (content && oldest.ParseFromString(*content)) {
      dropped_unreported_ += static_cast<std::uint64_t>(oldest.flows_size()) + oldest.dropped();
    }
    spdlog::warn("flow spool full ({} batches): dropped {}", spooled.size(),
                 spooled.front().string());
    fs::remove(spooled.front());
    spooled.erase(spooled.begin());
  }
  const auto sequence = next_sequence_++;
  // Unique across spools: a spool wiped with the state directory starts at 0
  // again, and PLC would take a reused id for a batch it already has.
  batch.set_batch_id("b" + std::to_string(unixNanoseconds()) + "-" + std::to_string(sequence));
  batch.set_dropped(dropped_unreported_);
  dropped_unreported_ = 0;
  base::writeFileAtomic(options_.spool_dir / batchFileName(sequence), batch.SerializeAsString(),
                        0600);
}

bool FlowShipper::sleepFor(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, delay, [&] { return stopping_; });
  return !stopping_;
}

FlowShipper::Outcome FlowShipper::send(const Spooled& spooled) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (token_.empty()) {
      auto login = loginAsNode(*auth_, options_.hostname, options_.node_key);
      if (!login.status.ok()) {
        spdlog::debug("flow shipper: node login failed: {}", login.status.error_message());
        return Outcome::kRetry;
      }
      token_ = std::move(login.token);
    }
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token_);
    ctx.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return Outcome::kRetry;
      call_context_ = &ctx;
    }
    pb::ReportFlowsResponse response;
    const auto status = sync_->ReportFlows(&ctx, spooled.batch, &response);
    {
      std::lock_guard lock(mutex_);
      call_context_ = nullptr;
    }
    if (status.ok()) {
      spdlog::debug("flow shipper: batch {} stored ({} flows)", spooled.batch.batch_id(),
                    response.stored());
      return Outcome::kSent;
    }
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      token_.clear();
      continue;
    }
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      spdlog::error("flow shipper: PLC refused batch {} ({} flows) as malformed; dropped: {}",
                    spooled.batch.batch_id(), spooled.batch.flows_size(), status.error_message());
      return Outcome::kDropped;
    }
    spdlog::debug("flow shipper: batch {} not sent: {}", spooled.batch.batch_id(),
                  status.error_message());
    return Outcome::kRetry;
  }
  return Outcome::kRetry;
}

void FlowShipper::run() {
  auto backoff = options_.retry_min;
  bool reported_down = false;
  // Waits out the backoff before the next attempt; false when stopping.
  auto retryLater = [&] {
    const auto half = backoff.count() / 2;
    std::uniform_int_distribution<std::chrono::milliseconds::rep> draw(half, backoff.count());
    backoff = std::min(backoff * 2, options_.retry_max);
    return sleepFor(std::chrono::milliseconds(draw(jitter_)));
  };
  while (true) {
    try {
      Spooled next;
      {
        std::unique_lock lock(mutex_);
        std::vector<fs::path> spooled;
        wake_.wait(lock, [&] {
          if (stopping_) return true;
          spooled = spooledLocked();
          return !spooled.empty();
        });
        if (stopping_) return;
        next.path = spooled.front();
        auto content = base::readFileIfExists(next.path, kMaxBatchFileBytes);
        if (!content || !next.batch.ParseFromString(*content)) {
          spdlog::error("flow shipper: {} is no batch; removed", next.path.string());
          fs::remove(next.path);
          continue;
        }
      }
      const auto outcome = send(next);
      if (outcome == Outcome::kRetry) {
        if (!reported_down) {
          spdlog::warn("flow shipper: PLC did not take flow records; keeping them and retrying");
          reported_down = true;
        }
        if (!retryLater()) return;
        continue;
      }
      backoff = options_.retry_min;
      if (reported_down) spdlog::info("flow shipper: PLC takes flow records again");
      reported_down = false;
      std::lock_guard lock(mutex_);
      if (outcome == Outcome::kDropped) {
        dropped_unreported_ +=
            static_cast<std::uint64_t>(next.batch.flows_size()) + next.batch.dropped();
      } else {
        ++sent_;
      }
      fs::remove(next.path);
    } catch (const std::exception& e) {
      // The spool is unreadable (a full or failing disk): the records wait there.
      spdlog::error("flow shipper: {}", e.what());
      if (!retryLater()) return;
    }
  }
}

}  // namespace plng::sliverd
