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

// Throws when the server no longer takes writes: a standby (promotion went the
// other way), or a primary fenced read-only for a switchover.
void requireWritable(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  if (tx.exec1("SELECT current_setting('transaction_read_only')")[0].as<std::string>() == "on") {
    throw std::runtime_error("the server " + std::string(conn.hostname()) +
                             " is read-only now (a standby, or a primary fenced for a switchover)");
  }
}

}  // namespace

ChangeBus::ChangeBus(std::string connection_string, std::function<void()> on_change)
    : connection_string_(std::move(connection_string)), on_change_(std::move(on_change)) {}

ChangeBus::~ChangeBus() { stop(); }

void ChangeBus::subscribe(std::function<void(const ChangeScope&)> on_scope) {
  subscribers_.push_back(std::move(on_scope));
}

void ChangeBus::onServerLost(std::function<void()> on_lost) { on_lost_ = std::move(on_lost); }

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
  bool lost = false;
  while (!stopping_) {
    try {
      pqxx::connection conn(connection_string_);
      Receiver receiver(
          conn, [this](const std::string& payload) { signal(parseChangePayload(payload)); });
      // LISTEN is in force now; anything committed while we were away was missed,
      // so treat the (re)connect itself as a change.
      listening_ = true;
      signal();
      if (lost) {
        // After a failover this names the new primary.
        spdlog::info("change listener reconnected to the database on {}; every stream resyncs",
                     conn.hostname());
        lost = false;
      }
      backoff = kReconnectMin;
      auto next_check = std::chrono::steady_clock::now() + kWritableCheck;
      while (!stopping_) {
        conn.await_notification(0, 200000);
        if (std::chrono::steady_clock::now() >= next_check) {
          requireWritable(conn);
          next_check = std::chrono::steady_clock::now() + kWritableCheck;
        }
      }
    } catch (const std::exception& e) {
      listening_ = false;
      if (stopping_) break;
      if (!lost && on_lost_) on_lost_();
      lost = true;
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
