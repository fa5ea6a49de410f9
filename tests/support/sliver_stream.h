// A node's WatchSlivers stream read on a thread of its own, for PLC tests: every
// state it receives is kept (states()) and can also be taken in order (next()).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proto/plc.grpc.pb.h"
#include "tests/support/plc_client.h"

namespace plng::test {

class SliverStream {
 public:
  // Opens WatchSlivers as `client` (a node's session, or an admin naming
  // `hostname`), with a call deadline of `deadline`.
  explicit SliverStream(const PlcClient& client, std::int64_t since_version = 0,
                        const std::string& hostname = "", const std::string& since_epoch = "",
                        std::chrono::seconds deadline = std::chrono::seconds(300));
  ~SliverStream();  // cancels the call and waits for its reader
  SliverStream(const SliverStream&) = delete;
  SliverStream& operator=(const SliverStream&) = delete;

  // The next state not yet taken, waiting up to `timeout`; nullopt when none
  // came (or the stream ended first).
  std::optional<planetlab::v1::NodeState> next(std::chrono::milliseconds timeout);
  // Every state received so far, taken or not.
  std::vector<planetlab::v1::NodeState> states() const;
  // Waits until the latest state holds every slice of `slices`.
  bool waitForSlices(const std::set<std::string>& slices, std::chrono::milliseconds timeout);
  // The status the stream ended with, once it ended within `timeout`.
  std::optional<grpc::Status> finished(std::chrono::milliseconds timeout);
  void cancel();

 private:
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReader<planetlab::v1::NodeState>> reader_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<planetlab::v1::NodeState> states_;
  std::size_t taken_ = 0;
  std::optional<grpc::Status> finished_;
  std::thread thread_;
};

}  // namespace plng::test
