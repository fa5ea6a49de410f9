#include "tests/support/pg_instance.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "base/eintr.h"
#include "base/file.h"
#include "base/proc.h"
#include "base/strings.h"
#include "tests/support/child_process.h"

using plng::base::UniqueFd;

namespace plng::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kServerUser = "postgres";

bool isExecutable(const fs::path& p) { return ::access(p.c_str(), X_OK) == 0; }

std::optional<RunAs> serverIdentity(std::string* whyNot) {
  if (::geteuid() != 0) return std::nullopt;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(kServerUser, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    if (whyNot) {
      *whyNot = std::string(
                    "running as root, and PostgreSQL refuses to run as root, but there "
                    "is no '") +
                kServerUser + "' user to run it as (install the postgresql package)";
    }
    return std::nullopt;
  }
  return RunAs{pw.pw_uid, pw.pw_gid};
}

// The name of the OS user this process runs as.
std::string callerName() {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    throw std::runtime_error("uid " + std::to_string(::geteuid()) +
                             " has no user name; PostgreSQL's peer authentication needs one");
  }
  return pw.pw_name;
}

std::string randomHex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::size_t done = 0;
  while (done < bytes) {
    const ssize_t n =
        plng::base::retryOnEintr([&] { return ::getrandom(raw.data() + done, bytes - done, 0); });
    if (n < 0) throw std::system_error(errno, std::generic_category(), "getrandom");
    done += static_cast<std::size_t>(n);
  }
  return plng::base::toHex(raw);
}

// Whether `user` may traverse every directory above `dir` (it must reach its data
// directory; /root, for one, is closed to it). Supplementary groups are ignored.
std::optional<fs::path> unreachableAncestor(const fs::path& dir, const RunAs& user) {
  for (fs::path p = fs::absolute(dir).parent_path();; p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      const bool searchable = (st.st_uid == user.uid && (st.st_mode & S_IXUSR)) ||
                              (st.st_gid == user.gid && (st.st_mode & S_IXGRP)) ||
                              (st.st_mode & S_IXOTH);
      if (!searchable) return p;
    }
    if (p == p.root_path()) return std::nullopt;
  }
}

// libpq conninfo value, quoted when it needs to be.
std::string conninfoValue(std::string_view value) {
  const bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
           c == '/';
  });
  if (plain) return std::string(value);
  std::string quoted = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  return quoted + "'";
}

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

void ignoreNotice(void* /*arg*/, const char* /*message*/) {}

PgConnPtr connectOrThrow(const std::string& conninfo) {
  PgConnPtr conn(PQconnectdb(conninfo.c_str()));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to PostgreSQL (" + conninfo +
                             "): " + (conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  // libpq prints NOTICEs ("database ... does not exist, skipping") to stderr.
  PQsetNoticeProcessor(conn.get(), ignoreNotice, nullptr);
  return conn;
}

void checkResult(PGconn* conn, const PgResultPtr& result, std::string_view what) {
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(std::string(what) + ": " + PQerrorMessage(conn));
  }
}

std::string quoteIdentifier(PGconn* conn, std::string_view name) {
  char* escaped = PQescapeIdentifier(conn, name.data(), name.size());
  if (escaped == nullptr) {
    throw std::runtime_error("invalid identifier '" + std::string(name) +
                             "': " + PQerrorMessage(conn));
  }
  std::string result(escaped);
  PQfreemem(escaped);
  return result;
}

std::string readFrom(const fs::path& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const auto start = std::min(static_cast<std::streamoff>(offset), size);
  std::string text(static_cast<std::size_t>(size - start), '\0');
  in.seekg(start);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

std::uintmax_t sizeOr0(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

}  // namespace

std::optional<PostgresBinaries> findPostgresBinaries(std::string* whyNot) {
  auto complete = [](PostgresBinaries b) -> std::optional<PostgresBinaries> {
    b.initdb = b.binDir / "initdb";
    b.postgres = b.binDir / "postgres";
    if (isExecutable(b.initdb) && isExecutable(b.postgres)) return b;
    return std::nullopt;
  };
  if (const char* env = std::getenv("PLNG_PG_BINDIR"); env != nullptr && *env != '\0') {
    if (auto b = complete(PostgresBinaries{0, env, {}, {}})) return b;
    if (whyNot) *whyNot = std::string("PLNG_PG_BINDIR=") + env + " has no initdb and postgres";
    return std::nullopt;
  }
  const fs::path root = "/usr/lib/postgresql";
  std::optional<PostgresBinaries> best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    char* end = nullptr;
    const long version = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || *end != '\0') continue;
    auto b = complete(PostgresBinaries{static_cast<int>(version), entry.path() / "bin", {}, {}});
    if (b && (!best || b->majorVersion > best->majorVersion)) best = b;
  }
  if (!best && whyNot) {
    *whyNot = "no PostgreSQL server binaries (initdb, postgres) under " + root.string() +
              "/<version>/bin (install the postgresql package, or set PLNG_PG_BINDIR)";
  }
  return best;
}

std::optional<std::string> postgresUnavailableReason() {
  std::string why;
  if (!findPostgresBinaries(&why)) return why;
  if (::geteuid() == 0 && !serverIdentity(&why)) return why;
  return std::nullopt;
}

struct PgInstance::State {
  PostgresBinaries binaries;
  std::optional<RunAs> runAs;
  fs::path dir;
  bool temporary = false;
  int port = 0;
  Durability durability = Durability::kDurable;
  std::chrono::seconds startTimeout{};
  std::vector<std::string> env;
  ChildProcess postmaster;

  fs::path dataDir() const { return dir / "data"; }
  fs::path socketDir() const { return dir / "socket"; }
  fs::path socketPath() const { return socketDir() / (".s.PGSQL." + std::to_string(port)); }
  fs::path passfile() const { return dir / "pgpass"; }
  fs::path logPath() const { return dir / "server.log"; }

  std::string adminConninfo(std::string_view dbname) const {
    return "host=" + conninfoValue(socketDir().string()) + " port=" + std::to_string(port) +
           " user=" + kSuperuser + " dbname=" + conninfoValue(dbname) + " connect_timeout=10";
  }

  UniqueFd openLog() const {
    UniqueFd fd(::open(logPath().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!fd) throw std::system_error(errno, std::generic_category(), "open " + logPath().string());
    return fd;
  }

  ChildProcess spawnServerTool(std::vector<std::string> argv, int outputFd,
                               int parentDeathSignal) const {
    SpawnOptions options;
    options.argv = std::move(argv);
    options.env = env;
    options.outputFd = outputFd;
    options.runAs = runAs;
    options.workingDir = dir;  // the server user may not enter the caller's cwd
    options.parentDeathSignal = parentDeathSignal;
    return ChildProcess::spawn(options);
  }

  // The file or directory belongs to the server's user (when we are root).
  void giveToServer(const fs::path& path) const {
    if (runAs && ::chown(path.c_str(), runAs->uid, runAs->gid) != 0) {
      throw std::system_error(errno, std::generic_category(), "chown " + path.string());
    }
  }

  void prepareDirectory(const fs::path& requested) {
    if (requested.empty()) {
      std::string pattern = (processScratchDir() / "pg-XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
      }
      dir = pattern;
      temporary = true;
    } else {
      dir = fs::absolute(requested);
      fs::create_directories(dir);
    }
    if (runAs) {
      if (auto blocked = unreachableAncestor(dir, *runAs)) {
        throw std::runtime_error("the '" + std::string(kServerUser) + "' user cannot reach " +
                                 dir.string() + ": " + blocked->string() +
                                 " is not searchable by it");
      }
      giveToServer(dir);
    }
    // The socket's directory is the server's alone: whoever cannot enter it cannot
    // connect, whatever pg_hba.conf says.
    const std::string socket = socketPath().string();
    if (socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
      throw std::runtime_error("the server's socket " + socket + " would be " +
                               std::to_string(socket.size()) + " bytes long, over the " +
                               std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                               " a unix socket path may have: choose a shorter directory");
    }
    fs::create_directories(socketDir());
    if (::chmod(socketDir().c_str(), 0700) != 0) {
      throw std::system_error(errno, std::generic_category(), "chmod " + socketDir().string());
    }
    giveToServer(socketDir());
  }

  // Runs a server tool to completion with its output appended to `log`; throws with
  // that output if it fails.
  void runServerTool(std::vector<std::string> argv, const fs::path& workingDir,
                     const fs::path& log) const {
    const std::uintmax_t logStart = sizeOr0(log);
    UniqueFd logFd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!logFd) throw std::system_error(errno, std::generic_category(), "open " + log.string());
    SpawnOptions options;
    options.argv = std::move(argv);
    options.env = env;
    options.outputFd = logFd.get();
    options.runAs = runAs;
    options.workingDir = workingDir;
    options.parentDeathSignal = SIGKILL;
    ChildProcess child = ChildProcess::spawn(options);
    const std::string what = fs::path(options.argv[0]).filename().string();
    auto status = child.waitFor(120s);
    if (!status) {
      child.terminate(SIGKILL, 0s);
      throw std::runtime_error(what + " did not finish in 120 s; output:\n" +
                               readFrom(log, logStart));
    }
    if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
      throw std::runtime_error(what + " " + describeWaitStatus(*status) + "; output:\n" +
                               readFrom(log, logStart));
    }
  }

  // initdb runs once per process and server version; every later cluster is a copy
  // of that template: initdb costs seconds of CPU, copying its result milliseconds.
  fs::path templateCluster() const {
    static std::mutex mutex;
    static std::map<fs::path, fs::path> templates;  // initdb binary -> template PGDATA
    std::lock_guard lock(mutex);
    if (auto it = templates.find(binaries.initdb); it != templates.end()) return it->second;

    std::string pattern = (processScratchDir() / "template-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    const fs::path templateDir = pattern;
    giveToServer(templateDir);
    const fs::path data = templateDir / "data";
    // writeAccessRules() replaces the authentication set up here before any start.
    runServerTool({binaries.initdb.string(), "--pgdata=" + data.string(),
                   std::string("--username=") + kSuperuser, "--auth=peer", "--encoding=UTF8",
                   "--locale=C", "--no-sync"},
                  templateDir, templateDir / "initdb.log");
    templates.emplace(binaries.initdb, data);
    return data;
  }

  void initdb() {
    // `cp -a` as the server user: the copy must belong to it, with PGDATA's modes.
    runServerTool({"/bin/cp", "-a", "--", templateCluster().string(), dataDir().string()}, dir,
                  logPath());
    // The template was made without syncing: a durable cluster must be on disk
    // before its first commit is acknowledged.
    if (durability == Durability::kDurable) {
      runServerTool({binaries.initdb.string(), "--sync-only", "--pgdata=" + dataDir().string()},
                    dir, logPath());
    }
  }

  // pg_hba.conf and pg_ident.conf, rewritten at every start so that a cluster made
  // by an older version of this harness gets the same rules.
  void writeAccessRules() const {
    std::set<std::string> superusers = {callerName()};
    if (runAs) superusers.insert(kServerUser);
    std::string ident =
        "# Written by PgInstance at every start (tests/support/pg_instance.cpp).\n"
        "# OS users that may log in as the superuser.\n";
    for (const auto& user : superusers) {
      ident += std::string("plng_superuser ") + user + " " + kSuperuser + "\n";
    }
    const std::string hba =
        "# Written by PgInstance at every start (tests/support/pg_instance.cpp).\n"
        "# The server listens on its unix socket only (listen_addresses is empty), in a\n"
        "# directory only its own user and root may enter: no TCP rule is needed, and\n"
        "# nothing sharing the network namespace can connect.\n"
        "# The superuser: only the OS users of pg_ident.conf, proven by the kernel.\n"
        "local all " +
        std::string(kSuperuser) +
        " peer map=plng_superuser\n"
        "# Streaming replication (a standby's base backup and WAL): the superuser, the same way.\n"
        "local replication " +
        std::string(kSuperuser) +
        " peer map=plng_superuser\n"
        "# Every other role: its SCRAM password.\n"
        "local all all scram-sha-256\n";
    writeServerFile(dataDir() / "pg_ident.conf", ident);
    writeServerFile(dataDir() / "pg_hba.conf", hba);
  }

  void writeServerFile(const fs::path& path, const std::string& content) const {
    std::optional<plng::base::FileOwner> owner;
    if (runAs) owner = plng::base::FileOwner{runAs->uid, runAs->gid};
    plng::base::writeFileAtomic(path, content, 0600, plng::base::Durability::kNoSync, owner);
  }

  std::vector<std::string> postgresArgv() const {
    std::vector<std::string> argv = {binaries.postgres.string(),
                                     "-D",
                                     dataDir().string(),
                                     "-c",
                                     "listen_addresses=",
                                     "-c",
                                     "port=" + std::to_string(port),
                                     "-c",
                                     "unix_socket_directories=" + socketDir().string(),
                                     "-c",
                                     "unix_socket_permissions=0700",
                                     "-c",
                                     "password_encryption=scram-sha-256",
                                     "-c",
                                     "max_connections=300",
                                     "-c",
                                     "shared_buffers=128MB",
                                     "-c",
                                     "logging_collector=off"};
    const char* setting = durability == Durability::kDurable ? "on" : "off";
    for (const char* name : {"fsync", "synchronous_commit", "full_page_writes"}) {
      argv.emplace_back("-c");
      argv.push_back(std::string(name) + "=" + setting);
    }
    return argv;
  }

  enum class Outcome { kReady, kDied, kTimedOut };

  // Whether our postmaster says it is ready, as pg_ctl -w checks it: postmaster.pid
  // names its pid on line 1 and "ready" (a hot standby: "standby") on line 8.
  bool postmasterReady() const {
    std::ifstream in(dataDir() / "postmaster.pid");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (n == 1 && line != std::to_string(postmaster.pid())) return false;
      if (n == 8) return line.starts_with("ready") || line.starts_with("standby");
    }
    return false;
  }

  Outcome waitUntilReady(std::chrono::steady_clock::time_point deadline) {
    const std::string conninfo = adminConninfo("postgres");
    while (std::chrono::steady_clock::now() < deadline) {
      if (!postmaster.running()) return Outcome::kDied;
      if (postmasterReady() && PQping(conninfo.c_str()) == PQPING_OK) return Outcome::kReady;
      std::this_thread::sleep_for(20ms);
    }
    return Outcome::kTimedOut;
  }

  // Starts the postmaster and waits until it accepts connections.
  void startServer() {
    if (postmaster.valid() && postmaster.running()) {
      throw std::logic_error("PgInstance::start: the server is already running");
    }
    writeAccessRules();
    const auto deadline = std::chrono::steady_clock::now() + startTimeout;
    for (;;) {
      const std::uintmax_t logStart = sizeOr0(logPath());
      {
        UniqueFd log = openLog();
        // A kept directory gets a fast shutdown if we die, a temporary one an
        // immediate one (it is removed anyway).
        postmaster = spawnServerTool(postgresArgv(), log.get(), temporary ? SIGQUIT : SIGINT);
      }
      const Outcome outcome = waitUntilReady(deadline);
      if (outcome == Outcome::kReady) return;

      std::string reason;
      if (outcome == Outcome::kDied) {
        reason = "postgres " + describeWaitStatus(*postmaster.exitStatus());
        // After a crash (kill()) the old postmaster's processes take a moment to
        // notice and exit; until they have, PostgreSQL refuses to start.
        const std::string output = readFrom(logPath(), logStart);
        const bool previousStillExiting =
            output.find("pre-existing shared memory block") != std::string::npos ||
            output.find("is another postmaster") != std::string::npos;
        if (previousStillExiting && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(100ms);
          continue;
        }
      } else {
        reason = "postgres did not accept connections within " +
                 std::to_string(startTimeout.count()) + " s";
        postmaster.terminate(SIGQUIT, 5s);
      }
      throw std::runtime_error("PostgreSQL failed to start on " + socketPath().string() + " (" +
                               reason + "); log " + logPath().string() + ":\n" +
                               fileTail(logPath()));
    }
  }

  // After a start that failed: the server stopped, a temporary directory removed.
  void abandon() {
    stopServer(temporary ? SIGQUIT : SIGINT, 10s);
    if (temporary) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }

  void stopServer(int sig, std::chrono::milliseconds grace) {
    if (!postmaster.valid() || !postmaster.running()) return;
    postmaster.signal(sig);
    if (postmaster.waitFor(grace)) return;
    // Fast shutdown stalled: fall back to immediate, then to SIGKILL.
    postmaster.terminate(SIGQUIT, 10s);
  }

  bool databaseExists(PGconn* conn, const std::string& name) const {
    const char* params[] = {name.c_str()};
    PgResultPtr exists(PQexecParams(conn, "SELECT 1 FROM pg_database WHERE datname = $1", 1,
                                    nullptr, params, nullptr, nullptr, 0));
    checkResult(conn, exists, "look up database " + name);
    return PQntuples(exists.get()) > 0;
  }

  void exec(PGconn* conn, const std::string& sql, std::string_view what) const {
    PgResultPtr result(PQexec(conn, sql.c_str()));
    checkResult(conn, result, what);
  }

  // CREATE DATABASE, closed to every role but its owner and the superuser (by
  // default PUBLIC may connect to any database).
  void createClosedDatabase(PGconn* conn, std::string_view name) const {
    const std::string quoted = quoteIdentifier(conn, name);
    exec(conn, "CREATE DATABASE " + quoted, "create database " + std::string(name));
    exec(conn, "REVOKE ALL ON DATABASE " + quoted + " FROM PUBLIC",
         "close database " + std::string(name));
  }

  void ensureDatabase(std::string_view name) {
    PgConnPtr conn = connectOrThrow(adminConninfo("postgres"));
    // The maintenance database is the superuser's alone too.
    exec(conn.get(), "REVOKE ALL ON DATABASE postgres FROM PUBLIC", "close database postgres");
    if (!databaseExists(conn.get(), std::string(name))) createClosedDatabase(conn.get(), name);
  }

  // The password of `role` in passfile(), or a new random one added there.
  std::string rolePassword(std::string_view role) const {
    const std::string prefix = "*:*:*:" + std::string(role) + ":";
    std::string text = readFrom(passfile(), 0);
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with(prefix)) return line.substr(prefix.size());
    }
    const std::string password = randomHex(24);
    if (!text.empty() && text.back() != '\n') text += '\n';
    text += prefix + password + "\n";
    // libpq ignores a password file that others may read.
    plng::base::writeFileAtomic(passfile(), text, 0600);
    return password;
  }

  void createOwnedDatabase(std::string_view dbname, std::string_view role) {
    const std::string password = rolePassword(role);
    PgConnPtr conn = connectOrThrow(adminConninfo("postgres"));
    const std::string quotedRole = quoteIdentifier(conn.get(), role);
    const std::string quotedDb = quoteIdentifier(conn.get(), dbname);
    const std::string roleStr(role);
    const char* params[] = {roleStr.c_str()};
    PgResultPtr exists(PQexecParams(conn.get(), "SELECT 1 FROM pg_roles WHERE rolname = $1", 1,
                                    nullptr, params, nullptr, nullptr, 0));
    checkResult(conn.get(), exists, "look up role " + roleStr);
    if (PQntuples(exists.get()) == 0) {
      exec(conn.get(), "CREATE ROLE " + quotedRole, "create role " + roleStr);
    }
    // The password travels as a SCRAM verifier, never in clear.
    char* verifier =
        PQencryptPasswordConn(conn.get(), password.c_str(), roleStr.c_str(), "scram-sha-256");
    if (verifier == nullptr) {
      throw std::runtime_error("cannot hash the password of " + roleStr + ": " +
                               PQerrorMessage(conn.get()));
    }
    char* literal = PQescapeLiteral(conn.get(), verifier, std::strlen(verifier));
    PQfreemem(verifier);
    if (literal == nullptr) throw std::runtime_error(PQerrorMessage(conn.get()));
    const std::string quotedVerifier(literal);
    PQfreemem(literal);
    exec(conn.get(),
         "ALTER ROLE " + quotedRole +
             " LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
             " PASSWORD " +
             quotedVerifier,
         "set up role " + roleStr);
    if (!databaseExists(conn.get(), std::string(dbname))) {
      createClosedDatabase(conn.get(), dbname);
    }
    exec(conn.get(), "ALTER DATABASE " + quotedDb + " OWNER TO " + quotedRole,
         "give database " + std::string(dbname) + " to " + roleStr);
    // Inside it, the role owns the schema its tables go to (before PostgreSQL 15
    // anyone could create objects in `public`).
    PgConnPtr inDb = connectOrThrow(adminConninfo(dbname));
    exec(inDb.get(),
         "REVOKE ALL ON SCHEMA public FROM PUBLIC; ALTER SCHEMA public OWNER TO " + quotedRole,
         "give schema public of " + std::string(dbname) + " to " + roleStr);
  }
};

PgInstance::PgInstance() : PgInstance(Options{}) {}

PgInstance::PgInstance(Options options) : state_(std::make_unique<State>()) {
  std::string why;
  auto binaries = findPostgresBinaries(&why);
  if (!binaries) throw std::runtime_error(why);
  State& s = *state_;
  s.binaries = *binaries;
  s.runAs = serverIdentity(&why);
  if (::geteuid() == 0 && !s.runAs) throw std::runtime_error(why);
  s.startTimeout = options.startTimeout;
  s.durability = options.durability;
  if (options.port < 1 || options.port > 65535) {
    throw std::invalid_argument("PgInstance: port " + std::to_string(options.port) +
                                " is not in 1-65535");
  }
  s.port = options.port;
  // Keep libpq variables of the caller (PGHOST, PGOPTIONS...) away from the server
  // tools, and their messages in English so the harness can read the log.
  s.env = currentEnvironment({"PG", "LC_", "LANG"});
  s.env.emplace_back("LC_ALL=C");

  try {
    s.prepareDirectory(options.dir);
    if (!fs::exists(s.dataDir() / "PG_VERSION")) s.initdb();
    s.startServer();
    s.ensureDatabase(kDefaultDatabase);
  } catch (...) {
    s.abandon();
    throw;
  }
}

PgInstance::PgInstance(std::unique_ptr<State> state) : state_(std::move(state)) {}

PgInstance PgInstance::standbyOf(const PgInstance& primary, StandbyOptions options) {
  const State& p = *primary.state_;
  if (!p.postmaster.valid())
    throw std::logic_error("PgInstance::standbyOf: the primary is stopped");
  if (options.port < 1 || options.port > 65535) {
    throw std::invalid_argument("PgInstance: port " + std::to_string(options.port) +
                                " is not in 1-65535");
  }
  auto state = std::make_unique<State>();
  State& s = *state;
  s.binaries = p.binaries;
  s.runAs = p.runAs;
  s.port = options.port;
  s.durability = p.durability;
  s.startTimeout = options.startTimeout;
  s.env = p.env;
  try {
    s.prepareDirectory(options.dir);
    if (!fs::exists(s.dataDir() / "PG_VERSION")) {
      // -R writes standby.signal and primary_conninfo (with this application_name,
      // which synchronous_standby_names matches); the WAL written meanwhile
      // streams along (-X stream) so the copy is consistent on its own.
      const std::string source = "host=" + conninfoValue(p.socketDir().string()) +
                                 " port=" + std::to_string(p.port) + " user=" + kSuperuser +
                                 " application_name=" + conninfoValue(options.name);
      s.runServerTool({(s.binaries.binDir / "pg_basebackup").string(),
                       "--pgdata=" + s.dataDir().string(), "--dbname=" + source,
                       "--write-recovery-conf", "--wal-method=stream", "--checkpoint=fast"},
                      s.dir, s.logPath());
    }
    if (fs::exists(p.passfile()) && !fs::exists(s.passfile())) {
      plng::base::writeFileAtomic(s.passfile(), readFrom(p.passfile(), 0), 0600);
    }
    s.startServer();

    PgConnPtr conn = connectOrThrow(p.adminConninfo("postgres"));
    const auto deadline = std::chrono::steady_clock::now() + options.startTimeout;
    auto waitFor = [&](const char* wanted) {
      const char* params[] = {options.name.c_str()};
      for (std::string seen = "not connected";;) {
        PgResultPtr r(PQexecParams(conn.get(),
                                   "SELECT state || ' ' || sync_state FROM pg_stat_replication"
                                   " WHERE application_name = $1",
                                   1, nullptr, params, nullptr, nullptr, 0));
        checkResult(conn.get(), r, "read pg_stat_replication");
        if (PQntuples(r.get()) > 0) seen = PQgetvalue(r.get(), 0, 0);
        if (seen.starts_with(wanted)) return;
        if (std::chrono::steady_clock::now() >= deadline) {
          throw std::runtime_error("standby '" + options.name + "' in " + s.dir.string() +
                                   " is not '" + wanted + "' after " +
                                   std::to_string(options.startTimeout.count()) + " s (" + seen +
                                   "); its log:\n" + fileTail(s.logPath()));
        }
        std::this_thread::sleep_for(20ms);
      }
    };
    waitFor("streaming");
    if (options.synchronous) {
      // A name list of one: the name double-quoted, so that any application_name works.
      std::string value = "\"";
      for (char c : options.name) value += c == '"' ? std::string("\"\"") : std::string(1, c);
      value += '"';
      char* literal = PQescapeLiteral(conn.get(), value.c_str(), value.size());
      if (literal == nullptr) throw std::runtime_error(PQerrorMessage(conn.get()));
      const std::string sql =
          std::string("ALTER SYSTEM SET synchronous_standby_names = ") + literal;
      PQfreemem(literal);
      PgResultPtr set(PQexec(conn.get(), sql.c_str()));
      checkResult(conn.get(), set, "ALTER SYSTEM SET synchronous_standby_names");
      PgResultPtr reload(PQexec(conn.get(), "SELECT pg_reload_conf()"));
      checkResult(conn.get(), reload, "pg_reload_conf()");
      waitFor("streaming sync");
    }
  } catch (...) {
    s.abandon();
    throw;
  }
  return PgInstance(std::move(state));
}

PgInstance::~PgInstance() {
  if (!state_) return;
  if (!state_->temporary) {
    state_->stopServer(SIGINT, 60s);
    return;
  }
  state_->stopServer(SIGQUIT, 10s);
  std::error_code ec;
  fs::remove_all(state_->dir, ec);
}

PgInstance::PgInstance(PgInstance&&) noexcept = default;

PgInstance& PgInstance::operator=(PgInstance&& other) noexcept {
  if (this != &other) {
    PgInstance discard(std::move(*this));
    state_ = std::move(other.state_);
  }
  return *this;
}

int PgInstance::port() const { return state_->port; }
Durability PgInstance::durability() const { return state_->durability; }
const fs::path& PgInstance::dir() const { return state_->dir; }
fs::path PgInstance::dataDir() const { return state_->dataDir(); }
fs::path PgInstance::socketDir() const { return state_->socketDir(); }
fs::path PgInstance::passfile() const { return state_->passfile(); }
fs::path PgInstance::logPath() const { return state_->logPath(); }

pid_t PgInstance::postmasterPid() const {
  return state_->postmaster.valid() ? state_->postmaster.pid() : 0;
}

std::string PgInstance::connectionString(std::string_view dbname) const {
  return "host=" + conninfoValue(state_->socketDir().string()) +
         " port=" + std::to_string(state_->port) + " user=" + kSuperuser +
         " dbname=" + conninfoValue(dbname);
}

std::string PgInstance::roleConnectionString(std::string_view dbname, std::string_view role) const {
  return "host=" + conninfoValue(state_->socketDir().string()) +
         " port=" + std::to_string(state_->port) + " user=" + conninfoValue(role) +
         " dbname=" + conninfoValue(dbname) +
         " passfile=" + conninfoValue(state_->passfile().string());
}

void PgInstance::createDatabase(std::string_view name) {
  PgConnPtr conn = connectOrThrow(state_->adminConninfo("postgres"));
  state_->createClosedDatabase(conn.get(), name);
}

void PgInstance::createOwnedDatabase(std::string_view dbname, std::string_view role) {
  state_->createOwnedDatabase(dbname, role);
}

void PgInstance::dropDatabase(std::string_view name) {
  PgConnPtr conn = connectOrThrow(state_->adminConninfo("postgres"));
  PgResultPtr result(PQexec(
      conn.get(),
      ("DROP DATABASE IF EXISTS " + quoteIdentifier(conn.get(), name) + " WITH (FORCE)").c_str()));
  checkResult(conn.get(), result, "drop database " + std::string(name));
}

void PgInstance::execute(std::string_view sql, std::string_view dbname) {
  PgConnPtr conn = connectOrThrow(state_->adminConninfo(dbname));
  PgResultPtr result(PQexec(conn.get(), std::string(sql).c_str()));
  checkResult(conn.get(), result, "execute SQL");
}

void PgInstance::stop() { state_->stopServer(SIGINT, 60s); }

void PgInstance::kill() {
  auto& postmaster = state_->postmaster;
  if (!postmaster.valid() || !postmaster.running()) return;
  postmaster.signal(SIGKILL);
  postmaster.wait();
}

void PgInstance::start() { state_->startServer(); }

void PgInstance::killEveryProcess() {
  auto& postmaster = state_->postmaster;
  if (!postmaster.valid() || !postmaster.running()) return;
  const pid_t pid = postmaster.pid();
  // Stopped, it forks nothing more, and its processes see it alive until they die.
  postmaster.signal(SIGSTOP);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    pid_t child = 0;
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), child);
    if (error != std::errc() || end != name.data() + name.size()) continue;
    if (auto stat = plng::base::readProcStat(child); stat && stat->ppid == pid) {
      ::kill(child, SIGKILL);
    }
  }
  postmaster.signal(SIGKILL);
  postmaster.wait();
}

void PgInstance::promote() {
  State& s = *state_;
  s.runServerTool({(s.binaries.binDir / "pg_ctl").string(), "promote", "--wait", "--timeout",
                   std::to_string(s.startTimeout.count()), "--pgdata", s.dataDir().string()},
                  s.dir, s.logPath());
  const auto deadline = std::chrono::steady_clock::now() + s.startTimeout;
  while (inRecovery()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error("the standby in " + s.dir.string() +
                               " is still in recovery after pg_ctl promote; its log:\n" +
                               fileTail(s.logPath()));
    }
    std::this_thread::sleep_for(20ms);
  }
}

bool PgInstance::inRecovery() {
  PgConnPtr conn = connectOrThrow(state_->adminConninfo("postgres"));
  PgResultPtr r(PQexec(conn.get(), "SELECT pg_is_in_recovery()"));
  checkResult(conn.get(), r, "SELECT pg_is_in_recovery()");
  return std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
}

namespace {

// `cp -a` as the caller (root keeps the server user's ownership).
void copyTree(const fs::path& from, const fs::path& to) {
  if (fs::exists(to)) throw std::runtime_error(to.string() + " already exists");
  SpawnOptions options;
  options.argv = {"/bin/cp", "-a", "--", from.string(), to.string()};
  options.parentDeathSignal = SIGKILL;
  ChildProcess cp = ChildProcess::spawn(options);
  auto status = cp.waitFor(120s);
  if (!status) {
    cp.terminate(SIGKILL, 0s);
    throw std::runtime_error("copying " + from.string() + " took over 120 s");
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    throw std::runtime_error("cp -a " + from.string() + " " + to.string() + " " +
                             describeWaitStatus(*status));
  }
}

}  // namespace

void PgInstance::backupTo(const fs::path& to) const {
  if (state_->postmaster.valid() && state_->postmaster.running()) {
    throw std::logic_error("PgInstance::backupTo: stop the server first");
  }
  copyTree(state_->dataDir(), to);
}

void PgInstance::restoreFrom(const fs::path& from) {
  if (state_->postmaster.valid() && state_->postmaster.running()) {
    throw std::logic_error("PgInstance::restoreFrom: stop the server first");
  }
  fs::remove_all(state_->dataDir());
  copyTree(from, state_->dataDir());
}

bool PgInstance::running() { return state_->postmaster.running(); }

std::string PgInstance::logTail(std::size_t maxBytes) const {
  return fileTail(state_->logPath(), maxBytes);
}

std::string failoverConnectionString(const std::vector<const PgInstance*>& servers,
                                     std::string_view dbname, std::string_view role) {
  if (servers.empty()) throw std::invalid_argument("failoverConnectionString: no server");
  std::string hosts;
  std::string ports;
  for (const PgInstance* server : servers) {
    if (!hosts.empty()) {
      hosts += ',';
      ports += ',';
    }
    hosts += server->socketDir().string();
    ports += std::to_string(server->port());
  }
  return "host=" + conninfoValue(hosts) + " port=" + conninfoValue(ports) +
         " user=" + conninfoValue(role) + " dbname=" + conninfoValue(dbname) +
         " passfile=" + conninfoValue(servers.front()->passfile().string()) +
         " target_session_attrs=read-write";
}

}  // namespace plng::test
