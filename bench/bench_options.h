// The command line of the benchmarks: options given as --name=value or
// --name value, numbers checked against their range, and main()'s frame (usage
// errors exit 2, --help 0, Ctrl-C 130 after cleaning up).
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace plng::bench {

// A bad command line; main() prints it with a pointer to --help and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `value` as an integer in [min, max]; else UsageError naming `option` and the range.
long parseInteger(const std::string& option, const std::string& value, long min, long max);
// `value` as an integer >= min; else UsageError naming `option` and min. Values
// above 10,000,000 are refused too (no count here needs more).
long parseIntegerAtLeast(const std::string& option, const std::string& value, long min);
// `value` as seconds in [min, 86400].
double parseSeconds(const std::string& option, const std::string& value, double min);

// Walks argv one option at a time. An option that starts with "--" and holds an
// '=' carries its value inline; any other takes the next argument as its value
// when it asks for one.
class OptionReader {
 public:
  OptionReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Moves to the next option; false after the last.
  bool next();
  // The current option, without an inline "=value".
  const std::string& option() const { return option_; }
  bool hasInlineValue() const { return inlineValue_.has_value(); }

  // The current option's value: inline or the next argument (consumed).
  std::string value();
  int integer(long min, long max) {
    return static_cast<int>(parseInteger(option_, value(), min, max));
  }
  int integerAtLeast(long min) {
    return static_cast<int>(parseIntegerAtLeast(option_, value(), min));
  }
  double seconds(double min) { return parseSeconds(option_, value(), min); }

 private:
  int argc_;
  char** argv_;
  int index_ = 0;
  std::string option_;
  std::optional<std::string> inlineValue_;
};

// main() of a benchmark called `program`: `parseOptions` returns false when
// --help was asked for (then `usage` is printed); after installing the stop
// signals, `run` gives the exit code. Usage errors exit 2, an interruption 130,
// any other exception 1, each with a line on stderr.
int benchMain(const std::string& program, const char* usage,
              const std::function<bool()>& parseOptions, const std::function<int()>& run);

}  // namespace plng::bench
