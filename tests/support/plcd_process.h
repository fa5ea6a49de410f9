// Real plcd processes for integration tests.
//
// plcd's command line: plcd [--config FILE] [--listen ADDR] [--database CONNSTR]
//                           [--log-level LEVEL] [serve | migrate | create-admin ...]
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grpc {
class Channel;
}

namespace plng::test {

// `plcd ... serve` on 127.0.0.1:<port>, running until stopped; move-only. The
// destructor kills and reaps it. If plcd dies on its own (or fails to stop
// cleanly), its log tail is printed to stderr, since the log file is temporary.
class PlcdProcess {
 public:
  static std::string defaultLogLevel();

  struct Options {
    std::filesystem::path plcdPath;
    std::string database;                      // libpq connection string
    std::vector<std::string> extraArgs;        // global options, placed before `serve`
    std::vector<std::string> serveArgs;        // placed after `serve`
    std::string logLevel = defaultLogLevel();  // $PLNG_PLCD_LOG_LEVEL, else "warn"
    int port = 0;                              // 0: a free port
    // Also serve the portal and JSON API (plc/portal.h) on a free loopback port,
    // with the built portal files of `portalRoot` when not empty.
    bool portal = false;
    std::filesystem::path portalRoot;
    // Empty: a temporary file, removed on destruction unless PLNG_KEEP_LOGS is set.
    std::filesystem::path logPath;
    std::chrono::seconds readyTimeout{30};
  };

  // Starts plcd and waits until it serves gRPC (its health service reports SERVING,
  // or it has none). Throws std::runtime_error with plcd's log tail on failure.
  PlcdProcess(std::filesystem::path plcdPath, std::string database,
              std::vector<std::string> extraArgs = {});
  explicit PlcdProcess(Options options);
  ~PlcdProcess();
  PlcdProcess(PlcdProcess&&) noexcept;
  PlcdProcess& operator=(PlcdProcess&&) noexcept;
  PlcdProcess(const PlcdProcess&) = delete;
  PlcdProcess& operator=(const PlcdProcess&) = delete;

  // "127.0.0.1:<port>"; stays the same across stop() and start().
  const std::string& address() const;
  int port() const;
  // "127.0.0.1:<port>" of the portal and JSON API; "" unless Options::portal.
  std::string portalAddress() const;
  pid_t pid() const;
  // A channel to address(), shared by every caller. It survives stop() and start():
  // start() returns once it has reconnected.
  std::shared_ptr<grpc::Channel> channel() const;
  // A channel with a connection of its own (e.g. to act as a second client).
  std::shared_ptr<grpc::Channel> newChannel() const;

  // SIGTERM, then SIGKILL after 5 s; returns the wait status. No-op (returning the
  // earlier status) when already stopped.
  int stop();
  // SIGKILL and reap, as if the machine died.
  void kill();
  // Starts plcd again on the same port and waits until it serves (and channel()
  // is connected again).
  void start();
  bool running();
  std::optional<int> exitStatus() const;

  const std::filesystem::path& logPath() const;
  std::string log() const;
  std::string logTail(std::size_t maxBytes = 4000) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct PlcdCommandResult {
  int waitStatus = 0;
  std::string output;  // stdout and stderr interleaved
  bool succeeded() const;
  std::string describe() const;  // "exited with code 1" plus the output
};

// Runs `plcd <args...>` to completion with `stdinData` on its stdin. Kills it and
// throws std::runtime_error if it runs longer than `timeout`.
PlcdCommandResult runPlcd(const std::filesystem::path& plcdPath,
                          const std::vector<std::string>& args, std::string_view stdinData = {},
                          std::chrono::seconds timeout = std::chrono::seconds(60));

// `plcd --database <database> create-admin --email ... --password-stdin`; throws
// std::runtime_error with plcd's output unless it exits 0.
void createAdmin(const std::filesystem::path& plcdPath, const std::string& database,
                 const std::string& email, const std::string& password,
                 const std::string& firstName = "PLC", const std::string& lastName = "Admin");

}  // namespace plng::test
