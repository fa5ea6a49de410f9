// PLC sync: keeps this node's desired state current from PLC.
//
// On its own thread (gRPC's synchronous client): logs in with the node's Ed25519
// key (GetNodeChallenge, sign "planetlab-node-login\0" + hostname + "\0" + nonce,
// NodeLogin → bearer token; again after UNAUTHENTICATED), holds a WatchSlivers
// stream open from the last epoch and version it has, and reconnects with
// exponential backoff, jittered and capped low (reconnect_max, 2 s by default) so
// that a node is back within a second or two of PLC, and a fleet's reconnects
// spread out. While the stream is down it polls GetSlivers every poll interval.
// Each NodeState goes to the handler (the daemon posts it to its event loop).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "proto/plc.grpc.pb.h"
#include "proto/ticket.h"
#include "sliverd/core/desired_state.h"

namespace plng::sliverd {

// The node's private key from a file: a raw 32-byte Ed25519 seed or 64 hex
// digits (as `plcctl node keygen` writes it). Throws std::invalid_argument.
plng::ticket::PrivateKey readNodeKey(const std::string& path);

// One node login (GetNodeChallenge, sign, NodeLogin): the session token, or
// the status PLC answered. Shared by PlcSync and FlowShipper.
struct NodeLogin {
  grpc::Status status;
  std::string token;  // when status is OK
};
NodeLogin loginAsNode(planetlab::v1::Auth::Stub& auth, const std::string& hostname,
                      const plng::ticket::PrivateKey& node_key);

class PlcSync {
 public:
  struct Options {
    std::string hostname;
    plng::ticket::PrivateKey node_key{};
    std::chrono::milliseconds reconnect_min{250};
    std::chrono::milliseconds reconnect_max{2000};
    std::chrono::milliseconds poll_interval{60000};
  };
  using StateHandler = std::function<void(const planetlab::v1::NodeState&)>;

  // `known_state` returns the epoch and version the node holds (WatchSlivers
  // since_epoch and since_version).
  PlcSync(std::shared_ptr<grpc::Channel> channel, Options options, StateHandler on_state,
          std::function<PlcStatePosition()> known_state);
  ~PlcSync();  // stop()
  PlcSync(const PlcSync&) = delete;
  PlcSync& operator=(const PlcSync&) = delete;

  void start();
  // Cancels the stream and joins the thread. Idempotent.
  void stop();

  // "stream" (WatchSlivers open), "polling" (the last GetSlivers worked) or
  // "offline".
  std::string connection() const;

  // NodeSync.ReportStatus with the session WatchSlivers uses, waiting at most
  // kReportTimeout; UNAVAILABLE at once while PLC is offline or the node has
  // not logged in yet. Callable from any thread.
  grpc::Status reportStatus(const planetlab::v1::NodeStatusReport& report);
  static constexpr std::chrono::milliseconds kReportTimeout{5000};

  // How long one connection attempt to PLC may take (TCP and TLS handshakes over
  // a slow path), whatever the backoff between attempts.
  static constexpr std::chrono::milliseconds kConnectTimeout{10000};
  // sliverd's default receive limit (config plc_max_state_bytes).
  static constexpr std::int64_t kDefaultMaxStateBytes = 128ll << 20;

  // A channel to `address`: plaintext, or TLS verified against `tls_ca_pem`;
  // keepalive pings notice a dead PLC connection on an idle stream.
  // gRPC's own reconnect backoff follows ours (its default waits up to 2 min, and
  // while it waits every call fails at once, whatever our own loop does).
  // It accepts messages up to `max_state_bytes`: gRPC's default of 4 MiB is a
  // node state of ~40 slivers at PLC's limits, and a larger state would stop
  // every slice on the node from syncing.
  static std::shared_ptr<grpc::Channel> makeChannel(
      const std::string& address, const std::string& tls_ca_pem,
      std::chrono::milliseconds reconnect_min, std::chrono::milliseconds reconnect_max,
      std::int64_t max_state_bytes = kDefaultMaxStateBytes);

 private:
  enum class Connection { kOffline, kPolling, kStream };
  void run();
  bool login();
  // Runs one WatchSlivers stream to its end; true when it was established.
  bool watchOnce();
  bool pollOnce();
  // Sleeps until `deadline` or stop(); false when stopping.
  bool sleepUntil(std::chrono::steady_clock::time_point deadline);
  // A delay drawn uniformly from [backoff / 2, backoff].
  std::chrono::milliseconds jittered(std::chrono::milliseconds backoff);
  std::unique_ptr<grpc::ClientContext> authedContext() const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<planetlab::v1::Auth::Stub> auth_;
  std::unique_ptr<planetlab::v1::NodeSync::Stub> sync_;
  Options options_;
  StateHandler on_state_;
  std::function<PlcStatePosition()> known_state_;
  std::minstd_rand jitter_{std::random_device{}()};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  grpc::ClientContext* stream_context_ = nullptr;  // the open stream's, for TryCancel
  std::string token_;
  std::atomic<Connection> connection_{Connection::kOffline};
  std::thread thread_;
};

}  // namespace plng::sliverd
