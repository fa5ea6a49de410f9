// Fuzz target: slice tag values, parsed where a user sets them (PLC) and where
// they are applied (the node), and the other values PLC canonicalises.
//
// Input: "<selector>\n<value>". The selector is a tag of PLC's seed tag types
// (plc/migrations.cpp), or sshkey / prefix. Properties:
//  - PLC's canonicalTagValue refuses with INVALID_ARGUMENT and nothing else,
//    and its output has the documented shape and canonicalises to itself;
//  - differential: what PLC emits, the node accepts (desiredFromTags, the
//    entry sliverd uses for PLC's state and tickets). The node may refuse a
//    canonical value only for a node policy PLC cannot know (a range, a
//    capability never granted or missing from its kernel, an image name), never
//    as malformed (networkRightsFromTags included: ports, net_max_ports), and
//    says why in a short printable message; rates reach grantedSpec as the same
//    number; a `proper` tag grants sliver control only to a slice it names (or "*");
//  - an initscript of any bytes survives the node's state file (kvfile);
//  - parseSshKey and canonicalPrefix are idempotent, and a key PLC accepts
//    holds nothing that would break the node's authorized_keys file.
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <string>

#include "node/kvfile.h"
#include "node/resources.h"
#include "plc/errors.h"
#include "plc/validate.h"
#include "proto/port_spec.h"
#include "sliverd/core/desired_state.h"
#include "sliverd/local/local_service.h"
#include "tests/fuzz/fuzz_harness.h"

namespace {

using plng::fuzz::fail;

struct TagType {
  const char* tag;
  const char* kind;
};
// PLC's seed tag types (plc/migrations.cpp) and their value kinds.
constexpr TagType kTagTypes[] = {
    {"cpu_share", "int"},     {"cpu_cap", "int"},           {"mem_limit", "bytes"},
    {"tasks", "int"},         {"disk_quota", "bytes"},      {"net_min_rate", "rate"},
    {"net_max_rate", "rate"}, {"net_daily_bytes", "bytes"}, {"ports", "ports"},
    {"initscript", "string"}, {"vref", "string"},           {"capabilities", "capabilities"},
    {"proper", "string"},     {"delegations", "bool"},      {"arch", "string"},
    {"deployment", "string"}, {"net_node_cap", "rate"},     {"net_max_ports", "int"}};

constexpr const char* kSlice = "princeton_codeen";

bool isDecimal(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         (s.size() == 1 || s[0] != '0');
}

std::uint64_t decimal(const std::string& s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

void checkShape(const std::string& kind, const std::string& canonical) {
  if (kind == "int" || kind == "bytes" || kind == "rate") {
    if (!isDecimal(canonical)) fail(kind + " value not canonical decimal: '" + canonical + "'");
  } else if (kind == "bool") {
    if (canonical != "true" && canonical != "false") fail("bool value not true|false");
  } else if (kind == "ports") {
    // proto/port_spec.h's canonical form: reads back as itself.
    try {
      if (plng::proto::formatPortSpec(plng::proto::parsePortSpec(canonical)) != canonical) {
        fail("ports value not canonical: '" + canonical + "'");
      }
    } catch (const plng::proto::PortSpecError& e) {
      fail("PLC's ports value does not parse: '" + canonical + "': " + e.what());
    }
  } else if (kind == "capabilities") {
    std::string previous;
    std::string_view rest = canonical;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string name(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (name.rfind("CAP_", 0) != 0 || name <= previous) {
        fail("capabilities not sorted, unique CAP_ names: '" + canonical + "'");
      }
      previous = name;
    }
  }
}

// Node refusals a canonical value may meet: node policy, not a format.
bool isPolicyRefusal(const std::string& tag, const std::string& message) {
  if (message.find("out of range") != std::string::npos) return true;
  if (tag == "capabilities") {
    return message.find("never granted") != std::string::npos ||
           message.find("not supported by this node's kernel") != std::string::npos;
  }
  // PLC keeps vref and proper free strings; the node knows which names are
  // images, and what a privilege looks like.
  if (tag == "proper") return message.find("is not a privilege") != std::string::npos;
  return tag == "vref" && message.find("is not an image name") != std::string::npos;
}

void checkNode(const std::string& tag, const std::string& canonical) {
  const std::map<std::string, std::string> tags{{tag, canonical}};
  auto desired = plng::sliverd::desiredFromTags(kSlice, 5001, tags, {}, 0, "plc");
  // The reason lands in logs and in the local API's replies: short and printable,
  // whatever the value holds.
  if (desired.invalid.size() > 512 ||
      !std::all_of(desired.invalid.begin(), desired.invalid.end(),
                   [](unsigned char c) { return c >= 0x20 && c < 0x7f; })) {
    fail("the node's refusal of a " + tag +
         " value is long or not printable: " + desired.invalid.substr(0, 512));
  }
  if (!desired.invalid.empty() && !isPolicyRefusal(tag, desired.invalid)) {
    fail("the node refuses PLC's canonical " + tag + " '" + canonical + "': " + desired.invalid);
  }
  if (!desired.invalid.empty()) return;
  if (tag == "ports" || tag == "net_max_ports" || tag == "capabilities") {
    try {
      const auto rights = plng::node::networkRightsFromTags(tags);
      if (tag == "ports" && plng::proto::formatPortSpec(rights.reserved_ports) != canonical) {
        fail("the node reads ports '" + canonical + "' as other ranges");
      }
    } catch (const plng::node::TagError& e) {
      if (!isPolicyRefusal(tag, e.what())) {
        fail("the node's network rights refuse PLC's canonical " + tag + " '" + canonical +
             "': " + e.what());
      }
    }
  }
  if (tag == "vref" && !canonical.empty()) {
    if (desired.config.vref != canonical || canonical == "." || canonical == ".." ||
        canonical.find('/') != std::string::npos || canonical.find('\0') != std::string::npos) {
      fail("the node accepted vref '" + canonical + "' as an image path");
    }
  }
  if (tag == "net_min_rate" || tag == "net_max_rate") {
    auto spec = plng::sliverd::grantedSpec(desired.config, desired.network);
    auto got = tag == "net_min_rate" ? spec.net_min_rate : spec.net_max_rate;
    if (got != decimal(canonical))
      fail("the node reads " + tag + " '" + canonical + "' as " + std::to_string(got));
  }
  if (tag == "proper") {
    // LocalService asks about a named slice ("" already resolved to the caller's).
    for (const std::string target : {kSlice, "other_slice", "*"}) {
      if (desired.proper.allowsSliverControl(target) &&
          canonical.find("sliver_control:*") == std::string::npos &&
          canonical.find("sliver_control:" + target) == std::string::npos) {
        fail("proper '" + canonical + "' grants control of '" + target + "' without naming it");
      }
    }
  }
}

// The node keeps a sliver's config, initscript included, in a kvfile.
// A private directory for the kvfile, removed when the process exits.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "plng-fuzz-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) fail("mkdtemp");
    path = templ;
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

void checkKvRoundTrip(const std::string& value) {
  static const ScratchDir dir;
  const auto file = dir.path / "config";
  plng::node::KvMap written{{"slice", kSlice}, {"initscript", value}};
  plng::node::writeKvFileAtomic(file, written, plng::base::Durability::kNoSync);
  if (plng::node::readKvFile(file) != written)
    fail("an initscript does not survive the node's kvfile");
}

void checkSshKey(const std::string& value) {
  plng::plc::ParsedSshKey key;
  try {
    key = plng::plc::parseSshKey(value);
  } catch (const plng::plc::ApiError& e) {
    if (e.code() != grpc::StatusCode::INVALID_ARGUMENT) fail("parseSshKey: not INVALID_ARGUMENT");
    return;
  }
  if (key.canonical.find_first_of(std::string("\n\r\0", 3)) != std::string::npos) {
    fail("an accepted SSH key holds a line break or NUL (the node refuses the slice's key file)");
  }
  auto again = plng::plc::parseSshKey(key.canonical);
  if (again.canonical != key.canonical || again.fingerprint != key.fingerprint ||
      again.type != key.type) {
    fail("parseSshKey is not idempotent");
  }
}

void checkPrefix(const std::string& value) {
  std::string canonical;
  try {
    canonical = plng::plc::canonicalPrefix(value);
  } catch (const plng::plc::ApiError& e) {
    if (e.code() != grpc::StatusCode::INVALID_ARGUMENT)
      fail("canonicalPrefix: not INVALID_ARGUMENT");
    return;
  }
  if (plng::plc::canonicalPrefix(canonical) != canonical) fail("canonicalPrefix is not idempotent");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view selector, rest;
  if (!plng::fuzz::splitSelector(plng::fuzz::asText(data, size), selector, rest)) return 0;
  const std::string value(rest);
  if (selector == "sshkey") {
    checkSshKey(value);
    return 0;
  }
  if (selector == "prefix") {
    checkPrefix(value);
    return 0;
  }
  const auto* type = std::find_if(std::begin(kTagTypes), std::end(kTagTypes),
                                  [&](const TagType& t) { return selector == t.tag; });
  if (type == std::end(kTagTypes)) return 0;
  const std::string tag = type->tag, kind = type->kind;

  std::string canonical;
  try {
    canonical = plng::plc::canonicalTagValue(tag, kind, value);
  } catch (const plng::plc::ApiError& e) {
    if (e.code() != grpc::StatusCode::INVALID_ARGUMENT)
      fail("canonicalTagValue: not INVALID_ARGUMENT");
    return 0;
  }
  checkShape(kind, canonical);
  if (plng::plc::canonicalTagValue(tag, kind, canonical) != canonical) {
    fail("canonical " + tag + " '" + canonical + "' is not canonical again");
  }
  checkNode(tag, canonical);
  if (tag == "initscript") checkKvRoundTrip(canonical);
  return 0;
}

std::vector<plng::fuzz::Seed> plng::fuzz::generatedSeeds() { return {}; }
