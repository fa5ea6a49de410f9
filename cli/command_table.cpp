#include "cli/command_table.h"

#include <algorithm>
#include <sstream>

#include "cli/errors.h"

namespace plcctl {

namespace {

std::string lastWord(std::string_view path) {
  const auto space = path.rfind(' ');
  return std::string(space == std::string_view::npos ? path : path.substr(space + 1));
}

std::string parentOf(std::string_view path) {
  const auto space = path.rfind(' ');
  return std::string(space == std::string_view::npos ? "" : path.substr(0, space));
}

std::string join(std::string_view path, std::string_view word) {
  return path.empty() ? std::string(word) : std::string(path) + " " + std::string(word);
}

// Two columns: names padded to a common width (capped so that one long name
// does not push every description off the screen).
void printTwoColumns(std::ostream& out,
                     const std::vector<std::pair<std::string, std::string>>& rows,
                     std::size_t min_width = 0) {
  constexpr std::size_t kMaxWidth = 30;
  std::size_t width = min_width;
  for (const auto& [name, text] : rows) {
    if (name.size() <= kMaxWidth) width = std::max(width, name.size());
  }
  for (const auto& [name, text] : rows) {
    out << "  " << name;
    if (name.size() > width) {
      out << "\n  " << std::string(width, ' ');
    } else {
      out << std::string(width - name.size(), ' ');
    }
    out << "  " << text << '\n';
  }
}

std::vector<std::pair<std::string, std::string>> flagRows(std::span<const FlagSpec> flags) {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const FlagSpec& spec : flags) {
    std::string name = spec.display();
    if (spec.takesValue()) name += " " + spec.value_name;
    std::string text = spec.help;
    if (spec.required) text += " (required)";
    if (spec.repeatable) text += " (repeatable)";
    rows.emplace_back(std::move(name), std::move(text));
  }
  return rows;
}

}  // namespace

std::string usageLine(const CommandSpec& spec) {
  std::string line = "plcctl " + spec.path;
  if (!spec.usage.empty()) return line + " " + spec.usage;
  for (const PositionalSpec& positional : spec.positionals) {
    std::string word = positional.name + (positional.variadic ? "..." : "");
    line += " " + (positional.required ? word : "[" + word + "]");
  }
  for (const FlagSpec& spec_flag : spec.flags) {
    if (spec_flag.required) line += " --" + spec_flag.name + " " + spec_flag.value_name;
  }
  const bool has_optional = std::any_of(spec.flags.begin(), spec.flags.end(),
                                        [](const FlagSpec& f) { return !f.required; });
  return line + (has_optional ? " [OPTIONS]" : "");
}

void CommandTable::section(std::string title) { current_section_ = std::move(title); }

CommandTable::Entry& CommandTable::ensure(const std::string& path) {
  auto [it, inserted] = entries_.try_emplace(path);
  if (inserted && !path.empty()) {
    it->second.section = current_section_;
    ensure(parentOf(path)).children.push_back(path);
  }
  return it->second;
}

void CommandTable::group(std::string path, std::string summary) {
  ensure(path).summary = std::move(summary);
}

void CommandTable::add(CommandSpec spec) {
  commands_.push_back(std::move(spec));
  const CommandSpec& added = commands_.back();
  Entry& entry = ensure(added.path);
  entry.summary = added.summary;
  entry.command = &added;
}

bool CommandTable::isCommand(std::string_view path) const {
  auto it = entries_.find(path);
  return it != entries_.end() && it->second.command != nullptr;
}

CommandTable::Resolution CommandTable::resolve(std::span<const std::string> argv,
                                               std::span<const FlagSpec> global) const {
  Resolution resolution{.path = "", .command = nullptr, .rest = {}, .unknown_word = {}};
  bool at_command = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& token = argv[i];
    if (at_command || token == "--") {
      resolution.rest.insert(resolution.rest.end(), argv.begin() + static_cast<long>(i),
                             argv.end());
      break;
    }
    if (token.size() > 1 && token[0] == '-') {
      resolution.rest.push_back(token);
      // A global option's value is not a command word: keep it with its option.
      const bool separate_value =
          std::any_of(global.begin(), global.end(), [&](const FlagSpec& spec) {
            return spec.takesValue() &&
                   (token == "--" + spec.name ||
                    (spec.short_name != '\0' && token == std::string("-") + spec.short_name));
          });
      if (separate_value && i + 1 < argv.size()) resolution.rest.push_back(argv[++i]);
      continue;
    }
    const Entry& current = entries_.at(resolution.path);
    const std::string next = join(resolution.path, token);
    if (std::find(current.children.begin(), current.children.end(), next) ==
        current.children.end()) {
      resolution.unknown_word = token;
      return resolution;
    }
    resolution.path = next;
    resolution.command = entries_.at(next).command;
    at_command = resolution.command != nullptr;
  }
  return resolution;
}

std::string CommandTable::unknownCommandMessage(const Resolution& resolution) const {
  std::string message = "unknown command '" + join(resolution.path, resolution.unknown_word) + "'";
  if (resolution.path.empty()) return message;
  std::string known;
  for (const std::string& child : entries_.at(resolution.path).children) {
    known += (known.empty() ? "" : ", ") + lastWord(child);
  }
  return message + " (expected one of: " + known + ")";
}

std::string CommandTable::help(std::string_view path, std::span<const FlagSpec> global) const {
  const auto found = entries_.find(path);
  if (found == entries_.end()) throw UsageError("unknown command '" + std::string(path) + "'");
  const Entry& entry = found->second;
  if (entry.command != nullptr) return commandHelp(*entry.command);
  return groupHelp(std::string(path), entry, global);
}

std::string CommandTable::groupHelp(const std::string& path, const Entry& entry,
                                    std::span<const FlagSpec> global) const {
  std::ostringstream out;
  if (path.empty()) {
    out << "plcctl: the command line of PlanetLab NG's central authority (PLC)\n\n"
        << "Usage: plcctl [OPTIONS] COMMAND [ARGS...]\n";
    std::string section;
    std::vector<std::pair<std::string, std::string>> rows;
    std::size_t width = 0;  // one width for every section, so they line up
    for (const std::string& child : entry.children) width = std::max(width, child.size());
    auto flush = [&] {
      if (rows.empty()) return;
      out << '\n' << section << ":\n";
      printTwoColumns(out, rows, width);
      rows.clear();
    };
    for (const std::string& child : entry.children) {
      const Entry& child_entry = entries_.at(child);
      if (child_entry.section != section) {
        flush();
        section = child_entry.section;
      }
      rows.emplace_back(child, child_entry.summary);
    }
    flush();
    out << "\nOptions (accepted by every command):\n";
    printTwoColumns(out, flagRows(global));
    out << "\nRun 'plcctl COMMAND --help' or 'plcctl help COMMAND' for a command's arguments,\n"
        << "options and examples.\n";
    return out.str();
  }

  out << "Usage: plcctl " << path << " COMMAND [ARGS...] [OPTIONS]\n\n" << entry.summary << "\n\n";
  out << "Commands:\n";
  std::vector<std::pair<std::string, std::string>> rows;
  for (const std::string& child : entry.children) {
    const Entry& child_entry = entries_.at(child);
    rows.emplace_back(child.substr(path.size() + 1), child_entry.summary);
  }
  printTwoColumns(out, rows);
  out << "\nRun 'plcctl " << path << " COMMAND --help' for details; 'plcctl --help' lists the "
      << "global options.\n";
  return out.str();
}

std::string CommandTable::commandHelp(const CommandSpec& spec) {
  std::ostringstream out;
  out << "Usage: " << usageLine(spec) << "\n\n" << spec.summary << ".\n";
  if (!spec.details.empty()) out << '\n' << spec.details << '\n';
  std::vector<std::pair<std::string, std::string>> arguments;
  for (const PositionalSpec& positional : spec.positionals) {
    if (!positional.help.empty()) arguments.emplace_back(positional.name, positional.help);
  }
  if (!arguments.empty()) {
    out << "\nArguments:\n";
    printTwoColumns(out, arguments);
  }
  if (!spec.flags.empty()) {
    out << "\nOptions:\n";
    printTwoColumns(out, flagRows(spec.flags));
  }
  if (!spec.examples.empty()) {
    out << "\nExample" << (spec.examples.size() > 1 ? "s" : "") << ":\n";
    for (const std::string& example : spec.examples) out << "  " << example << '\n';
  }
  out << "\nGlobal options (--plc, --token, --config, -o, --timeout, ...): see 'plcctl --help'.\n";
  return out.str();
}

}  // namespace plcctl
