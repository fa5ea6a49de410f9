// Shared fixture for PLC integration tests (Catch2).
//
//   TEST_CASE_METHOD(plng::test::PlcFixture, "admins add sites", "[plc][pg]") {
//     auto [status, site] = admin().call(&planetlab::v1::Admin::Stub::AddSite, request);
//     REQUIRE_OK(status);
//   }
//
// One PostgreSQL server per test binary (started on first use, stopped at exit;
// Durability::kFastUnsafeForTests); each fixture gets a fresh database owned by the
// unprivileged role kPlcdRole, as a PLC deployment has it, its own plcd connecting
// as that role, and an admin account. If this
// machine has no PostgreSQL, the binary skips (tests/support/skip.h).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "tests/support/pg_instance.h"
#include "tests/support/plc_client.h"
#include "tests/support/plcd_process.h"
#include "tests/support/skip.h"

namespace plng::test {

// Skips the test binary when PostgreSQL cannot run here.
void skipUnlessPostgres();

// The test binary's PostgreSQL server, started on first call (skipping the binary
// if PostgreSQL is missing) and stopped at exit. Call it from the main thread. Fast
// and unsafe: a crash of this server loses commits (tests that crash PostgreSQL on
// purpose start a durable PgInstance of their own).
PgInstance& sharedPostgres();

// A database name unique within this machine's test runs: <prefix>_<pid>_<n>.
std::string uniqueDatabaseName(std::string_view prefix = "plc_test");

// The plcd binary under test: $PLNG_PLCD_PATH if set, else the plcd target the
// test-support library was built with. Throws if neither exists.
std::filesystem::path defaultPlcdPath();

// What a fixture's plcd serves besides gRPC.
struct PlcFixtureOptions {
  bool portal = false;  // the portal and JSON API: PlcdProcess::portalAddress()
  std::filesystem::path portalRoot = {};
};

class PlcFixture {
 public:
  static constexpr const char* kAdminEmail = "admin@plc.test";
  static constexpr const char* kAdminPassword = "admin-password-0";
  // The role plcd connects as: owner of its database, nothing more.
  static constexpr const char* kPlcdRole = "plcd";

  // Fresh database on sharedPostgres(), plcd serving it, admin created and logged in.
  PlcFixture();
  explicit PlcFixture(std::filesystem::path plcdPath);
  // The same on `pg`, which must outlive the fixture.
  explicit PlcFixture(PgInstance& pg, std::filesystem::path plcdPath = defaultPlcdPath(),
                      const PlcFixtureOptions& options = {});
  explicit PlcFixture(const PlcFixtureOptions& options);
  ~PlcFixture();  // stops plcd, drops the database
  PlcFixture(const PlcFixture&) = delete;
  PlcFixture& operator=(const PlcFixture&) = delete;

  PgInstance& pg() const { return *pg_; }
  const std::string& databaseName() const { return database_; }
  // As plcd connects: role kPlcdRole.
  std::string connectionString() const { return pg_->roleConnectionString(database_, kPlcdRole); }
  std::string superuserConnectionString() const { return pg_->connectionString(database_); }
  const std::filesystem::path& plcdPath() const { return plcdPath_; }
  PlcdProcess& plcd() { return plcd_; }

  // Logged in as kAdminEmail.
  PlcClient& admin() { return admin_; }
  // A client of plcd() without a token.
  PlcClient anonymous() const { return PlcClient(plcd_.channel()); }
  // A client of plcd() logged in as `email`; throws if the login fails.
  PlcClient loginAs(const std::string& email, const std::string& password) const;

  // Another plcd replica on the same database (plcd is stateless).
  PlcdProcess startReplica() const;

 private:
  PgInstance* pg_;
  std::filesystem::path plcdPath_;
  std::string database_;
  PlcdProcess plcd_;
  PlcClient admin_;
};

}  // namespace plng::test
