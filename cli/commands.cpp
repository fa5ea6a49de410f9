#include "cli/commands.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

#include "cli/errors.h"
#include "cli/values.h"

namespace plcctl {

CommandTable buildCommandTable() {
  CommandTable table;
  addAuthCommands(table);
  addSiteCommands(table);
  addPersonCommands(table);
  addNodeCommands(table);
  addSyncCommands(table);
  addSliceCommands(table);
  addPolicyCommands(table);
  addAuditCommands(table);
  return table;
}

namespace {

// The terminal whose echo is off while a password is typed, so that Ctrl-C
// can turn echo back on before the process dies.
int g_tty_fd = -1;
termios g_tty_saved{};

extern "C" void restoreEchoAndExit(int signal_number) {
  ::tcsetattr(g_tty_fd, TCSAFLUSH, &g_tty_saved);
  [[maybe_unused]] const ssize_t written = ::write(g_tty_fd, "\n", 1);
  ::_exit(128 + signal_number);
}

class TerminalPrompt {
 public:
  TerminalPrompt() : fd_(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) {
    if (fd_ < 0) throw UsageError("no terminal to prompt for a password on");
  }
  TerminalPrompt(const TerminalPrompt&) = delete;
  TerminalPrompt& operator=(const TerminalPrompt&) = delete;
  ~TerminalPrompt() { ::close(fd_); }

  std::string askHidden(std::string_view prompt) {
    write(prompt);
    termios saved{};
    const bool is_terminal = ::tcgetattr(fd_, &saved) == 0;
    struct sigaction previous {};
    if (is_terminal) {
      g_tty_fd = fd_;
      g_tty_saved = saved;
      struct sigaction restore {};
      restore.sa_handler = restoreEchoAndExit;
      ::sigaction(SIGINT, &restore, &previous);
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(fd_, TCSAFLUSH, &quiet);
    }
    std::string line;
    char c = 0;
    while (::read(fd_, &c, 1) == 1 && c != '\n') line.push_back(c);
    if (is_terminal) {
      ::tcsetattr(fd_, TCSAFLUSH, &saved);
      ::sigaction(SIGINT, &previous, nullptr);
    }
    write("\n");
    if (line.ends_with('\r')) line.pop_back();
    return line;
  }

 private:
  void write(std::string_view text) const {
    // A prompt that cannot be shown is not worth failing for.
    [[maybe_unused]] const ssize_t written = ::write(fd_, text.data(), text.size());
  }
  int fd_;
};

}  // namespace

RpcError notFound(std::string_view what, std::string_view name) {
  return RpcError(grpc::Status(grpc::StatusCode::NOT_FOUND,
                               "no " + std::string(what) + " '" + std::string(name) + "'"),
                  /*unreachable=*/false);
}

std::vector<FlagSpec> passwordFlags(std::string_view purpose) {
  return {
      flag::toggle("password-stdin", "read the " + std::string(purpose) +
                                         " password from the first line of standard input"),
      flag::value("password-file", "PATH",
                  "read the " + std::string(purpose) + " password from the first line of PATH"),
  };
}

std::string readPassword(const ParsedArgs& args, bool confirm) {
  requireOneOf(args, {"password-stdin", "password-file"}, /*exactly_one=*/false);
  std::string password;
  if (args.has("password-stdin")) {
    std::getline(std::cin, password);
    if (password.ends_with('\r')) password.pop_back();
  } else if (auto path = args.value("password-file")) {
    password = firstLine(readFile(*path));
  } else if (::isatty(STDIN_FILENO) == 1) {
    TerminalPrompt prompt;
    password = prompt.askHidden("Password: ");
    if (confirm && prompt.askHidden("Password (again): ") != password) {
      throw LocalError("the passwords do not match");
    }
  } else {
    throw UsageError(
        "no password given: use --password-stdin or --password-file "
        "(standard input is not a terminal to prompt on)");
  }
  if (password.empty()) throw LocalError("empty password");
  return password;
}

std::filesystem::path saveSession(Invocation& inv, const v1::LoginResponse& session) {
  ConfigFile config = ConfigFile::load(inv.settings.config_path);
  config.set("plc", inv.plc().options().address);
  config.set("token", session.token());
  config.set("token_expires_at", std::to_string(session.expires_at()));
  config.save();
  return config.path();
}

std::optional<std::int32_t> optionalInt32(const ParsedArgs& args, std::string_view flag) {
  if (auto text = args.value(flag)) return parseInt32(*text, "--" + std::string(flag));
  return std::nullopt;
}

std::vector<FlagSpec> expiryFlags(std::string_view what) {
  return {
      flag::value("expires", "TIME",
                  std::string(what) + " expires at TIME: 2026-12-31, 2026-12-31T18:00[Z|+HH:MM] "
                                      "(UTC by default) or unix seconds"),
      flag::value("days", "N", std::string(what) + " expires N days from now"),
  };
}

std::optional<std::int64_t> expiryFromArgs(const ParsedArgs& args) {
  requireOneOf(args, {"expires", "days"}, /*exactly_one=*/false);
  if (auto text = args.value("expires")) return parseTime(*text, "--expires");
  if (auto text = args.value("days")) {
    return unixNow() + parseInteger(*text, "--days", 1, 100 * 365) * 86400;
  }
  return std::nullopt;
}

}  // namespace plcctl
