#include "tests/support/plcd_process.h"

#include <fcntl.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "base/file.h"
#include "tests/support/child_process.h"

using plng::base::UniqueFd;

namespace plng::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A server's graceful shutdown waits until its clients close their connections,
// but a client channel with no call in flight reads the server's GOAWAY only when
// gRPC's backup poller runs: every 5 s by default, so every plcd stop took ~5 s.
// Set before main(), while the process has one thread, and only if unset.
[[maybe_unused]] const bool kBackupPollerSet = [] {
  ::setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "100", /*overwrite=*/0);
  return true;
}();

std::shared_ptr<grpc::Channel> makeChannel(const std::string& address, bool ownConnection) {
  grpc::ChannelArguments args;
  // gRPC backs off up to 120 s between reconnection attempts by default; tests
  // restart plcd and expect clients to notice within a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  if (ownConnection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// Inodes of the TCP sockets listening on `port` (any address).
std::set<std::string> listeningSockets(int port) {
  std::set<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      std::istringstream fields(line);
      std::string sl, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> sl >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      const std::size_t colon = local.rfind(':');
      if (state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
      if (std::stoi(local.substr(colon + 1), nullptr, 16) == port) inodes.insert(inode);
    }
  }
  return inodes;
}

// Inodes of the sockets process `pid` holds.
std::set<std::string> socketsOf(pid_t pid) {
  std::set<std::string> inodes;
  std::error_code ec;
  for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    const std::string target = fs::read_symlink(fd.path(), ec).string();
    if (!ec && target.starts_with("socket:[") && target.ends_with("]")) {
      inodes.insert(target.substr(8, target.size() - 9));
    }
  }
  return inodes;
}

// Who listens on the port: nobody yet, plcd alone, or someone else too. gRPC binds
// with SO_REUSEPORT, so a plcd whose port was taken meanwhile by another gRPC
// server (another test's plcd) would start fine and share its connections.
enum class Listener { kNone, kOurs, kShared };

Listener listenerOn(int port, pid_t pid) {
  const std::set<std::string> listening = listeningSockets(port);
  if (listening.empty()) return Listener::kNone;
  const std::set<std::string> ours = socketsOf(pid);
  bool anyOurs = false;
  bool anyForeign = false;
  for (const auto& inode : listening) (ours.count(inode) ? anyOurs : anyForeign) = true;
  if (!anyOurs) return Listener::kNone;
  return anyForeign ? Listener::kShared : Listener::kOurs;
}

enum class Health { kServing, kNotServing, kUnreachable };

// grpc.health.v1.Health/Check for the whole server, through a generic stub (no
// generated health stubs ship with Debian's gRPC). HealthCheckRequest{service=""}
// encodes to no bytes; a SERVING response is field 1 = 1, i.e. bytes 08 01.
Health checkHealth(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 2s);
  // A default-constructed ByteBuffer is no message at all (gRPC aborts on it).
  grpc::Slice noBytes;
  grpc::ByteBuffer request(&noBytes, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status status = done.get_future().get();
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) return Health::kServing;
  if (!status.ok()) return Health::kUnreachable;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return Health::kNotServing;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes == std::string("\x08\x01", 2) ? Health::kServing : Health::kNotServing;
}

bool keepLogs() {
  const char* keep = std::getenv("PLNG_KEEP_LOGS");
  return keep != nullptr && *keep != '\0' && std::string_view(keep) != "0";
}

// A kept log goes outside processScratchDir(), which is removed when the test exits.
fs::path makeLogFile(bool keep) {
  fs::path dir = processScratchDir();
  if (keep) {
    const char* tmp = std::getenv("TMPDIR");
    dir = (tmp != nullptr && *tmp != '\0') ? fs::path(tmp) : fs::path("/tmp");
  }
  std::string pattern = (dir / "plng-plcd-XXXXXX.log").string();
  const int fd = ::mkostemps(pattern.data(), 4, O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "mkostemps " + pattern);
  ::close(fd);
  return pattern;
}

UniqueFd memoryFile(const char* name) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC));
  if (!fd) throw std::system_error(errno, std::generic_category(), "memfd_create");
  return fd;
}

bool cleanStop(int status) {
  return (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
         (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

}  // namespace

struct PlcdProcess::State {
  Options options;
  bool temporaryLog = false;
  std::string address;
  int portalPort = 0;  // Options::portal
  ChildProcess child;
  bool stoppedByUs = false;
  std::shared_ptr<grpc::Channel> channel;  // the shared one, created once plcd serves

  std::vector<std::string> argv() const {
    std::vector<std::string> a = {
        options.plcdPath.string(), "--listen",    address,         "--database",
        options.database,          "--log-level", options.logLevel};
    // plcd's /metrics listens on a fixed loopback port by default, which
    // parallel tests would fight over: off unless a test turns it on (its
    // extraArgs come later and win).
    a.emplace_back("--metrics-listen=");
    if (options.portal) {
      a.emplace_back("--portal-listen=127.0.0.1:" + std::to_string(portalPort));
      if (!options.portalRoot.empty())
        a.emplace_back("--portal-root=" + options.portalRoot.string());
    }
    a.insert(a.end(), options.extraArgs.begin(), options.extraArgs.end());
    a.emplace_back("serve");
    a.insert(a.end(), options.serveArgs.begin(), options.serveArgs.end());
    return a;
  }

  void spawn() {
    address = "127.0.0.1:" + std::to_string(options.port);
    UniqueFd log(::open(options.logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log) {
      throw std::system_error(errno, std::generic_category(), "open " + options.logPath.string());
    }
    SpawnOptions spawnOptions;
    spawnOptions.argv = argv();
    spawnOptions.outputFd = log.get();
    spawnOptions.parentDeathSignal = SIGKILL;
    child = ChildProcess::spawn(spawnOptions);
    stoppedByUs = false;
  }

  void waitForSharedChannel(const std::string& failure) const {
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + options.readyTimeout)) {
      throw std::runtime_error(failure + " within " + std::to_string(options.readyTimeout.count()) +
                               " s");
    }
  }

  // Waits until plcd serves gRPC. With `mayChangePort`, a port taken since it was
  // picked is replaced by another and plcd started again.
  void startAndWait(bool mayChangePort) {
    for (int attempt = 1;; ++attempt) {
      const std::size_t logStart = log().size();
      spawn();
      const auto deadline = std::chrono::steady_clock::now() + options.readyTimeout;
      std::shared_ptr<grpc::Channel> probe;
      std::string problem;
      while (problem.empty()) {
        if (!child.running()) {
          const std::string full = log();
          const std::string output = full.substr(std::min(logStart, full.size()));
          const bool portTaken = output.find("in use") != std::string::npos ||
                                 output.find("cannot listen") != std::string::npos;
          if (mayChangePort && portTaken && attempt < 5) break;
          problem = "plcd " + describeWaitStatus(*child.exitStatus()) + " while starting";
        } else if (std::chrono::steady_clock::now() >= deadline) {
          problem = "plcd did not serve on " + address + " within " +
                    std::to_string(options.readyTimeout.count()) + " s";
          child.terminate(SIGKILL, 0s);
        } else if (const Listener listener = listenerOn(options.port, child.pid());
                   listener == Listener::kShared) {
          child.terminate(SIGKILL, 0s);
          if (mayChangePort && attempt < 5) break;
          problem = "another process also listens on " + address;
        } else if (listener == Listener::kNone) {
          std::this_thread::sleep_for(20ms);
        } else {
          if (!probe) probe = makeChannel(address, /*ownConnection=*/true);
          // plcd opens the portal just after gRPC: serving means both.
          if (checkHealth(probe) == Health::kServing &&
              (!options.portal || !listeningSockets(portalPort).empty()))
            return;
          std::this_thread::sleep_for(50ms);
        }
      }
      if (problem.empty()) {
        options.port = pickFreePort();
        if (options.portal) portalPort = pickFreePort();
        continue;
      }
      throw std::runtime_error(problem + "; command:" + commandLine() + "\nlog " +
                               options.logPath.string() + ":\n" + fileTail(options.logPath));
    }
  }

  std::string commandLine() const {
    std::string line;
    for (const auto& a : argv()) line += " " + a;
    return line;
  }

  std::string log() const { return fileTail(options.logPath, std::size_t(1) << 30); }

  int stop() {
    if (!child.valid()) {
      if (auto status = child.exitStatus()) {
        if (!stoppedByUs) reportAbnormalEnd(*status);
        stoppedByUs = true;
        return *status;
      }
      throw std::logic_error("PlcdProcess::stop: never started");
    }
    const bool diedOnItsOwn = !child.running();
    const int status = child.terminate(SIGTERM, 5s);
    if (diedOnItsOwn || !cleanStop(status)) reportAbnormalEnd(status, diedOnItsOwn);
    stoppedByUs = true;
    return status;
  }

  void reportAbnormalEnd(int status, bool onItsOwn = true) const {
    std::cerr << "plcd on " << address << " " << describeWaitStatus(status)
              << (onItsOwn ? " on its own" : " when stopped") << "; log tail ("
              << options.logPath.string() << "):\n"
              << fileTail(options.logPath) << "\n";
  }
};

std::string PlcdProcess::defaultLogLevel() {
  const char* level = std::getenv("PLNG_PLCD_LOG_LEVEL");
  return level != nullptr && *level != '\0' ? level : "warn";
}

PlcdProcess::PlcdProcess(fs::path plcdPath, std::string database,
                         std::vector<std::string> extraArgs)
    : PlcdProcess([&] {
        Options options;
        options.plcdPath = std::move(plcdPath);
        options.database = std::move(database);
        options.extraArgs = std::move(extraArgs);
        return options;
      }()) {}

PlcdProcess::PlcdProcess(Options options) : state_(std::make_unique<State>()) {
  State& s = *state_;
  if (options.plcdPath.empty()) throw std::invalid_argument("PlcdProcess: no plcd path");
  if (::access(options.plcdPath.c_str(), X_OK) != 0) {
    throw std::runtime_error("PlcdProcess: " + options.plcdPath.string() + " is not executable");
  }
  s.options = std::move(options);
  if (s.options.logPath.empty()) {
    s.temporaryLog = !keepLogs();
    s.options.logPath = makeLogFile(/*keep=*/!s.temporaryLog);
  }
  const bool autoPort = s.options.port == 0;
  if (autoPort) s.options.port = pickFreePort();
  if (s.options.portal) s.portalPort = pickFreePort();
  try {
    s.startAndWait(/*mayChangePort=*/autoPort);
    s.channel = makeChannel(s.address, /*ownConnection=*/false);
    // The shared channel draws on gRPC's global subchannel pool: a port reused from
    // an earlier plcd of this process can hand it that plcd's subchannel, still in
    // reconnect backoff, and the first call would fail at once with UNAVAILABLE
    // ("tcp handshaker shutdown", seen in CI under load). Wait until it is connected.
    s.waitForSharedChannel("plcd serves on " + s.address +
                           " but the shared channel did not connect");
  } catch (...) {
    if (s.temporaryLog) {
      std::error_code ec;
      fs::remove(s.options.logPath, ec);
    }
    throw;
  }
}

PlcdProcess::~PlcdProcess() {
  if (!state_) return;
  State& s = *state_;
  if (s.child.pid() > 0 && !s.stoppedByUs) {
    if (s.child.running()) {
      s.child.terminate(SIGKILL, 0s);
    } else {
      s.reportAbnormalEnd(*s.child.exitStatus());
    }
  }
  if (s.temporaryLog) {
    std::error_code ec;
    fs::remove(s.options.logPath, ec);
  } else {
    std::cerr << "plcd log kept: " << s.options.logPath.string() << "\n";
  }
}

PlcdProcess::PlcdProcess(PlcdProcess&&) noexcept = default;

PlcdProcess& PlcdProcess::operator=(PlcdProcess&& other) noexcept {
  if (this != &other) {
    PlcdProcess discard(std::move(*this));
    state_ = std::move(other.state_);
  }
  return *this;
}

const std::string& PlcdProcess::address() const { return state_->address; }
int PlcdProcess::port() const { return state_->options.port; }
std::string PlcdProcess::portalAddress() const {
  return state_->options.portal ? "127.0.0.1:" + std::to_string(state_->portalPort) : "";
}
pid_t PlcdProcess::pid() const { return state_->child.pid(); }

std::shared_ptr<grpc::Channel> PlcdProcess::channel() const { return state_->channel; }

std::shared_ptr<grpc::Channel> PlcdProcess::newChannel() const {
  return makeChannel(state_->address, /*ownConnection=*/true);
}

int PlcdProcess::stop() { return state_->stop(); }

void PlcdProcess::kill() {
  if (state_->child.valid()) {
    state_->stoppedByUs = true;
    state_->child.terminate(SIGKILL, 0s);
  }
}

void PlcdProcess::start() {
  if (state_->child.valid() && state_->child.running()) {
    throw std::logic_error("PlcdProcess::start: plcd is already running");
  }
  state_->startAndWait(/*mayChangePort=*/false);
  // While plcd was down the shared channel failed to reconnect and now backs off
  // (up to 1 s), failing calls at once with UNAVAILABLE: wait until it is back.
  if (state_->channel) {
    state_->waitForSharedChannel("plcd restarted on " + state_->address +
                                 " but the shared channel did not reconnect");
  }
}

bool PlcdProcess::running() { return state_->child.running(); }

std::optional<int> PlcdProcess::exitStatus() const { return state_->child.exitStatus(); }

const fs::path& PlcdProcess::logPath() const { return state_->options.logPath; }

std::string PlcdProcess::log() const { return state_->log(); }

std::string PlcdProcess::logTail(std::size_t maxBytes) const {
  return fileTail(state_->options.logPath, maxBytes);
}

bool PlcdCommandResult::succeeded() const {
  return WIFEXITED(waitStatus) && WEXITSTATUS(waitStatus) == 0;
}

std::string PlcdCommandResult::describe() const {
  return describeWaitStatus(waitStatus) + "; output:\n" + output;
}

PlcdCommandResult runPlcd(const fs::path& plcdPath, const std::vector<std::string>& args,
                          std::string_view stdinData, std::chrono::seconds timeout) {
  // Both ends in memory files: no pipe to fill up, and no SIGPIPE if plcd exits
  // without reading its input.
  UniqueFd input = memoryFile("plcd-stdin");
  plng::base::writeAll(input.get(), stdinData, "plcd stdin");
  ::lseek(input.get(), 0, SEEK_SET);
  UniqueFd output = memoryFile("plcd-output");

  SpawnOptions options;
  options.argv.push_back(plcdPath.string());
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.stdinFd = input.get();
  options.outputFd = output.get();
  options.parentDeathSignal = SIGKILL;
  ChildProcess child = ChildProcess::spawn(options);

  PlcdCommandResult result;
  const std::optional<int> status = child.waitFor(timeout);
  result.waitStatus = status ? *status : child.terminate(SIGKILL, 0s);

  const off_t size = ::lseek(output.get(), 0, SEEK_END);
  result.output.resize(size > 0 ? static_cast<std::size_t>(size) : 0);
  const ssize_t n = ::pread(output.get(), result.output.data(), result.output.size(), 0);
  result.output.resize(n > 0 ? static_cast<std::size_t>(n) : 0);

  if (!status) {
    std::string line;
    for (const auto& a : options.argv) line += " " + a;
    throw std::runtime_error("timed out after " + std::to_string(timeout.count()) + " s:" + line +
                             "\noutput:\n" + result.output);
  }
  return result;
}

void createAdmin(const fs::path& plcdPath, const std::string& database, const std::string& email,
                 const std::string& password, const std::string& firstName,
                 const std::string& lastName) {
  const PlcdCommandResult result =
      runPlcd(plcdPath,
              {"--database", database, "--log-level", "warn", "create-admin", "--email", email,
               "--first-name", firstName, "--last-name", lastName, "--password-stdin"},
              password);
  if (!result.succeeded()) {
    throw std::runtime_error("plcd create-admin --email " + email + " " + result.describe());
  }
}

}  // namespace plng::test
