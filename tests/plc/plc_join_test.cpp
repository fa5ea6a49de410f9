// Joining PLC without an account (issue 12, the web portal): RequestSite and
// ApproveSite, RegisterPerson and a PI enabling the person, their limits, the
// pending_only filters, and SliceInfo.max_expires_at agreeing with RenewSlice.
// Against a real PostgreSQL and plcd; refused calls must change nothing.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/plc_seed.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/shell_command.h"

namespace {

using namespace plng::test;
using grpc::StatusCode;
using A = pb::Admin::Stub;

constexpr const char* kPiPassword = "pi-password-0";
constexpr std::int64_t kLatestRequestTime = 253402300799;  // 9999-12-31 23:59:59 UTC

pb::RequestSiteRequest siteRequest(const std::string& login_base, const std::string& pi_email) {
  pb::RequestSiteRequest r;
  r.set_login_base(login_base);
  r.set_name(login_base + " university");
  r.set_url("https://www." + login_base + ".edu/");
  r.set_pi_email(pi_email);
  r.set_pi_first_name("Pat");
  r.set_pi_last_name("Investigator");
  r.set_pi_password(kPiPassword);
  r.set_tech_contact_name("Terry Tech");
  r.set_tech_contact_email("tech@" + login_base + ".edu");
  return r;
}

pb::RegisterPersonRequest registration(const std::string& email, const std::string& login_base) {
  pb::RegisterPersonRequest r;
  r.set_email(email);
  r.set_first_name("Reg");
  r.set_last_name("Istered");
  r.set_password("registered-0");
  r.set_login_base(login_base);
  return r;
}

std::vector<std::string> siteNames(const PlcClient& c, bool pending_only,
                                   const std::vector<std::string>& names = {}) {
  pb::GetSitesRequest r;
  r.set_pending_only(pending_only);
  for (const auto& n : names) r.add_login_bases(n);
  auto [status, sites] = c.call(&A::GetSites, r);
  REQUIRE_OK(status);
  std::vector<std::string> out;
  for (const auto& s : sites.sites()) out.push_back(s.login_base());
  return out;
}

std::vector<std::string> pendingPersons(const PlcClient& c) {
  pb::GetPersonsRequest r;
  r.set_pending_only(true);
  auto [status, persons] = c.call(&A::GetPersons, r);
  REQUIRE_OK(status);
  std::vector<std::string> out;
  for (const auto& p : persons.persons()) out.push_back(p.email());
  return out;
}

grpc::Status login(const PlcFixture& fix, const std::string& email, const std::string& password) {
  pb::LoginRequest r;
  r.set_email(email);
  r.set_password(password);
  return fix.anonymous().call(&pb::Auth::Stub::Login, r).first;
}

std::int64_t count(Seeder& seed, const std::string& query) {
  return seed.sql(query)[0][0].as<std::int64_t>();
}

// Another plcd on the fixture's database, configured by `config` (plcd.conf lines).
class ConfiguredPlcd {
 public:
  ConfiguredPlcd(PlcFixture& fix, const std::string& config) : dir_("plc-join") {
    std::ofstream(dir_ / "plcd.conf") << config;
    plcd_.emplace(fix.plcdPath(), fix.connectionString(),
                  std::vector<std::string>{"--config", (dir_ / "plcd.conf").string()});
    admin_.emplace(plcd_->channel(), fix.admin().token());
  }
  PlcClient anonymous() const { return PlcClient(plcd_->channel()); }
  const PlcClient& admin() const { return *admin_; }

 private:
  ScratchDir dir_;
  std::optional<PlcdProcess> plcd_;
  std::optional<PlcClient> admin_;
};

}  // namespace

TEST_CASE_METHOD(PlcFixture, "RequestSite makes a pending site and PI; ApproveSite enables both",
                 "[plc][pg][join]") {
  Seeder seed(*this);
  seed.site("mit");
  auto otherPi = seed.person("pi@mit.edu", "mit", {"pi"});

  auto [status, site] =
      anonymous().call(&A::RequestSite, siteRequest("princeton", "larry@princeton.edu"));
  REQUIRE_OK(status);
  CHECK_FALSE(site.enabled());
  CHECK(site.pending());
  CHECK(site.requested_at() >= unixNow() - 60);
  CHECK(site.tech_contact_name() == "Terry Tech");
  CHECK(site.tech_contact_email() == "tech@princeton.edu");

  // The PI exists, disabled, with role pi at the site, and cannot log in.
  pb::GetPersonsRequest who;
  who.add_emails("larry@princeton.edu");
  auto [s1, persons] = admin().call(&A::GetPersons, who);
  REQUIRE_OK(s1);
  REQUIRE(persons.persons_size() == 1);
  CHECK_FALSE(persons.persons(0).enabled());
  bool pi = false;
  for (const auto& g : persons.persons(0).roles()) {
    pi = pi || (g.role() == "pi" && g.login_base() == "princeton");
  }
  CHECK(pi);
  CHECK_STATUS(login(*this, "larry@princeton.edu", kPiPassword), StatusCode::PERMISSION_DENIED,
               "disabled");
  // The password is never recorded.
  CHECK(
      count(seed, "SELECT count(*) FROM events WHERE method = 'RequestSite' AND arguments LIKE '%" +
                      std::string(kPiPassword) + "%'") == 0);

  // Pending sites: admins see them; other people do not, asked or not.
  CHECK(siteNames(admin(), /*pending_only=*/true) == std::vector<std::string>{"princeton"});
  CHECK(siteNames(admin(), /*pending_only=*/false).size() == 2);
  CHECK(siteNames(otherPi, /*pending_only=*/false) == std::vector<std::string>{"mit"});
  CHECK(siteNames(otherPi, /*pending_only=*/false, {"princeton"}).empty());
  CHECK(siteNames(otherPi, /*pending_only=*/true).empty());

  // Only ApproveSite enables it, and only an admin may.
  pb::ApproveSiteRequest approve;
  approve.set_login_base("princeton");
  CHECK_STATUS(otherPi.call(&A::ApproveSite, approve).first, StatusCode::PERMISSION_DENIED,
               "admin");
  CHECK_STATUS(anonymous().call(&A::ApproveSite, approve).first, StatusCode::UNAUTHENTICATED, "");
  pb::UpdateSiteRequest enable;
  enable.set_login_base("princeton");
  enable.set_enabled(true);
  CHECK_STATUS(admin().call(&A::UpdateSite, enable).first, StatusCode::FAILED_PRECONDITION,
               "plcctl site approve princeton");
  CHECK(siteNames(admin(), /*pending_only=*/true) == std::vector<std::string>{"princeton"});

  auto [s2, approved] = admin().call(&A::ApproveSite, approve);
  REQUIRE_OK(s2);
  CHECK(approved.enabled());
  CHECK_FALSE(approved.pending());
  CHECK(approved.requested_at() == site.requested_at());
  CHECK(siteNames(admin(), /*pending_only=*/true).empty());
  CHECK(siteNames(otherPi, /*pending_only=*/false).size() == 2);

  auto larry = loginAs("larry@princeton.edu", kPiPassword);
  auto [s3, me] = larry.call(&pb::Auth::Stub::WhoAmI, pb::Empty());
  REQUIRE_OK(s3);
  CHECK(me.sites_size() == 1);

  CHECK_STATUS(admin().call(&A::ApproveSite, approve).first, StatusCode::FAILED_PRECONDITION,
               "not pending: it was approved");
  approve.set_login_base("mit");
  CHECK_STATUS(admin().call(&A::ApproveSite, approve).first, StatusCode::FAILED_PRECONDITION,
               "nobody requested it");
  approve.set_login_base("nosuch");
  CHECK_STATUS(admin().call(&A::ApproveSite, approve).first, StatusCode::NOT_FOUND, "nosuch");
}

TEST_CASE_METHOD(PlcFixture, "RequestSite refuses duplicates and bad input, changing nothing",
                 "[plc][pg][join]") {
  Seeder seed(*this);
  seed.site("mit");
  seed.person("pi@mit.edu", "mit", {"pi"});
  // From an admin's token: not charged to the address, so the limiter stays out of it.
  const auto& c = admin();
  REQUIRE_OK(c.call(&A::RequestSite, siteRequest("princeton", "larry@princeton.edu")).first);
  auto sites = count(seed, "SELECT count(*) FROM sites");
  auto persons = count(seed, "SELECT count(*) FROM persons");
  auto version = count(seed, "SELECT version FROM plc_state");

  CHECK_STATUS(c.call(&A::RequestSite, siteRequest("mit", "new@mit.edu")).first,
               StatusCode::ALREADY_EXISTS, "site mit already exists");
  CHECK_STATUS(c.call(&A::RequestSite, siteRequest("princeton", "other@princeton.edu")).first,
               StatusCode::ALREADY_EXISTS, "already requested");
  CHECK_STATUS(c.call(&A::RequestSite, siteRequest("harvard", "PI@mit.edu")).first,
               StatusCode::ALREADY_EXISTS, "a person with email PI@mit.edu already exists");

  auto bad = [&](auto edit, const char* message) {
    auto r = siteRequest("harvard", "h@harvard.edu");
    edit(r);
    CHECK_STATUS(c.call(&A::RequestSite, r).first, StatusCode::INVALID_ARGUMENT, message);
  };
  bad([](auto& r) { r.set_login_base("Harvard!"); }, "login_base");
  bad([](auto& r) { r.set_name(""); }, "name is required");
  bad([](auto& r) { r.set_url(""); }, "url");
  bad([](auto& r) { r.set_pi_email("not-an-email"); }, "pi_email: email");
  bad([](auto& r) { r.set_pi_first_name(""); }, "pi_first_name is required");
  bad([](auto& r) { r.set_pi_password("short"); }, "pi_password: password must be 8");
  bad([](auto& r) { r.set_tech_contact_name(""); }, "tech_contact_name is required");
  bad([](auto& r) { r.set_tech_contact_email(""); }, "tech_contact_email: email");

  CHECK(count(seed, "SELECT count(*) FROM sites") == sites);
  CHECK(count(seed, "SELECT count(*) FROM persons") == persons);
  CHECK(count(seed, "SELECT version FROM plc_state") == version);
}

TEST_CASE_METHOD(PlcFixture, "DeleteSite rejects a request, and the PI's new account goes with it",
                 "[plc][pg][join]") {
  Seeder seed(*this);
  REQUIRE_OK(
      anonymous().call(&A::RequestSite, siteRequest("princeton", "larry@princeton.edu")).first);
  pb::DeleteSiteRequest reject;
  reject.set_login_base("princeton");
  REQUIRE_OK(admin().call(&A::DeleteSite, reject).first);
  CHECK(siteNames(admin(), /*pending_only=*/true).empty());
  CHECK(count(seed,
              "SELECT count(*) FROM persons WHERE email = 'larry@princeton.edu'"
              " AND deleted_at IS NULL") == 0);
  // The same PI may ask again, for the same login_base.
  auto [status, again] =
      anonymous().call(&A::RequestSite, siteRequest("princeton", "larry@princeton.edu"));
  REQUIRE_OK(status);
  CHECK(again.pending());
}

TEST_CASE_METHOD(PlcFixture, "RequestSite: the pending-site cap and the per-address limit refuse",
                 "[plc][pg][join]") {
  Seeder seed(*this);
  ConfiguredPlcd plcd(
      *this, "max_pending_sites = 2\njoin_source_burst = 4\njoin_source_refill_s = 3600\n");
  auto anon = plcd.anonymous();
  REQUIRE_OK(anon.call(&A::RequestSite, siteRequest("one", "pi@one.edu")).first);
  REQUIRE_OK(anon.call(&A::RequestSite, siteRequest("two", "pi@two.edu")).first);
  auto sites = count(seed, "SELECT count(*) FROM sites");
  CHECK_STATUS(anon.call(&A::RequestSite, siteRequest("three", "pi@three.edu")).first,
               StatusCode::RESOURCE_EXHAUSTED, "max_pending_sites is 2");
  CHECK(count(seed, "SELECT count(*) FROM sites") == sites);

  // Once an admin handles one, a request fits again; it is the address's last.
  pb::ApproveSiteRequest approve;
  approve.set_login_base("one");
  REQUIRE_OK(plcd.admin().call(&A::ApproveSite, approve).first);
  REQUIRE_OK(anon.call(&A::RequestSite, siteRequest("three", "pi@three.edu")).first);

  // The address has used its 4 calls: refused before anything is looked at,
  // RegisterPerson alike; only the first refusal is recorded.
  for (int i = 0; i < 3; ++i) {
    CHECK_STATUS(anon.call(&A::RequestSite, siteRequest("four", "pi@four.edu")).first,
                 StatusCode::RESOURCE_EXHAUSTED, "too many site requests and registrations");
  }
  CHECK_STATUS(anon.call(&A::RegisterPerson, registration("u@one.edu", "one")).first,
               StatusCode::RESOURCE_EXHAUSTED, "too many site requests and registrations");
  CHECK(count(seed, "SELECT count(*) FROM sites WHERE login_base = 'four'") == 0);
  CHECK(count(seed, "SELECT count(*) FROM persons WHERE email = 'u@one.edu'") == 0);
  CHECK(count(seed,
              "SELECT count(*) FROM events WHERE method IN ('RequestSite', 'RegisterPerson')"
              " AND message LIKE 'too many site requests%'") == 1);

  // A caller with a valid token is not charged to the address.
  REQUIRE_OK(plcd.admin().call(&A::RegisterPerson, registration("u@one.edu", "one")).first);
}

TEST_CASE_METHOD(PlcFixture, "RegisterPerson: a disabled user that a PI of the site enables",
                 "[plc][pg][join]") {
  Seeder seed(*this);
  seed.site("princeton");
  seed.site("mit");
  auto alice = seed.person("alice@princeton.edu", "princeton", {"pi"});
  auto bob = seed.person("bob@mit.edu", "mit", {"pi"});
  REQUIRE_OK(anonymous().call(&A::RequestSite, siteRequest("harvard", "pi@harvard.edu")).first);

  auto [status, carol] =
      anonymous().call(&A::RegisterPerson, registration("carol@princeton.edu", "princeton"));
  REQUIRE_OK(status);
  CHECK_FALSE(carol.enabled());
  REQUIRE(carol.roles_size() == 1);
  CHECK(carol.roles(0).role() == "user");
  CHECK(carol.roles(0).login_base() == "princeton");
  CHECK(carol.primary_site() == "princeton");
  CHECK_STATUS(login(*this, "carol@princeton.edu", "registered-0"), StatusCode::PERMISSION_DENIED,
               "disabled");

  // Refused, changing nothing: a pending site, an unknown one, a taken email, bad input.
  auto persons = count(seed, "SELECT count(*) FROM persons");
  CHECK_STATUS(anonymous().call(&A::RegisterPerson, registration("d@harvard.edu", "harvard")).first,
               StatusCode::FAILED_PRECONDITION, "site harvard is not enabled");
  CHECK_STATUS(anonymous().call(&A::RegisterPerson, registration("d@nosuch.edu", "nosuch")).first,
               StatusCode::NOT_FOUND, "no site with login_base 'nosuch'");
  CHECK_STATUS(
      anonymous().call(&A::RegisterPerson, registration("Carol@princeton.edu", "princeton")).first,
      StatusCode::ALREADY_EXISTS, "already exists");
  auto weak = registration("e@princeton.edu", "princeton");
  weak.set_password("short");
  CHECK_STATUS(anonymous().call(&A::RegisterPerson, weak).first, StatusCode::INVALID_ARGUMENT,
               "password must be 8");
  CHECK(count(seed, "SELECT count(*) FROM persons") == persons);

  // pending_only: the PI sees the accounts awaiting them at their site, a PI of
  // another site does not; an admin sees every one (the requested site's PI too).
  CHECK(pendingPersons(alice) == std::vector<std::string>{"carol@princeton.edu"});
  CHECK(pendingPersons(bob).empty());
  CHECK(pendingPersons(admin()) ==
        std::vector<std::string>{"carol@princeton.edu", "pi@harvard.edu"});

  // A PI of another site may not enable her; her own site's PI may.
  pb::UpdatePersonRequest enable;
  enable.set_email("carol@princeton.edu");
  enable.set_enabled(true);
  CHECK_STATUS(bob.call(&A::UpdatePerson, enable).first, StatusCode::PERMISSION_DENIED,
               "role pi at every one of their sites");
  auto [s2, enabled] = alice.call(&A::UpdatePerson, enable);
  REQUIRE_OK(s2);
  CHECK(enabled.enabled());
  CHECK(pendingPersons(alice).empty());
  auto carolClient = loginAs("carol@princeton.edu", "registered-0");

  // Granting stays "never above your own": the PI may make her pi, never admin;
  // she (a user) may not make herself tech.
  auto roleRequest = [](const std::string& role) {
    pb::PersonRoleRequest r;
    r.set_email("carol@princeton.edu");
    r.set_role(role);
    r.set_login_base("princeton");
    return r;
  };
  auto roles = count(seed, "SELECT count(*) FROM person_roles");
  CHECK_STATUS(alice.call(&A::AddRoleToPerson, roleRequest("admin")).first,
               StatusCode::PERMISSION_DENIED, "admin");
  CHECK_STATUS(carolClient.call(&A::AddRoleToPerson, roleRequest("tech")).first,
               StatusCode::PERMISSION_DENIED, "");
  CHECK(count(seed, "SELECT count(*) FROM person_roles") == roles);
  CHECK_OK(alice.call(&A::AddRoleToPerson, roleRequest("pi")).first);
}

TEST_CASE_METHOD(PlcFixture, "RegisterPerson: at most max_pending_persons_per_site await a PI",
                 "[plc][pg][join]") {
  Seeder seed(*this);
  seed.site("princeton");
  ConfiguredPlcd plcd(*this, "max_pending_persons_per_site = 2\njoin_source_burst = 100\n");
  auto anon = plcd.anonymous();
  REQUIRE_OK(anon.call(&A::RegisterPerson, registration("a@princeton.edu", "princeton")).first);
  REQUIRE_OK(anon.call(&A::RegisterPerson, registration("b@princeton.edu", "princeton")).first);
  CHECK_STATUS(anon.call(&A::RegisterPerson, registration("c@princeton.edu", "princeton")).first,
               StatusCode::RESOURCE_EXHAUSTED, "max_pending_persons_per_site is 2");
  CHECK(count(seed, "SELECT count(*) FROM persons WHERE email = 'c@princeton.edu'") == 0);

  pb::UpdatePersonRequest enable;
  enable.set_email("a@princeton.edu");
  enable.set_enabled(true);
  REQUIRE_OK(plcd.admin().call(&A::UpdatePerson, enable).first);
  CHECK_OK(anon.call(&A::RegisterPerson, registration("c@princeton.edu", "princeton")).first);
}

TEST_CASE_METHOD(PlcFixture, "SliceInfo.max_expires_at is the latest expiry RenewSlice accepts",
                 "[plc][pg][join]") {
  Seeder seed(*this);
  seed.site("princeton");
  auto pi = seed.person("pi@princeton.edu", "princeton", {"pi"});
  auto member = seed.person("member@princeton.edu", "princeton", {"user"});
  auto stranger = seed.person("stranger@princeton.edu", "princeton", {"user"});

  pb::AddSliceRequest add;
  add.set_name("princeton_cdn");
  add.set_description("a CDN");
  add.set_url("https://cdn.princeton.edu/");
  auto [s0, added] = pi.call(&pb::Slice::Stub::AddSlice, add);
  REQUIRE_OK(s0);
  CHECK(added.max_expires_at() >= unixNow() + 8 * 7 * 24 * 3600 - 60);
  pb::SliceMembersRequest members;
  members.set_name("princeton_cdn");
  members.add_emails("member@princeton.edu");
  REQUIRE_OK(pi.call(&pb::Slice::Stub::AddSliceMembers, members).first);

  auto bound = [](const PlcClient& c, const std::string& name = "princeton_cdn") {
    pb::GetSlicesRequest r;
    r.add_names(name);
    auto [status, slices] = c.call(&pb::Slice::Stub::GetSlices, r);
    REQUIRE_OK(status);
    REQUIRE(slices.slices_size() == 1);
    return slices.slices(0).max_expires_at();
  };
  auto renew = [](const PlcClient& c, std::int64_t expires_at) {
    pb::RenewSliceRequest r;
    r.set_name("princeton_cdn");
    r.set_expires_at(expires_at);
    return c.call(&pb::Slice::Stub::RenewSlice, r);
  };

  // One second past the bound is refused. (Should the clock pass a second between
  // reading the bound and renewing, the bound moved with it: read it again.)
  for (int attempt = 0;; ++attempt) {
    auto latest = bound(pi);
    CHECK(latest >= unixNow() + 8 * 7 * 24 * 3600 - 60);
    auto [status, renewed] = renew(pi, latest + 1);
    if (!status.ok()) {
      CHECK_STATUS(status, StatusCode::INVALID_ARGUMENT, "the latest allowed is");
      break;
    }
    REQUIRE(attempt < 5);
  }
  auto latest = bound(pi);
  auto [s1, renewed] = renew(pi, latest);
  REQUIRE_OK(s1);
  CHECK(renewed.expires_at() == latest);
  CHECK(renewed.max_expires_at() >= latest);

  // A member has the same bound, a user who is not one none; an admin has none of
  // their own: the latest time a request may carry, which RenewSlice accepts.
  CHECK(bound(member) >= latest);
  CHECK(bound(member) <= bound(pi));
  CHECK(bound(stranger) == 0);
  CHECK_STATUS(renew(stranger, unixNow() + 3600).first, StatusCode::PERMISSION_DENIED, "");
  CHECK(bound(admin()) == kLatestRequestTime);
  auto [s2, far] = renew(admin(), kLatestRequestTime);
  REQUIRE_OK(s2);
  CHECK(far.expires_at() == kLatestRequestTime);

  // Without a description, non-admins may not renew at all: bound 0.
  pb::UpdateSliceRequest undescribe;
  undescribe.set_name("princeton_cdn");
  undescribe.set_description("");
  REQUIRE_OK(pi.call(&pb::Slice::Stub::UpdateSlice, undescribe).first);
  CHECK(bound(pi) == 0);
  CHECK_STATUS(renew(pi, unixNow() + 3600).first, StatusCode::FAILED_PRECONDITION, "description");
  CHECK(bound(admin()) == kLatestRequestTime);
}

TEST_CASE("through the JSON portal, joining is limited per client address, not per portal",
          "[plc][pg][join][json]") {
  PlcFixture fix(PlcFixtureOptions{.portal = true, .portalRoot = {}});
  Seeder seed(fix);
  auto post = [&](const std::string& interface, const std::string& method,
                  const std::string& body) {
    return shellOutput("curl -sS --interface " + interface +
                       " -X POST -H 'Content-Type: application/json' --data-binary '" + body +
                       "' -w '\\n%{http_code}' http://" + fix.plcd().portalAddress() +
                       "/planetlab.v1.Admin/" + method);
  };
  // join_source_burst (10) calls from 127.0.0.2, refused or not, use its budget.
  const std::string unknownSite =
      R"({"email":"x@nosuch.edu","first_name":"X","last_name":"Y","password":"registered-0",)"
      R"("login_base":"nosuch"})";
  for (int i = 0; i < 10; ++i) {
    CHECK_THAT(post("127.0.0.2", "RegisterPerson", unknownSite), Catch::EndsWith("404"));
  }
  CHECK_THAT(post("127.0.0.2", "RegisterPerson", unknownSite),
             Catch::Contains("too many site requests and registrations from 127.0.0.2") &&
                 Catch::EndsWith("429"));
  // 127.0.0.1, through the same portal, still asks for a site.
  auto requested = post("127.0.0.1", "RequestSite",
                        R"({"login_base":"mit","name":"MIT","url":"https://www.mit.edu/",)"
                        R"("pi_email":"pi@mit.edu","pi_first_name":"Pat","pi_last_name":"Smith",)"
                        R"("pi_password":"pi-password-0","tech_contact_name":"Pat Smith",)"
                        R"("tech_contact_email":"pi@mit.edu"})");
  CHECK_THAT(requested, Catch::Contains("\"pending\":true") && Catch::EndsWith("200"));
  CHECK(count(seed, "SELECT count(*) FROM sites WHERE login_base = 'mit'") == 1);
}
