#include "tests/support/node_skip.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace plng::test {

void skipTest(const std::string& reason) {
  std::fprintf(stderr, "SKIP: %s\n", reason.c_str());
  std::fflush(stderr);
  std::_Exit(kSkipCode);
}

void requireRoot() {
  if (::geteuid() != 0) skipTest("needs root (namespaces, cgroups and mounts); run as root");
}

}  // namespace plng::test
