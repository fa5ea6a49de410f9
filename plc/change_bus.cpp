#include "plc/change_bus.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>
#include <random>

#include "plc/db.h"

namespace plng::plc {

namespace {

class Receiver : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, std::function<void(const std::string&)> fn)
      : pqxx::notification_receiver(c, kChangeChannel), fn_(std::move(fn)) {}
  void operator()(const std::string& payload, int) override { fn_(payload); }

 private:
  std::function<void(const std::string&)> fn_;
};

}  // namespace

ChangeBus::ChangeBus(std::string connection_string, std::function<void()> on_change)
    : connection_string_(std::move(connection_string)), on_change_(std::move(on_change)) {}

ChangeBus::~ChangeBus() { stop(); }

void ChangeBus::subscribe(std::function<void(const ChangeScope&)> on_scope) {
  subscribers_.push_back(std::move(on_scope));
}

void ChangeBus::start() {
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void ChangeBus::stop() {
  stopping_ = true;
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t ChangeBus::generation() const {
  std::lock_guard lock(mutex_);
  return generation_;
}

void ChangeBus::signal(const ChangeScope& scope) {
  if (on_change_) on_change_();
  {
    std::lock_guard lock(mutex_);
    ++generation_;
  }
  changed_.notify_all();
  for (const auto& subscriber : subscribers_) subscriber(scope);
}

std::uint64_t ChangeBus::waitForChange(std::uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return generation_ != seen || stopping_; });
  return generation_;
}

void ChangeBus::run() {
  // Streams learn of changes only through this listener: it must be back within
  // about a second of the database. Jittered, so that the replicas of a fleet do
  // not knock on a restarting server in step.
  std::minstd_rand jitter{std::random_device{}()};
  auto backoff = kReconnectMin;
  while (!stopping_) {
    try {
      pqxx::connection conn(connection_string_);
      Receiver receiver(
          conn, [this](const std::string& payload) { signal(parseChangePayload(payload)); });
      // LISTEN is in force now; anything committed while we were away was missed,
      // so treat the (re)connect itself as a change.
      listening_ = true;
      signal();
      backoff = kReconnectMin;
      while (!stopping_) {
        conn.await_notification(0, 200000);
      }
    } catch (const std::exception& e) {
      listening_ = false;
      if (stopping_) break;
      const auto delay =
          std::chrono::milliseconds(std::uniform_int_distribution<std::chrono::milliseconds::rep>(
              backoff.count() / 2, backoff.count())(jitter));
      spdlog::warn("change listener lost the database ({}); reconnecting in {} ms", e.what(),
                   delay.count());
      std::unique_lock lock(mutex_);
      changed_.wait_for(lock, delay, [&] { return stopping_.load(); });
      backoff = std::min(backoff * 2, kReconnectMax);
    }
  }
  listening_ = false;
}

}  // namespace plng::plc
