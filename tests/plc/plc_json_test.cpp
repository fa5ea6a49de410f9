// PLC's JSON API and portal files (plc/portal.h, docs/portal.md) against a real
// PostgreSQL and plcd: every service reachable with curl, the Connect error form
// and HTTP codes for bad input (bad JSON, unknown fields and methods, wrong
// method or content type, oversized bodies, missing tokens, other origins), the
// same audit events and login limits per client address as gRPC, the portal's
// files with their Content-Security-Policy, HTTPS from plcd's TLS settings, and
// what plcd says when the portal cannot be served.
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/child_process.h"
#include "tests/support/json_client.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/shell_command.h"

namespace {

using namespace planetlab::v1;
using plng::test::JsonHttpClient;
using plng::test::PlcFixture;
using plng::test::PlcFixtureOptions;
using plng::test::ScratchDir;
using plng::test::shellOutput;

void writeFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A built portal's shape: an index and its script.
class PortalFiles {
 public:
  PortalFiles() : dir_("plng-portal") {
    writeFile(dir_ / "index.html",
              "<!doctype html><title>PlanetLab</title><script src=\"app.js\"></script>");
    writeFile(dir_ / "app.js", "console.log('portal');\n");
  }
  const std::filesystem::path& path() const { return dir_.path(); }

 private:
  ScratchDir dir_;
};

class JsonTest : public PlcFixture {
 public:
  JsonTest() : PlcFixture(PlcFixtureOptions{.portal = true, .portalRoot = files().path()}) {}

  static const PortalFiles& files() {
    static PortalFiles instance;
    return instance;
  }
  std::string url(const std::string& path = "") {
    return "http://" + plcd().portalAddress() + path;
  }
  std::string bearer() { return "Bearer " + admin().token(); }
  // curl's status line and body for a POST of `body` to `path`.
  std::string curl(const std::string& path, const std::string& body,
                   const std::string& extra = "") {
    return shellOutput("curl -sS -X POST -H 'Content-Type: application/json' " + extra +
                       " --data-binary '" + body + "' -w '\\n%{http_code}' " + url(path));
  }
};

}  // namespace

TEST_CASE_METHOD(JsonTest, "every service answers JSON from curl", "[plc][pg][json]") {
  const auto auth = "-H 'Authorization: " + bearer() + "'";
  auto whoami = curl("/planetlab.v1.Auth/WhoAmI", "{}", auth);
  CHECK_THAT(whoami, Catch::Contains("\"email\":\"admin@plc.test\"") && Catch::EndsWith("200"));
  auto site =
      curl("/planetlab.v1.Admin/AddSite",
           R"({"loginBase":"princeton","name":"Princeton","url":"https://princeton.edu/"})", auth);
  CHECK_THAT(site, Catch::Contains("\"loginBase\":\"princeton\"") && Catch::EndsWith("200"));
  // int64 as strings, every field printed (proto3 JSON).
  CHECK_THAT(site, Catch::Contains("\"deletedAt\":\"0\"") && Catch::Contains("\"siteId\":\""));
  // Field names as in the .proto are accepted too.
  auto slices = curl("/planetlab.v1.Slice/GetSlices", R"({"login_base":"princeton"})", auth);
  CHECK_THAT(slices, Catch::Contains("\"slices\":[]") && Catch::EndsWith("200"));
  // NodeSync is for nodes: an admin must name one, says the handler, in the Connect form.
  auto sync = curl("/planetlab.v1.NodeSync/GetSlivers", "{}", auth);
  CHECK_THAT(sync, Catch::Contains("\"code\":\"invalid_argument\"") &&
                       Catch::Contains("hostname is required") && Catch::EndsWith("400"));
}

TEST_CASE_METHOD(JsonTest, "bad requests get Connect errors with the right codes",
                 "[plc][pg][json]") {
  JsonHttpClient http(plcd().portalAddress());
  auto expect = [&](const JsonHttpClient::Reply& reply, int status, const std::string& code,
                    const std::string& message_part) {
    INFO(reply.status << " " << reply.body);
    CHECK(reply.status == status);
    CHECK(reply.content_type == "application/json");
    CHECK_THAT(reply.body,
               Catch::Contains("\"code\":\"" + code + "\"") && Catch::Contains(message_part));
  };
  expect(http.post("/planetlab.v1.Auth/WhoAmI", "{}"), 401, "unauthenticated", "needs a token");
  expect(http.post("/planetlab.v1.Auth/WhoAmI", "{}", "Bearer 0123"), 401, "unauthenticated", "");
  expect(http.post("/planetlab.v1.Admin/AddSite", "{\"loginBase\":", bearer()), 400,
         "invalid_argument", "not a planetlab.v1.AddSiteRequest in proto3 JSON");
  expect(http.post("/planetlab.v1.Admin/AddSite", R"({"loginBase":"x1","colour":"red"})", bearer()),
         400, "invalid_argument", "colour");
  expect(http.post("/planetlab.v1.Admin/AddSite", R"({"maxSlices":"many"})", bearer()), 400,
         "invalid_argument", "");
  expect(http.post("/planetlab.v1.Admin/NoSuchMethod", "{}", bearer()), 404, "unimplemented",
         "no method planetlab.v1.Admin/NoSuchMethod");
  expect(http.post("/planetlab.v1.NodeSync/WatchSlivers", "{}", bearer()), 501, "unimplemented",
         "gRPC only");
  expect(http.request("GET", "/planetlab.v1.Auth/WhoAmI", "", {}), 405, "unimplemented", "POST");
  expect(http.request("POST", "/planetlab.v1.Auth/WhoAmI", "{}",
                      {{"Content-Type", "text/plain"}, {"Authorization", bearer()}}),
         415, "invalid_argument", "application/json");
  // The handler's own checks, as over gRPC: a login_base that is not one.
  expect(http.post("/planetlab.v1.Admin/AddSite",
                   R"({"loginBase":"Not A Base","name":"n","url":"https://x.org/"})", bearer()),
         400, "invalid_argument", "login_base");
  // Bounded bodies (portal_max_body_bytes, 1 MiB by default).
  {
    JsonHttpClient fresh(plcd().portalAddress());
    expect(fresh.post("/planetlab.v1.Admin/GetSites",
                      "{\"loginBases\":[\"" + std::string(2 << 20, 'a') + "\"]}", bearer()),
           413, "resource_exhausted", "larger than 1048576 bytes");
  }
  // Other origins may not call, with or without a token.
  auto origin = http.request("POST", "/planetlab.v1.Admin/AddSite",
                             R"({"loginBase":"evil","name":"e","url":"https://e/"})",
                             {{"Content-Type", "application/json"},
                              {"Authorization", bearer()},
                              {"Origin", "https://evil.example"}});
  expect(origin, 403, "permission_denied", "cross-origin");
  auto sites = admin().call(&Admin::Stub::GetSites, GetSitesRequest());
  REQUIRE_OK(sites.first);
  CHECK(sites.second.sites_size() == 0);
  // The page's own origin may.
  auto same = http.request("POST", "/planetlab.v1.Auth/WhoAmI", "{}",
                           {{"Content-Type", "application/json"},
                            {"Authorization", bearer()},
                            {"Origin", "http://" + plcd().portalAddress()}});
  CHECK(same.status == 200);
}

TEST_CASE_METHOD(JsonTest, "a JSON call leaves the same audit event as a gRPC call",
                 "[plc][pg][json]") {
  JsonHttpClient http(plcd().portalAddress());
  auto reply = http.post("/planetlab.v1.Admin/AddSite",
                         R"({"loginBase":"mit","name":"MIT","url":"https://mit.edu/"})", bearer());
  REQUIRE(reply.status == 200);
  GetEventsRequest events;
  events.set_method("AddSite");
  auto [status, found] = admin().call(&Admin::Stub::GetEvents, events);
  REQUIRE_OK(status);
  REQUIRE(found.events_size() == 1);
  CHECK(found.events(0).caller() == "admin@plc.test");
  CHECK(found.events(0).result() == "OK");
  CHECK_THAT(found.events(0).arguments(), Catch::Contains("mit"));
}

TEST_CASE_METHOD(JsonTest, "failed logins are limited per client address, not per portal",
                 "[plc][pg][json]") {
  // login_source_burst (20) failures from 127.0.0.2 exhaust that address's budget;
  // 127.0.0.1, through the same portal, still logs in.
  std::string last;
  for (int i = 0; i < 22; ++i) {
    last = shellOutput(
        "curl -sS --interface 127.0.0.2 -X POST -H 'Content-Type: application/json'"
        " --data-binary '{\"email\":\"nobody" +
        std::to_string(i) + "@plc.test\",\"password\":\"wrong-password\"}' -w '\\n%{http_code}' " +
        url("/planetlab.v1.Auth/Login"));
  }
  CHECK_THAT(last, Catch::Contains("resource_exhausted") && Catch::EndsWith("429"));
  JsonHttpClient http(plcd().portalAddress());
  auto login = http.post("/planetlab.v1.Auth/Login",
                         R"({"email":"admin@plc.test","password":"admin-password-0"})");
  CHECK(login.status == 200);
  CHECK_THAT(login.body, Catch::Contains("\"token\""));
}

TEST_CASE_METHOD(JsonTest, "the portal's files are served with a strict policy",
                 "[plc][pg][json]") {
  JsonHttpClient http(plcd().portalAddress());
  auto index = http.request("GET", "/", "", {});
  CHECK(index.status == 200);
  CHECK(index.content_type == "text/html; charset=utf-8");
  CHECK_THAT(index.body, Catch::Contains("<title>PlanetLab</title>"));
  auto policy = index.header("content-security-policy");
  CHECK_THAT(policy, Catch::Contains("script-src 'self'") &&
                         Catch::Contains("default-src 'none'") &&
                         !Catch::Contains("unsafe-inline"));
  CHECK(index.header("x-content-type-options") == "nosniff");
  auto script = http.request("GET", "/app.js", "", {});
  CHECK(script.status == 200);
  CHECK(script.content_type == "text/javascript; charset=utf-8");
  CHECK(http.request("HEAD", "/app.js", "", {}).status == 200);
  CHECK(http.request("GET", "/../../etc/passwd", "", {}).status == 404);
  CHECK(http.request("GET", "/nothing.js", "", {}).status == 404);
  CHECK(http.request("POST", "/app.js", "", {}).status == 405);
}

TEST_CASE("plcd serves the portal over HTTPS with its TLS settings", "[plc][pg][json]") {
  ScratchDir dir("plng-tls");
  const auto cert = (dir / "cert.pem").string();
  shellOutput(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
      " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      (dir / "key.pem").string() + " -out " + cert + " 2>/dev/null");
  writeFile(dir / "plcd.conf",
            "tls_cert = " + cert + "\ntls_key = " + (dir / "key.pem").string() + "\n");
  PlcFixture fx;
  // A second plcd on the fixture's database, gRPC and portal both on TLS.
  const auto portal = "127.0.0.1:" + std::to_string(plng::test::pickFreePort());
  std::ofstream log(dir / "plcd.log");
  plng::test::SpawnOptions spawn;
  spawn.argv = {fx.plcdPath().string(),
                "--config",
                (dir / "plcd.conf").string(),
                "--database",
                fx.connectionString(),
                "--listen",
                "127.0.0.1:" + std::to_string(plng::test::pickFreePort()),
                "--metrics-listen=",
                "--portal-listen=" + portal,
                "serve"};
  spawn.parentDeathSignal = SIGKILL;
  auto plcd = plng::test::ChildProcess::spawn(spawn);
  const auto https = "curl -sS --cacert " + cert + " -X POST -H 'Content-Type: application/json'" +
                     " --data-binary '{}' -w '\\n%{http_code}' https://" + portal +
                     "/planetlab.v1.Auth/WhoAmI";
  std::string answer;
  for (int i = 0; i < 100 && plcd.running(); ++i) {
    try {
      answer = shellOutput(https);
      break;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // not listening yet
    }
  }
  // Verified against the certificate: no token, so the handler's refusal.
  CHECK_THAT(answer, Catch::Contains("\"code\":\"unauthenticated\"") && Catch::EndsWith("401"));
  // Plain HTTP is not served on that port.
  CHECK_THROWS(
      shellOutput("curl -sS --max-time 5 -X POST -H 'Content-Type: application/json'"
                  " --data-binary '{}' http://" +
                  portal + "/planetlab.v1.Auth/WhoAmI"));
  CHECK(plcd.terminate(SIGTERM, std::chrono::seconds(10)) == 0);
}

TEST_CASE("plcd does not start with a portal_root it cannot serve", "[plc][pg][json]") {
  ScratchDir empty("plng-portal-empty");
  PlcFixture fx;
  auto result = plng::test::runPlcd(fx.plcdPath(),
                                    {"--database", fx.connectionString(), "--listen", "127.0.0.1:0",
                                     "--metrics-listen=", "--portal-listen=127.0.0.1:0",
                                     "--portal-root=" + empty.path().string(), "serve"},
                                    {}, std::chrono::seconds(30));
  CHECK_FALSE(result.succeeded());
  CHECK_THAT(result.output, Catch::Contains("has no index.html") && Catch::Contains("portal_root"));
}

TEST_CASE_METHOD(JsonTest, "the JSON bridge of the tests carries unary calls over HTTP only",
                 "[plc][pg][json]") {
  // plc_authz_json_test runs the authorisation matrix on this channel: its unary
  // calls must reach plcd through the JSON API, never through gRPC (here, a port
  // nobody listens on).
  auto dead = "127.0.0.1:" + std::to_string(plng::test::pickFreePort());
  plng::test::PlcClient bridged(plng::test::jsonBridgeChannel(plcd().portalAddress(), dead),
                                admin().token());
  auto [status, me] = bridged.call(&Auth::Stub::WhoAmI, Empty());
  REQUIRE_OK(status);
  CHECK(me.email() == "admin@plc.test");
  AddSiteRequest bad;
  bad.set_login_base("Not A Base");
  CHECK_STATUS(bridged.call(&Admin::Stub::AddSite, bad).first, grpc::StatusCode::INVALID_ARGUMENT,
               "login_base");
}
