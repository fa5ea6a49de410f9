// Input validation and configuration parsing in plcd: what a caller may send and
// the canonical values nodes receive. No database needed.
#include <catch2/catch.hpp>

#include "config.h"
#include "errors.h"
#include "validate.h"

using namespace plng::plc;

namespace {

// The status code an ApiError thrown by `fn` carries (OK when nothing is thrown).
template <class F>
grpc::StatusCode codeOf(F&& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    return e.code();
  }
  return grpc::StatusCode::OK;
}

constexpr auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
constexpr auto kOk = grpc::StatusCode::OK;

const std::string kEd25519 =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIASt7GofGC+xpRHzL1eDqTlhX6992oBBHKP/oC4528ml "
    "alice@laptop";
const std::string kRsa1024 =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCs8XU4Nr8s+tR6dvllCwlAxvuLnk0YXAjCRHoWAjLqOzmz2IZocTFx"
    "j8eONPelr8raCvs+HREJkLEFIDXtdpOBjb2mybaDrIhdBfyRnZAlGKVv7Bah/9S3auC7RoteNdQfrCRL+2JtHx8Neti"
    "DNB92C01e6nnrdnQF+Bhvjp+D8Q== root@vm";

}  // namespace

TEST_CASE("slice names follow PlanetLab's <login_base>_<name> rule", "[plc][validate]") {
  CHECK(validateSliceName("princeton_codeen") == "princeton");
  CHECK(validateSliceName("mit_a") == "mit");
  CHECK(validateSliceName("ab_x_y_2") == "ab");
  for (const char* bad :
       {"", "princeton", "_codeen", "princeton_", "Princeton_codeen", "princeton-codeen",
        "princeton_code en", "1abc_x", "a_x", "princeton_codeen_with_a_very_long_name"}) {
    INFO(bad);
    CHECK(codeOf([&] { validateSliceName(bad); }) == kInvalid);
  }
}

TEST_CASE("login_base, email and hostname validation", "[plc][validate]") {
  CHECK(codeOf([] { validateLoginBase("princeton"); }) == kOk);
  CHECK(codeOf([] { validateLoginBase("p"); }) == kInvalid);
  CHECK(codeOf([] { validateLoginBase("Princeton"); }) == kInvalid);
  CHECK(codeOf([] { validateLoginBase("prince_ton"); }) == kInvalid);
  CHECK(codeOf([] { validateLoginBase("abcdefghijklmnopqrstu"); }) == kInvalid);
  CHECK(codeOf([] { validateEmail("alice@cs.princeton.edu"); }) == kOk);
  CHECK(codeOf([] { validateEmail("alice"); }) == kInvalid);
  CHECK(codeOf([] { validateEmail("alice@localhost"); }) == kInvalid);
  CHECK(codeOf([] { validateHostname("node1.princeton.edu"); }) == kOk);
  CHECK(codeOf([] { validateHostname("node1"); }) == kInvalid);
  CHECK(codeOf([] { validateHostname("-bad.example.org"); }) == kInvalid);
  CHECK(codeOf([] { validatePassword("short"); }) == kInvalid);
  CHECK(codeOf([] { validatePassword("long-enough"); }) == kOk);
  CHECK(codeOf([] { validateUrl("", /*required=*/false); }) == kOk);
  CHECK(codeOf([] { validateUrl("", /*required=*/true); }) == kInvalid);
  CHECK(codeOf([] { validateUrl("ftp://x.org", /*required=*/false); }) == kInvalid);
  CHECK(codeOf([] { validateUrl("https://planet-lab.org/x", /*required=*/true); }) == kOk);
}

TEST_CASE("SSH keys are parsed, canonicalised and fingerprinted like ssh-keygen",
          "[plc][validate]") {
  auto key = parseSshKey("  " + kEd25519 + "\n");
  CHECK(key.type == "ssh-ed25519");
  CHECK(key.canonical == kEd25519);
  // ssh-keygen -lf prints this fingerprint for the key above.
  CHECK(key.fingerprint == "SHA256:jnre4vxOSgSdD3ygmFRiGRFyiOS6Eacp8G8bSvpYDns");

  SECTION("malformed keys are refused with a hint") {
    for (const std::string& bad :
         {std::string("ssh-ed25519"), std::string("ssh-dss AAAAB3NzaC1kc3M= x"),
          std::string("ssh-ed25519 not-base64!"),
          // Body of an ed25519 key announced as RSA.
          std::string(
              "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIASt7GofGC+xpRHzL1eDqTlhX6992oBBHKP/oC4528ml"),
          kEd25519 + "\n" + kEd25519}) {
      INFO(bad);
      try {
        parseSshKey(bad);
        FAIL("accepted");
      } catch (const ApiError& e) {
        CHECK(e.code() == kInvalid);
        CHECK(std::string(e.what()).find("OpenSSH public key") != std::string::npos);
      }
    }
  }
  SECTION("RSA keys shorter than 2048 bits are refused") {
    try {
      parseSshKey(kRsa1024);
      FAIL("accepted");
    } catch (const ApiError& e) {
      CHECK(std::string(e.what()).find("1024 bits") != std::string::npos);
    }
  }
}

TEST_CASE("blacklist prefixes are canonical CIDR", "[plc][validate]") {
  CHECK(canonicalPrefix("10.1.2.3/16") == "10.1.0.0/16");
  CHECK(canonicalPrefix("192.0.2.7") == "192.0.2.7/32");
  CHECK(canonicalPrefix("2001:db8::1/32") == "2001:db8::/32");
  CHECK(codeOf([] { canonicalPrefix("10.0.0.0/33"); }) == kInvalid);
  CHECK(codeOf([] { canonicalPrefix("example.org"); }) == kInvalid);
  CHECK(codeOf([] { canonicalPrefix("10.0.0.0/"); }) == kInvalid);
}

TEST_CASE("tag values are canonicalised by kind", "[plc][validate]") {
  CHECK(canonicalTagValue("mem_limit", "bytes", "128M") == "134217728");
  CHECK(canonicalTagValue("disk_quota", "bytes", "5 GB") == "5368709120");
  CHECK(canonicalTagValue("mem_limit", "bytes", "4096") == "4096");
  CHECK(canonicalTagValue("net_max_rate", "rate", "10Mbit") == "10000000");
  CHECK(canonicalTagValue("net_min_rate", "rate", "5kbit") == "5000");
  CHECK(canonicalTagValue("cpu_share", "int", "64") == "64");
  CHECK(canonicalTagValue("delegations", "bool", "Yes") == "true");
  CHECK(canonicalTagValue("ports", "ports", "8000-8100, 443,80") == "80,443,8000-8100");
  CHECK(canonicalTagValue("capabilities", "capabilities", "net_raw,CAP_SYS_TIME") ==
        "CAP_NET_RAW,CAP_SYS_TIME");
  CHECK(canonicalTagValue("initscript", "string", "#!/bin/sh\necho hi") == "#!/bin/sh\necho hi");

  CHECK(codeOf([] { canonicalTagValue("cpu_share", "int", "-1"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("cpu_share", "int", "lots"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("mem_limit", "bytes", "12Q"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("mem_limit", "bytes", "99999999999999999999"); }) ==
        kInvalid);
  CHECK(codeOf([] { canonicalTagValue("ports", "ports", "0"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("ports", "ports", "90-80"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("ports", "ports", "70000"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("capabilities", "capabilities", "CAP_FLY"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("delegations", "bool", "maybe"); }) == kInvalid);
}

TEST_CASE("plcd config: defaults, overrides and errors naming the line", "[plc][config]") {
  auto c = PlcConfig::parse("# comment\nlisten = 0.0.0.0:9000\n\ndb_pool_size=4 # inline\n",
                            "test.conf");
  CHECK(c.listen == "0.0.0.0:9000");
  CHECK(c.db_pool_size == 4);
  CHECK(c.slice_default_lifetime == 14 * 24 * 3600);
  CHECK(c.slice_max_renewal == 8 * 7 * 24 * 3600);

  try {
    PlcConfig::parse("listen = x\nbogus = 1\n", "test.conf");
    FAIL("unknown key accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("test.conf:2") != std::string::npos);
    CHECK(std::string(e.what()).find("bogus") != std::string::npos);
  }
  CHECK_THROWS_AS(PlcConfig::parse("db_pool_size = many\n", "t"), std::invalid_argument);
  CHECK_THROWS_AS(PlcConfig::parse("just words\n", "t"), std::invalid_argument);

  // The documented defaults parse back to the defaults.
  auto round = PlcConfig::parse(PlcConfig::documentedDefaults(), "defaults");
  CHECK(round.listen == PlcConfig{}.listen);
  CHECK(round.ticket_lifetime == PlcConfig{}.ticket_lifetime);
}
