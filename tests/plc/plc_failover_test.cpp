// PLC's database fails over to a hot standby under load (docs/database-failover.md).
// A PostgreSQL primary with a streaming-replication hot standby that it waits for
// at every commit (synchronous_standby_names); two plcd replicas on the multi-host
// connection string (target_session_attrs=read-write); node streams open on both;
// admins adding slices to the nodes through both. Then:
//  - a crash: every process of the primary is killed at once, as its machine's
//    death would, and the standby is promoted (pg_ctl promote);
//  - a switchover: the primary is fenced read-only and stays up, and the standby
//    is promoted.
// Each time the same plcd processes must find the new primary by themselves; every
// change a client saw acknowledged must be on it and reach the node streams; the
// streams' versions must rise within each epoch and never go back across the
// switch; and what clients saw meanwhile must be UNAVAILABLE with a message
// naming the database, never INTERNAL, never another code.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proto/ticket.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/plc_node_login.h"
#include "tests/support/sliver_stream.h"

namespace pb = planetlab::v1;
using grpc::StatusCode;
using namespace std::chrono_literals;
using plng::test::PgInstance;
using plng::test::PlcClient;
using plng::test::PlcdProcess;
using plng::test::PlcFixture;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kSite = "fo";
const std::vector<std::string> kNodes = {"n1.fo.test", "n2.fo.test"};

// A primary and a synchronous hot standby, the database made on the primary
// before the standby is copied from it.
struct ReplicatedDatabase {
  PgInstance primary;
  PgInstance standby;
  std::string plcdDatabase;

  ReplicatedDatabase()
      : standby([this] {
          primary.createOwnedDatabase(PgInstance::kDefaultDatabase, PlcFixture::kPlcdRole);
          PgInstance::StandbyOptions options;
          options.name = "standby";
          // An acknowledged commit is on the standby's disk too: nothing a client
          // was told is committed can be lost by promoting it.
          options.synchronous = true;
          return PgInstance::standbyOf(primary, options);
        }()),
        plcdDatabase(plng::test::failoverConnectionString(
            {&primary, &standby}, PgInstance::kDefaultDatabase, PlcFixture::kPlcdRole)) {}
};

using Watch = plng::test::SliverStream;

// Versions rise within an epoch, an epoch once left never comes back, and the
// first state of a new epoch holds a version no older than the last of the old
// one: a node saw nothing the promoted standby did not have. Returns the epochs
// in the order seen.
std::vector<std::string> checkVersions(const std::vector<pb::NodeState>& states) {
  std::vector<std::string> epochs;
  for (std::size_t i = 0; i < states.size(); ++i) {
    INFO("state " << i << ": epoch " << states[i].epoch() << " version " << states[i].version());
    if (i == 0 || states[i].epoch() != states[i - 1].epoch()) {
      CHECK(std::find(epochs.begin(), epochs.end(), states[i].epoch()) == epochs.end());
      epochs.push_back(states[i].epoch());
      if (i > 0) CHECK(states[i].version() >= states[i - 1].version());
    } else {
      CHECK(states[i].version() > states[i - 1].version());
    }
  }
  return epochs;
}

// What the clients were told, call by call.
struct Ledger {
  std::mutex mutex;
  std::set<std::string> slices;         // AddSlice returned OK
  std::set<std::string> bound;          // AddSliceNodes (every node) returned OK
  std::map<std::string, int> failures;  // "<code> <message>" -> count
  std::vector<StatusCode> codes;
  int boundBy[2] = {0, 0};
  Clock::time_point lastFailure;

  void failed(const grpc::Status& status) {
    std::lock_guard lock(mutex);
    lastFailure = Clock::now();
    ++failures[std::to_string(status.error_code()) + " " + status.error_message()];
    codes.push_back(status.error_code());
  }
  int bindings(int writer) {
    std::lock_guard lock(mutex);
    return boundBy[writer];
  }
};

// Adds a slice and binds it to every node: one step of an admin's work. A failed
// call is not retried under the same name (it may have committed or not): the next
// step takes a new one, as an unsure client would after checking.
bool addBoundSlice(const PlcClient& admin, const std::string& name, Ledger& ledger, int writer) {
  pb::AddSliceRequest add;
  add.set_name(name);
  if (auto status = admin.call(&pb::Slice::Stub::AddSlice, add).first; !status.ok()) {
    ledger.failed(status);
    return false;
  }
  {
    std::lock_guard lock(ledger.mutex);
    ledger.slices.insert(name);
  }
  pb::SliceNodesRequest nodes;
  nodes.set_name(name);
  for (const auto& host : kNodes) nodes.add_hostnames(host);
  if (auto status = admin.call(&pb::Slice::Stub::AddSliceNodes, nodes).first; !status.ok()) {
    ledger.failed(status);
    return false;
  }
  std::lock_guard lock(ledger.mutex);
  ledger.bound.insert(name);
  if (writer >= 0) ++ledger.boundBy[writer];
  return true;
}

// Every failure a client saw is UNAVAILABLE, saying it is the database's.
void checkFailures(Ledger& ledger) {
  std::lock_guard lock(ledger.mutex);
  for (const auto& [failure, count] : ledger.failures) {
    std::cout << "  " << count << " x " << failure << "\n";
  }
  for (const auto& [failure, count] : ledger.failures) {
    INFO(count << " x " << failure);
    CHECK(failure.starts_with(std::to_string(StatusCode::UNAVAILABLE) + " "));
    CHECK(failure.find("database") != std::string::npos);
  }
}

// Every acknowledged slice and binding is in `db`'s database.
void checkAcknowledgedPresent(PgInstance& db, Ledger& ledger) {
  pqxx::connection c(db.connectionString());
  pqxx::read_transaction tx(c);
  std::set<std::string> present;
  for (const auto& r : tx.exec("SELECT name FROM slices WHERE deleted_at IS NULL")) {
    present.insert(r[0].as<std::string>());
  }
  std::map<std::string, int> nodesOf;
  for (const auto& r : tx.exec(
           "SELECT s.name, count(*) FROM slice_nodes JOIN slices s USING (slice_id) GROUP BY 1")) {
    nodesOf[r[0].as<std::string>()] = r[1].as<int>();
  }
  std::lock_guard lock(ledger.mutex);
  std::vector<std::string> lost;
  for (const auto& slice : ledger.slices) {
    if (!present.contains(slice)) lost.push_back(slice);
  }
  for (const auto& slice : ledger.bound) {
    if (nodesOf[slice] != static_cast<int>(kNodes.size())) lost.push_back(slice + " (nodes)");
  }
  INFO("acknowledged but lost: " << lost.size() << (lost.empty() ? "" : ", first " + lost[0]));
  CHECK(lost.empty());
}

// The site, its nodes (each with its key) and an admin client on each replica.
struct Planet {
  ReplicatedDatabase db;
  PlcdProcess a;
  PlcdProcess b;
  PlcClient adminA;
  PlcClient adminB;
  std::vector<plng::ticket::KeyPair> nodeKeys;

  Planet()
      : a(plng::test::defaultPlcdPath(), db.plcdDatabase),
        b([this] {
          plng::test::createAdmin(plng::test::defaultPlcdPath(), db.plcdDatabase,
                                  PlcFixture::kAdminEmail, PlcFixture::kAdminPassword);
          return PlcdProcess(plng::test::defaultPlcdPath(), db.plcdDatabase);
        }()),
        adminA(a.channel()),
        adminB(b.channel()) {
    REQUIRE_OK(adminA.login(PlcFixture::kAdminEmail, PlcFixture::kAdminPassword));
    adminB.setToken(adminA.token());
    pb::AddSiteRequest site;
    site.set_login_base(kSite);
    site.set_name("Failover site");
    site.set_max_slices(1000);
    REQUIRE_OK(adminA.call(&pb::Admin::Stub::AddSite, site).first);
    for (const auto& host : kNodes) {
      auto key = plng::ticket::generateKeyPair();
      pb::AddNodeRequest node;
      node.set_hostname(host);
      node.set_login_base(kSite);
      node.set_public_key(std::string(reinterpret_cast<const char*>(key.public_key.data()), 32));
      REQUIRE_OK(adminA.call(&pb::Admin::Stub::AddNode, node).first);
      nodeKeys.push_back(std::move(key));
    }
  }
  // Node `i` logged in through `plcd`.
  PlcClient node(std::size_t i, const PlcdProcess& plcd) {
    return plng::test::loggedInNode(PlcClient(plcd.channel()), kNodes[i], nodeKeys[i].private_key);
  }
};

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

TEST_CASE("plcd follows a crashed primary's promoted standby and loses nothing acknowledged",
          "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  const auto started = Clock::now();
  Planet planet;
  const pid_t pidA = planet.a.pid();
  const pid_t pidB = planet.b.pid();
  // Node 0 streams from replica a, node 1 from replica b.
  Watch watch0(planet.node(0, planet.a));
  Watch watch1(planet.node(1, planet.b));

  Ledger ledger;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      const PlcClient& admin = w == 0 ? planet.adminA : planet.adminB;
      for (int n = 0; !stop; ++n) {
        const std::string name =
            std::string(kSite) + "_w" + std::to_string(w) + "n" + std::to_string(n);
        if (!addBoundSlice(admin, name, ledger, w)) std::this_thread::sleep_for(20ms);
      }
    });
  }
  auto waitForBindings = [&](int atLeast, std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (ledger.bindings(0) >= atLeast && ledger.bindings(1) >= atLeast) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  auto stopWriters = [&] {
    stop = true;
    for (auto& t : writers) t.join();
    writers.clear();
  };

  const bool loaded = waitForBindings(5, 30s);
  if (!loaded) stopWriters();
  REQUIRE(loaded);
  const int before = std::min(ledger.bindings(0), ledger.bindings(1));

  // The primary's machine dies; an operator (or a failover manager) promotes the
  // standby half a second later.
  const auto killed = Clock::now();
  planet.db.primary.killEveryProcess();
  std::this_thread::sleep_for(500ms);
  planet.db.standby.promote();
  const double promotedAfter = secondsSince(killed);
  // The same plcd processes serve again, through both replicas.
  const bool resumed = waitForBindings(before + 5, 30s);
  const double resumedAfter = secondsSince(killed);
  stopWriters();
  REQUIRE(resumed);

  // Once things are quiet (streams that failed meanwhile have retried), one more
  // change through each replica: each stream, on the other replica, learns of it
  // only through its plcd's change listener, which must have found the new primary.
  std::this_thread::sleep_for(2s);
  REQUIRE(addBoundSlice(planet.adminA, std::string(kSite) + "_lasta", ledger, -1));
  REQUIRE(addBoundSlice(planet.adminB, std::string(kSite) + "_lastb", ledger, -1));
  std::set<std::string> expected;
  {
    std::lock_guard lock(ledger.mutex);
    expected = ledger.bound;
  }
  CHECK(watch0.waitForSlices(expected, 15s));
  CHECK(watch1.waitForSlices(expected, 15s));

  std::cout << "plc_failover_test (crash): " << ledger.bound.size() << " slices bound (" << before
            << "+ per replica before the kill); promoted " << promotedAfter
            << " s after the kill; last failed call "
            << std::chrono::duration<double>(ledger.lastFailure - killed).count()
            << " s after it; 5 more bindings per replica " << resumedAfter << " s after it; "
            << ledger.codes.size() << " failed calls:\n";
  checkFailures(ledger);
  // The switch was seen: calls failed while there was no primary.
  CHECK(!ledger.codes.empty());

  CHECK(planet.a.running());
  CHECK(planet.b.running());
  CHECK(planet.a.pid() == pidA);
  CHECK(planet.b.pid() == pidB);
  checkAcknowledgedPresent(planet.db.standby, ledger);
  for (Watch* watch : {&watch0, &watch1}) {
    auto epochs = checkVersions(watch->states());
    // The old history and the promoted standby's, in that order.
    CHECK(epochs.size() == 2);
  }
  std::cout << "plc_failover_test (crash): " << secondsSince(started) << " s in all" << std::endl;
}

TEST_CASE("plcd leaves a primary fenced read-only for a switchover for the promoted standby",
          "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  Planet planet;
  Watch watch0(planet.node(0, planet.a));
  Watch watch1(planet.node(1, planet.b));
  Ledger ledger;
  REQUIRE(addBoundSlice(planet.adminA, std::string(kSite) + "_first", ledger, 0));
  REQUIRE(addBoundSlice(planet.adminB, std::string(kSite) + "_second", ledger, 1));

  // The planned switch: the old primary takes no new transaction that writes, but
  // stays up (its sessions stay open); the standby, which has every commit, is
  // promoted.
  planet.db.primary.execute("ALTER SYSTEM SET default_transaction_read_only = on", "postgres");
  planet.db.primary.execute("SELECT pg_reload_conf()", "postgres");
  const auto fenced = Clock::now();
  planet.db.standby.promote();

  // Changes through each replica, retried as a client would while it is told
  // UNAVAILABLE, land on the new primary.
  for (int w = 0; w < 2; ++w) {
    const PlcClient& admin = w == 0 ? planet.adminA : planet.adminB;
    bool done = false;
    for (int n = 0; !done && secondsSince(fenced) < 20; ++n) {
      done = addBoundSlice(
          admin, std::string(kSite) + "_after" + std::to_string(w) + "n" + std::to_string(n),
          ledger, w);
      if (!done) std::this_thread::sleep_for(100ms);
    }
    if (!done) checkFailures(ledger);
    INFO("replica " << w);
    REQUIRE(done);
  }
  const double writingAfter = secondsSince(fenced);
  std::set<std::string> expected;
  {
    std::lock_guard lock(ledger.mutex);
    expected = ledger.bound;
  }
  // Each stream learns of the change made through the other replica: both
  // listeners have left the fenced primary.
  CHECK(watch0.waitForSlices(expected, 15s));
  CHECK(watch1.waitForSlices(expected, 15s));
  const double streamsAfter = secondsSince(fenced);

  std::cout << "plc_failover_test (switchover): both replicas writing " << writingAfter
            << " s after the fence, both streams current " << streamsAfter << " s after it; "
            << ledger.codes.size() << " failed calls:\n";
  checkFailures(ledger);
  checkAcknowledgedPresent(planet.db.standby, ledger);
  for (Watch* watch : {&watch0, &watch1}) {
    auto epochs = checkVersions(watch->states());
    CHECK(epochs.size() == 2);
  }
  // The fenced primary took none of the changes made after it.
  pqxx::connection old(planet.db.primary.connectionString());
  pqxx::read_transaction tx(old);
  CHECK(tx.exec1("SELECT count(*) FROM slices WHERE name LIKE 'fo\\_after%'")[0].as<int>() == 0);
}
