// plng-pg-tmp: runs a private PostgreSQL server (see pg_instance.h) until SIGTERM or
// SIGINT, printing its libpq connection string on stdout. The local-planet demo
// starts PLC's database with it.
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <string_view>

#include "pg_instance.h"

namespace {

constexpr const char* kUsage =
    "usage: plng-pg-tmp [--dir DIR] [--port N]\n"
    "\n"
    "Starts PostgreSQL in a private directory, creates database \"plc\", prints its\n"
    "connection string on stdout and runs until SIGTERM or SIGINT (fast shutdown).\n"
    "\n"
    "  --dir DIR   keep the server in DIR (DIR/data, DIR/server.log); an existing\n"
    "              cluster there is reused. Default: a temporary directory, removed\n"
    "              on exit.\n"
    "  --port N    TCP port on 127.0.0.1 (default: a free one)\n"
    "  --help      this text\n";

int usageError(const std::string& message) {
  std::cerr << "plng-pg-tmp: " << message << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  plng::test::PgInstance::Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--dir" || arg == "--port") {
      if (i + 1 >= argc) return usageError(std::string(arg) + " needs a value");
      const std::string value = argv[++i];
      if (arg == "--dir") {
        options.dir = value;
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

  // Blocked before any child exists; children reset their signal mask before exec.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGTERM);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGHUP);
  sigprocmask(SIG_BLOCK, &stopSignals, nullptr);

  try {
    plng::test::PgInstance pg(options);
    std::cerr << "plng-pg-tmp: PostgreSQL running in " << pg.dataDir().string() << ", log "
              << pg.logPath().string() << "\n";
    std::cout << pg.connectionString() << std::endl;

    for (;;) {
      const timespec second{1, 0};
      const int sig = sigtimedwait(&stopSignals, nullptr, &second);
      if (sig > 0) {
        std::cerr << "plng-pg-tmp: " << sigdescr_np(sig) << ", stopping PostgreSQL\n";
        pg.stop();
        return 0;
      }
      if (!pg.running()) {
        std::cerr << "plng-pg-tmp: PostgreSQL exited unexpectedly; log tail:\n"
                  << pg.logTail() << "\n";
        return 1;
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "plng-pg-tmp: " << e.what() << "\n";
    return 1;
  }
}
