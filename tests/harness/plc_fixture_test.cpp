// The PLC test harness itself: PlcFixture, PlcdProcess, createAdmin and PlcClient
// against a real plcd and PostgreSQL. PLC's API is tested elsewhere; the calls here
// only prove the harness hands tests a working, authenticated plcd.
#include "tests/support/plc_fixture.h"

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <csignal>

using planetlab::v1::Auth;
using planetlab::v1::Empty;
using planetlab::v1::WhoAmIResponse;
using plng::test::PlcClient;
using plng::test::PlcFixture;

TEST_CASE_METHOD(PlcFixture, "PlcFixture gives each test its own plcd, database and admin",
                 "[plc][pg]") {
  REQUIRE_FALSE(admin().token().empty());
  auto [status, me] = admin().call(&Auth::Stub::WhoAmI, Empty{});
  REQUIRE_OK(status);
  CHECK(me.email() == kAdminEmail);

  CHECK_STATUS(anonymous().call(&Auth::Stub::WhoAmI, Empty{}).first,
               grpc::StatusCode::UNAUTHENTICATED, "");
  CHECK_STATUS(admin().withToken("not-a-token").call(&Auth::Stub::WhoAmI, Empty{}).first,
               grpc::StatusCode::UNAUTHENTICATED, "");

  PlcFixture other;
  CHECK(other.databaseName() != databaseName());
  CHECK(other.plcd().address() != plcd().address());
  // Sessions live in a database: this fixture's token means nothing to the other.
  CHECK_STATUS(
      PlcClient(other.plcd().channel(), admin().token()).call(&Auth::Stub::WhoAmI, Empty{}).first,
      grpc::StatusCode::UNAUTHENTICATED, "");
}

TEST_CASE_METHOD(PlcFixture, "plcd stops, is killed and restarts on the same address",
                 "[plc][pg]") {
  const std::string address = plcd().address();

  const int status = plcd().stop();
  CHECK(WIFEXITED(status));
  CHECK_FALSE(plcd().running());
  CHECK_STATUS(admin().call(&Auth::Stub::WhoAmI, Empty{}).first, grpc::StatusCode::UNAVAILABLE, "");

  plcd().start();
  CHECK(plcd().address() == address);
  // The session is in the database, and the shared channel reconnects.
  CHECK_OK(admin().call(&Auth::Stub::WhoAmI, Empty{}).first);

  plcd().kill();
  REQUIRE(plcd().exitStatus().has_value());
  CHECK(WIFSIGNALED(*plcd().exitStatus()));
  CHECK(WTERMSIG(*plcd().exitStatus()) == SIGKILL);
  plcd().start();
  CHECK_OK(admin().call(&Auth::Stub::WhoAmI, Empty{}).first);
}

TEST_CASE_METHOD(PlcFixture, "a replica on the same database honours the same tokens",
                 "[plc][pg]") {
  plng::test::PlcdProcess replica = startReplica();
  CHECK(replica.address() != plcd().address());
  auto [status, me] =
      PlcClient(replica.channel(), admin().token()).call(&Auth::Stub::WhoAmI, Empty{});
  REQUIRE_OK(status);
  CHECK(me.email() == kAdminEmail);
}

TEST_CASE("plcd commands and start-up failures are reported with plcd's output", "[plc][pg]") {
  auto& pg = plng::test::sharedPostgres();
  const auto plcdPath = plng::test::defaultPlcdPath();
  const std::string db = plng::test::uniqueDatabaseName();
  pg.createOwnedDatabase(db, PlcFixture::kPlcdRole);
  const std::string conninfo = pg.roleConnectionString(db, PlcFixture::kPlcdRole);

  const auto migrated =
      plng::test::runPlcd(plcdPath, {"--database", conninfo, "--log-level", "warn", "migrate"});
  CHECK(migrated.succeeded());

  CHECK_THROWS_WITH(plng::test::createAdmin(plcdPath, conninfo, "root@plc.test", "short"),
                    Catch::Contains("create-admin --email root@plc.test exited with code"));
  plng::test::createAdmin(plcdPath, conninfo, "root@plc.test", "long-enough-1");

  // Nothing listens on port 1: plcd cannot reach its database and exits.
  plng::test::PlcdProcess::Options options;
  options.plcdPath = plcdPath;
  options.database = "host=127.0.0.1 port=1 user=plc dbname=plc connect_timeout=2";
  options.readyTimeout = std::chrono::seconds(20);
  CHECK_THROWS_WITH(plng::test::PlcdProcess(options),
                    Catch::Contains("while starting") && Catch::Contains("port=1"));
  pg.dropDatabase(db);
}
