// PgInstance, the PostgreSQL every PLC integration test runs against, and the
// plng-pg-tmp command the local planet starts it with.
#include "pg_instance.h"

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
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "child_process.h"
#include "plc_fixture.h"

namespace fs = std::filesystem;
using plng::test::PgInstance;
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

// A scratch directory removed at scope exit.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "plng-pg-test-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
    // As root the server runs as `postgres`, which must be able to enter it.
    fs::permissions(path, fs::perms::others_exec, fs::perm_options::add);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("PgInstance keeps committed data across stop and start, in separate databases",
          "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  PgInstance pg;
  const int port = pg.port();
  REQUIRE(port > 0);
  CHECK(pg.connectionString() ==
        "host=127.0.0.1 port=" + std::to_string(port) + " user=plc dbname=plc");
  if (::geteuid() == 0) {
    // PostgreSQL refuses to run as root: the cluster must belong to `postgres`.
    struct stat st {};
    REQUIRE(::stat(pg.dataDir().c_str(), &st) == 0);
    CHECK(st.st_uid != 0);
  }

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
  CHECK(pg.port() == port);
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
    CHECK(a.port() != b.port());
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
  ScratchDir scratch;
  const fs::path dir = scratch.path / "pg";
  {
    PgInstance::Options options;
    options.dir = dir;
    PgInstance pg(options);
    pg.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
  }
  REQUIRE(fs::exists(dir / "data" / "PG_VERSION"));
  CHECK(fs::exists(dir / "server.log"));

  PgInstance::Options options;
  options.dir = dir;
  SECTION("a port already taken is a clear error, and the directory stays usable") {
    plng::test::UniqueFd blocker(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(blocker.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::listen(blocker.get(), 1) == 0);
    REQUIRE(::getsockname(blocker.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    const int taken = ntohs(addr.sin_port);

    PgInstance::Options clash = options;
    clash.port = taken;
    CHECK_THROWS_WITH(PgInstance(clash),
                      Catch::Contains("failed to start on 127.0.0.1:" + std::to_string(taken)) &&
                          Catch::Contains("could not bind"));
    CHECK(fs::exists(dir / "data" / "PG_VERSION"));
  }
  PgInstance again(options);
  CHECK(scalar(again.connectionString(), "SELECT v FROM kept") == "still here");
}

#ifdef PLNG_PG_TMP_PATH
TEST_CASE("plng-pg-tmp serves until told to stop and leaves nothing behind", "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  plng::test::UniqueFd readEnd(fds[0]);
  plng::test::UniqueFd writeEnd(fds[1]);
  plng::test::SpawnOptions spawn;
  spawn.argv = {PLNG_PG_TMP_PATH};
  spawn.outputFd = writeEnd.get();
  plng::test::ChildProcess tool = plng::test::ChildProcess::spawn(spawn);
  writeEnd.reset();

  // stdout and stderr share the pipe: find the line that is a connection string.
  std::string output;
  std::string conninfo;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (conninfo.empty() && std::chrono::steady_clock::now() < deadline) {
    pollfd p{readEnd.get(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(readEnd.get(), buf, sizeof buf);
    if (n <= 0) break;
    output.append(buf, static_cast<std::size_t>(n));
    for (std::size_t start = 0, end; (end = output.find('\n', start)) != std::string::npos;
         start = end + 1) {
      const std::string line = output.substr(start, end - start);
      if (line.starts_with("host=127.0.0.1 ")) conninfo = line;
    }
  }
  INFO("plng-pg-tmp output:\n" << output);
  REQUIRE_FALSE(conninfo.empty());
  CHECK(scalar(conninfo, "SELECT current_database()") == "plc");

  // "plng-pg-tmp: PostgreSQL running in <scratch>/pg-XXXXXX/data, log ..."
  const std::string marker = "running in ";
  const std::size_t at = output.find(marker);
  REQUIRE(at != std::string::npos);
  const fs::path dataDir =
      output.substr(at + marker.size(), output.find(", log ", at) - at - marker.size());
  REQUIRE(fs::exists(dataDir / "PG_VERSION"));
  const fs::path scratch = dataDir.parent_path().parent_path();

  SECTION("SIGTERM: fast shutdown, exit 0, directory removed") {
    const int status = tool.terminate(SIGTERM, 30s);
    CHECK(plng::test::describeWaitStatus(status) == "exited with code 0");
    CHECK_FALSE(accepts(conninfo));
    CHECK_FALSE(fs::exists(dataDir.parent_path()));
  }
  SECTION("SIGKILL: the server shuts down and the watchdog removes the directory") {
    tool.terminate(SIGKILL, 0s);
  }
  // The scratch watchdog removes the rest once the server has gone.
  const auto gone = std::chrono::steady_clock::now() + 20s;
  while (fs::exists(scratch) && std::chrono::steady_clock::now() < gone) {
    std::this_thread::sleep_for(50ms);
  }
  CHECK_FALSE(fs::exists(scratch));
  CHECK_FALSE(accepts(conninfo));
}
#endif
