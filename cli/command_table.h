// The command tree: groups ("slice", "slice tag") and commands ("slice tag
// set") with their arguments, options, examples and handler. Resolves a
// command line to a command and renders --help at every level.
#pragma once

#include <deque>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli/args.h"

namespace plcctl {

class Invocation;
using Handler = void (*)(Invocation&);

struct CommandSpec {
  // Every member has a default so the tables in commands_*.cpp can name only
  // what a command uses.
  std::string path = {};     // words from the top: "slice tag set"
  std::string summary = {};  // one line, shown in listings and --help
  std::vector<PositionalSpec> positionals = {};
  std::vector<FlagSpec> flags = {};
  std::vector<std::string> examples = {};  // whole command lines
  Handler run = nullptr;
  std::string details = {};  // optional paragraph for --help
  std::string usage = {};    // optional argument synopsis replacing the generated one
};

class CommandTable {
 public:
  // Top-level entries added after this are listed under `title`.
  void section(std::string title);
  void group(std::string path, std::string summary);
  void add(CommandSpec spec);

  struct Resolution {
    std::string path;               // "" for the top level
    const CommandSpec* command;     // null when `path` names a group
    std::vector<std::string> rest;  // the tokens that are not command words
    std::string unknown_word;       // set when a word is no command under `path`
  };
  // Walks command words from the start of argv, skipping global options (and
  // their values) wherever they appear before the command.
  Resolution resolve(std::span<const std::string> argv, std::span<const FlagSpec> global) const;

  bool isCommand(std::string_view path) const;
  // "unknown command 'site frob' (expected one of: add, list, ...)"
  std::string unknownCommandMessage(const Resolution& resolution) const;
  // --help text of a group, a command or (path "") the whole program.
  std::string help(std::string_view path, std::span<const FlagSpec> global) const;
  // Every command, in the order added (for documentation and tests).
  const std::deque<CommandSpec>& commands() const { return commands_; }

 private:
  struct Entry {
    std::string summary;
    std::string section;
    const CommandSpec* command = nullptr;
    std::vector<std::string> children;  // full paths, in the order added
  };
  Entry& ensure(const std::string& path);
  std::string groupHelp(const std::string& path, const Entry& entry,
                        std::span<const FlagSpec> global) const;
  static std::string commandHelp(const CommandSpec& spec);

  std::map<std::string, Entry, std::less<>> entries_;
  std::deque<CommandSpec> commands_;  // a deque keeps CommandSpec addresses stable
  std::string current_section_;
};

// "plcctl site add LOGIN_BASE --name NAME [OPTIONS]"
std::string usageLine(const CommandSpec& spec);

}  // namespace plcctl
