#include "tests/support/skip.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace plng::test {

void skipTest(std::string_view reason) {
  std::fprintf(stderr, "SKIP: %.*s\n", static_cast<int>(reason.size()), reason.data());
  std::fflush(stderr);
  std::exit(kSkipCode);
}

void requireRoot() {
  if (::geteuid() != 0) skipTest("needs root (namespaces, cgroups and mounts); run as root");
}

}  // namespace plng::test
