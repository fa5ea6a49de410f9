// Skipping a test binary that cannot run here (Catch2 2.13 has no SKIP()).
//
// A test that needs root, PostgreSQL or a kernel feature probes for it and, when
// it is missing, prints "SKIP: <reason>" and exits with kSkipCode (77), which its
// ctest entry declares as SKIP_RETURN_CODE, so CTest reports it skipped rather
// than passed. In CI (root, a kernel with every feature) nothing skips.
#pragma once

#include <string_view>

namespace plng::test {

// The top-level CMake's PLNG_SKIP_CODE.
inline constexpr int kSkipCode = 77;

// Prints "SKIP: <reason>" to stderr and exits with kSkipCode. exit(), not _exit():
// a test binary's PostgreSQL server (a static) is stopped on the way out.
[[noreturn]] void skipTest(std::string_view reason);

// Skips unless the effective uid is 0.
void requireRoot();

}  // namespace plng::test
