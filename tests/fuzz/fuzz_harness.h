// What every fuzz target of tests/fuzz shares (docs/fuzzing.md).
//
// A target is one <name>.cpp defining LLVMFuzzerTestOneInput and
// generatedSeeds(). It is linked two ways: with libFuzzer's main
// (PLNG_FUZZ=ON, clang) to fuzz, and with replay_main.cpp in every build to
// replay its corpus as a regression test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace plng::fuzz {

struct Seed {
  std::string name;   // a file name
  std::string bytes;  // the input
};

// Inputs the target derives at run time from the code under test (a ticket
// signed with the target's key, frames as the encoder writes them): binary
// seeds are never committed, and they follow the formats when these change.
// Each target defines it.
std::vector<Seed> generatedSeeds();

// A property the target checks does not hold: say which, then abort so that
// libFuzzer records the input as a crash and the replay test fails.
[[noreturn]] inline void fail(std::string_view what) {
  std::fprintf(stderr, "fuzz property violated: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

inline std::string_view asText(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits "<selector>\n<rest>" (selector without the newline); the committed
// seeds are text files that name what they exercise on their first line.
inline bool splitSelector(std::string_view input, std::string_view& selector,
                          std::string_view& rest) {
  auto nl = input.find('\n');
  if (nl == std::string_view::npos) return false;
  selector = input.substr(0, nl);
  rest = input.substr(nl + 1);
  return true;
}

}  // namespace plng::fuzz
