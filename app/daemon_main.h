// The shared main() of the daemons (plcd, sliverd):
//
//   <program> [OPTIONS] [COMMAND [ARGUMENTS]]
//
// Options come before the command: --config FILE, the daemon's own options (each
// sets a config key, e.g. --listen ADDR sets `listen`), --log-level LEVEL,
// -h/--help and --version; `--option=value` works too. Commands are the daemon's
// own (the first is the default) and print-config, which prints the documented
// defaults. runDaemon reads the config file, applies the options over it, sets up
// logging, then runs the daemon's body:
//   exit 2  a usage or config error, said on standard error ("plcd: ...")
//   exit 1  the body failed (an exception, logged as critical)
//   else    what the body returns
#pragma once

#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "app/logging.h"
#include "base/config.h"

namespace plng::app {

struct DaemonCommand {
  std::string name;
  std::string help;  // lines after the first are indented under it
  bool takes_arguments = false;
};

// An option that sets the config key of the same meaning over the config file.
struct DaemonOption {
  std::string name;  // without "--"
  std::string value_name;
  std::string config_key;
  std::string help;
};

struct DaemonSpec {
  std::string program;
  std::string summary;  // what the daemon is, for --help
  std::vector<DaemonCommand> commands;
  std::vector<DaemonOption> options;
  std::string epilogue;  // signals, exit codes
};

// A command's own arguments are wrong (exit 2, as for an unknown option).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Invocation {
  struct Setting {
    std::string config_key;
    std::string value;
    std::string option;  // "--listen", for messages
  };
  std::string command;
  std::vector<std::string> arguments;  // after the command
  std::optional<std::string> config_path;
  std::vector<Setting> settings;  // in command-line order
};

std::string daemonUsage(const DaemonSpec& spec);

// What to run, or the exit code when there is nothing to run: 0 after --help or
// --version (printed to `out`), 2 after a usage error (said on `err`).
std::variant<Invocation, int> parseDaemonArguments(const DaemonSpec& spec,
                                                   const std::vector<std::string>& args,
                                                   std::ostream& out, std::ostream& err);

// Runs `body` with runDaemon's exit codes.
int runGuarded(const DaemonSpec& spec, std::ostream& err, const std::function<int()>& body);

std::vector<std::string> commandLineArguments(int argc, char** argv);

template <class Config>
int runDaemon(const DaemonSpec& spec, const base::ConfigTable<Config>& table,
              const std::vector<std::string>& args,
              const std::function<int(const Invocation&, const Config&)>& body,
              std::ostream& out = std::cout, std::ostream& err = std::cerr);

template <class Config>
int runDaemon(const DaemonSpec& spec, const base::ConfigTable<Config>& table,
              const std::vector<std::string>& args,
              const std::function<int(const Invocation&, const Config&)>& body, std::ostream& out,
              std::ostream& err) {
  auto parsed = parseDaemonArguments(spec, args, out, err);
  if (const int* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  const Invocation& invocation = std::get<Invocation>(parsed);
  if (invocation.command == "print-config") {
    out << table.documentedDefaults();
    return 0;
  }
  return runGuarded(spec, err, [&] {
    Config config;
    if (invocation.config_path) config = table.load(*invocation.config_path);
    for (const Invocation::Setting& setting : invocation.settings) {
      table.assign(config, setting.config_key, setting.value, setting.option);
    }
    setUpLogging(table.value(config, "log_level"));
    return body(invocation, config);
  });
}

}  // namespace plng::app
