// PLC's database from a hostile slice's seat. The local planet's PostgreSQL is
// started exactly as deploy/local-planet.sh starts it (plng-pg-tmp --dir), and a
// real sliver (busybox image, sliver-init, the node's network namespace) tries to
// reach it at the address plcd is given; so does a process holding the slice's
// uid in the sliver's user namespace but seeing the host's files. Neither may
// connect; and plcd's own role may not run programs on the host.
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <pqxx/pqxx>
#include <sstream>

#include "tests/support/child_process.h"
#include "tests/support/node_sliver_exec.h"
#include "tests/support/node_test_node.h"
#include "tests/support/pg_instance.h"
#include "tests/support/skip.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct Node : plng::test::TestNode {
  Node()
      : TestNode("plng-dbreach",
                 {PLNG_BUILD_IMAGE_SCRIPT, PLNG_TEST_IMAGES_DIR, PLNG_SLIVER_INIT_PATH},
                 /*traversable=*/true) {}
};

// "key=value" of a libpq connection string ("" when absent; values unquoted).
std::string conninfoField(const std::string& conninfo, const std::string& key) {
  std::istringstream words(conninfo);
  for (std::string word; words >> word;) {
    if (word.starts_with(key + "=")) {
      std::string value = word.substr(key.size() + 1);
      if (value.size() >= 2 && value.front() == '\'') value = value.substr(1, value.size() - 2);
      return value;
    }
  }
  return "";
}

// plng-pg-tmp as the local planet runs it, until destroyed.
struct PlanetDatabase {
  plng::test::ChildProcess tool;
  // Its output; kept open for as long as it runs, since it reports its shutdown.
  plng::base::UniqueFd readEnd;
  std::string conninfo;  // what the planet writes into plcd.conf
  std::string printed;

  explicit PlanetDatabase(const fs::path& dir) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    readEnd.reset(fds[0]);
    plng::base::UniqueFd writeEnd(fds[1]);
    plng::test::SpawnOptions spawn;
    spawn.argv = {PLNG_PG_TMP_PATH, "--dir", dir.string()};
    spawn.outputFd = writeEnd.get();
    tool = plng::test::ChildProcess::spawn(spawn);
    writeEnd.reset();
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    while (conninfo.empty() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{readEnd.get(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(readEnd.get(), buf, sizeof buf);
      if (n <= 0) break;
      printed.append(buf, static_cast<std::size_t>(n));
      std::istringstream lines(printed);
      for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("host=")) conninfo = line;
      }
    }
    INFO("plng-pg-tmp output:\n" << printed);
    REQUIRE_FALSE(conninfo.empty());
  }
  // Returns once PostgreSQL has shut down (plng-pg-tmp waits for it).
  ~PlanetDatabase() { tool.terminate(SIGTERM, 60s); }
};

// What connect(2) said: 0 when it connected, else its errno.
struct Reach {
  int tcp = -1;   // TCP to 127.0.0.1:<port>
  int unix = -1;  // the unix socket <host>/.s.PGSQL.<port>, when host is a directory
};

// From a process that joined the sliver's user namespace (and with it the slice's
// uid, as root inside) but kept the host's mount namespace: it sees the host's
// files, as a sliver escaping its root would, and shares the node's network.
Reach reachFromSliceUid(int pidfd, int port, const std::string& unixPath) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strncpy(un.sun_path, unixPath.c_str(), sizeof un.sun_path - 1);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(static_cast<std::uint16_t>(port));
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool tryUnix = !unixPath.empty();

  int report[2];
  REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Async-signal-safe only: the test process may have threads.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int result[2] = {-1, -1};
    if (::setns(pidfd, CLONE_NEWUSER) != 0 || ::setresgid(0, 0, 0) != 0 ||
        ::setgroups(0, nullptr) != 0 || ::setresuid(0, 0, 0) != 0) {
      ::_exit(125);
    }
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    result[0] = ::connect(s, reinterpret_cast<sockaddr*>(&in), sizeof in) == 0 ? 0 : errno;
    ::close(s);
    if (tryUnix) {
      s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      result[1] = ::connect(s, reinterpret_cast<sockaddr*>(&un), sizeof un) == 0 ? 0 : errno;
      ::close(s);
    }
    if (::write(report[1], result, sizeof result) != sizeof result) ::_exit(126);
    ::_exit(0);
  }
  ::close(report[1]);
  int result[2] = {-1, -1};
  const ssize_t got = ::read(report[0], result, sizeof result);
  ::close(report[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  INFO("probe " << plng::test::describeWaitStatus(status));
  REQUIRE(got == static_cast<ssize_t>(sizeof result));
  return Reach{result[0], result[1]};
}

}  // namespace

TEST_CASE("a sliver cannot reach the local planet's PostgreSQL, and plcd's role runs no program",
          "[root][pg][plc]") {
  plng::test::requireRoot();
  if (auto why = plng::test::postgresUnavailableReason()) plng::test::skipTest(*why);
  Node node;
  // Where the planet keeps its database: <state dir>/pg, reachable by `postgres`.
  PlanetDatabase db(node.dir / "planet" / "pg");
  const std::string host = conninfoField(db.conninfo, "host");
  const int port = std::stoi(conninfoField(db.conninfo, "port"));
  const bool viaSocket = host.starts_with("/");
  const std::string unixPath = viaSocket ? host + "/.s.PGSQL." + std::to_string(port) : "";
  INFO("plcd connects with: " << db.conninfo);

  auto rt = node.runtime();
  plng::node::SliverConfig config;
  config.slice = "pl_probe";
  config.xid = 600;
  config.vref = "busybox";
  config.disk_quota_bytes = 64ull << 20;
  rt.create(config);
  rt.start("pl_probe");
  plng::base::UniqueFd init = rt.openInit("pl_probe");
  REQUIRE(init);

  SECTION("from inside the sliver: no TCP listener, no socket in sight") {
    const std::string tcpHost = viaSocket ? "127.0.0.1" : host;
    auto probe =
        plng::test::shInSliver(init.get(), "if nc -w 2 " + tcpHost + " " + std::to_string(port) +
                                               " </dev/null; then echo REACHED-TCP; fi; "
                                               "if [ -e '" +
                                               (viaSocket ? host : std::string("/nonexistent")) +
                                               "' ]; then echo REACHED-SOCKET; fi; echo probed");
    INFO(probe.output);
    REQUIRE(probe.output.find("probed") != std::string::npos);
    CHECK(probe.output.find("REACHED-TCP") == std::string::npos);
    CHECK(probe.output.find("REACHED-SOCKET") == std::string::npos);
  }
  SECTION("with the slice's uid and the host's files: refused by the kernel") {
    const Reach reach = reachFromSliceUid(init.get(), port, unixPath);
    CHECK(reach.tcp == ECONNREFUSED);
    if (viaSocket) CHECK(reach.unix == EACCES);
  }
  SECTION("plcd's role is no superuser: COPY ... TO PROGRAM is refused") {
    const fs::path marker = node.dir / "copy-to-program-ran";
    pqxx::connection c(db.conninfo);
    pqxx::nontransaction tx(c);
    CHECK(tx.exec1("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0].as<bool>() ==
          false);
    try {
      tx.exec("COPY (SELECT 1) TO PROGRAM 'touch " + marker.string() + "'");
      FAIL("COPY TO PROGRAM ran as " << conninfoField(db.conninfo, "user"));
    } catch (const pqxx::sql_error& e) {
      CHECK_THAT(e.what(),
                 Catch::Contains("permission denied") || Catch::Contains("must be superuser"));
    }
    CHECK_FALSE(fs::exists(marker));
  }
  SECTION("the server's rules trust nobody and listen on no TCP address") {
    std::ifstream hba(node.dir / "planet" / "pg" / "data" / "pg_hba.conf");
    REQUIRE(hba);
    for (std::string line; std::getline(hba, line);) {
      if (line.empty() || line.starts_with("#")) continue;
      INFO(line);
      CHECK(line.find("trust") == std::string::npos);
      CHECK(line.starts_with("local "));
    }
  }
  rt.stop("pl_probe", 2s);
  rt.destroy("pl_probe");
}
