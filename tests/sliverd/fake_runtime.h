// A SliverRuntime that keeps slivers in memory and records every call, for the
// reconciler and daemon tests (no root, no kernel).
#pragma once

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "node/runtime.h"

namespace plng::test {

class FakeRuntime : public plng::node::SliverRuntime {
 public:
  using SliverStatus = plng::node::SliverStatus;
  using SliverConfig = plng::node::SliverConfig;

  std::vector<SliverStatus> list() override {
    std::lock_guard lock(mutex_);
    calls_.push_back("list");
    if (!fail_list_.empty()) throw std::runtime_error(fail_list_);
    std::vector<SliverStatus> out;
    for (const auto& [name, status] : slivers_) out.push_back(status);
    return out;
  }
  std::optional<SliverStatus> get(std::string_view slice) override {
    std::lock_guard lock(mutex_);
    auto it = slivers_.find(std::string(slice));
    if (it == slivers_.end()) return std::nullopt;
    return it->second;
  }
  void create(const SliverConfig& config) override {
    std::lock_guard lock(mutex_);
    record("create", config.slice);
    auto& s = slivers_[config.slice];
    s.config = config;
  }
  void start(std::string_view slice) override {
    std::lock_guard lock(mutex_);
    record("start", slice);
    auto& s = existing(slice);
    s.phase = plng::node::SliverPhase::kRunning;
    s.init_pid = 4242;
  }
  void stop(std::string_view slice, std::chrono::milliseconds grace) override {
    std::lock_guard lock(mutex_);
    record("stop", slice);
    last_grace_ = grace;
    auto& s = existing(slice);
    s.phase = plng::node::SliverPhase::kStopped;
    s.init_pid = 0;
  }
  void update(const SliverConfig& config) override {
    std::lock_guard lock(mutex_);
    record("update", config.slice);
    existing(config.slice).config = config;
  }
  void destroy(std::string_view slice) override {
    std::lock_guard lock(mutex_);
    record("destroy", slice);
    slivers_.erase(std::string(slice));
  }

  // Every call as "op slice" (plus "list"), in order.
  std::vector<std::string> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  // Calls other than list.
  std::vector<std::string> changes() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& c : calls_) {
      if (c != "list") out.push_back(c);
    }
    return out;
  }
  void clearCalls() {
    std::lock_guard lock(mutex_);
    calls_.clear();
  }
  // Every operation on `slice` throws `message` (empty: stop failing).
  void failOn(const std::string& slice, const std::string& message) {
    std::lock_guard lock(mutex_);
    if (message.empty()) {
      fail_.erase(slice);
    } else {
      fail_[slice] = message;
    }
  }
  void failList(const std::string& message) {
    std::lock_guard lock(mutex_);
    fail_list_ = message;
  }
  // Puts a sliver in place directly (as if left by an earlier sliverd).
  void put(const SliverStatus& status) {
    std::lock_guard lock(mutex_);
    slivers_[status.config.slice] = status;
  }
  bool has(const std::string& slice) const {
    std::lock_guard lock(mutex_);
    return slivers_.contains(slice);
  }
  bool running(const std::string& slice) const {
    std::lock_guard lock(mutex_);
    auto it = slivers_.find(slice);
    return it != slivers_.end() && it->second.phase == plng::node::SliverPhase::kRunning;
  }
  std::optional<SliverConfig> config(const std::string& slice) const {
    std::lock_guard lock(mutex_);
    auto it = slivers_.find(slice);
    if (it == slivers_.end()) return std::nullopt;
    return it->second.config;
  }
  std::chrono::milliseconds lastGrace() const {
    std::lock_guard lock(mutex_);
    return last_grace_;
  }

 private:
  void record(const char* op, std::string_view slice) {
    calls_.push_back(std::string(op) + " " + std::string(slice));
    auto it = fail_.find(std::string(slice));
    if (it != fail_.end()) throw std::runtime_error(it->second);
  }
  SliverStatus& existing(std::string_view slice) {
    auto it = slivers_.find(std::string(slice));
    if (it == slivers_.end()) throw std::runtime_error("no sliver " + std::string(slice));
    return it->second;
  }

  mutable std::mutex mutex_;
  std::map<std::string, SliverStatus> slivers_;
  std::vector<std::string> calls_;
  std::map<std::string, std::string> fail_;
  std::string fail_list_;
  std::chrono::milliseconds last_grace_{0};
};

}  // namespace plng::test
