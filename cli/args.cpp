#include "cli/args.h"

#include <algorithm>

#include "cli/errors.h"

namespace plcctl {

std::string FlagSpec::display() const {
  std::string text;
  if (short_name != '\0') text = std::string("-") + short_name + "/";
  return text + "--" + name;
}

namespace flag {
FlagSpec value(std::string name, std::string value_name, std::string help) {
  return FlagSpec{.name = std::move(name),
                  .short_name = '\0',
                  .value_name = std::move(value_name),
                  .help = std::move(help),
                  .repeatable = false,
                  .required = false};
}
FlagSpec required(std::string name, std::string value_name, std::string help) {
  FlagSpec spec = value(std::move(name), std::move(value_name), std::move(help));
  spec.required = true;
  return spec;
}
FlagSpec repeated(std::string name, std::string value_name, std::string help) {
  FlagSpec spec = value(std::move(name), std::move(value_name), std::move(help));
  spec.repeatable = true;
  return spec;
}
FlagSpec toggle(std::string name, std::string help) {
  return value(std::move(name), /*value_name=*/"", std::move(help));
}
}  // namespace flag

namespace arg {
PositionalSpec one(std::string name, std::string help) {
  return PositionalSpec{
      .name = std::move(name), .help = std::move(help), .required = true, .variadic = false};
}
PositionalSpec optional(std::string name, std::string help) {
  return PositionalSpec{
      .name = std::move(name), .help = std::move(help), .required = false, .variadic = false};
}
PositionalSpec some(std::string name, std::string help) {
  return PositionalSpec{
      .name = std::move(name), .help = std::move(help), .required = true, .variadic = true};
}
PositionalSpec any(std::string name, std::string help) {
  return PositionalSpec{
      .name = std::move(name), .help = std::move(help), .required = false, .variadic = true};
}
}  // namespace arg

bool ParsedArgs::has(std::string_view flag) const { return flags_.find(flag) != flags_.end(); }

std::optional<std::string> ParsedArgs::value(std::string_view flag) const {
  auto it = flags_.find(flag);
  if (it == flags_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::string ParsedArgs::valueOr(std::string_view flag, std::string_view fallback) const {
  return value(flag).value_or(std::string(fallback));
}

const std::vector<std::string>& ParsedArgs::values(std::string_view flag) const {
  static const std::vector<std::string> kNone;
  auto it = flags_.find(flag);
  return it == flags_.end() ? kNone : it->second;
}

std::optional<std::string> ParsedArgs::optionalPositional(std::size_t index) const {
  if (index >= positionals_.size()) return std::nullopt;
  return positionals_[index];
}

void ParsedArgs::addFlag(const std::string& name, std::string value) {
  flags_[name].push_back(std::move(value));
}

namespace {

const FlagSpec* findLong(std::span<const FlagSpec> flags, std::string_view name) {
  auto it = std::find_if(flags.begin(), flags.end(),
                         [&](const FlagSpec& spec) { return spec.name == name; });
  return it == flags.end() ? nullptr : &*it;
}

const FlagSpec* findShort(std::span<const FlagSpec> flags, char name) {
  auto it = std::find_if(flags.begin(), flags.end(),
                         [&](const FlagSpec& spec) { return spec.short_name == name; });
  return it == flags.end() ? nullptr : &*it;
}

}  // namespace

ParsedArgs parseArgs(std::span<const std::string> tokens, std::span<const FlagSpec> flags) {
  ParsedArgs parsed;
  bool options_ended = false;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string& token = tokens[i];
    if (options_ended || token.size() < 2 || token[0] != '-') {
      parsed.addPositional(token);
      continue;
    }
    if (token == "--") {
      options_ended = true;
      continue;
    }

    const FlagSpec* spec = nullptr;
    std::optional<std::string> inline_value;
    std::string shown;  // the option as the user wrote it, for messages
    if (token[1] == '-') {
      std::string_view name = std::string_view(token).substr(2);
      if (auto eq = name.find('='); eq != std::string_view::npos) {
        inline_value = std::string(name.substr(eq + 1));
        name = name.substr(0, eq);
      }
      shown = "--" + std::string(name);
      spec = findLong(flags, name);
    } else {
      shown = token.substr(0, 2);
      spec = findShort(flags, token[1]);
      if (token.size() > 2) inline_value = token.substr(2);
    }
    if (spec == nullptr) throw UsageError("unknown option " + shown);

    std::string value;
    if (spec->takesValue()) {
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < tokens.size() && !tokens[i + 1].starts_with("--")) {
        value = tokens[++i];
      } else {
        throw UsageError(shown + " needs a value " + spec->value_name + " (write " + shown +
                         "=VALUE for a value that starts with --)");
      }
    } else if (inline_value) {
      throw UsageError(shown + " takes no value");
    }
    if (!spec->repeatable && parsed.has(spec->name)) {
      throw UsageError("--" + spec->name + " given more than once");
    }
    parsed.addFlag(spec->name, std::move(value));
  }
  return parsed;
}

void checkArgs(const ParsedArgs& args, std::span<const FlagSpec> flags,
               std::span<const PositionalSpec> positionals) {
  for (const FlagSpec& spec : flags) {
    if (spec.required && !args.has(spec.name)) {
      throw UsageError("missing required option --" + spec.name + " " + spec.value_name);
    }
  }
  const std::size_t given = args.positionals().size();
  bool variadic = false;
  for (std::size_t i = 0; i < positionals.size(); ++i) {
    variadic = variadic || positionals[i].variadic;
    if (positionals[i].required && given <= i) {
      throw UsageError("missing argument " + positionals[i].name);
    }
  }
  if (!variadic && given > positionals.size()) {
    throw UsageError("unexpected argument '" + args.positional(positionals.size()) + "'");
  }
}

void requireOneOf(const ParsedArgs& args, std::initializer_list<std::string_view> flags,
                  bool exactly_one) {
  const auto count = std::count_if(flags.begin(), flags.end(),
                                   [&](std::string_view name) { return args.has(name); });
  if (count == 1 || (count == 0 && !exactly_one)) return;
  std::string names;
  for (std::string_view name : flags) {
    if (!names.empty()) names += ", ";
    names += "--" + std::string(name);
  }
  throw UsageError((exactly_one ? "give exactly one of " : "give at most one of ") + names);
}

}  // namespace plcctl
