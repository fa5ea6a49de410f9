// ChangeBus: wakes everything waiting on PLC state when any plcd on the same
// database commits a change. A dedicated connection LISTENs on kChangeChannel;
// every notification (and every reconnect, when notifications may have been
// missed) advances a generation counter and is handed, with the nodes it can
// affect (ChangeScope, plc/db.h), to the subscribers (NodeStreams).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "plc/db.h"

namespace plng::plc {

class ChangeBus {
 public:
  // Delays between attempts to reconnect the listener: doubling from the first to
  // the second, each drawn from [delay / 2, delay].
  static constexpr std::chrono::milliseconds kReconnectMin{100};
  static constexpr std::chrono::milliseconds kReconnectMax{1000};
  // How often the listener checks that its server still takes writes. A primary
  // fenced for a switchover (default_transaction_read_only) stays up and keeps
  // the LISTEN connection open, but changes now commit elsewhere.
  static constexpr std::chrono::milliseconds kWritableCheck{1000};

  // `on_change` runs on the listener thread for every change (cache invalidation).
  ChangeBus(std::string connection_string, std::function<void()> on_change);
  ~ChangeBus();
  ChangeBus(const ChangeBus&) = delete;
  ChangeBus& operator=(const ChangeBus&) = delete;

  // `on_scope` runs on the listener thread for every change, after on_change,
  // with the nodes the change can affect (every node after a reconnect). Before
  // start().
  void subscribe(std::function<void(const ChangeScope&)> on_scope);
  // `on_lost` runs on the listener thread when it loses its server (the
  // connection broke, or the server turned read-only), before it reconnects:
  // Database::dropConnections, so no pooled connection keeps reading from a
  // server that is no longer the primary. Before start().
  void onServerLost(std::function<void()> on_lost);

  void start();
  void stop();

  std::uint64_t generation() const;
  // Waits until the generation differs from `seen`, `timeout` passes or `stop()` is
  // called. Returns the generation now.
  std::uint64_t waitForChange(std::uint64_t seen, std::chrono::milliseconds timeout);
  // Advances the generation (used after local changes, and by tests).
  void signal(const ChangeScope& scope = ChangeScope::everyNode());
  bool listening() const { return listening_; }
  // True once stop() was called: long waits (WatchSlivers) should end.
  bool stopping() const { return stopping_; }

 private:
  void run();

  std::string connection_string_;
  std::function<void()> on_change_;
  std::vector<std::function<void(const ChangeScope&)>> subscribers_;
  std::function<void()> on_lost_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t generation_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> listening_{false};
  std::thread thread_;
};

}  // namespace plng::plc
