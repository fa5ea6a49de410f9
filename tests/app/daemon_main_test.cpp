// app/daemon_main.h: the daemons' command line, --help, --version, exit codes,
// and the config file with options over it.
#include "app/daemon_main.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "app/version.h"

namespace {

using plng::app::Invocation;

struct ToyConfig {
  std::string listen = "127.0.0.1:1";
  int workers = 2;
  std::string log_level = "info";
};

const plng::base::ConfigTable<ToyConfig>& toyTable() {
  static const auto kTable =
      plng::base::ConfigTable<ToyConfig>("toyd")
          .string("listen", &ToyConfig::listen, "address")
          .integer("workers", &ToyConfig::workers, "threads", 1, 64)
          .string("log_level", &ToyConfig::log_level, "level", plng::app::checkLogLevel);
  return kTable;
}

const plng::app::DaemonSpec kToyd{
    .program = "toyd",
    .summary = "A daemon for tests.",
    .commands = {{.name = "serve", .help = "serve (default)"},
                 {.name = "add-user", .help = "add a user:\n  --name N", .takes_arguments = true}},
    .options = {{.name = "listen",
                 .value_name = "ADDR",
                 .config_key = "listen",
                 .help = "address (config: listen)"}},
    .epilogue = "Exit codes: 0 ok.",
};

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::optional<Invocation> invocation;
  std::optional<ToyConfig> config;
};

Run run(const std::vector<std::string>& args,
        std::function<int(const Invocation&, const ToyConfig&)> body = {}) {
  Run result;
  std::ostringstream out, err;
  result.exit_code = plng::app::runDaemon<ToyConfig>(
      kToyd, toyTable(), args,
      [&](const Invocation& invocation, const ToyConfig& config) {
        result.invocation = invocation;
        result.config = config;
        return body ? body(invocation, config) : 0;
      },
      out, err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

// A config file removed with the object.
class TempConfig {
 public:
  explicit TempConfig(const std::string& text)
      : path_(std::filesystem::temp_directory_path() /
              ("app_test_" + std::to_string(::getpid()) + ".conf")) {
    std::ofstream(path_) << text;
  }
  ~TempConfig() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace

TEST_CASE("app: --version prints the build's version", "[app]") {
  CHECK(plng::app::projectVersion() == PLNG_PROJECT_VERSION);
  const Run r = run({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "toyd " + plng::app::versionText() + "\n");
  CHECK_THAT(r.out, Catch::StartsWith(std::string("toyd ") + PLNG_PROJECT_VERSION));
  CHECK_FALSE(r.invocation);
}

TEST_CASE("app: --help lists commands and options and exits 0", "[app]") {
  for (const char* flag : {"--help", "-h"}) {
    const Run r = run({"--listen", "x", flag});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK_THAT(r.out,
               Catch::StartsWith("Usage: toyd [OPTIONS] [COMMAND]\n\nA daemon for tests.\n"));
    CHECK_THAT(r.out, Catch::Contains("\n  serve              serve (default)\n"));
    CHECK_THAT(r.out, Catch::Contains("\n  add-user           add a user:\n"
                                      "                       --name N\n"));
    CHECK_THAT(r.out, Catch::Contains("\n  print-config       print every configuration key"));
    CHECK_THAT(r.out, Catch::Contains("\n  --config FILE      configuration file"));
    CHECK_THAT(r.out, Catch::Contains("\n  --listen ADDR      address (config: listen)\n"));
    CHECK_THAT(r.out, Catch::Contains("\n  --log-level LEVEL  "));
    CHECK_THAT(r.out, Catch::Contains("\n  --version          show the version\n"));
    CHECK_THAT(r.out, Catch::EndsWith("\nExit codes: 0 ok.\n"));
    CHECK_FALSE(r.invocation);
  }
}

TEST_CASE("app: a wrong command line exits 2 and says why", "[app]") {
  Run r = run({"--bogus"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "toyd: unknown option '--bogus'\nTry 'toyd --help'.\n");
  CHECK_FALSE(r.invocation);

  r = run({"frobnicate"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "toyd: unknown argument 'frobnicate'\nTry 'toyd --help'.\n");

  r = run({"--config"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::StartsWith("toyd: --config needs a value (FILE)\n"));

  r = run({"serve", "extra"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::StartsWith("toyd: serve takes no arguments, got 'extra'\n"));

  r = run({"--log-level", "loud"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::StartsWith("toyd: --log-level: log_level: 'loud' is not a log level"));
  CHECK_FALSE(r.invocation);
}

TEST_CASE("app: the default command, a command's arguments and options", "[app]") {
  Run r = run({});
  CHECK(r.exit_code == 0);
  REQUIRE(r.invocation);
  CHECK(r.invocation->command == "serve");
  CHECK(r.config->listen == "127.0.0.1:1");

  r = run({"--listen=0.0.0.0:2", "add-user", "--name", "ann"});
  REQUIRE(r.invocation);
  CHECK(r.invocation->command == "add-user");
  CHECK(r.invocation->arguments == std::vector<std::string>{"--name", "ann"});
  CHECK(r.config->listen == "0.0.0.0:2");

  // What the body returns is the exit code.
  CHECK(run({}, [](const Invocation&, const ToyConfig&) { return 7; }).exit_code == 7);
}

TEST_CASE("app: the config file, then options over it, then the log level", "[app]") {
  const TempConfig file("listen = 10.0.0.1:3\nworkers = 8\nlog_level = warn\n");
  Run r = run({"--config", file.path()});
  REQUIRE(r.config);
  CHECK(r.config->listen == "10.0.0.1:3");
  CHECK(r.config->workers == 8);
  CHECK(spdlog::get_level() == spdlog::level::warn);

  r = run({"--config", file.path(), "--listen", "10.0.0.2:4", "--log-level", "debug"});
  REQUIRE(r.config);
  CHECK(r.config->listen == "10.0.0.2:4");
  CHECK(spdlog::get_level() == spdlog::level::debug);
  spdlog::set_level(spdlog::level::info);

  const TempConfig bad("workers = many\n");
  r = run({"--config", bad.path()});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "toyd: " + bad.path() + ":1: workers: 'many' is not an integer\n");
  CHECK_FALSE(r.invocation);

  r = run({"--config", "/nonexistent/toyd.conf"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "toyd: cannot read config file /nonexistent/toyd.conf\n");
}

TEST_CASE("app: print-config prints the documented defaults, not the file", "[app]") {
  const Run r = run({"--config", "/nonexistent/toyd.conf", "print-config"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == toyTable().documentedDefaults());
  CHECK_FALSE(r.invocation);
}

TEST_CASE("app: a failing body exits 1, a usage error in it 2", "[app]") {
  Run r = run({}, [](const Invocation&, const ToyConfig&) -> int {
    throw std::runtime_error("disk on fire");
  });
  CHECK(r.exit_code == 1);
  r = run({"add-user"}, [](const Invocation&, const ToyConfig&) -> int {
    throw plng::app::UsageError("add-user needs --name");
  });
  CHECK(r.exit_code == 2);
  CHECK(r.err == "toyd: add-user needs --name\n");
}
