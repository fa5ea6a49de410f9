// Input validation and configuration parsing in plcd: what a caller may send and
// the canonical values nodes receive. No database needed.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <limits>
#include <memory>
#include <set>

#include "plc/config.h"
#include "plc/errors.h"
#include "plc/validate.h"
#include "proto/plc.pb.h"

using namespace plng::plc;
using namespace std::string_literals;
namespace gp = google::protobuf;

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

// The message of the ApiError `fn` throws ("" when it throws none).
template <class F>
std::string messageOf(F&& fn) {
  try {
    fn();
  } catch (const ApiError& e) {
    return e.what();
  }
  return "";
}

// The request type of every method of every service in plc.proto.
std::vector<const gp::Descriptor*> requestTypes() {
  std::vector<const gp::Descriptor*> out;
  const auto* file = planetlab::v1::LoginRequest::descriptor()->file();
  for (int s = 0; s < file->service_count(); ++s) {
    for (int m = 0; m < file->service(s)->method_count(); ++m) {
      out.push_back(file->service(s)->method(m)->input_type());
    }
  }
  return out;
}

std::unique_ptr<gp::Message> newMessage(const gp::Descriptor* type) {
  return std::unique_ptr<gp::Message>(
      gp::MessageFactory::generated_factory()->GetPrototype(type)->New());
}

// Sets string field `f` of `m` (appending when repeated) to `value`.
void setString(gp::Message& m, const gp::FieldDescriptor* f, const std::string& value) {
  if (f->is_repeated()) {
    m.GetReflection()->AddString(&m, f, value);
  } else {
    m.GetReflection()->SetString(&m, f, value);
  }
}

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
  auto key = parseSshKey("  " + kEd25519 + "  ");
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
          kEd25519 + "\n" + kEd25519, kEd25519 + "\n", kEd25519 + "\r"}) {
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
  CHECK(canonicalTagValue("ports", "ports", "tcp:8000-8100, udp:53,TCP:80,tcp:81") ==
        "tcp:80-81,tcp:8000-8100,udp:53");
  CHECK(canonicalTagValue("ports", "ports", "") == "");
  CHECK(canonicalTagValue("capabilities", "capabilities", "net_raw,CAP_SYS_TIME") ==
        "CAP_NET_RAW,CAP_SYS_TIME");
  CHECK(canonicalTagValue("initscript", "string", "#!/bin/sh\necho hi") == "#!/bin/sh\necho hi");

  CHECK(codeOf([] { canonicalTagValue("cpu_share", "int", "-1"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("cpu_share", "int", "lots"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("mem_limit", "bytes", "12Q"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("mem_limit", "bytes", "99999999999999999999"); }) ==
        kInvalid);
  CHECK(codeOf([] { canonicalTagValue("ports", "ports", "tcp:0"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("ports", "ports", "tcp:90-80"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("ports", "ports", "udp:70000"); }) == kInvalid);
  // The old grammar (bare ports) names no protocol: refused, saying what is expected.
  CHECK(messageOf([] { canonicalTagValue("ports", "ports", "80,443"); }) ==
        "tag ports: item 1 \"80\": expected <tcp|udp>:<port>[-<port>], e.g. tcp:80 or "
        "udp:6000-6010 (grammar: docs/vnet.md, \"Ports\")");
  CHECK(codeOf([] { canonicalTagValue("capabilities", "capabilities", "CAP_FLY"); }) == kInvalid);
  CHECK(codeOf([] { canonicalTagValue("delegations", "bool", "maybe"); }) == kInvalid);
}

TEST_CASE("plcd config: defaults, overrides and errors naming the line", "[plc][config]") {
  auto c = plcdConfigTable().parse("# comment\nlisten = 0.0.0.0:9000\n\ndb_pool_size=4 # inline\n",
                                   "test.conf");
  CHECK(c.listen == "0.0.0.0:9000");
  CHECK(c.db_pool_size == 4);
  CHECK(c.slice_default_lifetime == 14 * 24 * 3600);
  CHECK(c.slice_max_renewal == 8 * 7 * 24 * 3600);

  try {
    plcdConfigTable().parse("listen = x\nbogus = 1\n", "test.conf");
    FAIL("unknown key accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("test.conf:2") != std::string::npos);
    CHECK(std::string(e.what()).find("bogus") != std::string::npos);
    // The command that lists the keys, as it is spelt.
    CHECK(std::string(e.what()).find("(plcd print-config lists every key)") != std::string::npos);
  }
  // Values are checked where they are read, not when first used.
  CHECK_THROWS_WITH(plcdConfigTable().parse("\ndb_pool_size = 0\n", "t"),
                    "t:2: db_pool_size: must be between 1 and 1000, not 0");
  CHECK_THROWS_WITH(plcdConfigTable().parse("max_slice_tags = -3\n", "t"),
                    "t:1: max_slice_tags: must be at least 1, not -3");
  CHECK_THROWS_WITH(plcdConfigTable().parse("log_level = loud\n", "t"),
                    Catch::StartsWith("t:1: log_level: 'loud' is not a log level"));
  CHECK_THROWS_WITH(plcdConfigTable().parse("listen =\n", "t"), "t:1: listen: must not be empty");
  CHECK_THROWS_WITH(
      plcdConfigTable().parse("login_lockout_max_s = 5\nlogin_lockout_base_s = 10\n", "t"),
      "t:2: login_lockout_max_s must be at least login_lockout_base_s");
  CHECK_THROWS_AS(plcdConfigTable().parse("db_pool_size = many\n", "t"), std::invalid_argument);
  CHECK_THROWS_AS(plcdConfigTable().parse("just words\n", "t"), std::invalid_argument);

  // The documented defaults parse back to the defaults.
  auto round = plcdConfigTable().parse(plcdConfigTable().documentedDefaults(), "defaults");
  CHECK(round.listen == PlcConfig{}.listen);
  CHECK(round.ticket_lifetime == PlcConfig{}.ticket_lifetime);
}

TEST_CASE("plcd config: a database of several servers must target the primary", "[plc][config]") {
  // libpq would otherwise connect to the first server that answers, a standby too.
  ::unsetenv("PGTARGETSESSIONATTRS");
  const char* kOne = "database = host=/run/pg dbname=plc\n";
  CHECK(plcdConfigTable().parse(kOne, "t").database == "host=/run/pg dbname=plc");
  CHECK_NOTHROW(plcdConfigTable().parse(
      "database = host=db1,db2 port=5432,5433 dbname=plc target_session_attrs=read-write\n", "t"));
  CHECK_NOTHROW(plcdConfigTable().parse(
      "database = postgresql://db1,db2/plc?target_session_attrs=primary\n", "t"));
  CHECK_THROWS_WITH(plcdConfigTable().parse("database = host=db1,db2 dbname=plc\n", "t"),
                    "t:1: database: names several servers (db1,db2) but no "
                    "target_session_attrs: libpq would connect to the first that answers, a "
                    "standby included, where every change fails. Add "
                    "target_session_attrs=read-write (docs/database-failover.md)");
  CHECK_THROWS_WITH(plcdConfigTable().parse(
                        "database = hostaddr=10.0.0.1,10.0.0.2 target_session_attrs=any\n", "t"),
                    Catch::Contains("but target_session_attrs=any"));
  CHECK_THROWS_WITH(plcdConfigTable().parse("database = host=db1 colour=blue\n", "t"),
                    Catch::Contains("is not a libpq connection string: invalid connection "
                                    "option \"colour\""));
}

TEST_CASE("quoteForMessage quotes a short, escaped prefix", "[plc][validate]") {
  CHECK(quoteForMessage("princeton") == "'princeton'");
  CHECK(quoteForMessage("a\nb\tc\x1b[0m") == "'a\\nb\\tc\\x1b[0m'");
  CHECK(quoteForMessage("it's") == "'it\\'s'");
  CHECK(quoteForMessage("Zoë") == "'Zoë'");
  CHECK(quoteForMessage("\xc2\x9b") == "'\\u009b'");
  CHECK(quoteForMessage("\xff") == "'\\xff'");
  auto long_value = quoteForMessage(std::string(1 << 20, 'A'));
  CHECK(long_value == "'" + std::string(64, 'A') + "'\u2026 (1048576 bytes)");
  // Characters, not bytes, are counted, and never cut in two.
  auto wide = quoteForMessage(std::string(100, 'x') + "ë", 100);
  CHECK(wide == "'" + std::string(100, 'x') + "'\u2026 (102 bytes)");
  CHECK(quoteForMessage(std::string(99, 'x') + "ëë", 100) ==
        "'" + std::string(99, 'x') + "ë'\u2026 (103 bytes)");
}

TEST_CASE("validators quote at most a short prefix of a 1 MB value", "[plc][validate]") {
  const std::string mb(1 << 20, 'a');
  for (auto message :
       {messageOf([&] { validateLoginBase(mb); }), messageOf([&] { validateEmail(mb); }),
        messageOf([&] { validateHostname(mb); }), messageOf([&] { validateSliceName(mb); }),
        messageOf([&] { validateUrl(mb, true); }), messageOf([&] { validateBootState(mb); }),
        messageOf([&] { validateInstantiation(mb); }),
        messageOf([&] { validateObjectName("name", mb); }), messageOf([&] { parseSshKey(mb); }),
        messageOf([&] { canonicalPrefix(mb); }),
        messageOf([&] { canonicalTagValue("t", "bool", std::string(60000, 'x')); }),
        messageOf([&] { canonicalTagValue("t", "ports", std::string(60000, '9')); }),
        messageOf([&] { canonicalTagValue("t", "ports", "tcp:" + std::string(60000, '9')); }),
        messageOf([&] { validateText("description", mb, 100, false); })}) {
    INFO(message.substr(0, 300));
    CHECK(!message.empty());
    CHECK(message.size() <= 400);
  }
}

TEST_CASE("the edge check refuses NUL in every string field of every request",
          "[plc][validate][edge]") {
  int fields = 0;
  for (const auto* type : requestTypes()) {
    for (int i = 0; i < type->field_count(); ++i) {
      const auto* f = type->field(i);
      INFO(type->full_name() << "." << f->name());
      auto m = newMessage(type);
      if (f->type() == gp::FieldDescriptor::TYPE_STRING) {
        ++fields;
        setString(*m, f, "ok\0tail"s);
        auto message = messageOf([&] { validateRequestFields(*m); });
        CHECK(message.find(f->name()) == 0);
        CHECK(message.find("NUL") != std::string::npos);
        CHECK(codeOf([&] { validateRequestFields(*m); }) == kInvalid);

        auto control = newMessage(type);
        setString(*control, f, "ok\x01");
        CHECK(codeOf([&] { validateRequestFields(*control); }) == kInvalid);
        auto c1 = newMessage(type);
        setString(*c1, f, "ok\xc2\x85");  // U+0085 NEL
        CHECK(codeOf([&] { validateRequestFields(*c1); }) == kInvalid);
        auto del = newMessage(type);
        setString(*del, f, "ok\x7f");
        CHECK(codeOf([&] { validateRequestFields(*del); }) == kInvalid);
        // Line breaks and tabs only where the field is marked multi-line.
        bool multiline = f->options().GetExtension(planetlab::v1::multiline);
        for (const char* ws : {"a\nb", "a\tb", "a\r\nb"}) {
          auto text = newMessage(type);
          setString(*text, f, ws);
          CHECK(codeOf([&] { validateRequestFields(*text); }) == (multiline ? kOk : kInvalid));
        }
        auto fine = newMessage(type);
        setString(*fine, f, "Zoë — ok");
        CHECK(codeOf([&] { validateRequestFields(*fine); }) == kOk);
      } else if (f->type() == gp::FieldDescriptor::TYPE_BYTES) {
        // Bytes carry keys, nonces and signatures: any byte goes.
        if (f->is_repeated()) {
          m->GetReflection()->AddString(m.get(), f, "\0\x01\n\xff"s);
        } else {
          m->GetReflection()->SetString(m.get(), f, "\0\x01\n\xff"s);
        }
        CHECK(codeOf([&] { validateRequestFields(*m); }) == kOk);
      }
    }
  }
  CHECK(fields > 60);
}

TEST_CASE("the edge check walks nested, repeated and map fields", "[plc][validate][edge]") {
  planetlab::v1::NodeState state;
  auto* sliver = state.add_slivers();
  sliver->set_slice_name("princeton_x");
  (*sliver->mutable_tags())["initscript"] = "ok";
  auto* second = state.add_slivers();
  (*second->mutable_tags())["vref"] = "bad\0value"s;
  auto message = messageOf([&] { validateRequestFields(state); });
  CHECK(message.find("slivers[1].tags[0].value contains a NUL byte") == 0);
  (*second->mutable_tags())["vref"] = "fine";
  second->add_keys()->set_key("ssh-ed25519 AAAA\nsecond line");
  CHECK(messageOf([&] { validateRequestFields(state); }).find("slivers[1].keys[0].key") == 0);
}

TEST_CASE("every integer field of a request is a time or known not to be one",
          "[plc][validate][edge]") {
  // A new integer field in a request must be added here or named as a time
  // (isTimeField), so that no time reaches PostgreSQL unchecked.
  const std::set<std::string> not_times = {"planetlab.v1.RevokeApiTokenRequest.id",
                                           "planetlab.v1.AddSiteRequest.max_slices",
                                           "planetlab.v1.AddSiteRequest.max_slivers",
                                           "planetlab.v1.UpdateSiteRequest.max_slices",
                                           "planetlab.v1.UpdateSiteRequest.max_slivers",
                                           "planetlab.v1.DeleteKeyRequest.key_id",
                                           "planetlab.v1.BlacklistKeyRequest.key_id",
                                           "planetlab.v1.DeleteBlacklistEntryRequest.entry_id",
                                           "planetlab.v1.GetEventsRequest.limit",
                                           "planetlab.v1.GetFlowsRequest.limit",
                                           "planetlab.v1.ReportFlowsRequest.dropped",
                                           "planetlab.v1.AddSliceRequest.max_nodes",
                                           "planetlab.v1.UpdateSliceRequest.max_nodes",
                                           "planetlab.v1.DeleteSliceTagRequest.slice_tag_id",
                                           "planetlab.v1.WatchSliversRequest.since_version",
                                           "planetlab.v1.GetNodeStatusRequest.history"};
  std::set<std::string> times;
  for (const auto* type : requestTypes()) {
    for (int i = 0; i < type->field_count(); ++i) {
      const auto* f = type->field(i);
      bool integer = f->cpp_type() == gp::FieldDescriptor::CPPTYPE_INT64 ||
                     f->cpp_type() == gp::FieldDescriptor::CPPTYPE_INT32 ||
                     f->cpp_type() == gp::FieldDescriptor::CPPTYPE_UINT32 ||
                     f->cpp_type() == gp::FieldDescriptor::CPPTYPE_UINT64;
      if (!integer) continue;
      INFO(f->full_name());
      if (not_times.count(f->full_name())) {
        CHECK_FALSE(isTimeField(*f));
        continue;
      }
      REQUIRE(isTimeField(*f));
      times.insert(f->full_name());
      CHECK(f->cpp_type() == gp::FieldDescriptor::CPPTYPE_INT64);
      for (std::int64_t t :
           {std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min(),
            std::int64_t{-1}, kMaxRequestTime + 1}) {
        auto m = newMessage(type);
        m->GetReflection()->SetInt64(m.get(), f, t);
        auto message = messageOf([&] { validateRequestFields(*m); });
        CHECK(message.find(f->name() + " " + std::to_string(t) + " is out of range") == 0);
      }
      for (std::int64_t t : {std::int64_t{0}, std::int64_t{1700000000}, kMaxRequestTime}) {
        auto m = newMessage(type);
        m->GetReflection()->SetInt64(m.get(), f, t);
        CHECK(codeOf([&] { validateRequestFields(*m); }) == kOk);
      }
    }
  }
  CHECK(times == std::set<std::string>{"planetlab.v1.CreateApiTokenRequest.expires_at",
                                       "planetlab.v1.GetEventsRequest.since",
                                       "planetlab.v1.GetFlowsRequest.since",
                                       "planetlab.v1.GetFlowsRequest.until",
                                       "planetlab.v1.NodeStatusReport.reported_at",
                                       "planetlab.v1.RenewSliceRequest.expires_at"});
}
