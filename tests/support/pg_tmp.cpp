// plng-pg-tmp: runs a private PostgreSQL server (see pg_instance.h) until SIGTERM or
// SIGINT, printing the connection string of PLC's role on stdout, and starts it
// again if it dies. The local planet runs PLC's database with it.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <string_view>

#include "tests/support/pg_instance.h"

namespace {

constexpr const char* kUsage =
    "usage: plng-pg-tmp [--dir DIR] [--port N] [--owner ROLE] [--fast-unsafe-for-tests]\n"
    "\n"
    "Starts PostgreSQL in a private directory, listening on a unix socket only\n"
    "(DIR/socket, which only the server's user and root may enter; no TCP). Makes ROLE\n"
    "a login role with no other right, with a random password kept in DIR/pgpass, and\n"
    "database \"plc\" owned by it; prints ROLE's connection string on stdout and runs\n"
    "until SIGTERM or SIGINT (fast shutdown). If PostgreSQL dies (a crash, SIGKILL) it\n"
    "is started again on the same directory and socket, so the connection string stays\n"
    "valid. Commits are durable: fsync, synchronous_commit and full_page_writes on.\n"
    "\n"
    "  --dir DIR    keep the server in DIR (DIR/data, DIR/socket, DIR/pgpass,\n"
    "               DIR/server.log); an existing cluster there is reused. Default: a\n"
    "               temporary directory, removed on exit.\n"
    "  --port N     the socket's number: DIR/socket/.s.PGSQL.N (default 5432)\n"
    "  --owner ROLE the role that owns database \"plc\" (default plcd)\n"
    "  --fast-unsafe-for-tests\n"
    "               fsync, synchronous_commit and full_page_writes off: a crash loses\n"
    "               the last acknowledged commits. Only for throw-away test data.\n"
    "  --help       this text\n";

// A crashing server is started again at most this often in a row.
constexpr int kMaxRestartFailures = 5;

int usageError(const std::string& message) {
  std::cerr << "plng-pg-tmp: " << message << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  plng::test::PgInstance::Options options;
  std::string owner = "plcd";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--fast-unsafe-for-tests") {
      options.durability = plng::test::Durability::kFastUnsafeForTests;
      continue;
    }
    if (arg == "--dir" || arg == "--port" || arg == "--owner") {
      if (i + 1 >= argc) return usageError(std::string(arg) + " needs a value");
      const std::string value = argv[++i];
      if (arg == "--dir") {
        options.dir = value;
      } else if (arg == "--owner") {
        if (value.empty() || value == plng::test::PgInstance::kSuperuser) {
          return usageError("--owner must name a role other than the superuser '" +
                            std::string(plng::test::PgInstance::kSuperuser) + "'");
        }
        owner = value;
      } else {
        char* end = nullptr;
        const long port = std::strtol(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || port < 1 || port > 65535) {
          return usageError("invalid port '" + value + "'");
        }
        options.port = static_cast<int>(port);
      }
      continue;
    }
    return usageError("unknown argument '" + std::string(arg) + "'");
  }

  // A supervisor whose log reader went away must still stop PostgreSQL when told:
  // EPIPE on stderr, not death by SIGPIPE with the server left unsupervised.
  std::signal(SIGPIPE, SIG_IGN);
  // Blocked before any child exists; children reset their signal mask before exec.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGTERM);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGHUP);
  sigprocmask(SIG_BLOCK, &stopSignals, nullptr);

  try {
    plng::test::PgInstance pg(options);
    pg.createOwnedDatabase(plng::test::PgInstance::kDefaultDatabase, owner);
    std::cerr << "plng-pg-tmp: PostgreSQL running in " << pg.dataDir().string() << ", socket in "
              << pg.socketDir().string() << ", log " << pg.logPath().string() << "\n"
              << "plng-pg-tmp: superuser (for the OS user that started it): '"
              << pg.connectionString() << "'\n";
    if (options.durability != plng::test::Durability::kDurable) {
      std::cerr << "plng-pg-tmp: WARNING: --fast-unsafe-for-tests: a crash loses the last "
                   "acknowledged commits\n";
    }
    std::cout << pg.roleConnectionString(plng::test::PgInstance::kDefaultDatabase, owner)
              << std::endl;

    int failures = 0;
    for (;;) {
      const timespec second{1, 0};
      const int sig = sigtimedwait(&stopSignals, nullptr, &second);
      if (sig > 0) {
        std::cerr << "plng-pg-tmp: " << sigdescr_np(sig) << ", stopping PostgreSQL\n";
        pg.stop();
        return 0;
      }
      if (pg.running()) {
        failures = 0;
        continue;
      }
      std::cerr << "plng-pg-tmp: PostgreSQL exited unexpectedly; starting it again. Log tail:\n"
                << pg.logTail(2000) << "\n";
      try {
        pg.start();
        std::cerr << "plng-pg-tmp: PostgreSQL is back (pid " << pg.postmasterPid() << ")\n";
      } catch (const std::exception& e) {
        std::cerr << "plng-pg-tmp: " << e.what() << "\n";
        if (++failures >= kMaxRestartFailures) {
          std::cerr << "plng-pg-tmp: giving up after " << failures << " failed starts\n";
          return 1;
        }
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "plng-pg-tmp: " << e.what() << "\n";
    return 1;
  }
}
