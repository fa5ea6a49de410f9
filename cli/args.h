// plcctl's own small argument parser: long options (`--name VALUE`,
// `--name=VALUE`), short options (`-o json`, `-ojson`), switches, repeated
// options, positional arguments and `--` to end options.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace plcctl {

struct FlagSpec {
  std::string name;        // long name, without the leading "--"
  char short_name = '\0';  // '\0' = none
  std::string value_name;  // empty: a switch that takes no value
  std::string help;
  bool repeatable = false;
  bool required = false;

  bool takesValue() const { return !value_name.empty(); }
  std::string display() const;  // "--name" or "-o/--output"
};

namespace flag {
FlagSpec value(std::string name, std::string value_name, std::string help);
FlagSpec required(std::string name, std::string value_name, std::string help);
FlagSpec repeated(std::string name, std::string value_name, std::string help);
FlagSpec toggle(std::string name, std::string help);
}  // namespace flag

struct PositionalSpec {
  std::string name;  // shown as is in usage lines, e.g. "LOGIN_BASE"
  std::string help;
  bool required = true;
  bool variadic = false;  // takes every remaining argument
};

namespace arg {
PositionalSpec one(std::string name, std::string help);
PositionalSpec optional(std::string name, std::string help);
PositionalSpec some(std::string name, std::string help);  // one or more
PositionalSpec any(std::string name, std::string help);   // zero or more
}  // namespace arg

class ParsedArgs {
 public:
  bool has(std::string_view flag) const;
  // The value of a single-valued option, if given.
  std::optional<std::string> value(std::string_view flag) const;
  std::string valueOr(std::string_view flag, std::string_view fallback) const;
  // Every value of a repeatable option, in command-line order.
  const std::vector<std::string>& values(std::string_view flag) const;

  const std::vector<std::string>& positionals() const { return positionals_; }
  const std::string& positional(std::size_t index) const { return positionals_.at(index); }
  std::optional<std::string> optionalPositional(std::size_t index) const;

  void addFlag(const std::string& name, std::string value);
  void addPositional(std::string value) { positionals_.push_back(std::move(value)); }

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> flags_;
  std::vector<std::string> positionals_;
};

// Parses tokens against the known options. Throws UsageError for an unknown
// option, a missing value, a value given to a switch, or a single-valued
// option given twice. Required options and positional counts are checked
// separately (checkArgs) so that `--help` works on an incomplete command line.
ParsedArgs parseArgs(std::span<const std::string> tokens, std::span<const FlagSpec> flags);

// Throws UsageError when a required option is missing or the number of
// positional arguments does not match.
void checkArgs(const ParsedArgs& args, std::span<const FlagSpec> flags,
               std::span<const PositionalSpec> positionals);

// Throws UsageError unless exactly one (or, with exactly_one = false, at most
// one) of the options is given.
void requireOneOf(const ParsedArgs& args, std::initializer_list<std::string_view> flags,
                  bool exactly_one = true);

}  // namespace plcctl
