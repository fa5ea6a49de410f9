// Log setup of the daemons: spdlog's default logger (to standard output, spdlog's
// default "[time] [level] message" pattern, which journald and the local planet's
// log files keep as written) at the level the config names.
#pragma once

#include <string>

namespace plng::app {

// Throws base::ConfigError (a std::invalid_argument) unless `level` is one of spdlog's level names
// (trace, debug, info, warn, error, critical, off).
void checkLogLevel(const std::string& level);

// Sets the default logger's level; throws as checkLogLevel.
void setUpLogging(const std::string& level);

}  // namespace plng::app
