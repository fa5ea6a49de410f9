#include "tests/support/shell_command.h"

#include <sys/wait.h>

#include <cstdio>
#include <stdexcept>

namespace plng::test {

std::string shellOutput(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run " + command);
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  if (status != 0) {
    throw std::runtime_error(command + " failed (" +
                             (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                : "status " + std::to_string(status)) +
                             "); it printed:\n" + out);
  }
  return out;
}

}  // namespace plng::test
