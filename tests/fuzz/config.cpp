// Fuzz target: configuration files — plcd's (plc/config.h), sliverd's
// (sliverd/daemon/config.h) and plcctl's client config (cli/client_config.h).
//
// All three read lines with base/config.h; plcd and sliverd through its ConfigTable.
//
// Input: "<plcd|sliverd|plcctl>\n<file text>". Properties:
//  - plcd's and sliverd's parsers refuse with base::ConfigError and nothing
//    else (a number out of range, a bad key: never another exception);
//  - plcctl's parser refuses with LocalError only; what it reads renders back
//    to text that parses to the same entries; a value plcctl saves (its
//    address or token) reads back unchanged, and its address normalises
//    without crashing.
#include "plc/config.h"

#include <stdexcept>
#include <string>

#include "cli/client_config.h"
#include "cli/errors.h"
#include "sliverd/daemon/config.h"
#include "tests/fuzz/fuzz_harness.h"

namespace {

using plng::fuzz::fail;

constexpr const char* kKeys[] = {"plc", "token", "token_expires_at", "tls", "ca_file"};

bool sameEntries(const plcctl::ConfigFile& a, const plcctl::ConfigFile& b) {
  for (const char* key : kKeys) {
    if (a.get(key) != b.get(key)) return false;
  }
  return true;
}

// Values plcctl writes itself: one line of printable characters, not starting
// or ending with a blank or a quote (the parser trims and unquotes), and no '#'
// first or after a blank (a comment).
bool savable(const std::string& value) {
  if (value.empty()) return true;
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  auto edge = [](char c) { return c == ' ' || c == '\t' || c == '"'; };
  return !edge(value.front()) && !edge(value.back()) && value.front() != '#' &&
         value.find(" #") == std::string::npos && value.find("\t#") == std::string::npos;
}

void checkPlcctl(const std::string& text) {
  plcctl::ConfigFile config;
  try {
    config = plcctl::ConfigFile::parse(text, "fuzz.conf");
  } catch (const plcctl::LocalError&) {
    return;
  }
  const std::string rendered = config.render();
  auto again = plcctl::ConfigFile::parse(rendered, "fuzz.conf");
  if (!sameEntries(config, again) || again.render() != rendered) {
    fail("plcctl's config does not read back what it renders");
  }
  if (auto plc = config.get("plc")) {
    try {
      (void)plcctl::normalizePlcAddress(*plc);
    } catch (const plcctl::UsageError&) {
    }
  }
  // Save the value of the last line as the token, as `plcctl login` does.
  const std::string value = text.substr(text.rfind('\n', text.size() - 1) + 1);
  if (savable(value)) {
    config.set("token", value);
    auto saved = plcctl::ConfigFile::parse(config.render(), "fuzz.conf");
    if (saved.get("token") != value || !sameEntries(config, saved)) {
      fail("a token plcctl saves does not read back unchanged");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view selector, rest;
  if (!plng::fuzz::splitSelector(plng::fuzz::asText(data, size), selector, rest)) return 0;
  const std::string text(rest);
  if (selector == "plcd") {
    try {
      (void)plng::plc::plcdConfigTable().parse(text, "plcd.conf");
    } catch (const plng::base::ConfigError&) {
    }
  } else if (selector == "sliverd") {
    try {
      (void)plng::sliverd::sliverdConfigTable().parse(text, "sliverd.conf");
    } catch (const plng::base::ConfigError&) {
    }
  } else if (selector == "plcctl") {
    checkPlcctl(text);
  }
  return 0;
}

std::vector<plng::fuzz::Seed> plng::fuzz::generatedSeeds() {
  // Every key with its default, as print-config writes it: each must parse.
  const std::string plcd = plng::plc::plcdConfigTable().documentedDefaults();
  const std::string sliverd = plng::sliverd::sliverdConfigTable().documentedDefaults();
  std::vector<Seed> seeds{{"plcd-defaults", "plcd\n" + plcd},
                          {"sliverd-defaults", "sliverd\n" + sliverd}};
  (void)plng::plc::plcdConfigTable().parse(plcd, "plcd defaults");
  (void)plng::sliverd::sliverdConfigTable().parse(sliverd, "sliverd defaults");
  return seeds;
}
