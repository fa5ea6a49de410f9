// PgInstance, the PostgreSQL every PLC integration test runs against, and the
// plng-pg-tmp command the local planet starts it with.
#include "tests/support/pg_instance.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "tests/support/child_process.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/scratch_dir.h"

namespace fs = std::filesystem;
using plng::test::PgInstance;
using plng::test::ScratchDir;
using namespace std::chrono_literals;

namespace {

std::string scalar(const std::string& conninfo, const std::string& sql) {
  pqxx::connection c(conninfo);
  pqxx::nontransaction tx(c);
  return tx.exec1(sql)[0].c_str();
}

bool accepts(const std::string& conninfo) {
  try {
    pqxx::connection c(conninfo + " connect_timeout=2");
    return true;
  } catch (const pqxx::broken_connection&) {
    return false;
  }
}

// Scratch directories go in processScratchDir() (in memory where the machine
// allows: a durable cluster's fsyncs cost seconds on a busy virtual disk), with
// 0701: as root the server runs as `postgres`, which must be able to enter them.
constexpr mode_t kPgScratchMode = 0701;

}  // namespace

TEST_CASE("PgInstance keeps committed data across stop and start, in separate databases",
          "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  PgInstance pg;
  CHECK(pg.port() == PgInstance::kDefaultPort);
  CHECK(pg.connectionString() ==
        "host=" + pg.socketDir().string() + " port=5432 user=plc dbname=plc");
  if (::geteuid() == 0) {
    // PostgreSQL refuses to run as root: the cluster must belong to `postgres`.
    struct stat st {};
    REQUIRE(::stat(pg.dataDir().c_str(), &st) == 0);
    CHECK(st.st_uid != 0);
  }
  // The default is what a user may rely on: an acknowledged commit is on disk.
  CHECK(pg.durability() == plng::test::Durability::kDurable);
  for (const char* setting : {"fsync", "synchronous_commit", "full_page_writes"}) {
    INFO(setting);
    CHECK(scalar(pg.connectionString(), std::string("SHOW ") + setting) == "on");
  }
  // No TCP listener at all; the socket's directory is the server's alone.
  CHECK(scalar(pg.connectionString(), "SHOW listen_addresses").empty());
  struct stat socketDir {};
  REQUIRE(::stat(pg.socketDir().c_str(), &socketDir) == 0);
  CHECK((socketDir.st_mode & 0777) == 0700);

  {
    pqxx::connection c(pg.connectionString());
    pqxx::work tx(c);
    tx.exec0("CREATE TABLE sites (login_base text PRIMARY KEY, name text NOT NULL)");
    tx.exec_params0("INSERT INTO sites VALUES ($1, $2)", "princeton", "Princeton University");
    tx.commit();
  }

  pg.stop();
  CHECK_FALSE(pg.running());
  CHECK_FALSE(accepts(pg.connectionString()));
  pg.stop();  // stopping a stopped server is a no-op

  pg.start();
  CHECK(pg.running());
  CHECK(scalar(pg.connectionString(), "SELECT name FROM sites WHERE login_base = 'princeton'") ==
        "Princeton University");
  CHECK_THROWS_AS(pg.start(), std::logic_error);

  SECTION("databases are isolated and can be dropped while in use") {
    const std::string name = plng::test::uniqueDatabaseName("iso");
    pg.createDatabase(name);
    pg.execute("CREATE TABLE only_here (x int)", name);
    CHECK(scalar(pg.connectionString(name), "SELECT to_regclass('only_here') IS NOT NULL") == "t");
    CHECK(scalar(pg.connectionString(), "SELECT to_regclass('only_here') IS NULL") == "t");
    CHECK_THROWS_WITH(pg.createDatabase(name), Catch::Contains("already exists"));
    CHECK_THROWS_WITH(pg.execute("SELECT * FROM nowhere"), Catch::Contains("nowhere"));

    pqxx::connection open(pg.connectionString(name));
    pg.dropDatabase(name);
    CHECK_FALSE(accepts(pg.connectionString(name)));
    pg.dropDatabase(name);  // IF EXISTS
  }
  SECTION("SIGKILL of the postmaster loses no acknowledged commit; start() recovers") {
    {
      pqxx::connection c(pg.connectionString());
      pqxx::work tx(c);
      tx.exec0("INSERT INTO sites VALUES ('mit', 'MIT')");
      tx.commit();
      pg.kill();
    }
    CHECK_FALSE(pg.running());
    CHECK_FALSE(accepts(pg.connectionString()));
    // Started at once: the old postmaster's processes may still be on their way out.
    pg.start();
    CHECK(scalar(pg.connectionString(), "SELECT name FROM sites WHERE login_base = 'mit'") ==
          "MIT");
  }
}

TEST_CASE("a database owned by an unprivileged role, as PLC's bootstrap makes it", "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  PgInstance pg;
  const std::string db = plng::test::uniqueDatabaseName("owned");
  pg.createOwnedDatabase(db, "plcd");
  const std::string conninfo = pg.roleConnectionString(db, "plcd");
  CHECK(conninfo == "host=" + pg.socketDir().string() + " port=5432 user=plcd dbname=" + db +
                        " passfile=" + pg.passfile().string());
  struct stat passfile {};
  REQUIRE(::stat(pg.passfile().c_str(), &passfile) == 0);
  CHECK((passfile.st_mode & 0077) == 0);

  CHECK(scalar(conninfo, "SELECT current_user") == "plcd");
  CHECK(scalar(conninfo,
               "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication"
               " OR rolbypassrls FROM pg_roles WHERE rolname = current_user") == "f");
  // It builds its schema (PLC's migrations run as this role)...
  pqxx::connection c(conninfo);
  pqxx::nontransaction(c).exec0("CREATE TABLE sites (login_base text PRIMARY KEY)");
  // ...and can do nothing outside it.
  auto refused = [&](const std::string& sql) {
    try {
      pqxx::connection own(conninfo);
      pqxx::nontransaction(own).exec(sql);
      return std::string("accepted");
    } catch (const pqxx::sql_error& e) {
      return std::string(e.what());
    }
  };
  CHECK_THAT(refused("COPY (SELECT 1) TO PROGRAM 'true'"),
             Catch::Contains("permission denied") || Catch::Contains("must be superuser"));
  CHECK_THAT(refused("COPY (SELECT 1) TO '/tmp/plng-pg-test-copy'"),
             Catch::Contains("permission denied") || Catch::Contains("must be superuser"));
  CHECK_THAT(refused("ALTER ROLE plcd SUPERUSER"),
             Catch::Contains("permission denied") || Catch::Contains("must be superuser"));
  CHECK_THAT(refused("CREATE ROLE intruder"), Catch::Contains("permission denied"));
  CHECK_THAT(refused("CREATE EXTENSION plpython3u"), !Catch::Equals("accepted"));
  // Other databases are closed to it, and a wrong password gets nobody in.
  CHECK_FALSE(accepts(pg.roleConnectionString("postgres", "plcd")));
  CHECK_FALSE(accepts(pg.roleConnectionString(PgInstance::kDefaultDatabase, "plcd")));
  CHECK_FALSE(accepts("host=" + pg.socketDir().string() + " port=5432 user=plcd dbname=" + db +
                      " password=wrong passfile=/nonexistent"));
  CHECK_FALSE(accepts("host=" + pg.socketDir().string() + " port=5432 user=plcd dbname=" + db +
                      " passfile=/nonexistent"));

  // Running the bootstrap again changes nothing: same password, same data.
  pg.createOwnedDatabase(db, "plcd");
  CHECK(scalar(conninfo, "SELECT count(*) FROM sites") == "0");
  pg.dropDatabase(db);
}

TEST_CASE("Two PgInstances run side by side and clean up after themselves", "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  fs::path dirA;
  std::string connA;
  {
    PgInstance a;
    PgInstance b;
    dirA = a.dir();
    connA = a.connectionString();
    CHECK(a.socketDir() != b.socketDir());
    CHECK(a.dir() != b.dir());
    pqxx::connection ca(a.connectionString());
    pqxx::connection cb(b.connectionString());
    pqxx::nontransaction(ca).exec0("CREATE TABLE in_a (x int)");
    CHECK(scalar(b.connectionString(), "SELECT to_regclass('in_a') IS NULL") == "t");
    CHECK(scalar(a.connectionString(), "SELECT to_regclass('in_a') IS NOT NULL") == "t");
  }
  CHECK_FALSE(fs::exists(dirA));
  CHECK_FALSE(accepts(connA));
}

TEST_CASE("PgInstance in a given directory keeps it and reuses the cluster", "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  ScratchDir scratch("plng-pg-test", kPgScratchMode, plng::test::processScratchDir());
  const fs::path dir = scratch / "pg";
  std::string conninfo;
  {
    PgInstance::Options options;
    options.dir = dir;
    PgInstance pg(options);
    pg.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
    conninfo = pg.connectionString();
  }
  REQUIRE(fs::exists(dir / "data" / "PG_VERSION"));
  CHECK(fs::exists(dir / "server.log"));

  PgInstance::Options options;
  options.dir = dir;
  PgInstance again(options);
  // The same address as before: whoever was configured with it reconnects.
  CHECK(again.connectionString() == conninfo);
  CHECK(scalar(again.connectionString(), "SELECT v FROM kept") == "still here");
  SECTION("a second server on the same directory is a clear error") {
    CHECK_THROWS_WITH(PgInstance(options),
                      Catch::Contains("failed to start") && Catch::Contains("lock file"));
    CHECK(scalar(again.connectionString(), "SELECT v FROM kept") == "still here");
  }
}

#ifdef PLNG_PG_TMP_PATH
namespace {

// plng-pg-tmp running, with what it printed.
struct PgTmp {
  plng::test::ChildProcess tool;
  plng::base::UniqueFd output;
  std::string printed;
  std::string conninfo;  // the first line of stdout: PLC's role
  fs::path dataDir;

  explicit PgTmp(std::vector<std::string> args) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    output.reset(fds[0]);
    plng::base::UniqueFd writeEnd(fds[1]);
    plng::test::SpawnOptions spawn;
    spawn.argv = {PLNG_PG_TMP_PATH};
    spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
    spawn.outputFd = writeEnd.get();
    tool = plng::test::ChildProcess::spawn(spawn);
    writeEnd.reset();
    // stdout and stderr share the pipe: the connection string is the line that
    // starts with "host=" (stderr's superuser line quotes its own).
    readUntil([&] { return !conninfo.empty(); }, 60s);
    INFO("plng-pg-tmp output:\n" << printed);
    REQUIRE_FALSE(conninfo.empty());
    // "plng-pg-tmp: PostgreSQL running in <dir>/data, socket in ..."
    const std::string marker = "running in ";
    const std::size_t at = printed.find(marker);
    REQUIRE(at != std::string::npos);
    dataDir =
        printed.substr(at + marker.size(), printed.find(", socket in ", at) - at - marker.size());
    REQUIRE(fs::exists(dataDir / "PG_VERSION"));
  }

  // Reads output until `done` or `timeout`.
  template <class F>
  void readUntil(F done, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{output.get(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(output.get(), buf, sizeof buf);
      if (n <= 0) break;
      printed.append(buf, static_cast<std::size_t>(n));
      std::size_t start = 0;
      for (std::size_t end; (end = printed.find('\n', start)) != std::string::npos;
           start = end + 1) {
        const std::string line = printed.substr(start, end - start);
        if (conninfo.empty() && line.starts_with("host=")) conninfo = line;
      }
    }
  }

  pid_t postmasterPid() const {
    std::ifstream in(dataDir / "postmaster.pid");
    pid_t pid = 0;
    in >> pid;
    return pid;
  }
};

}  // namespace

TEST_CASE("plng-pg-tmp serves until told to stop and leaves nothing behind", "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  PgTmp pg({});
  CHECK(scalar(pg.conninfo, "SELECT current_database()") == "plc");
  CHECK(scalar(pg.conninfo, "SELECT current_user") == "plcd");
  CHECK(scalar(pg.conninfo, "SHOW synchronous_commit") == "on");
  CHECK(pg.conninfo.find("passfile=") != std::string::npos);
  const fs::path scratch = pg.dataDir.parent_path().parent_path();

  SECTION("SIGTERM: fast shutdown, exit 0, directory removed") {
    const int status = pg.tool.terminate(SIGTERM, 30s);
    CHECK(plng::test::describeWaitStatus(status) == "exited with code 0");
    CHECK_FALSE(accepts(pg.conninfo));
    CHECK_FALSE(fs::exists(pg.dataDir.parent_path()));
  }
  SECTION("SIGKILL: the server shuts down and the watchdog removes the directory") {
    pg.tool.terminate(SIGKILL, 0s);
  }
  // The scratch watchdog removes the rest once the server has gone.
  const auto gone = std::chrono::steady_clock::now() + 20s;
  while (fs::exists(scratch) && std::chrono::steady_clock::now() < gone) {
    std::this_thread::sleep_for(50ms);
  }
  CHECK_FALSE(fs::exists(scratch));
  CHECK_FALSE(accepts(pg.conninfo));
}

TEST_CASE("plng-pg-tmp starts a crashed PostgreSQL again at the same address, losing nothing",
          "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  ScratchDir scratch("plng-pg-test", kPgScratchMode, plng::test::processScratchDir());
  PgTmp pg({"--dir", (scratch / "pg").string()});
  {
    pqxx::connection c(pg.conninfo);
    pqxx::work tx(c);
    tx.exec0("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('acknowledged')");
    tx.commit();
  }
  const pid_t first = pg.postmasterPid();
  REQUIRE(first > 0);
  REQUIRE(::kill(first, SIGKILL) == 0);
  pg.readUntil([&] { return pg.printed.find("PostgreSQL is back") != std::string::npos; }, 60s);
  INFO("plng-pg-tmp output:\n" << pg.printed);
  REQUIRE(pg.printed.find("PostgreSQL is back") != std::string::npos);
  CHECK(pg.postmasterPid() != first);
  // The connection string printed at start still works (plcd's config needs no
  // change), and the acknowledged commit is there.
  CHECK(scalar(pg.conninfo, "SELECT v FROM kept") == "acknowledged");
  CHECK(plng::test::describeWaitStatus(pg.tool.terminate(SIGTERM, 30s)) == "exited with code 0");

  SECTION("started again on the same directory, it prints the same connection string") {
    PgTmp again({"--dir", (scratch / "pg").string()});
    CHECK(again.conninfo == pg.conninfo);
    CHECK(scalar(again.conninfo, "SELECT v FROM kept") == "acknowledged");
    CHECK(plng::test::describeWaitStatus(again.tool.terminate(SIGTERM, 30s)) ==
          "exited with code 0");
  }
}
#endif
