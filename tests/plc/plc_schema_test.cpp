// PLC's schema: migrations applied to a fresh database must produce exactly the
// reviewed schema in tests/data/plc_schema.txt, be idempotent, and be safe when
// several plcd replicas start at once.
//
// After adding a migration, regenerate the expected schema and review the diff:
//   PLNG_UPDATE_SCHEMA=1 build/tests/plc_schema_test
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "base/file.h"
#include "plc/db.h"
#include "tests/support/plc_fixture.h"

using plng::plc::Database;

namespace {

// A canonical, diffable description of every table, column, constraint, index
// and sequence in the public schema.
std::string describeSchema(const std::string& connstr) {
  pqxx::connection c(connstr);
  pqxx::read_transaction tx(c);
  std::ostringstream out;
  for (const auto& r : tx.exec(
           "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')"
           " FROM information_schema.columns WHERE table_schema = 'public'"
           " ORDER BY table_name, column_name")) {
    out << "column " << r[0].c_str() << "." << r[1].c_str() << " " << r[2].c_str()
        << (std::string(r[3].c_str()) == "NO" ? " NOT NULL" : "")
        << (std::string(r[4].c_str()).empty() ? "" : " DEFAULT " + std::string(r[4].c_str()))
        << "\n";
  }
  for (const auto& r : tx.exec("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                               " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
                               " ORDER BY 1, 2")) {
    out << "constraint " << r[0].c_str() << " " << r[1].c_str() << " " << r[2].c_str() << "\n";
  }
  for (const auto& r :
       tx.exec("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname")) {
    out << "index " << r[0].c_str() << "\n";
  }
  for (const auto& r : tx.exec("SELECT sequence_name, start_value FROM information_schema.sequences"
                               " WHERE sequence_schema = 'public' ORDER BY 1")) {
    out << "sequence " << r[0].c_str() << " start " << r[1].c_str() << "\n";
  }
  return out.str();
}

struct FreshDatabase {
  FreshDatabase() : name(plng::test::uniqueDatabaseName("plc_schema")) {
    // As a deployment has it: migrations run as the database's unprivileged owner.
    plng::test::sharedPostgres().createOwnedDatabase(name, plng::test::PlcFixture::kPlcdRole);
  }
  ~FreshDatabase() {
    try {
      plng::test::sharedPostgres().dropDatabase(name);
    } catch (...) {
    }
  }
  std::string connstr() const {
    return plng::test::sharedPostgres().roleConnectionString(name,
                                                             plng::test::PlcFixture::kPlcdRole);
  }
  std::string name;
};

}  // namespace

TEST_CASE("a fresh database migrates to exactly the reviewed schema", "[plc][pg][schema]") {
  FreshDatabase fresh;
  Database db(fresh.connstr(), 2);
  int version = db.migrate();
  CHECK(version == plng::plc::migrations().back().version);

  const std::string expected_path = PLNG_SOURCE_DIR "/tests/data/plc_schema.txt";
  auto actual = describeSchema(fresh.connstr());
  if (std::getenv("PLNG_UPDATE_SCHEMA")) {
    std::ofstream(expected_path) << actual;
    WARN("rewrote " << expected_path);
  }
  CHECK(actual == plng::base::readFile(expected_path));

  SECTION("every migration is recorded once, and migrating again changes nothing") {
    pqxx::connection c(fresh.connstr());
    pqxx::read_transaction tx(c);
    CHECK(tx.exec("SELECT version FROM schema_migrations").size() ==
          plng::plc::migrations().size());
    CHECK(db.migrate() == version);
    CHECK(describeSchema(fresh.connstr()) == actual);
  }
  SECTION("resource tag types are seeded with PlanetLab's defaults") {
    pqxx::connection c(fresh.connstr());
    pqxx::read_transaction tx(c);
    auto value = [&](const char* name) {
      return tx.exec_params1("SELECT default_value FROM tag_types WHERE name = $1", name)[0]
          .as<std::string>();
    };
    CHECK(value("cpu_share") == "32");
    CHECK(value("mem_limit") == "134217728");  // 128 MB
    CHECK(value("tasks") == "256");
    CHECK(value("disk_quota") == "5368709120");  // 5 GB
    CHECK(value("net_min_rate") == "5000");      // 5 kbit/s
    CHECK(value("net_max_rate") == "10000000");  // 10 Mbit/s
  }
}

TEST_CASE("replicas starting together migrate once", "[plc][pg][schema]") {
  FreshDatabase fresh;
  std::vector<std::thread> replicas;
  std::vector<int> versions(4, -1);
  for (int i = 0; i < 4; ++i) {
    replicas.emplace_back([&, i] {
      Database db(fresh.connstr(), 1);
      versions[static_cast<std::size_t>(i)] = db.migrate();
    });
  }
  for (auto& t : replicas) t.join();
  for (int v : versions) CHECK(v == plng::plc::migrations().back().version);
  pqxx::connection c(fresh.connstr());
  pqxx::read_transaction tx(c);
  CHECK(tx.exec("SELECT version FROM schema_migrations").size() == plng::plc::migrations().size());
}
