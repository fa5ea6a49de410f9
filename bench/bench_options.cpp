#include "bench/bench_options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "bench/plc_bench_workload.h"

namespace plng::bench {

long parseInteger(const std::string& option, const std::string& value, long min, long max) {
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || n < min || n > max) {
    throw UsageError(option + " needs an integer from " + std::to_string(min) + " to " +
                     std::to_string(max) + ", not '" + value + "'");
  }
  return n;
}

long parseIntegerAtLeast(const std::string& option, const std::string& value, long min) {
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || n < min || n > 10'000'000) {
    throw UsageError(option + " needs an integer >= " + std::to_string(min) + ", not '" + value +
                     "'");
  }
  return n;
}

double parseSeconds(const std::string& option, const std::string& value, double min) {
  char* end = nullptr;
  const double s = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !std::isfinite(s) || s < min || s > 86400) {
    throw UsageError(option + " needs a number of seconds >= " + std::to_string(min) + ", not '" +
                     value + "'");
  }
  return s;
}

bool OptionReader::next() {
  if (++index_ >= argc_) return false;
  option_ = argv_[index_];
  inlineValue_.reset();
  if (const auto eq = option_.find('='); option_.starts_with("--") && eq != std::string::npos) {
    inlineValue_ = option_.substr(eq + 1);
    option_.resize(eq);
  }
  return true;
}

std::string OptionReader::value() {
  if (inlineValue_) return *inlineValue_;
  if (index_ + 1 >= argc_) throw UsageError(option_ + " needs a value");
  return argv_[++index_];
}

int benchMain(const std::string& program, const char* usage,
              const std::function<bool()>& parseOptions, const std::function<int()>& run) {
  try {
    if (!parseOptions()) {
      std::cout << usage;
      return 0;
    }
  } catch (const UsageError& e) {
    std::cerr << program << ": " << e.what() << "\nTry '" << program << " --help'.\n";
    return 2;
  }
  installStopSignals();
  try {
    return run();
  } catch (const Interrupted&) {
    std::cerr << program << ": interrupted; plcd and PostgreSQL stopped, temporary files removed\n";
    return 130;
  } catch (const std::exception& e) {
    if (stopRequested()) {
      std::cerr << program
                << ": interrupted; plcd and PostgreSQL stopped, temporary files removed\n";
      return 130;
    }
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace plng::bench
