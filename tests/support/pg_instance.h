// A real PostgreSQL server in a private data directory, for integration tests and
// the local planet.
//
// Layout of the instance directory:
//   <dir>/data        PGDATA
//   <dir>/socket      the server's unix socket (.s.PGSQL.<port>), mode 0700: only the
//                     server's user and root can reach it
//   <dir>/pgpass      libpq password file (mode 0600) of the roles made by
//                     createOwnedDatabase()
//   <dir>/server.log  output of initdb and of every postgres run
// The server listens on that unix socket only, never on TCP: nothing sharing the
// machine's network (a sliver, a container) can reach it. Its pg_hba.conf lets the
// superuser "plc" in only by peer authentication, for the OS user that started the
// instance and the server's own user; every other role logs in with its SCRAM
// password. PostgreSQL refuses to run as root, so when the caller is root the
// server runs as the `postgres` system user and owns the directory.
//
// Durability::kDurable (the default) keeps PostgreSQL's crash safety: a commit it
// acknowledged survives SIGKILL of the server and a machine crash. Tests may ask
// for Durability::kFastUnsafeForTests (fsync, synchronous_commit and
// full_page_writes off), which loses recent commits on a crash.
//
// Streaming replication: standbyOf() makes a hot standby of a running instance
// (pg_basebackup -R over the primary's socket, as the superuser, which pg_hba.conf
// lets replicate); promote() turns it into a primary. With
// StandbyOptions::synchronous the primary acknowledges a commit only once the
// standby has flushed it (docs/database-failover.md).
//
// The postmaster is told to shut down (SIGQUIT, or SIGINT for a kept directory) if
// the thread that started it dies, so a crashed test leaves no server behind: start
// an instance from a thread that outlives it (normally the main thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// How PostgreSQL treats a commit.
enum class Durability {
  // fsync, synchronous_commit and full_page_writes on (PostgreSQL's defaults): a
  // commit is acknowledged once its WAL is on disk.
  kDurable,
  // All three off: commits are acknowledged before their WAL is written, so a crash
  // of the server (or of the machine) loses the last ones. For throw-away test
  // databases only; never for anything a user runs.
  kFastUnsafeForTests,
};

class PgInstance {
 public:
  static constexpr const char* kSuperuser = "plc";
  static constexpr const char* kDefaultDatabase = "plc";
  // The socket's number: <dir>/socket/.s.PGSQL.5432. The directory is private to the
  // instance, so every instance can use the same one and keep it across restarts.
  static constexpr int kDefaultPort = 5432;

  struct Options {
    // Instance directory. Empty: a fresh directory in processScratchDir(), removed on
    // destruction (or by the scratch watchdog if this process dies first). Given:
    // created if missing, reused if it already holds an initialised cluster, and
    // kept on destruction.
    std::filesystem::path dir;
    int port = kDefaultPort;
    Durability durability = Durability::kDurable;
    std::chrono::seconds startTimeout{60};
  };

  struct StandbyOptions {
    // As Options::dir.
    std::filesystem::path dir;
    int port = kDefaultPort;
    // The application_name it streams under.
    std::string name = "standby";
    // Once it streams, the primary is told to acknowledge a commit only after this
    // standby has flushed it (ALTER SYSTEM SET synchronous_standby_names). Only
    // then: before a standby exists, every commit would wait for it. The standby's
    // own configuration does not name it, so once promoted it does not wait for a
    // standby of its own.
    bool synchronous = false;
    std::chrono::seconds startTimeout{60};
  };

  // Initialises (if needed) and starts the server, and creates database "plc".
  // Throws std::runtime_error with the server log tail when that fails.
  PgInstance();
  explicit PgInstance(Options options);
  // A temporary directory: immediate shutdown, then the directory is removed. A
  // given one: fast shutdown.
  ~PgInstance();
  // A hot standby of the running `primary`: a base backup of it (pg_basebackup
  // -R: standby.signal and primary_conninfo), started, streaming. Returns once
  // the primary reports it streaming (and synchronous, if asked). It has the
  // primary's durability, and a
  // copy of its passfile() (roles made later on the primary are not in it).
  static PgInstance standbyOf(const PgInstance& primary, StandbyOptions options);
  PgInstance(PgInstance&&) noexcept;
  PgInstance& operator=(PgInstance&&) noexcept;
  PgInstance(const PgInstance&) = delete;
  PgInstance& operator=(const PgInstance&) = delete;

  int port() const;
  Durability durability() const;
  const std::filesystem::path& dir() const;
  std::filesystem::path dataDir() const;
  std::filesystem::path socketDir() const;
  std::filesystem::path passfile() const;
  std::filesystem::path logPath() const;
  // The running postmaster's pid; 0 when stopped.
  pid_t postmasterPid() const;

  // libpq connection string of the superuser:
  // "host=<dir>/socket port=N user=plc dbname=<dbname>".
  std::string connectionString(std::string_view dbname = kDefaultDatabase) const;
  // libpq connection string of `role` (see createOwnedDatabase):
  // "host=<dir>/socket port=N user=<role> dbname=<dbname> passfile=<dir>/pgpass".
  std::string roleConnectionString(std::string_view dbname, std::string_view role) const;

  // CREATE DATABASE (owned by "plc"); throws if it exists.
  void createDatabase(std::string_view name);
  // What a PLC deployment's bootstrap does as the superuser: makes `role` a login
  // role with no other attribute (not superuser, createdb, createrole, replication
  // or bypassrls) and a random SCRAM password, recorded in passfile(); and
  // database `dbname` owned by it, which no other role but the superuser may
  // connect to. Idempotent: an existing role keeps its password from passfile(),
  // an existing database is left as it is.
  void createOwnedDatabase(std::string_view dbname, std::string_view role);
  // DROP DATABASE IF EXISTS ... WITH (FORCE): disconnects its sessions first.
  void dropDatabase(std::string_view name);
  // Runs SQL (one or more statements, no parameters) as the superuser.
  void execute(std::string_view sql, std::string_view dbname = kDefaultDatabase);

  // Fast shutdown (SIGINT to the postmaster, what `pg_ctl stop -m fast` sends), then
  // waits for it to exit. No-op when stopped.
  void stop();
  // SIGKILL of the postmaster, as a crash would; reaps it. Its other processes
  // notice and exit by themselves. No-op when stopped.
  void kill();
  // SIGKILL of the postmaster and of every process it started, as the death of
  // its machine would: the postmaster is stopped (SIGSTOP) first, so none of its
  // processes outlives it. After kill() alone, a backend waiting for a
  // synchronous standby notices the postmaster's death, stops waiting and
  // finishes its commit locally, visible to the sessions still running there.
  void killEveryProcess();
  // Promotes a standby (`pg_ctl promote`) and waits until it accepts writes.
  void promote();
  // SELECT pg_is_in_recovery(): true on a standby.
  bool inRecovery();
  // Starts the server again on the same socket and data directory (after stop(),
  // kill() or a crash: the new postmaster waits for the old one's processes to go
  // and recovers from the WAL); waits until it accepts connections. Throws if it
  // is running.
  void start();
  bool running();

  // A cold backup, as an operator takes one: copies the stopped server's data
  // directory (owners and modes kept) to `to`, which must not exist yet.
  void backupTo(const std::filesystem::path& to) const;
  // Replaces the stopped server's data directory with the backup in `from`.
  void restoreFrom(const std::filesystem::path& from);

  std::string logTail(std::size_t maxBytes = 4000) const;

 private:
  struct State;
  explicit PgInstance(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// libpq connection string of `role` naming every server's socket, in order, with
// target_session_attrs=read-write: libpq connects to the first that accepts writes,
// the primary. The passfile is the first server's.
std::string failoverConnectionString(const std::vector<const PgInstance*>& servers,
                                     std::string_view dbname, std::string_view role);

}  // namespace plng::test
