#include "tests/support/plc_fixture.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <stdexcept>

namespace plng::test {

void skipUnlessPostgres() {
  if (auto why = postgresUnavailableReason()) skipTest(*why);
}

PgInstance& sharedPostgres() {
  // Destroyed by exit(): stops the server and removes its directory.
  static std::unique_ptr<PgInstance> instance;
  if (!instance) {
    skipUnlessPostgres();
    PgInstance::Options options;
    options.durability = Durability::kFastUnsafeForTests;
    instance = std::make_unique<PgInstance>(options);
  }
  return *instance;
}

std::string uniqueDatabaseName(std::string_view prefix) {
  static std::atomic<unsigned> counter{0};
  return std::string(prefix) + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

std::filesystem::path defaultPlcdPath() {
  if (const char* env = std::getenv("PLNG_PLCD_PATH"); env != nullptr && *env != '\0') {
    return env;
  }
#ifdef PLNG_PLCD_PATH
  return PLNG_PLCD_PATH;
#else
  throw std::runtime_error(
      "no plcd to test: set PLNG_PLCD_PATH, or build the test support library in a tree "
      "that has the plcd target");
#endif
}

namespace {

std::string freshDatabase(PgInstance& pg) {
  std::string name = uniqueDatabaseName();
  pg.createOwnedDatabase(name, PlcFixture::kPlcdRole);
  return name;
}

}  // namespace

PlcFixture::PlcFixture() : PlcFixture(defaultPlcdPath()) {}

PlcFixture::PlcFixture(std::filesystem::path plcdPath)
    : PlcFixture(sharedPostgres(), std::move(plcdPath)) {}

PlcFixture::PlcFixture(const PlcFixtureOptions& options)
    : PlcFixture(sharedPostgres(), defaultPlcdPath(), options) {}

PlcFixture::PlcFixture(PgInstance& pg, std::filesystem::path plcdPath,
                       const PlcFixtureOptions& options)
    : pg_(&pg),
      plcdPath_(std::move(plcdPath)),
      database_(freshDatabase(*pg_)),
      plcd_([&] {
        PlcdProcess::Options plcd;
        plcd.plcdPath = plcdPath_;
        plcd.database = connectionString();
        plcd.portal = options.portal;
        plcd.portalRoot = options.portalRoot;
        return plcd;
      }()),
      admin_([this] {
        createAdmin(plcdPath_, connectionString(), kAdminEmail, kAdminPassword);
        return loginAs(kAdminEmail, kAdminPassword);
      }()) {}

PlcFixture::~PlcFixture() {
  plcd_.stop();
  try {
    pg_->dropDatabase(database_);
  } catch (const std::exception& e) {
    std::cerr << "PlcFixture: " << e.what() << "\n";
  }
}

PlcClient PlcFixture::loginAs(const std::string& email, const std::string& password) const {
  PlcClient client(plcd_.channel());
  const grpc::Status status = client.login(email, password);
  if (!status.ok()) {
    throw std::runtime_error("login as " + email + " failed: " + describeStatus(status));
  }
  return client;
}

PlcdProcess PlcFixture::startReplica() const { return PlcdProcess(plcdPath_, connectionString()); }

}  // namespace plng::test
