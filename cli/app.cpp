#include "cli/app.h"

#include <grpc/support/log.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <optional>

#include "app/version.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/values.h"

namespace plcctl {

namespace {

// gRPC's own diagnostics are noise unless asked for: they go to -v output.
void logGrpc(gpr_log_func_args* args) { spdlog::debug("grpc: {}", args->message); }

void setUpLogging(std::ostream& err) {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(err, /*force_flush=*/true);
  auto logger = std::make_shared<spdlog::logger>("plcctl", std::move(sink));
  logger->set_pattern("plcctl: %v");
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  gpr_set_log_function(logGrpc);
}

std::string versionText() {
  return "plcctl " + plng::app::versionText() + " (PlanetLab NG, API planetlab.v1, gRPC " +
         grpc::Version() + ")\n";
}

void reportRpcError(const RpcError& error, const std::optional<ClientSettings>& settings,
                    std::string_view address, std::int64_t timeout) {
  if (error.unreachable()) {
    const bool timed_out = error.status().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    spdlog::error("cannot reach PLC at {} ({}): {}", address,
                  settings ? settings->plc.source : "default",
                  timed_out ? "no connection within " + formatDuration(timeout) + " (--timeout)"
                            : error.what());
    spdlog::error(
        "hint: check that plcd runs there; set the address with --plc HOST:PORT, "
        "PLCCTL_PLC or 'plc = HOST:PORT' in {}",
        settings ? settings->config_path.string() : "the config file");
    return;
  }
  spdlog::error("{}", error.what());
  if (error.status().error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    spdlog::error("hint: the plcd at {} does not offer this call; it may be older than plcctl",
                  address);
  }
  if (error.status().error_code() != grpc::StatusCode::UNAUTHENTICATED || !settings) return;
  const std::int64_t expires = settings->token_expires_at;
  if (expires != 0 && expires <= unixNow()) {
    spdlog::error("hint: the saved session expired {}; run 'plcctl login --email EMAIL'",
                  formatTimeFromNow(expires, unixNow()));
  } else {
    spdlog::error("hint: the token (from {}) was not accepted; run 'plcctl login --email EMAIL'",
                  settings->token.source);
  }
}

}  // namespace

std::vector<FlagSpec> globalFlags() {
  FlagSpec output = flag::value("output", "FORMAT", "table (default) or json");
  output.short_name = 'o';
  FlagSpec verbose = flag::toggle("verbose", "log diagnostics (gRPC included) to stderr");
  verbose.short_name = 'v';
  FlagSpec help = flag::toggle("help", "show help for plcctl or the command");
  help.short_name = 'h';
  return {
      flag::value("plc", "HOST:PORT",
                  "PLC's API address (default: $PLCCTL_PLC, config file, 127.0.0.1:8620)"),
      flag::value("token", "TOKEN", "API token (default: $PLCCTL_TOKEN, then the config file)"),
      flag::value("config", "PATH",
                  "config file (default: $PLCCTL_CONFIG or ~/.config/plcctl/config)"),
      output,
      flag::value("timeout", "DURATION", "deadline of each call, e.g. 30s, 2m (default 30s)"),
      flag::toggle("tls", "connect with TLS, trusting the system's CA roots"),
      flag::value("ca-file", "PATH", "connect with TLS, trusting the CA certificates in PATH"),
      verbose,
      help,
      flag::toggle("version", "print plcctl's version"),
  };
}

int runPlcctl(std::span<const std::string> given, std::ostream& out, std::ostream& err,
              const EnvLookup& env) {
  setUpLogging(err);
  // `plcctl help slice renew` is `plcctl slice renew --help`.
  std::vector<std::string> arguments(given.begin(), given.end());
  if (!arguments.empty() && arguments.front() == "help") {
    arguments.erase(arguments.begin());
    arguments.emplace_back("--help");
  }
  const CommandTable table = buildCommandTable();
  const std::vector<FlagSpec> global = globalFlags();
  std::string path;
  std::optional<ClientSettings> settings;
  std::string address;
  std::int64_t timeout = 30;
  try {
    const CommandTable::Resolution resolution = table.resolve(arguments, global);
    path = resolution.path;
    if (!resolution.unknown_word.empty()) {
      throw UsageError(table.unknownCommandMessage(resolution));
    }
    std::vector<FlagSpec> flags = global;
    if (resolution.command != nullptr) {
      flags.insert(flags.end(), resolution.command->flags.begin(), resolution.command->flags.end());
    }
    const ParsedArgs args = parseArgs(resolution.rest, flags);
    if (args.has("verbose")) spdlog::set_level(spdlog::level::debug);
    if (args.has("help")) {
      out << table.help(path, global);
      return kExitOk;
    }
    if (resolution.command == nullptr) {
      if (path.empty() && args.has("version")) {
        out << versionText();
        return kExitOk;
      }
      if (!args.positionals().empty()) {
        throw UsageError("unknown command '" + args.positional(0) + "'");
      }
      // A group without a subcommand: say what it offers.
      err << table.help(path, global);
      return kExitUsage;
    }
    const CommandSpec& command = *resolution.command;
    checkArgs(args, command.flags, command.positionals);
    const OutputFormat format = parseOutputFormat(args.valueOr("output", "table"));
    timeout = parseDuration(args.valueOr("timeout", "30s"), "--timeout");
    if (timeout <= 0) throw UsageError("--timeout must be longer than 0s");

    const ConfigFile config = ConfigFile::load(resolveConfigPath(args, env));
    for (const std::string& warning : config.warnings()) spdlog::warn("warning: {}", warning);
    settings = resolveSettings(args, env, config);
    address = settings->plc.value;
    spdlog::debug("PLC {} (from {}), token from {}, config {}", address, settings->plc.source,
                  settings->token.value.empty() ? "nowhere" : settings->token.source,
                  settings->config_path.string());

    Printer printer(format, out, err);
    Invocation invocation(args, *settings,
                          ConnectionOptions{.address = address,
                                            .address_source = settings->plc.source,
                                            .token = settings->token.value,
                                            .timeout = std::chrono::seconds(timeout),
                                            .tls = settings->tls,
                                            .ca_file = settings->ca_file},
                          printer);
    command.run(invocation);
    out.flush();
    return kExitOk;
  } catch (const UsageError& error) {
    spdlog::error("{}", error.what());
    spdlog::error("run 'plcctl {}{}--help' for usage", path, path.empty() ? "" : " ");
    return kExitUsage;
  } catch (const RpcError& error) {
    reportRpcError(error, settings, address, timeout);
    return error.unreachable() ? kExitUnreachable : kExitFailure;
  } catch (const std::exception& error) {
    // LocalError and anything unexpected (std::bad_alloc, filesystem errors).
    spdlog::error("{}", error.what());
    return kExitFailure;
  }
}

}  // namespace plcctl
