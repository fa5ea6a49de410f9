// base/config.h: the config file syntax, the key table and the errors a person
// gets for a bad file (each naming the file, the line and the key).
#include "base/config.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

using plng::base::ConfigError;
using plng::base::ConfigTable;

struct ExampleConfig {
  std::string listen = "127.0.0.1:8620";
  std::string empty_by_default;
  int pool = 16;
  std::uint32_t percent = 10;
  std::int64_t ttl = 3600;
  std::uint64_t bytes = 0;
  bool watchdog = true;
  int low = 1;
  int high = 5;
};

const ConfigTable<ExampleConfig>& exampleTable() {
  using C = ExampleConfig;
  static const auto kTable =
      ConfigTable<ExampleConfig>("exampled")
          .string("listen", &C::listen, "address to listen on", plng::base::requireNotEmpty)
          .string("empty_by_default", &C::empty_by_default, "nothing unless set")
          .integer("pool", &C::pool, "connections", 1, 100)
          .integer("percent", &C::percent, "a share", 1, 50,
                   [](const std::uint32_t& value) {
                     if (value % 5 != 0) throw std::invalid_argument("must be a multiple of 5");
                   })
          .integer("ttl", &C::ttl, "seconds", 1)
          .integer("bytes", &C::bytes, "a size; 0 = none")
          .boolean("watchdog", &C::watchdog, "watch")
          .integer("low", &C::low, "the lower bound")
          .integer("high", &C::high, "the upper bound")
          .rule(
              {"low", "high"}, [](const C& c) { return c.low <= c.high; },
              "high must be at least low");
  return kTable;
}

ExampleConfig parse(const std::string& text) { return exampleTable().parse(text, "ex.conf"); }

}  // namespace

TEST_CASE("config: comments, blank lines, blanks and quotes", "[base][config]") {
  const ExampleConfig c = parse(
      "# a comment\n"
      "\n"
      "   \t\n"
      "  listen\t=  0.0.0.0:9000   # where\n"
      "pool=4\r\n"
      "empty_by_default = \"quoted\"\n"
      "ttl = 60 # a trailing comment\n"
      "watchdog = off\n");
  CHECK(c.listen == "0.0.0.0:9000");
  CHECK(c.pool == 4);
  CHECK(c.empty_by_default == "quoted");
  CHECK(c.ttl == 60);
  CHECK_FALSE(c.watchdog);
  CHECK(c.percent == 10);  // not set: the default

  // A '#' not after a blank belongs to the value (a password in a connection string).
  CHECK(parse("listen = host#1\n").listen == "host#1");
  CHECK(parse("listen = \"  padded  \"\n").listen == "  padded  ");
  CHECK(parse("").listen == "127.0.0.1:8620");
  CHECK(parse("pool = 3").pool == 3);  // no newline at the end
}

TEST_CASE("config: every error names the file, the line and the key", "[base][config]") {
  CHECK_THROWS_AS(parse("bogus = 1\n"), ConfigError);
  CHECK_THROWS_AS(parse("bogus = 1\n"), std::invalid_argument);
  CHECK_THROWS_WITH(parse("# c\n\nbogus = 1\n"),
                    "ex.conf:3: unknown key 'bogus' (exampled print-config lists every key)");
  CHECK_THROWS_WITH(parse("listen\n"), "ex.conf:1: expected 'key = value', got 'listen'");
  CHECK_THROWS_WITH(parse("= 4\n"), "ex.conf:1: expected 'key = value', got '= 4'");
  CHECK_THROWS_WITH(parse("pool = abc\n"), "ex.conf:1: pool: 'abc' is not an integer");
  CHECK_THROWS_WITH(parse("pool = 4x\n"), "ex.conf:1: pool: '4x' is not an integer");
  CHECK_THROWS_WITH(parse("pool = \n"), "ex.conf:1: pool: '' is not an integer");
  CHECK_THROWS_WITH(parse("pool = 0\n"), "ex.conf:1: pool: must be between 1 and 100, not 0");
  CHECK_THROWS_WITH(parse("pool = 101\n"), "ex.conf:1: pool: must be between 1 and 100, not 101");
  CHECK_THROWS_WITH(parse("ttl = -1\n"), "ex.conf:1: ttl: must be at least 1, not -1");
  CHECK_THROWS_WITH(parse("ttl = 99999999999999999999\n"),
                    "ex.conf:1: ttl: must be at least 1, not 99999999999999999999");
  // The type's own range is not a documented limit: just "out of range".
  CHECK_THROWS_WITH(parse("low = 3000000000\n"), "ex.conf:1: low: '3000000000' is out of range");
  CHECK_THROWS_WITH(parse("bytes = -1\n"), "ex.conf:1: bytes: '-1' is out of range");
  CHECK_THROWS_WITH(parse("watchdog = maybe\n"),
                    "ex.conf:1: watchdog: 'maybe' is not true or false");
  CHECK_THROWS_WITH(parse("listen =\n"), "ex.conf:1: listen: must not be empty");
  // The validation hook runs after the range check and its message is kept.
  CHECK_THROWS_WITH(parse("percent = 12\n"), "ex.conf:1: percent: must be a multiple of 5");
  CHECK_THROWS_WITH(parse("percent = 55\n"),
                    "ex.conf:1: percent: must be between 1 and 50, not 55");
  // A key set twice is a mistake: which line wins would be a guess.
  CHECK_THROWS_WITH(parse("pool = 2\n\npool = 3\n"), "ex.conf:3: pool: already set on line 1");
  // A rule across keys points at the last line that set one of them.
  CHECK_THROWS_WITH(parse("high = 2\nttl = 5\nlow = 3\n"), "ex.conf:3: high must be at least low");
  CHECK_THROWS_WITH(parse("low = 9\n"), "ex.conf:1: high must be at least low");
  CHECK_THROWS_WITH(exampleTable().load("/nonexistent/ex.conf"),
                    "cannot read config file /nonexistent/ex.conf");
}

TEST_CASE("config: values set from a command line are checked too", "[base][config]") {
  ExampleConfig c;
  exampleTable().assign(c, "pool", "7", "--pool");
  CHECK(c.pool == 7);
  CHECK_THROWS_WITH(exampleTable().assign(c, "pool", "0", "--pool"),
                    "--pool: pool: must be between 1 and 100, not 0");
  CHECK(exampleTable().value(c, "pool") == "7");
  CHECK(exampleTable().value(c, "watchdog") == "true");
}

TEST_CASE("config: print-config documents every key with its default", "[base][config]") {
  const std::string text = exampleTable().documentedDefaults();
  CHECK_THAT(text,
             Catch::StartsWith("# exampled configuration. Every key is shown with its default "
                               "value.\n\n# a size; 0 = none\nbytes = 0\n\n"));
  CHECK_THAT(text, Catch::Contains("\n# address to listen on\nlisten = 127.0.0.1:8620\n"));
  CHECK_THAT(text, Catch::Contains("\n# nothing unless set\nempty_by_default = \n"));
  CHECK_THAT(text, Catch::Contains("\n# watch\nwatchdog = true\n"));
  CHECK_THAT(text, Catch::EndsWith("\n# watch\nwatchdog = true\n"));  // sorted by key
  // ... and reads back as the defaults.
  const ExampleConfig round = exampleTable().parse(text, "defaults");
  CHECK(round.listen == ExampleConfig{}.listen);
  CHECK(round.ttl == ExampleConfig{}.ttl);
}

TEST_CASE("config: lines keep their text, for programs that rewrite the file", "[base][config]") {
  const auto lines = plng::base::splitConfigLines("# mine\nplc = \"h:1\" # comment\n\n", "f");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].key.empty());
  CHECK(lines[1].number == 2);
  CHECK(lines[1].text == "plc = \"h:1\" # comment");
  CHECK(lines[1].key == "plc");
  CHECK(lines[1].value == "h:1");
  CHECK(lines[2].key.empty());

  CHECK(plng::base::formatConfigLine("token", "abc#1") == "token = abc#1");
  for (const char* bad : {"a\nb", " lead", "trail\t", "\"q", "a #b", "a\t#b"}) {
    CHECK_THROWS_AS(plng::base::formatConfigLine("token", bad), std::invalid_argument);
  }
}

TEST_CASE("config: one set of boolean words", "[base][config]") {
  for (const char* yes : {"true", "yes", "on", "1"})
    CHECK(plng::base::parseBooleanWord(yes) == true);
  for (const char* no : {"false", "no", "off", "0"})
    CHECK(plng::base::parseBooleanWord(no) == false);
  CHECK_FALSE(plng::base::parseBooleanWord("True").has_value());
  CHECK_FALSE(plng::base::parseBooleanWord("").has_value());
}

TEST_CASE("config: the daemons' documented configs are in this syntax", "[base][config]") {
  // Their keys and values are checked by the daemons' own tests and the
  // *_config_documented ctest entries; here: every line is a comment or an entry.
  for (const char* name : {"plcd.conf", "sliverd.conf"}) {
    const std::filesystem::path path = std::filesystem::path(PLNG_SOURCE_DIR) / "deploy" / name;
    const auto lines =
        plng::base::splitConfigLines(plng::base::readConfigFile(path), path.string());
    int entries = 0;
    for (const auto& line : lines) {
      if (line.key.empty()) {
        CHECK((line.text.empty() || line.text.starts_with("# ")));
      } else {
        ++entries;
        CHECK(line.text == line.key + " = " + line.value);
      }
    }
    CHECK(entries > 30);
  }
}
