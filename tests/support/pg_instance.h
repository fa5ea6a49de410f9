// A real PostgreSQL server in a private data directory, for integration tests and
// the local planet.
//
// Layout of the instance directory:
//   <dir>/data        PGDATA (also holds the unix socket when the path is short enough)
//   <dir>/server.log  output of initdb and of every postgres run
// The server listens on 127.0.0.1:<port> with trust authentication for the
// superuser "plc", and is tuned for throw-away data (fsync, synchronous_commit and
// full_page_writes off). PostgreSQL refuses to run as root, so when the caller is
// root the server runs as the `postgres` system user and owns the directory.
//
// The postmaster is told to shut down (SIGQUIT, or SIGINT for a kept directory) if
// the thread that started it dies, so a crashed test leaves no server behind: start
// an instance from a thread that outlives it (normally the main thread).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace plng::test {

struct PostgresBinaries {
  int majorVersion = 0;
  std::filesystem::path binDir;
  std::filesystem::path initdb;
  std::filesystem::path postgres;
};

// The newest PostgreSQL server found under /usr/lib/postgresql/<version>/bin, or
// in $PLNG_PG_BINDIR when set. nullopt (and why in *whyNot) if there is none.
std::optional<PostgresBinaries> findPostgresBinaries(std::string* whyNot = nullptr);

// Why a PgInstance cannot run on this machine (no server binaries; running as root
// without a `postgres` user), or nullopt when it can.
std::optional<std::string> postgresUnavailableReason();

class PgInstance {
 public:
  static constexpr const char* kSuperuser = "plc";
  static constexpr const char* kDefaultDatabase = "plc";

  struct Options {
    // Instance directory. Empty: a fresh directory in processScratchDir(), removed on
    // destruction (or by the scratch watchdog if this process dies first). Given:
    // created if missing, reused if it already holds an initialised cluster, and
    // kept on destruction.
    std::filesystem::path dir;
    int port = 0;  // 0: pick a free one
    std::chrono::seconds startTimeout{60};
  };

  // Initialises (if needed) and starts the server, and creates database "plc".
  // Throws std::runtime_error with the server log tail when that fails.
  PgInstance();
  explicit PgInstance(Options options);
  // A temporary directory: immediate shutdown, then the directory is removed. A
  // given one: fast shutdown, so every commit survives for the next run.
  ~PgInstance();
  PgInstance(PgInstance&&) noexcept;
  PgInstance& operator=(PgInstance&&) noexcept;
  PgInstance(const PgInstance&) = delete;
  PgInstance& operator=(const PgInstance&) = delete;

  int port() const;
  const std::filesystem::path& dir() const;
  std::filesystem::path dataDir() const;
  std::filesystem::path logPath() const;

  // libpq connection string: "host=127.0.0.1 port=N user=plc dbname=<dbname>".
  std::string connectionString(std::string_view dbname = kDefaultDatabase) const;

  // CREATE DATABASE (owned by "plc"); throws if it exists.
  void createDatabase(std::string_view name);
  // DROP DATABASE IF EXISTS ... WITH (FORCE): disconnects its sessions first.
  void dropDatabase(std::string_view name);
  // Runs SQL (one or more statements, no parameters) as the superuser.
  void execute(std::string_view sql, std::string_view dbname = kDefaultDatabase);

  // Fast shutdown (SIGINT to the postmaster, what `pg_ctl stop -m fast` sends), then
  // waits for it to exit. No-op when stopped.
  void stop();
  // Starts the server again on the same port and data directory; waits until it
  // accepts connections. Throws if it is running.
  void start();
  bool running();

  std::string logTail(std::size_t maxBytes = 4000) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace plng::test
