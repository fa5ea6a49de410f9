// FlowShipper: ships the node's flow records to PLC (NodeSync.ReportFlows).
//
// ship() cuts the records handed to it into batches, writes each to the spool
// directory (<state_dir>/flow-spool, one file per batch, written atomically)
// and returns: it never waits for PLC. The shipper's thread sends the spooled
// batches oldest first with a node session of its own (logged in as PlcSync
// does, again after UNAUTHENTICATED), and deletes each once PLC has it. A
// batch keeps its id on disk, so one resent after a lost answer or a restart
// is stored once (PLC's batch idempotence). While PLC is down or refuses for
// want of room it retries with exponential backoff, jittered. The spool is
// bounded: past max_spooled_batches the oldest batch is deleted and its
// records counted in the next batch's `dropped`, so PLC learns of the loss. A
// batch PLC refuses as malformed (INVALID_ARGUMENT) would be refused forever:
// it is dropped and counted the same way.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "proto/plc.grpc.pb.h"
#include "proto/ticket.h"

namespace plng::sliverd {

class FlowShipper {
 public:
  struct Options {
    std::string hostname;
    plng::ticket::PrivateKey node_key{};
    std::filesystem::path spool_dir;  // created if missing
    std::size_t max_batch_flows = 5000;
    std::size_t max_spooled_batches = 2000;
    std::chrono::milliseconds retry_min{1000};
    std::chrono::milliseconds retry_max{60000};
  };

  FlowShipper(std::shared_ptr<grpc::Channel> channel, Options options);
  ~FlowShipper();  // stop()
  FlowShipper(const FlowShipper&) = delete;
  FlowShipper& operator=(const FlowShipper&) = delete;

  void start();
  // Wakes and joins the thread; spooled batches stay for the next start. Idempotent.
  void stop();

  // Spools `flows` (in batches of max_batch_flows) for PLC; `dropped`: records
  // the caller could not keep, reported with the first batch. Returns at once.
  // Throws base::SysError when the spool cannot be written.
  void ship(const std::vector<planetlab::v1::FlowRecord>& flows, std::uint64_t dropped = 0);

  // Batches on disk, not yet acknowledged by PLC.
  std::size_t pending() const;
  // Batches PLC acknowledged since start.
  std::uint64_t sent() const;

 private:
  struct Spooled {
    std::filesystem::path path;
    planetlab::v1::ReportFlowsRequest batch;
  };
  enum class Outcome { kSent, kRetry, kDropped };

  void run();
  // Writes one batch file; drops the oldest past the bound. Under mutex_.
  void spoolLocked(planetlab::v1::ReportFlowsRequest batch);
  std::vector<std::filesystem::path> spooledLocked() const;
  Outcome send(const Spooled& spooled);
  bool sleepFor(std::chrono::milliseconds delay);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<planetlab::v1::Auth::Stub> auth_;
  std::unique_ptr<planetlab::v1::NodeSync::Stub> sync_;
  Options options_;
  std::string token_;  // the shipper thread's own
  std::minstd_rand jitter_{std::random_device{}()};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  grpc::ClientContext* call_context_ = nullptr;  // the ReportFlows in flight, for stop()
  std::uint64_t next_sequence_ = 0;
  std::uint64_t dropped_unreported_ = 0;  // records lost on this node, for the next batch
  std::uint64_t sent_ = 0;
  std::thread thread_;
};

}  // namespace plng::sliverd
