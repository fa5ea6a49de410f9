#include "app/daemon_main.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "app/version.h"

namespace plng::app {

namespace {

const DaemonCommand kPrintConfig{
    .name = "print-config",
    .help = "print every configuration key with its default and exit",
    .takes_arguments = false,
};

const DaemonOption kConfigOption{
    .name = "config",
    .value_name = "FILE",
    .config_key = "",
    .help = "configuration file (key = value lines; see print-config)",
};

const DaemonOption kLogLevelOption{
    .name = "log-level",
    .value_name = "LEVEL",
    .config_key = "log_level",
    .help = "trace, debug, info, warn or error (config: log_level)",
};

std::vector<DaemonCommand> commandsOf(const DaemonSpec& spec) {
  std::vector<DaemonCommand> commands = spec.commands;
  commands.push_back(kPrintConfig);
  return commands;
}

std::vector<DaemonOption> optionsOf(const DaemonSpec& spec) {
  std::vector<DaemonOption> options{kConfigOption};
  options.insert(options.end(), spec.options.begin(), spec.options.end());
  options.push_back(kLogLevelOption);
  return options;
}

// "  <left padded to 17>  <help>", further help lines under the first.
std::string helpLine(const std::string& left, const std::string& help) {
  constexpr std::size_t kColumn = 17;
  std::string out = "  " + left;
  out += left.size() < kColumn ? std::string(kColumn - left.size(), ' ') : std::string();
  out += "  ";
  for (char c : help) {
    out += c;
    if (c == '\n') out += std::string(kColumn + 4, ' ');
  }
  return out + "\n";
}

}  // namespace

std::string daemonUsage(const DaemonSpec& spec) {
  std::string out =
      "Usage: " + spec.program + " [OPTIONS] [COMMAND]\n\n" + spec.summary + "\n\nCommands:\n";
  for (const DaemonCommand& command : commandsOf(spec)) {
    out += helpLine(command.name, command.help);
  }
  out += "\nOptions:\n";
  for (const DaemonOption& option : optionsOf(spec)) {
    out += helpLine("--" + option.name + " " + option.value_name, option.help);
  }
  out += helpLine("-h, --help", "show this help");
  out += helpLine("--version", "show the version");
  if (!spec.epilogue.empty()) out += "\n" + spec.epilogue + "\n";
  return out;
}

std::variant<Invocation, int> parseDaemonArguments(const DaemonSpec& spec,
                                                   const std::vector<std::string>& args,
                                                   std::ostream& out, std::ostream& err) {
  const std::vector<DaemonCommand> commands = commandsOf(spec);
  const std::vector<DaemonOption> options = optionsOf(spec);
  Invocation invocation;
  invocation.command = commands.front().name;
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string& arg = args[i];
      if (arg == "-h" || arg == "--help") {
        out << daemonUsage(spec);
        return 0;
      }
      if (arg == "--version") {
        out << spec.program << " " << versionText() << "\n";
        return 0;
      }
      if (arg.starts_with("--")) {
        const std::size_t eq = arg.find('=');
        const std::string name = arg.substr(2, eq == std::string::npos ? eq : eq - 2);
        const auto option = std::find_if(options.begin(), options.end(),
                                         [&](const DaemonOption& o) { return o.name == name; });
        if (option == options.end()) throw UsageError("unknown option '" + arg + "'");
        std::string value;
        if (eq != std::string::npos) {
          value = arg.substr(eq + 1);
        } else if (i + 1 < args.size()) {
          value = args[++i];
        } else {
          throw UsageError("--" + name + " needs a value (" + option->value_name + ")");
        }
        if (option->config_key.empty()) {
          invocation.config_path = value;
        } else {
          invocation.settings.push_back({option->config_key, value, "--" + name});
        }
        continue;
      }
      const auto command = std::find_if(commands.begin(), commands.end(),
                                        [&](const DaemonCommand& c) { return c.name == arg; });
      if (command == commands.end()) throw UsageError("unknown argument '" + arg + "'");
      invocation.command = arg;
      invocation.arguments.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      if (!command->takes_arguments && !invocation.arguments.empty()) {
        throw UsageError(arg + " takes no arguments, got '" + invocation.arguments.front() + "'");
      }
      break;
    }
  } catch (const UsageError& e) {
    err << spec.program << ": " << e.what() << "\nTry '" << spec.program << " --help'.\n";
    return 2;
  }
  return invocation;
}

int runGuarded(const DaemonSpec& spec, std::ostream& err, const std::function<int()>& body) {
  try {
    return body();
  } catch (const base::ConfigError& e) {
    err << spec.program << ": " << e.what() << "\n";
    return 2;
  } catch (const UsageError& e) {
    err << spec.program << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}

std::vector<std::string> commandLineArguments(int argc, char** argv) {
  return std::vector<std::string>(argv + 1, argv + argc);
}

}  // namespace plng::app
