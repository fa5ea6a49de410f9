// base/strings.h and base/scope_guard.h.
#include "base/strings.h"

#include <catch2/catch.hpp>
#include <stdexcept>

#include "base/scope_guard.h"

using plng::base::fromHex;
using plng::base::split;
using plng::base::toHex;
using plng::base::trim;

TEST_CASE("trim drops blanks at both ends only") {
  CHECK(trim("  a b \t\r\n") == "a b");
  CHECK(trim("x") == "x");
  CHECK(trim(" \t\n") == "");
  CHECK(trim("") == "");
  CHECK(trim("\va\v") == "\va\v");  // only space, tab, CR and LF are blanks
}

TEST_CASE("split keeps empty parts") {
  CHECK(split("a,,b", ',') == std::vector<std::string>{"a", "", "b"});
  CHECK(split("", ',') == std::vector<std::string>{""});
  CHECK(split(",", ',') == std::vector<std::string>{"", ""});
  CHECK(split("abc", ',') == std::vector<std::string>{"abc"});
}

TEST_CASE("hex both ways") {
  CHECK(toHex(std::string("\x01\xab\x00\xff", 4)) == "01ab00ff");
  CHECK(toHex("") == "");
  CHECK(fromHex("01AB00ff") == std::string("\x01\xab\x00\xff", 4));
  CHECK(fromHex("") == "");
  CHECK_THROWS_AS(fromHex("abc"), std::invalid_argument);
  CHECK_THROWS_AS(fromHex("zz"), std::invalid_argument);
  CHECK_THROWS_AS(fromHex("0x00"), std::invalid_argument);
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  CHECK(fromHex(toHex(all)) == all);
}

TEST_CASE("a scope guard rolls back on an early exit, not once dismissed") {
  int rollbacks = 0;
  try {
    plng::base::ScopeGuard undo([&] { ++rollbacks; });
    throw std::runtime_error("a step failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(rollbacks == 1);
  {
    plng::base::ScopeGuard undo([&] { ++rollbacks; });
    undo.dismiss();
  }
  CHECK(rollbacks == 1);
  {
    plng::base::ScopeGuard undo([&] { ++rollbacks; });
  }
  CHECK(rollbacks == 2);
}
