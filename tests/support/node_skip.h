// Skipping node tests that cannot run here (Catch2 2.13 has no SKIP()).
//
// A test that needs root or a kernel feature probes for it and, when missing,
// prints why and exits with PLNG_SKIP_CODE (77), which its ctest entry declares
// as SKIP_RETURN_CODE. In CI (root, a kernel with every feature) nothing skips.
#pragma once

#include <string>

namespace plng::test {

inline constexpr int kSkipCode = 77;

// Prints "SKIP: <reason>" to stderr and exits with kSkipCode.
[[noreturn]] void skipTest(const std::string& reason);
// Skips unless the effective uid is 0.
void requireRoot();

}  // namespace plng::test
