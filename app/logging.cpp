#include "app/logging.h"

#include <spdlog/spdlog.h>

#include "base/config.h"

namespace plng::app {

namespace {

spdlog::level::level_enum levelNamed(const std::string& name) {
  // from_str answers `off` for a name it does not know.
  const spdlog::level::level_enum level = spdlog::level::from_str(name);
  if (level == spdlog::level::off && name != "off") {
    throw base::ConfigError("'" + name +
                            "' is not a log level (trace, debug, info, warn, error, "
                            "critical or off)");
  }
  return level;
}

}  // namespace

void checkLogLevel(const std::string& level) { (void)levelNamed(level); }

void setUpLogging(const std::string& level) { spdlog::set_level(levelNamed(level)); }

}  // namespace plng::app
