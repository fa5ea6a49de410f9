#include "plc/db.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <tuple>

namespace plng::plc {

bool serverCannotServe(const pqxx::sql_error& e) {
  const std::string& state = e.sqlstate();
  return state == "25006" || state == "57P01" || state == "57P02" || state == "57P03";
}

void checkDatabaseConnectionString(const std::string& conninfo) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(
      PQconninfoParse(conninfo.c_str(), &error), &PQconninfoFree);
  if (!options) {
    std::string why = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    throw std::invalid_argument("is not a libpq connection string: " + why);
  }
  std::string hosts;
  std::string target;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view keyword = o->keyword;
    if ((keyword == "host" || keyword == "hostaddr") && hosts.empty()) hosts = o->val;
    if (keyword == "target_session_attrs") target = o->val;
  }
  if (hosts.find(',') == std::string::npos) return;
  if (target.empty()) {
    if (const char* env = std::getenv("PGTARGETSESSIONATTRS")) target = env;
  }
  if (target == "read-write" || target == "primary") return;
  throw std::invalid_argument(
      "names several servers (" + hosts + ") but " +
      (target.empty() ? std::string("no target_session_attrs") : "target_session_attrs=" + target) +
      ": libpq would connect to the first that answers, a standby included, where every "
      "change fails. Add target_session_attrs=read-write (docs/database-failover.md)");
}

Database::Database(std::string connection_string, std::size_t pool_size)
    : connection_string_(std::move(connection_string)), pool_size_(pool_size ? pool_size : 1) {}

Database::~Database() = default;

std::unique_ptr<pqxx::connection> Database::acquire(std::uint64_t* generation) {
  std::unique_lock lock(mutex_);
  auto free = [&] { return !idle_.empty() || open_ < pool_size_; };
  if (!free()) {
    const auto since = std::chrono::steady_clock::now();
    available_.wait(lock, free);
    ++waits_;
    wait_seconds_ +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
  }
  *generation = generation_;
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return conn;
  }
  ++open_;
  lock.unlock();
  try {
    return std::make_unique<pqxx::connection>(connection_string_);
  } catch (...) {
    lock.lock();
    --open_;
    available_.notify_one();
    throw;
  }
}

void Database::release(std::unique_ptr<pqxx::connection> conn, std::uint64_t generation,
                       bool broken) {
  std::lock_guard lock(mutex_);
  if (generation != generation_) {
    --open_;
    available_.notify_one();
  } else if (broken || !conn || !conn->is_open()) {
    --open_;
    // A lost connection almost always means the server restarted or went away:
    // the idle ones are dead too, and would each fail one more request.
    open_ -= idle_.size();
    idle_.clear();
    available_.notify_all();
  } else {
    idle_.push_back(std::move(conn));
    available_.notify_one();
  }
}

void Database::dropConnections() {
  std::lock_guard lock(mutex_);
  ++generation_;
  open_ -= idle_.size();
  idle_.clear();
  available_.notify_all();
}

Database::Lease::Lease(Database& db)
    : db_(db),
      generation_(0),
      conn_(db.acquire(&generation_)),
      acquired_(std::chrono::steady_clock::now()) {}
Database::Lease::~Lease() {
  if (db_.observe_transaction_)
    db_.observe_transaction_(std::chrono::steady_clock::now() - acquired_);
  db_.release(std::move(conn_), generation_, broken_);
}

Database::PoolStats Database::poolStats() {
  std::lock_guard lock(mutex_);
  return PoolStats{.size = pool_size_,
                   .open = open_,
                   .in_use = open_ - idle_.size(),
                   .waits = waits_,
                   .wait_seconds = wait_seconds_};
}
pqxx::connection& Database::Lease::conn() { return *conn_; }

namespace {

// What follows the version in a payload: the nodes, or the blacklist alone.
ChangeScope parseChangeNodes(std::string_view payload) {
  if (payload.ends_with(" b")) return ChangeScope::blacklist();
  const auto at = payload.find(" n:");
  if (at == std::string_view::npos) return ChangeScope::everyNode();
  std::vector<std::int64_t> nodes;
  std::string_view list = payload.substr(at + 3);
  while (!list.empty()) {
    const auto comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    std::int64_t id = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), id);
    if (error != std::errc() || end != item.data() + item.size()) return ChangeScope::everyNode();
    nodes.push_back(id);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return ChangeScope::onlyNodes(std::move(nodes));
}

}  // namespace

ChangeScope ChangeScope::onlyNodes(std::vector<std::int64_t> nodes) {
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  ChangeScope scope;
  scope.all = false;
  scope.nodes = std::move(nodes);
  return scope;
}

ChangeScope ChangeScope::blacklist() {
  ChangeScope scope;
  scope.blacklist_only = true;
  return scope;
}

bool ChangeScope::affects(std::int64_t node_id) const {
  return all || std::binary_search(nodes.begin(), nodes.end(), node_id);
}

std::string changePayload(std::int64_t version, const ChangeScope& scope) {
  std::string payload = std::to_string(version);
  if (scope.blacklist_only) return payload + " b";
  if (scope.all) return payload;
  payload += " n:";
  for (std::size_t i = 0; i < scope.nodes.size(); ++i) {
    if (i) payload += ',';
    payload += std::to_string(scope.nodes[i]);
    if (payload.size() > kMaxChangePayload) return std::to_string(version);
  }
  return payload;
}

ChangeScope parseChangePayload(std::string_view payload) {
  ChangeScope scope = parseChangeNodes(payload);
  const auto space = payload.find(' ');
  const std::string_view version = payload.substr(0, space);
  std::int64_t number = 0;
  const auto [end, error] =
      std::from_chars(version.data(), version.data() + version.size(), number);
  if (error == std::errc() && end == version.data() + version.size()) scope.version = number;
  return scope;
}

std::int64_t Database::bumpStateVersion(pqxx::work& tx) {
  return bumpStateVersion(tx, ChangeScope::everyNode());
}

std::int64_t Database::bumpStateVersion(pqxx::work& tx, const ChangeScope& scope) {
  auto version = tx.exec1("UPDATE plc_state SET version = version + 1 RETURNING version")[0]
                     .as<std::int64_t>();
  tx.exec_params("SELECT pg_notify($1, $2)", std::string(kChangeChannel),
                 changePayload(version, scope));
  return version;
}

std::string pgTextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::vector<std::string> parsePgTextArray(const pqxx::field& field) {
  std::vector<std::string> out;
  if (field.is_null()) return out;
  auto parser = field.as_array();
  for (auto [kind, value] = parser.get_next(); kind != pqxx::array_parser::done;
       std::tie(kind, value) = parser.get_next()) {
    if (kind == pqxx::array_parser::string_value) out.push_back(value);
  }
  return out;
}

int Database::migrate() {
  Lease lease(*this);
  // All pending migrations run in one transaction: a failure leaves the schema as
  // it was. The advisory lock serialises plcd replicas starting together: the
  // first migrates, the others wait and then find nothing left to do.
  pqxx::work tx(lease.conn());
  tx.exec("SELECT pg_advisory_xact_lock(7001)");
  tx.exec0(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version integer PRIMARY KEY,"
      " description text NOT NULL,"
      " applied_at timestamptz NOT NULL DEFAULT now())");
  int current = 0;
  for (const auto& m : migrations()) {
    auto applied = tx.exec_params("SELECT 1 FROM schema_migrations WHERE version = $1", m.version);
    if (applied.empty()) {
      tx.exec0(m.sql);
      tx.exec_params0("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                      m.version, m.description);
    }
    current = m.version;
  }
  tx.commit();
  return current;
}

}  // namespace plng::plc
