// Database: a pool of libpqxx connections to PLC's PostgreSQL, transactions with
// reconnect on a dropped connection, and the schema migrations.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <vector>

namespace plng::plc {

// Notification channel every state-changing transaction signals on commit. Each
// plcd LISTENs on it (ChangeBus). The payload is the new state version, alone
// when the change may affect any node, or followed by " n:" and the ids of the
// only nodes whose state it can change ("42 n:3,17,99"), or by " b" when it
// changed only the destination blacklist (every node's, and nothing else).
inline constexpr const char* kChangeChannel = "plc_changes";

// Which nodes' state a committed change can affect, and how.
struct ChangeScope {
  bool all = true;
  std::vector<std::int64_t> nodes;  // when !all: sorted, unique
  // Every node's, but only the destination blacklist in it (payload "42 b").
  bool blacklist_only = false;
  // The version the change committed (0: not known, as after a reconnect).
  std::int64_t version = 0;
  static ChangeScope everyNode() { return {}; }
  static ChangeScope onlyNodes(std::vector<std::int64_t> nodes);
  static ChangeScope blacklist();
  bool affects(std::int64_t node_id) const;
};

// NOTIFY payloads are at most 8000 bytes: a scope naming more nodes than fit
// is sent as every node.
inline constexpr std::size_t kMaxChangePayload = 7900;
std::string changePayload(std::int64_t version, const ChangeScope& scope);
// A payload this or an older plcd wrote; anything it cannot read is every node.
ChangeScope parseChangePayload(std::string_view payload);

// Whether PostgreSQL refused `e` because this session's server can no longer take
// PLC's work: it is read-only (SQLSTATE 25006: a standby, or a primary an operator
// fenced with default_transaction_read_only before a switchover) or shutting
// down (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now).
// Nothing was committed; a new connection may find the primary
// (target_session_attrs=read-write). docs/database-failover.md.
bool serverCannotServe(const pqxx::sql_error& e);

// Checks plcd's `database` setting: a libpq connection string (or URI) that, when
// it names several servers (host=a,b), also says target_session_attrs=read-write
// or primary, since otherwise libpq connects to the first server that answers, a
// standby included. Throws std::invalid_argument saying what to change.
void checkDatabaseConnectionString(const std::string& conninfo);

class Database {
 public:
  Database(std::string connection_string, std::size_t pool_size);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const std::string& connectionString() const { return connection_string_; }

  // Runs `body` in a read-write transaction and commits it. If the connection
  // was lost before COMMIT was sent (PostgreSQL restarted), or its server turned
  // out unable to serve (serverCannotServe: a standby after a failover),
  // reconnects and retries once: the transaction never committed, so running it
  // again is safe. Once
  // COMMIT is sent it is never retried: a connection lost from then on throws
  // pqxx::in_doubt_error (the change may or may not have been applied), which
  // RpcRunner answers with UNAVAILABLE.
  template <class F>
  auto write(F&& body) {
    bool commit_sent = false;
    auto commit = [&](pqxx::work& tx) {
      commit_sent = true;
      try {
        tx.commit();
      } catch (const pqxx::broken_connection& e) {
        // libpqxx 6 reports a connection lost during COMMIT as in_doubt_error
        // already; this holds whatever version or path reports it otherwise.
        throw pqxx::in_doubt_error(std::string("connection lost during COMMIT: ") + e.what());
      }
    };
    return withConnection(
        [&](pqxx::connection& c) {
          pqxx::work tx(c);
          if constexpr (std::is_void_v<decltype(body(tx))>) {
            body(tx);
            commit(tx);
          } else {
            auto result = body(tx);
            commit(tx);
            return result;
          }
        },
        [&] { return !commit_sent; });
  }

  // Runs `body` in a read-only REPEATABLE READ transaction: one consistent snapshot.
  template <class F>
  auto read(F&& body) {
    return withConnection([&](pqxx::connection& c) {
      pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c);
      return body(tx);
    });
  }

  // Runs `body` outside a transaction block, for ONE read-only statement (which
  // PostgreSQL runs atomically on its own snapshot): saves read()'s BEGIN and
  // COMMIT round trips on hot paths.
  template <class F>
  auto readStatement(F&& body) {
    return withConnection([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      return body(tx);
    });
  }

  // Closes every idle connection now and every leased one when it is released:
  // the next transactions connect anew, and so find the current primary
  // (ChangeBus calls it when its server goes away or turns read-only).
  void dropConnections();

  // The pool as metrics show it (docs/metrics.md).
  struct PoolStats {
    std::size_t size = 0;     // db_pool_size
    std::size_t open = 0;     // connections open
    std::size_t in_use = 0;   // of those, leased now
    std::uint64_t waits = 0;  // leases that found every connection in use
    double wait_seconds = 0;  // time those waited in all
  };
  PoolStats poolStats();
  // Called with how long each lease held its connection (one transaction or
  // statement, retries counted apart). Set before the first transaction.
  void observeTransactions(std::function<void(std::chrono::duration<double>)> observer) {
    observe_transaction_ = std::move(observer);
  }

  // Applies every migration not yet applied, all in one transaction, and
  // returns the schema version now in force.
  int migrate();

  // Marks the PLC state changed inside `tx`: bumps the state version and
  // notifies every plcd (delivered when `tx` commits). Returns the new version.
  static std::int64_t bumpStateVersion(pqxx::work& tx);
  // The same for a change that can affect only the nodes `scope` names (the
  // streams of other nodes are not woken: docs/plc.md, "Node state and its
  // stream"). A caller that cannot tell says every node.
  static std::int64_t bumpStateVersion(pqxx::work& tx, const ChangeScope& scope);

 private:
  struct Slot;
  // Runs `fn` on a pooled connection; if the connection breaks, or its server can
  // no longer serve, drops it (and the idle ones) and runs `fn` once more on a new
  // one when `may_retry()` says so.
  template <class F>
  auto withConnection(F&& fn) {
    return withConnection(std::forward<F>(fn), [] { return true; });
  }
  template <class F, class R>
  auto withConnection(F&& fn, R&& may_retry) {
    for (int attempt = 0;; ++attempt) {
      Lease lease(*this);
      try {
        return fn(lease.conn());
      } catch (const pqxx::broken_connection&) {
        lease.markBroken();
        if (attempt >= 1 || !may_retry()) throw;
      } catch (const pqxx::in_doubt_error&) {
        lease.markBroken();
        throw;
      } catch (const pqxx::sql_error& e) {
        if (!serverCannotServe(e)) throw;
        lease.markBroken();
        if (attempt >= 1 || !may_retry()) throw;
      }
    }
  }

  class Lease {
   public:
    explicit Lease(Database& db);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    pqxx::connection& conn();
    void markBroken() { broken_ = true; }

   private:
    Database& db_;
    // Before conn_: acquire() writes the pool generation the connection belongs
    // to, and a member declared after conn_ would be initialized over it.
    std::uint64_t generation_ = 0;
    std::unique_ptr<pqxx::connection> conn_;
    bool broken_ = false;
    std::chrono::steady_clock::time_point acquired_;
  };

  std::unique_ptr<pqxx::connection> acquire(std::uint64_t* generation);
  void release(std::unique_ptr<pqxx::connection> conn, std::uint64_t generation, bool broken);

  std::string connection_string_;
  std::size_t pool_size_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::size_t open_ = 0;
  // Advanced by dropConnections(): a connection opened in an older one is closed.
  std::uint64_t generation_ = 0;

  std::uint64_t waits_ = 0;
  double wait_seconds_ = 0;
  std::function<void(std::chrono::duration<double>)> observe_transaction_;
};

// A PostgreSQL text[] literal ('{"a","b"}') for binding a list as one parameter.
std::string pgTextArray(const std::vector<std::string>& items);
// Parses a text[] column value.
std::vector<std::string> parsePgTextArray(const pqxx::field& field);

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Every schema migration, in order. Append-only: never edit a released one.
const std::vector<Migration>& migrations();

}  // namespace plng::plc
