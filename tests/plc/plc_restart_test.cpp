// Restarts lose nothing: PostgreSQL restarting under a running plcd, and the node
// streams plcd holds surviving it. (plcd's own restarts: plc_fixture_test.) Each
// restart, and a restore from a backup, starts a new state epoch: streams carry
// it, and nothing cached from the old history is served in the new one.
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "proto/ticket.h"
#include "tests/support/child_process.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/plc_node_login.h"
#include "tests/support/sliver_stream.h"

namespace pb = planetlab::v1;
using grpc::StatusCode;
using namespace std::chrono_literals;
using plng::test::PlcClient;
using plng::test::PlcFixture;

namespace {

// Retries a call while PLC reports its database unreachable, as a client would.
template <class F>
grpc::Status untilAvailable(F&& call, std::chrono::seconds limit = 30s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto status = call();
    if (status.error_code() != StatusCode::UNAVAILABLE ||
        std::chrono::steady_clock::now() > deadline) {
      return status;
    }
    std::this_thread::sleep_for(200ms);
  }
}

using Watch = plng::test::SliverStream;

// Registers node `hostname` of `login_base` and logs it in with its key.
PlcClient loggedInNode(PlcFixture& fx, const std::string& hostname, const std::string& login_base) {
  auto node_key = plng::ticket::generateKeyPair();
  pb::AddNodeRequest node;
  node.set_hostname(hostname);
  node.set_login_base(login_base);
  node.set_public_key(std::string(reinterpret_cast<const char*>(node_key.public_key.data()), 32));
  REQUIRE_OK(fx.admin().call(&pb::Admin::Stub::AddNode, node).first);
  return plng::test::loggedInNode(fx.anonymous(), hostname, node_key.private_key);
}

}  // namespace

TEST_CASE_METHOD(PlcFixture, "PostgreSQL restarting under plcd loses nothing", "[plc][pg]") {
  pb::AddSiteRequest site;
  site.set_login_base("princeton");
  site.set_name("Princeton");
  REQUIRE_OK(admin().call(&pb::Admin::Stub::AddSite, site).first);

  auto node_key = plng::ticket::generateKeyPair();
  pb::AddNodeRequest node;
  node.set_hostname("n1.princeton.edu");
  node.set_login_base("princeton");
  node.set_public_key(std::string(reinterpret_cast<const char*>(node_key.public_key.data()), 32));
  REQUIRE_OK(admin().call(&pb::Admin::Stub::AddNode, node).first);

  pb::AddSliceRequest slice;
  slice.set_name("princeton_before");
  REQUIRE_OK(admin().call(&pb::Slice::Stub::AddSlice, slice).first);
  pb::SliceNodesRequest bind;
  bind.set_name("princeton_before");
  bind.add_hostnames("n1.princeton.edu");
  REQUIRE_OK(admin().call(&pb::Slice::Stub::AddSliceNodes, bind).first);

  // The node logs in with its key and opens its stream.
  PlcClient node_client =
      plng::test::loggedInNode(anonymous(), "n1.princeton.edu", node_key.private_key);

  Watch watch(node_client, 0);
  auto first = watch.next(10s);
  REQUIRE(first.has_value());
  REQUIRE(first->slivers_size() == 1);

  // Concurrent callers make plcd open several pooled connections.
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        admin().call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest{}).first.ok();
      }
    });
  }
  for (auto& t : callers) t.join();

  auto& server = pg();
  server.stop();
  // While the database is down, calls fail with UNAVAILABLE and a message to act on.
  auto [down, _] = admin().call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest{});
  CHECK(down.error_code() == StatusCode::UNAVAILABLE);
  CHECK(down.error_message().find("database") != std::string::npos);
  server.start();

  // Everything written before is still there, and the session still works.
  pb::GetSlicesResponse listed;
  REQUIRE_OK(untilAvailable(
      [&] { return admin().call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest{}, &listed); }));
  REQUIRE(listed.slices_size() == 1);
  CHECK(listed.slices(0).name() == "princeton_before");
  CHECK(listed.slices(0).nodes(0) == "n1.princeton.edu");

  // Every pooled connection died with the server; none of them may surface as an
  // error now that PostgreSQL is back.
  for (int i = 0; i < 40; ++i) {
    CHECK_OK(admin().call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest{}).first);
  }

  // A change after the restart still reaches the stream opened before it (the
  // change listener reconnected).
  slice.set_name("princeton_after");
  REQUIRE_OK(admin().call(&pb::Slice::Stub::AddSlice, slice).first);
  bind.set_name("princeton_after");
  REQUIRE_OK(admin().call(&pb::Slice::Stub::AddSliceNodes, bind).first);
  std::optional<pb::NodeState> state;
  do {
    state = watch.next(20s);
    REQUIRE(state.has_value());
  } while (state->slivers_size() < 2);
  CHECK(state->version() > first->version());
}

TEST_CASE_METHOD(PlcFixture,
                 "every PostgreSQL restart starts a new state epoch, which streams carry",
                 "[plc][pg]") {
  pb::AddSiteRequest site;
  site.set_login_base("princeton");
  site.set_name("Princeton");
  REQUIRE_OK(admin().call(&pb::Admin::Stub::AddSite, site).first);
  PlcClient node = loggedInNode(*this, "n1.princeton.edu", "princeton");

  auto [got, before] = node.call(&pb::NodeSync::Stub::GetSlivers, pb::GetSliversRequest{});
  REQUIRE_OK(got);
  CHECK_FALSE(before.epoch().empty());
  // Replicas on one database agree on the epoch without writing anything.
  plng::test::PlcdProcess replica = startReplica();
  auto [got_replica, from_replica] =
      PlcClient(replica.channel(), node.token()).call(&pb::NodeSync::Stub::GetSlivers, {});
  REQUIRE_OK(got_replica);
  CHECK(from_replica.epoch() == before.epoch());

  // A node that holds this epoch and version gets nothing until something changes;
  // one that holds another epoch gets the state at once, whatever its version.
  {
    pb::WatchSliversRequest req;
    req.set_since_version(before.version());
    req.set_since_epoch(before.epoch());
    auto ctx = node.context(5s);
    auto reader = node.nodeSync().WatchSlivers(ctx.get(), req);
    pb::NodeState state;
    CHECK_FALSE(reader->Read(&state));
    CHECK(reader->Finish().error_code() == StatusCode::DEADLINE_EXCEEDED);
  }
  {
    pb::WatchSliversRequest req;
    req.set_since_version(before.version() + 1000);
    req.set_since_epoch("an-epoch-plc-has-left");
    auto ctx = node.context(10s);
    auto reader = node.nodeSync().WatchSlivers(ctx.get(), req);
    pb::NodeState state;
    REQUIRE(reader->Read(&state));
    CHECK(state.epoch() == before.epoch());
    CHECK(state.version() == before.version());
    ctx->TryCancel();
    reader->Finish().ok();
  }

  // A stream open across a restart sends the new epoch even though nothing changed.
  Watch watch(node, 0);
  auto first = watch.next(10s);
  REQUIRE(first.has_value());
  CHECK(first->epoch() == before.epoch());
  pg().stop();
  pg().start();
  auto after = watch.next(20s);
  REQUIRE(after.has_value());
  CHECK(after->epoch() != before.epoch());
  CHECK(after->version() == before.version());
  pb::NodeState polled;
  REQUIRE_OK(untilAvailable([&] {
    return node.call(&pb::NodeSync::Stub::GetSlivers, pb::GetSliversRequest{}, &polled);
  }));
  CHECK(polled.epoch() == after->epoch());
}

TEST_CASE("after a restore, tickets never come from what was cached before it", "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  // A server of this test's own: its data directory is backed up and restored.
  plng::test::PgInstance pg;
  PlcFixture fx(pg);
  pb::AddSiteRequest site;
  site.set_login_base("princeton");
  site.set_name("Princeton");
  REQUIRE_OK(fx.admin().call(&pb::Admin::Stub::AddSite, site).first);
  for (const char* host : {"n1.princeton.edu", "n2.princeton.edu"}) {
    pb::AddNodeRequest node;
    node.set_hostname(host);
    node.set_login_base("princeton");
    auto key = plng::ticket::generateKeyPair();
    node.set_public_key(std::string(reinterpret_cast<const char*>(key.public_key.data()), 32));
    REQUIRE_OK(fx.admin().call(&pb::Admin::Stub::AddNode, node).first);
  }
  pb::AddSliceRequest slice;
  slice.set_name("princeton_s");
  REQUIRE_OK(fx.admin().call(&pb::Slice::Stub::AddSlice, slice).first);
  pb::SliceNodesRequest bind;
  bind.set_name("princeton_s");
  bind.add_hostnames("n1.princeton.edu");
  REQUIRE_OK(fx.admin().call(&pb::Slice::Stub::AddSliceNodes, bind).first);

  const auto dir = plng::test::processScratchDir() / plng::test::uniqueDatabaseName("backup");
  pg.stop();
  pg.backupTo(dir);
  pg.start();

  // After the backup: the slice gains a node, and a ticket naming both is cached.
  bind.set_hostnames(0, "n2.princeton.edu");
  REQUIRE_OK(
      untilAvailable([&] { return fx.admin().call(&pb::Slice::Stub::AddSliceNodes, bind).first; }));
  pb::GetSliceTicketRequest ask;
  ask.set_slice("princeton_s");
  pb::SignedTicket ticket;
  REQUIRE_OK(fx.admin().call(&pb::Slice::Stub::GetSliceTicket, ask, &ticket));
  pb::TicketBody body;
  REQUIRE(body.ParseFromString(ticket.body()));
  CHECK(body.nodes_size() == 2);

  // The backup is restored: the slice is on n1 only, one version back. Another
  // change brings the version to the number the cached ticket was made at.
  pg.stop();
  pg.restoreFrom(dir);
  pg.start();
  std::filesystem::remove_all(dir);
  pb::AddSiteRequest other;
  other.set_login_base("mit");
  other.set_name("MIT");
  REQUIRE_OK(
      untilAvailable([&] { return fx.admin().call(&pb::Admin::Stub::AddSite, other).first; }));
  REQUIRE_OK(fx.admin().call(&pb::Slice::Stub::GetSliceTicket, ask, &ticket));
  REQUIRE(body.ParseFromString(ticket.body()));
  REQUIRE(body.nodes_size() == 1);
  CHECK(body.nodes(0).hostname() == "n1.princeton.edu");
}
