// The Admin service method by method, against a real PostgreSQL and plcd: each
// method's happy path, and for bad input and missing rights the status code a
// caller gets and that nothing changed (PLC's state snapshot and its state
// version are the same before and after the refused call).
#include <catch2/catch.hpp>
#include <initializer_list>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "proto/node_protocol.h"
#include "proto/ticket.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/plc_node_login.h"
#include "tests/support/ssh_key.h"

namespace {

using namespace planetlab::v1;
using plng::test::PlcClient;
using plng::test::PlcFixture;
using Code = grpc::StatusCode;
using A = Admin::Stub;

constexpr const char* kPassword = "password-1234";

// A well-formed OpenSSH ed25519 public key line; `seed` makes it distinct.
std::string sshKey(char seed, const std::string& comment = "test@laptop") {
  plng::ticket::PrivateKey secret{};
  secret.fill(static_cast<std::uint8_t>(seed));
  // A real point: PLC checks keys.
  return plng::test::sshEd25519KeyLine(plng::ticket::publicKeyOf(secret), comment);
}

std::string bytesOf(const plng::ticket::PublicKey& key) {
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

class AdminTest : public PlcFixture {
 public:
  Site addSite(const std::string& login_base) {
    AddSiteRequest r;
    r.set_login_base(login_base);
    r.set_name(login_base + " university");
    r.set_url("https://www." + login_base + ".edu/");
    auto [status, site] = admin().call(&A::AddSite, r);
    REQUIRE_OK(status);
    return site;
  }

  Person addPerson(const std::string& email, const std::string& login_base, bool enable = true) {
    AddPersonRequest r;
    r.set_email(email);
    r.set_first_name("First");
    r.set_last_name("Last");
    r.set_password(kPassword);
    r.set_login_base(login_base);
    auto [status, person] = admin().call(&A::AddPerson, r);
    REQUIRE_OK(status);
    if (enable) {
      UpdatePersonRequest u;
      u.set_email(email);
      u.set_enabled(true);
      auto [s2, updated] = admin().call(&A::UpdatePerson, u);
      REQUIRE_OK(s2);
      person = updated;
    }
    return person;
  }

  void grant(const std::string& email, const std::string& role, const std::string& login_base) {
    REQUIRE_OK(admin().call(&A::AddRoleToPerson, roleRequest(email, role, login_base)).first);
  }

  // Makes `email` a member and PI of `login_base` too (joining takes an admin).
  void makePiAt(const std::string& email, const std::string& login_base) {
    REQUIRE_OK(admin().call(&A::AddPersonToSite, personSite(email, login_base)).first);
    grant(email, "pi", login_base);
  }

  // An enabled person at `login_base` with `roles` there (besides user), logged in.
  PlcClient person(const std::string& email, const std::string& login_base,
                   std::initializer_list<const char*> roles = {}) {
    addPerson(email, login_base);
    for (const char* role : roles) grant(email, role, login_base);
    return loginAs(email, kPassword);
  }

  static PersonSiteRequest personSite(const std::string& email, const std::string& login_base) {
    PersonSiteRequest r;
    r.set_email(email);
    r.set_login_base(login_base);
    return r;
  }

  static PersonRoleRequest roleRequest(const std::string& email, const std::string& role,
                                       const std::string& login_base) {
    PersonRoleRequest r;
    r.set_email(email);
    r.set_role(role);
    r.set_login_base(login_base);
    return r;
  }

  Node addNode(const std::string& hostname, const std::string& login_base) {
    auto pair = plng::ticket::generateKeyPair();
    node_keys_[hostname] = pair.private_key;
    AddNodeRequest r;
    r.set_hostname(hostname);
    r.set_login_base(login_base);
    r.set_public_key(bytesOf(pair.public_key));
    auto [status, node] = admin().call(&A::AddNode, r);
    REQUIRE_OK(status);
    return node;
  }

  // Logs in as the node with its key (challenge–response); returns the status.
  grpc::Status nodeLogin(const std::string& hostname, PlcClient* client) {
    auto anon = anonymous();
    std::string token;
    auto status = plng::test::nodeLogin(anon, hostname, node_keys_.at(hostname), &token);
    if (status.ok()) *client = anon.withToken(token);
    return status;
  }

  PlcClient nodeClient(const std::string& hostname) {
    PlcClient client = anonymous();
    REQUIRE_OK(nodeLogin(hostname, &client));
    return client;
  }

  // First column of the first row of `query` ("" when there is no row).
  std::string sql(const std::string& query) {
    pqxx::connection c(connectionString());
    pqxx::nontransaction tx(c);
    auto rows = tx.exec(query);
    return rows.empty() || rows[0][0].is_null() ? "" : rows[0][0].as<std::string>();
  }

  // Everything the Admin service shows, plus PLC's state version.
  std::string snapshot() {
    std::string out;
    auto add = [&](const google::protobuf::Message& m, const grpc::Status& s) {
      REQUIRE_OK(s);
      out += m.ShortDebugString() + "\n";
    };
    GetSitesRequest sites;
    sites.set_include_deleted(true);
    auto r1 = admin().call(&A::GetSites, sites);
    add(r1.second, r1.first);
    auto r2 = admin().call(&A::GetOrganizations, GetOrganizationsRequest());
    add(r2.second, r2.first);
    GetPersonsRequest persons;
    persons.set_include_deleted(true);
    auto r3 = admin().call(&A::GetPersons, persons);
    add(r3.second, r3.first);
    GetNodesRequest nodes;
    nodes.set_include_deleted(true);
    auto r4 = admin().call(&A::GetNodes, nodes);
    add(r4.second, r4.first);
    auto r5 = admin().call(&A::GetNodeGroups, GetNodeGroupsRequest());
    add(r5.second, r5.first);
    auto r6 = admin().call(&A::GetTagTypes, GetTagTypesRequest());
    add(r6.second, r6.first);
    auto r7 = admin().call(&A::GetBlacklist, Empty());
    add(r7.second, r7.first);
    auto r8 = admin().call(&A::GetBlacklistedKeys, Empty());
    add(r8.second, r8.first);
    auto r9 = admin().call(&A::GetPlcKeys, Empty());
    add(r9.second, r9.first);
    out += "version " + sql("SELECT version FROM plc_state") + "\n";
    out += "sessions " + sql("SELECT count(*) FROM sessions WHERE revoked_at IS NULL") + "\n";
    out += "members " + sql("SELECT count(*) FROM slice_members") + "\n";
    return out;
  }

  Person getPerson(const std::string& email) {
    GetPersonsRequest r;
    r.add_emails(email);
    r.set_include_deleted(true);
    auto [status, resp] = admin().call(&A::GetPersons, r);
    REQUIRE_OK(status);
    REQUIRE(resp.persons_size() == 1);
    return resp.persons(0);
  }

  Node getNode(const std::string& hostname) {
    GetNodesRequest r;
    r.add_hostnames(hostname);
    r.set_include_deleted(true);
    auto [status, resp] = admin().call(&A::GetNodes, r);
    REQUIRE_OK(status);
    REQUIRE(resp.nodes_size() == 1);
    return resp.nodes(0);
  }

  // A slice row made directly in the database: the Slice service is tested elsewhere.
  void addSliceRow(const std::string& name, const std::string& login_base) {
    sql("INSERT INTO slices (name, site_id, instantiation, expires_at, max_nodes)"
        " SELECT '" +
        name +
        "', site_id, 'plc-instantiated', now() + interval '1 day', 10 FROM sites"
        " WHERE login_base = '" +
        login_base + "' AND deleted_at IS NULL RETURNING slice_id");
  }
  void addSliceMember(const std::string& slice, const std::string& email) {
    sql("INSERT INTO slice_members SELECT s.slice_id, p.person_id FROM slices s, persons p"
        " WHERE s.name = '" +
        slice + "' AND p.email = '" + email + "' AND p.deleted_at IS NULL RETURNING 1");
  }
  void bindSliceNode(const std::string& slice, const std::string& hostname) {
    sql("INSERT INTO slice_nodes SELECT s.slice_id, n.node_id FROM slices s, nodes n"
        " WHERE s.name = '" +
        slice + "' AND n.hostname = '" + hostname + "' AND n.deleted_at IS NULL RETURNING 1");
  }

 private:
  std::map<std::string, plng::ticket::PrivateKey> node_keys_;
};

std::vector<std::string> namesOf(const google::protobuf::RepeatedPtrField<std::string>& field) {
  return {field.begin(), field.end()};
}

bool hasRole(const Person& p, const std::string& role, const std::string& login_base) {
  for (const auto& g : p.roles()) {
    if (g.role() == role && g.login_base() == login_base) return true;
  }
  return false;
}

}  // namespace

// A refused call: the status, and an unchanged PLC.
#define CHECK_REFUSED(call_expr, code, message_part) \
  do {                                               \
    auto before_ = snapshot();                       \
    grpc::Status status_ = (call_expr);              \
    CHECK_STATUS(status_, (code), (message_part));   \
    CHECK(snapshot() == before_);                    \
  } while (false)

// ------------------------------------------------------------------- sites

TEST_CASE_METHOD(AdminTest, "AddSite, GetSites, UpdateSite", "[plc][pg][admin]") {
  auto site = addSite("princeton");
  CHECK(site.site_id() > 0);
  CHECK(site.login_base() == "princeton");
  CHECK(site.enabled());
  CHECK(site.max_slices() == 10);     // config default
  CHECK(site.max_slivers() == 1000);  // config default
  CHECK(site.created_at() > 0);
  CHECK(site.deleted_at() == 0);

  AddSiteRequest r;
  r.set_login_base("mit");
  r.set_name("MIT");
  r.set_enabled(false);
  r.set_max_slices(3);
  r.set_max_slivers(7);
  auto [s_mit, mit] = admin().call(&A::AddSite, r);
  REQUIRE_OK(s_mit);
  CHECK_FALSE(mit.enabled());
  CHECK(mit.max_slices() == 3);
  CHECK(mit.max_slivers() == 7);

  SECTION("bad input and duplicates change nothing") {
    CHECK_REFUSED(admin().call(&A::AddSite, r).first, Code::ALREADY_EXISTS, "mit");
    auto bad = r;
    bad.set_login_base("MIT!");
    CHECK_REFUSED(admin().call(&A::AddSite, bad).first, Code::INVALID_ARGUMENT, "login_base");
    bad = r;
    bad.set_login_base("cmu");
    bad.set_url("ftp://cmu.edu");
    CHECK_REFUSED(admin().call(&A::AddSite, bad).first, Code::INVALID_ARGUMENT, "url");
    bad.set_url("");
    bad.set_max_slices(-1);
    CHECK_REFUSED(admin().call(&A::AddSite, bad).first, Code::INVALID_ARGUMENT, "max_slices");
    bad.clear_max_slices();
    bad.set_name("");
    CHECK_REFUSED(admin().call(&A::AddSite, bad).first, Code::INVALID_ARGUMENT, "name");
  }

  SECTION("only admins add sites; anonymous callers must log in") {
    auto pi = person("pi@princeton.edu", "princeton", {"pi"});
    auto cmu = r;
    cmu.set_login_base("cmu");
    CHECK_REFUSED(pi.call(&A::AddSite, cmu).first, Code::PERMISSION_DENIED, "admin");
    CHECK_REFUSED(anonymous().call(&A::AddSite, cmu).first, Code::UNAUTHENTICATED, "");
  }

  SECTION("GetSites: any authenticated caller, filtered by login_base") {
    addNode("node1.princeton.edu", "princeton");
    auto user = person("user@princeton.edu", "princeton");
    auto node = nodeClient("node1.princeton.edu");
    for (auto* client : {&user, &node}) {
      auto [status, all] = client->call(&A::GetSites, GetSitesRequest());
      REQUIRE_OK(status);
      REQUIRE(all.sites_size() == 2);
      CHECK(all.sites(0).login_base() == "mit");
      CHECK(all.sites(1).login_base() == "princeton");
    }
    GetSitesRequest one;
    one.add_login_bases("princeton");
    auto [status, filtered] = user.call(&A::GetSites, one);
    REQUIRE_OK(status);
    REQUIRE(filtered.sites_size() == 1);
    CHECK(filtered.sites(0).name() == "princeton university");
    CHECK_STATUS(anonymous().call(&A::GetSites, one).first, Code::UNAUTHENTICATED, "");
  }

  SECTION("UpdateSite: admins change anything, PIs only name and url") {
    UpdateSiteRequest u;
    u.set_login_base("princeton");
    u.set_max_slices(20);
    u.set_enabled(false);
    auto [s1, updated] = admin().call(&A::UpdateSite, u);
    REQUIRE_OK(s1);
    CHECK(updated.max_slices() == 20);
    CHECK_FALSE(updated.enabled());
    CHECK(updated.name() == "princeton university");  // unset fields stay

    auto pi = person("pi@princeton.edu", "princeton", {"pi"});
    UpdateSiteRequest by_pi;
    by_pi.set_login_base("princeton");
    by_pi.set_name("Princeton University");
    by_pi.set_url("https://princeton.edu/");
    auto [s2, renamed] = pi.call(&A::UpdateSite, by_pi);
    REQUIRE_OK(s2);
    CHECK(renamed.name() == "Princeton University");
    CHECK(renamed.url() == "https://princeton.edu/");
    CHECK(renamed.max_slices() == 20);

    auto quota = by_pi;
    quota.set_max_slices(100);
    CHECK_REFUSED(pi.call(&A::UpdateSite, quota).first, Code::PERMISSION_DENIED, "admin");
    auto enable = by_pi;
    enable.set_enabled(true);
    CHECK_REFUSED(pi.call(&A::UpdateSite, enable).first, Code::PERMISSION_DENIED, "admin");
    auto other = by_pi;
    other.set_login_base("mit");
    CHECK_REFUSED(pi.call(&A::UpdateSite, other).first, Code::PERMISSION_DENIED, "pi");
    auto user = person("user@princeton.edu", "princeton");
    CHECK_REFUSED(user.call(&A::UpdateSite, by_pi).first, Code::PERMISSION_DENIED, "pi");

    auto bad = by_pi;
    bad.set_url("not a url");
    CHECK_REFUSED(pi.call(&A::UpdateSite, bad).first, Code::INVALID_ARGUMENT, "url");
    bad = u;
    bad.set_max_slivers(-5);
    CHECK_REFUSED(admin().call(&A::UpdateSite, bad).first, Code::INVALID_ARGUMENT, "max_slivers");
    bad = u;
    bad.set_login_base("nosuchsite");
    CHECK_REFUSED(admin().call(&A::UpdateSite, bad).first, Code::NOT_FOUND, "nosuchsite");
  }
}

TEST_CASE_METHOD(AdminTest, "DeleteSite marks the site, its slices and nodes deleted",
                 "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  addNode("node1.princeton.edu", "princeton");
  addNode("node1.mit.edu", "mit");
  addSliceRow("princeton_codeen", "princeton");
  addSliceRow("mit_chord", "mit");
  bindSliceNode("princeton_codeen", "node1.princeton.edu");
  bindSliceNode("mit_chord", "node1.princeton.edu");
  bindSliceNode("mit_chord", "node1.mit.edu");
  PlcClient node = nodeClient("node1.princeton.edu");
  CHECK_OK(node.call(&A::GetSites, GetSitesRequest()).first);

  DeleteSiteRequest d;
  d.set_login_base("princeton");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  CHECK_REFUSED(pi.call(&A::DeleteSite, d).first, Code::PERMISSION_DENIED, "admin");

  REQUIRE_OK(admin().call(&A::DeleteSite, d).first);

  auto [s1, live] = admin().call(&A::GetSites, GetSitesRequest());
  REQUIRE_OK(s1);
  REQUIRE(live.sites_size() == 1);
  CHECK(live.sites(0).login_base() == "mit");

  GetSitesRequest history;
  history.set_include_deleted(true);
  history.add_login_bases("princeton");
  auto [s2, deleted] = admin().call(&A::GetSites, history);
  REQUIRE_OK(s2);
  REQUIRE(deleted.sites_size() == 1);
  CHECK(deleted.sites(0).deleted_at() > 0);
  CHECK_FALSE(deleted.sites(0).enabled());

  CHECK(getNode("node1.princeton.edu").deleted_at() > 0);
  CHECK(getNode("node1.mit.edu").deleted_at() == 0);
  CHECK(sql("SELECT deleted_at IS NOT NULL FROM slices WHERE name = 'princeton_codeen'") == "t");
  CHECK(sql("SELECT deleted_at IS NULL FROM slices WHERE name = 'mit_chord'") == "t");
  // The live slice of another site no longer runs on the deleted node.
  CHECK(namesOf(getNode("node1.mit.edu").slices()) == std::vector<std::string>{"mit_chord"});
  CHECK(sql("SELECT count(*) FROM slice_nodes sn JOIN slices s USING (slice_id)"
            " WHERE s.name = 'mit_chord'") == "1");
  // The node's session ended with it.
  CHECK_STATUS(node.call(&A::GetSites, GetSitesRequest()).first, Code::UNAUTHENTICATED, "");

  CHECK_REFUSED(admin().call(&A::DeleteSite, d).first, Code::NOT_FOUND, "princeton");
  // The login_base is free again for a new site; the old one stays as history.
  addSite("princeton");
  auto [s3, both] = admin().call(&A::GetSites, history);
  REQUIRE_OK(s3);
  CHECK(both.sites_size() == 2);
}

// ----------------------------------------------------------- organizations

TEST_CASE_METHOD(AdminTest, "Organizations", "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  AddOrganizationRequest add;
  add.set_name("ivy-league");
  add.set_description("old universities");
  auto [s1, org] = admin().call(&A::AddOrganization, add);
  REQUIRE_OK(s1);
  CHECK(org.name() == "ivy-league");
  CHECK(org.sites_size() == 0);

  CHECK_REFUSED(admin().call(&A::AddOrganization, add).first, Code::ALREADY_EXISTS, "ivy-league");
  auto bad = add;
  bad.set_name("Ivy League");
  CHECK_REFUSED(admin().call(&A::AddOrganization, bad).first, Code::INVALID_ARGUMENT,
                "organization name");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  auto other = add;
  other.set_name("other");
  CHECK_REFUSED(pi.call(&A::AddOrganization, other).first, Code::PERMISSION_DENIED, "admin");

  OrganizationSiteRequest link;
  link.set_organization("ivy-league");
  link.set_login_base("princeton");
  CHECK_REFUSED(pi.call(&A::AddSiteToOrganization, link).first, Code::PERMISSION_DENIED, "admin");
  auto [s2, linked] = admin().call(&A::AddSiteToOrganization, link);
  REQUIRE_OK(s2);
  CHECK(namesOf(linked.sites()) == std::vector<std::string>{"princeton"});
  CHECK_REFUSED(admin().call(&A::AddSiteToOrganization, link).first, Code::ALREADY_EXISTS,
                "already");
  auto missing = link;
  missing.set_organization("nope");
  CHECK_REFUSED(admin().call(&A::AddSiteToOrganization, missing).first, Code::NOT_FOUND, "nope");
  missing = link;
  missing.set_login_base("nosite");
  CHECK_REFUSED(admin().call(&A::AddSiteToOrganization, missing).first, Code::NOT_FOUND, "nosite");

  // Sites list their organizations; any authenticated caller reads organizations.
  GetSitesRequest sites;
  sites.add_login_bases("princeton");
  auto [s3, princeton] = pi.call(&A::GetSites, sites);
  REQUIRE_OK(s3);
  REQUIRE(princeton.sites_size() == 1);
  CHECK(namesOf(princeton.sites(0).organizations()) == std::vector<std::string>{"ivy-league"});
  GetOrganizationsRequest get;
  get.add_names("ivy-league");
  auto [s4, orgs] = pi.call(&A::GetOrganizations, get);
  REQUIRE_OK(s4);
  REQUIRE(orgs.organizations_size() == 1);
  CHECK(orgs.organizations(0).description() == "old universities");

  auto not_linked = link;
  not_linked.set_login_base("mit");
  CHECK_REFUSED(admin().call(&A::RemoveSiteFromOrganization, not_linked).first, Code::NOT_FOUND,
                "mit");
  CHECK_REFUSED(pi.call(&A::RemoveSiteFromOrganization, link).first, Code::PERMISSION_DENIED,
                "admin");
  auto [s5, unlinked] = admin().call(&A::RemoveSiteFromOrganization, link);
  REQUIRE_OK(s5);
  CHECK(unlinked.sites_size() == 0);

  DeleteOrganizationRequest del;
  del.set_name("ivy-league");
  CHECK_REFUSED(pi.call(&A::DeleteOrganization, del).first, Code::PERMISSION_DENIED, "admin");
  REQUIRE_OK(admin().call(&A::DeleteOrganization, del).first);
  auto [s6, none] = admin().call(&A::GetOrganizations, GetOrganizationsRequest());
  REQUIRE_OK(s6);
  CHECK(none.organizations_size() == 0);
  CHECK_REFUSED(admin().call(&A::DeleteOrganization, del).first, Code::NOT_FOUND, "ivy-league");
}

// ----------------------------------------------------------------- persons

TEST_CASE_METHOD(AdminTest, "AddPerson and GetPersons", "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});

  AddPersonRequest r;
  r.set_email("alice@princeton.edu");
  r.set_first_name("Alice");
  r.set_last_name("Liddell");
  r.set_password("wonderland-42");
  r.set_login_base("princeton");
  auto [s1, alice] = pi.call(&A::AddPerson, r);
  REQUIRE_OK(s1);
  CHECK(alice.email() == "alice@princeton.edu");
  CHECK_FALSE(alice.enabled());  // a PI or admin must enable the account
  CHECK(namesOf(alice.sites()) == std::vector<std::string>{"princeton"});
  CHECK(alice.primary_site() == "princeton");
  REQUIRE(alice.roles_size() == 1);
  CHECK(hasRole(alice, "user", "princeton"));
  CHECK(alice.keys_size() == 0);

  // Disabled accounts cannot log in.
  auto anon = anonymous();
  CHECK_STATUS(anon.login("alice@princeton.edu", "wonderland-42"), Code::PERMISSION_DENIED,
               "disabled");

  SECTION("bad input and duplicates change nothing") {
    auto dup = r;
    dup.set_email("ALICE@princeton.edu");
    CHECK_REFUSED(admin().call(&A::AddPerson, dup).first, Code::ALREADY_EXISTS, "exists");
    auto bad = r;
    bad.set_email("bob");
    CHECK_REFUSED(admin().call(&A::AddPerson, bad).first, Code::INVALID_ARGUMENT, "email");
    bad = r;
    bad.set_email("bob@princeton.edu");
    bad.set_password("short");
    CHECK_REFUSED(admin().call(&A::AddPerson, bad).first, Code::INVALID_ARGUMENT, "password");
    bad.set_password("long enough");
    bad.set_first_name("");
    CHECK_REFUSED(admin().call(&A::AddPerson, bad).first, Code::INVALID_ARGUMENT, "first_name");
    bad.set_first_name("Bob");
    bad.set_login_base("nosite");
    CHECK_REFUSED(admin().call(&A::AddPerson, bad).first, Code::NOT_FOUND, "nosite");
  }

  SECTION("only admins and PIs of the site add persons") {
    auto bob = r;
    bob.set_email("bob@mit.edu");
    bob.set_login_base("mit");
    CHECK_REFUSED(pi.call(&A::AddPerson, bob).first, Code::PERMISSION_DENIED, "pi");
    auto user = person("user@princeton.edu", "princeton");
    bob.set_login_base("princeton");
    CHECK_REFUSED(user.call(&A::AddPerson, bob).first, Code::PERMISSION_DENIED, "pi");
    CHECK_OK(admin().call(&A::AddPerson, bob).first);
  }

  SECTION("GetPersons: admins see everyone, others themselves and their sites' members") {
    auto carol = person("carol@mit.edu", "mit");
    auto [s2, all] = admin().call(&A::GetPersons, GetPersonsRequest());
    REQUIRE_OK(s2);
    std::vector<std::string> emails;
    for (const auto& p : all.persons()) emails.push_back(p.email());
    CHECK(emails == std::vector<std::string>{"admin@plc.test", "alice@princeton.edu",
                                             "carol@mit.edu", "pi@princeton.edu"});
    auto admin_person = all.persons(0);
    REQUIRE(admin_person.roles_size() == 1);
    CHECK(admin_person.roles(0).role() == "admin");
    CHECK(admin_person.roles(0).login_base().empty());

    auto [s3, seen_by_pi] = pi.call(&A::GetPersons, GetPersonsRequest());
    REQUIRE_OK(s3);
    emails.clear();
    for (const auto& p : seen_by_pi.persons()) emails.push_back(p.email());
    CHECK(emails == std::vector<std::string>{"alice@princeton.edu", "pi@princeton.edu"});

    auto [s4, seen_by_carol] = carol.call(&A::GetPersons, GetPersonsRequest());
    REQUIRE_OK(s4);
    REQUIRE(seen_by_carol.persons_size() == 1);
    CHECK(seen_by_carol.persons(0).email() == "carol@mit.edu");

    GetPersonsRequest by_site;
    by_site.set_login_base("mit");
    auto [s5, mit] = admin().call(&A::GetPersons, by_site);
    REQUIRE_OK(s5);
    REQUIRE(mit.persons_size() == 1);
    CHECK(mit.persons(0).email() == "carol@mit.edu");

    GetPersonsRequest by_email;
    by_email.add_emails("Alice@Princeton.edu");
    auto [s6, found] = admin().call(&A::GetPersons, by_email);
    REQUIRE_OK(s6);
    REQUIRE(found.persons_size() == 1);
    CHECK(found.persons(0).first_name() == "Alice");

    by_site.set_login_base("nosite");
    CHECK_STATUS(admin().call(&A::GetPersons, by_site).first, Code::NOT_FOUND, "nosite");

    // Nodes get keys through GetKeys, not the directory of persons.
    addNode("node1.princeton.edu", "princeton");
    CHECK_STATUS(nodeClient("node1.princeton.edu").call(&A::GetPersons, GetPersonsRequest()).first,
                 Code::PERMISSION_DENIED, "person");
  }
}

TEST_CASE_METHOD(AdminTest, "UpdatePerson", "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  auto alice = person("alice@princeton.edu", "princeton");
  REQUIRE_OK(admin().call(&A::AddPersonToSite, personSite("alice@princeton.edu", "mit")).first);

  SECTION("the person changes their names, password and primary site") {
    UpdatePersonRequest u;
    u.set_first_name("Alicia");
    u.set_password("new-password-1");
    u.set_primary_site("mit");
    auto [s1, updated] = alice.call(&A::UpdatePerson, u);  // empty email: oneself
    REQUIRE_OK(s1);
    CHECK(updated.first_name() == "Alicia");
    CHECK(updated.last_name() == "Last");
    CHECK(updated.primary_site() == "mit");
    auto anon = anonymous();
    CHECK_STATUS(anon.login("alice@princeton.edu", kPassword), Code::UNAUTHENTICATED, "");
    CHECK_OK(anon.login("alice@princeton.edu", "new-password-1"));
  }

  SECTION("enabling takes a PI of every one of the person's sites, or an admin") {
    UpdatePersonRequest u;
    u.set_email("alice@princeton.edu");
    u.set_enabled(false);
    CHECK_REFUSED(alice.call(&A::UpdatePerson, u).first, Code::PERMISSION_DENIED, "pi");
    auto mit_user = person("bob@mit.edu", "mit");
    CHECK_REFUSED(mit_user.call(&A::UpdatePerson, u).first, Code::PERMISSION_DENIED, "pi");
    // alice belongs to princeton and mit: a PI of princeton alone may not.
    CHECK_REFUSED(pi.call(&A::UpdatePerson, u).first, Code::PERMISSION_DENIED,
                  "every one of their sites");
    makePiAt("pi@princeton.edu", "mit");
    auto [s1, disabled] = pi.call(&A::UpdatePerson, u);
    REQUIRE_OK(s1);
    CHECK_FALSE(disabled.enabled());
    // A disabled person's tokens stop working at once.
    CHECK_STATUS(alice.call(&A::GetSites, GetSitesRequest()).first, Code::UNAUTHENTICATED,
                 "disabled");
    u.set_enabled(true);
    REQUIRE_OK(pi.call(&A::UpdatePerson, u).first);
    CHECK_OK(alice.call(&A::GetSites, GetSitesRequest()).first);
  }

  SECTION("PIs reset passwords of their users, never an admin's account") {
    UpdatePersonRequest u;
    u.set_email("alice@princeton.edu");
    u.set_password("reset-by-pi");
    CHECK_REFUSED(pi.call(&A::UpdatePerson, u).first, Code::PERMISSION_DENIED,
                  "every one of their sites");
    makePiAt("pi@princeton.edu", "mit");
    REQUIRE_OK(pi.call(&A::UpdatePerson, u).first);
    CHECK_OK(anonymous().login("alice@princeton.edu", "reset-by-pi"));

    REQUIRE_OK(admin().call(&A::AddPersonToSite, personSite(kAdminEmail, "princeton")).first);
    UpdatePersonRequest on_admin;
    on_admin.set_email(kAdminEmail);
    on_admin.set_first_name("Mallory");
    CHECK_REFUSED(pi.call(&A::UpdatePerson, on_admin).first, Code::PERMISSION_DENIED, "admin");
    on_admin.clear_first_name();
    on_admin.set_password("hijacked-password");
    CHECK_REFUSED(pi.call(&A::UpdatePerson, on_admin).first, Code::PERMISSION_DENIED, "admin");
  }

  SECTION("bad input changes nothing") {
    UpdatePersonRequest u;
    u.set_email("alice@princeton.edu");
    u.set_first_name("Changed");
    u.set_password("short");
    CHECK_REFUSED(pi.call(&A::UpdatePerson, u).first, Code::INVALID_ARGUMENT, "password");
    u.clear_password();
    u.set_primary_site("nosite");
    CHECK_REFUSED(pi.call(&A::UpdatePerson, u).first, Code::FAILED_PRECONDITION, "primary_site");
    u.clear_primary_site();
    u.set_last_name("");
    CHECK_REFUSED(alice.call(&A::UpdatePerson, u).first, Code::INVALID_ARGUMENT, "last_name");
    u.clear_last_name();
    u.set_email("nobody@princeton.edu");
    CHECK_REFUSED(admin().call(&A::UpdatePerson, u).first, Code::NOT_FOUND, "nobody");
    CHECK(getPerson("alice@princeton.edu").first_name() == "First");
  }
}

TEST_CASE_METHOD(AdminTest, "DeletePerson", "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  auto alice = person("alice@princeton.edu", "princeton");
  AddPersonKeyRequest key;
  key.set_key(sshKey('a'));
  REQUIRE_OK(alice.call(&A::AddPersonKey, key).first);
  addSliceRow("princeton_codeen", "princeton");
  addSliceMember("princeton_codeen", "alice@princeton.edu");

  DeletePersonRequest d;
  d.set_email("alice@princeton.edu");
  auto mit_pi = person("pi@mit.edu", "mit", {"pi"});
  CHECK_REFUSED(mit_pi.call(&A::DeletePerson, d).first, Code::PERMISSION_DENIED, "pi");
  auto bob = person("bob@princeton.edu", "princeton");
  CHECK_REFUSED(bob.call(&A::DeletePerson, d).first, Code::PERMISSION_DENIED, "pi");
  CHECK_REFUSED(alice.call(&A::DeletePerson, d).first, Code::PERMISSION_DENIED, "pi");

  REQUIRE_OK(pi.call(&A::DeletePerson, d).first);
  auto gone = getPerson("alice@princeton.edu");
  CHECK(gone.deleted_at() > 0);
  CHECK(gone.keys_size() == 0);
  CHECK(sql("SELECT count(*) FROM slice_members") == "0");
  CHECK_STATUS(alice.call(&A::GetSites, GetSitesRequest()).first, Code::UNAUTHENTICATED, "");
  GetPersonsRequest live;
  live.add_emails("alice@princeton.edu");
  auto [s1, none] = admin().call(&A::GetPersons, live);
  REQUIRE_OK(s1);
  CHECK(none.persons_size() == 0);
  CHECK_REFUSED(pi.call(&A::DeletePerson, d).first, Code::NOT_FOUND, "alice");

  // The email may be used again by a new account.
  addPerson("alice@princeton.edu", "princeton");

  SECTION("admins are deleted only by admins, and never the last one") {
    REQUIRE_OK(admin().call(&A::AddPersonToSite, personSite(kAdminEmail, "princeton")).first);
    DeletePersonRequest del_admin;
    del_admin.set_email(kAdminEmail);
    CHECK_REFUSED(pi.call(&A::DeletePerson, del_admin).first, Code::PERMISSION_DENIED, "admin");
    CHECK_REFUSED(admin().call(&A::DeletePerson, del_admin).first, Code::FAILED_PRECONDITION,
                  "last enabled admin");
  }
}

TEST_CASE_METHOD(AdminTest, "AddPersonToSite and RemovePersonFromSite", "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  auto mit_pi = person("pi@mit.edu", "mit", {"pi"});
  addPerson("alice@princeton.edu", "princeton");

  PersonSiteRequest to_mit;
  to_mit.set_email("alice@princeton.edu");
  to_mit.set_login_base("mit");
  // Joining a person to a site is for admins only (PlanetLab's rule): even the
  // PI of the site joined may not.
  CHECK_REFUSED(pi.call(&A::AddPersonToSite, to_mit).first, Code::PERMISSION_DENIED, "admin");
  CHECK_REFUSED(mit_pi.call(&A::AddPersonToSite, to_mit).first, Code::PERMISSION_DENIED, "admin");
  auto [s1, alice] = admin().call(&A::AddPersonToSite, to_mit);
  REQUIRE_OK(s1);
  CHECK(namesOf(alice.sites()) == std::vector<std::string>{"mit", "princeton"});
  CHECK(alice.primary_site() == "princeton");
  CHECK(hasRole(alice, "user", "mit"));
  CHECK_REFUSED(admin().call(&A::AddPersonToSite, to_mit).first, Code::ALREADY_EXISTS, "already");
  auto missing = to_mit;
  missing.set_email("nobody@mit.edu");
  CHECK_REFUSED(admin().call(&A::AddPersonToSite, missing).first, Code::NOT_FOUND, "nobody");

  // Removing the primary site makes another one primary, and drops roles there.
  PersonSiteRequest from_princeton;
  from_princeton.set_email("alice@princeton.edu");
  from_princeton.set_login_base("princeton");
  CHECK_REFUSED(mit_pi.call(&A::RemovePersonFromSite, from_princeton).first,
                Code::PERMISSION_DENIED, "pi");
  auto [s2, moved] = pi.call(&A::RemovePersonFromSite, from_princeton);
  REQUIRE_OK(s2);
  CHECK(namesOf(moved.sites()) == std::vector<std::string>{"mit"});
  CHECK(moved.primary_site() == "mit");
  CHECK_FALSE(hasRole(moved, "user", "princeton"));
  CHECK(sql("SELECT count(*) FROM person_roles r JOIN persons p USING (person_id)"
            " WHERE p.email = 'alice@princeton.edu' AND r.site_id IS NOT NULL") == "1");

  CHECK_REFUSED(pi.call(&A::RemovePersonFromSite, from_princeton).first, Code::NOT_FOUND,
                "not a member");
  CHECK_REFUSED(mit_pi.call(&A::RemovePersonFromSite, to_mit).first, Code::FAILED_PRECONDITION,
                "only site");
}

TEST_CASE_METHOD(AdminTest, "AddRoleToPerson and DeleteRoleFromPerson", "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  auto alice = person("alice@princeton.edu", "princeton");
  addPerson("bob@mit.edu", "mit");

  SECTION("admins grant any role; a grant takes effect at once") {
    CHECK_FALSE(hasRole(getPerson("alice@princeton.edu"), "pi", "princeton"));
    auto [s1, p] =
        admin().call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "pi", "princeton"));
    REQUIRE_OK(s1);
    CHECK(hasRole(p, "pi", "princeton"));
    // Alice may now act as a PI of princeton.
    UpdateSiteRequest u;
    u.set_login_base("princeton");
    u.set_name("renamed by alice");
    CHECK_OK(alice.call(&A::UpdateSite, u).first);

    auto [s2, admin2] =
        admin().call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "admin", ""));
    REQUIRE_OK(s2);
    CHECK(hasRole(admin2, "admin", ""));
    auto [s3, revoked] =
        admin().call(&A::DeleteRoleFromPerson, roleRequest("alice@princeton.edu", "admin", ""));
    REQUIRE_OK(s3);
    CHECK_FALSE(hasRole(revoked, "admin", ""));
  }

  SECTION("PIs grant and revoke pi, tech and user at their own site only") {
    CHECK_REFUSED(
        alice.call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "tech", "princeton"))
            .first,
        Code::PERMISSION_DENIED, "pi");
    auto [s1, tech] =
        pi.call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "tech", "princeton"));
    REQUIRE_OK(s1);
    CHECK(hasRole(tech, "tech", "princeton"));
    auto [s2, both] =
        pi.call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "pi", "princeton"));
    REQUIRE_OK(s2);
    CHECK(hasRole(both, "pi", "princeton"));
    auto [s3, less] =
        pi.call(&A::DeleteRoleFromPerson, roleRequest("alice@princeton.edu", "tech", "princeton"));
    REQUIRE_OK(s3);
    CHECK_FALSE(hasRole(less, "tech", "princeton"));

    CHECK_REFUSED(
        pi.call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "admin", "")).first,
        Code::PERMISSION_DENIED, "admin");
    CHECK_REFUSED(pi.call(&A::AddRoleToPerson, roleRequest("bob@mit.edu", "tech", "mit")).first,
                  Code::PERMISSION_DENIED, "pi");
    CHECK_REFUSED(pi.call(&A::DeleteRoleFromPerson, roleRequest(kAdminEmail, "admin", "")).first,
                  Code::PERMISSION_DENIED, "admin");
  }

  SECTION("bad requests change nothing") {
    CHECK_REFUSED(
        admin()
            .call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "boss", "princeton"))
            .first,
        Code::INVALID_ARGUMENT, "role");
    CHECK_REFUSED(
        admin().call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "tech", "")).first,
        Code::INVALID_ARGUMENT, "login_base");
    CHECK_REFUSED(
        admin()
            .call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "user", "princeton"))
            .first,
        Code::ALREADY_EXISTS, "user");
    CHECK_REFUSED(
        admin().call(&A::AddRoleToPerson, roleRequest("alice@princeton.edu", "tech", "mit")).first,
        Code::FAILED_PRECONDITION, "not a member");
    CHECK_REFUSED(
        admin()
            .call(&A::DeleteRoleFromPerson, roleRequest("alice@princeton.edu", "tech", "princeton"))
            .first,
        Code::NOT_FOUND, "tech");
    CHECK_REFUSED(
        admin()
            .call(&A::AddRoleToPerson, roleRequest("nobody@princeton.edu", "tech", "princeton"))
            .first,
        Code::NOT_FOUND, "nobody");
    CHECK_REFUSED(
        admin().call(&A::DeleteRoleFromPerson, roleRequest(kAdminEmail, "admin", "")).first,
        Code::FAILED_PRECONDITION, "last enabled admin");
  }
}

// -------------------------------------------------------------------- keys

TEST_CASE_METHOD(AdminTest, "SSH keys: add, get, delete", "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  addNode("node1.mit.edu", "mit");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  auto alice = person("alice@princeton.edu", "princeton");
  auto bob = person("bob@princeton.edu", "princeton");

  AddPersonKeyRequest add;
  add.set_key(sshKey('a', "alice@laptop"));
  auto [s1, key] = alice.call(&A::AddPersonKey, add);
  REQUIRE_OK(s1);
  CHECK(key.key_id() > 0);
  CHECK(key.person_email() == "alice@princeton.edu");
  CHECK(key.key_type() == "ssh-ed25519");
  CHECK(key.key() == sshKey('a', "alice@laptop"));
  CHECK(key.fingerprint().rfind("SHA256:", 0) == 0);
  CHECK_REFUSED(alice.call(&A::AddPersonKey, add).first, Code::ALREADY_EXISTS, "already");
  auto bad = add;
  bad.set_key("ssh-ed25519 not-base64!");
  CHECK_REFUSED(alice.call(&A::AddPersonKey, bad).first, Code::INVALID_ARGUMENT, "SSH key");
  bad.set_key("");
  CHECK_REFUSED(alice.call(&A::AddPersonKey, bad).first, Code::INVALID_ARGUMENT, "SSH key");

  AddPersonKeyRequest for_alice;
  for_alice.set_email("alice@princeton.edu");
  for_alice.set_key(sshKey('b'));
  CHECK_REFUSED(bob.call(&A::AddPersonKey, for_alice).first, Code::PERMISSION_DENIED, "pi");
  auto [s2, by_pi] = pi.call(&A::AddPersonKey, for_alice);
  REQUIRE_OK(s2);

  GetKeysRequest own;
  auto [s3, mine] = alice.call(&A::GetKeys, own);
  REQUIRE_OK(s3);
  REQUIRE(mine.keys_size() == 2);
  CHECK(mine.keys(0).key_id() == key.key_id());
  GetKeysRequest of_alice;
  of_alice.set_email("alice@princeton.edu");
  for (auto* client : {&pi, &admin()}) {
    auto [status, keys] = client->call(&A::GetKeys, of_alice);
    REQUIRE_OK(status);
    CHECK(keys.keys_size() == 2);
  }
  auto node = nodeClient("node1.mit.edu");
  auto [s4, seen_by_node] = node.call(&A::GetKeys, of_alice);
  REQUIRE_OK(s4);
  CHECK(seen_by_node.keys_size() == 2);
  CHECK_STATUS(bob.call(&A::GetKeys, of_alice).first, Code::PERMISSION_DENIED, "pi");
  CHECK_STATUS(node.call(&A::GetKeys, own).first, Code::INVALID_ARGUMENT, "email");
  // Persons list their keys too.
  CHECK(getPerson("alice@princeton.edu").keys_size() == 2);

  DeleteKeyRequest del;
  del.set_key_id(key.key_id());
  CHECK_REFUSED(bob.call(&A::DeleteKey, del).first, Code::PERMISSION_DENIED, "pi");
  REQUIRE_OK(alice.call(&A::DeleteKey, del).first);
  CHECK_REFUSED(alice.call(&A::DeleteKey, del).first, Code::NOT_FOUND, "key");
  del.set_key_id(by_pi.key_id());
  REQUIRE_OK(pi.call(&A::DeleteKey, del).first);
  CHECK(getPerson("alice@princeton.edu").keys_size() == 0);
}

TEST_CASE_METHOD(AdminTest, "BlacklistKey and GetBlacklistedKeys", "[plc][pg][admin]") {
  addSite("princeton");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  auto alice = person("alice@princeton.edu", "princeton");
  auto bob = person("bob@princeton.edu", "princeton");
  AddPersonKeyRequest shared;
  shared.set_key(sshKey('s'));
  auto [s1, alices] = alice.call(&A::AddPersonKey, shared);
  REQUIRE_OK(s1);
  REQUIRE_OK(bob.call(&A::AddPersonKey, shared).first);

  BlacklistKeyRequest by_id;
  by_id.set_key_id(alices.key_id());
  CHECK_REFUSED(pi.call(&A::BlacklistKey, by_id).first, Code::PERMISSION_DENIED, "admin");
  REQUIRE_OK(admin().call(&A::BlacklistKey, by_id).first);
  // Every copy of the key is gone, and it cannot come back.
  CHECK(getPerson("alice@princeton.edu").keys_size() == 0);
  CHECK(getPerson("bob@princeton.edu").keys_size() == 0);
  CHECK_REFUSED(bob.call(&A::AddPersonKey, shared).first, Code::PERMISSION_DENIED, "blacklisted");
  auto [s2, listed] = admin().call(&A::GetBlacklistedKeys, Empty());
  REQUIRE_OK(s2);
  REQUIRE(listed.fingerprints_size() == 1);
  CHECK(listed.fingerprints(0) == alices.fingerprint());
  CHECK_STATUS(pi.call(&A::GetBlacklistedKeys, Empty()).first, Code::PERMISSION_DENIED, "admin");

  BlacklistKeyRequest by_text;
  by_text.set_key(sshKey('s', "another comment"));
  CHECK_REFUSED(admin().call(&A::BlacklistKey, by_text).first, Code::ALREADY_EXISTS,
                "already blacklisted");
  by_text.set_key(sshKey('t'));
  REQUIRE_OK(admin().call(&A::BlacklistKey, by_text).first);
  auto [s3, two] = admin().call(&A::GetBlacklistedKeys, Empty());
  REQUIRE_OK(s3);
  CHECK(two.fingerprints_size() == 2);

  CHECK_REFUSED(admin().call(&A::BlacklistKey, BlacklistKeyRequest()).first, Code::INVALID_ARGUMENT,
                "key_id");
  auto both = by_text;
  both.set_key_id(alices.key_id());
  CHECK_REFUSED(admin().call(&A::BlacklistKey, both).first, Code::INVALID_ARGUMENT, "either");
  by_text.set_key("ssh-dss AAAA");
  CHECK_REFUSED(admin().call(&A::BlacklistKey, by_text).first, Code::INVALID_ARGUMENT, "ssh-dss");
  by_id.set_key_id(999999);
  CHECK_REFUSED(admin().call(&A::BlacklistKey, by_id).first, Code::NOT_FOUND, "999999");
}

// ------------------------------------------------------------------- nodes

TEST_CASE_METHOD(AdminTest, "AddNode, GetNodes, UpdateNode, DeleteNode", "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  auto tech = person("tech@princeton.edu", "princeton", {"tech"});
  auto user = person("user@princeton.edu", "princeton");
  auto key = plng::ticket::generateKeyPair();

  AddNodeRequest r;
  r.set_hostname("Node1.Princeton.EDU");
  r.set_login_base("princeton");
  r.set_public_key(bytesOf(key.public_key));
  CHECK_REFUSED(user.call(&A::AddNode, r).first, Code::PERMISSION_DENIED, "tech");
  auto [s1, node] = tech.call(&A::AddNode, r);
  REQUIRE_OK(s1);
  CHECK(node.hostname() == "node1.princeton.edu");
  CHECK(node.login_base() == "princeton");
  CHECK(node.boot_state() == "boot");
  CHECK(node.public_key() == bytesOf(key.public_key));
  CHECK(node.last_contact() == 0);
  CHECK(node.deleted_at() == 0);

  SECTION("bad input and duplicates change nothing") {
    CHECK_REFUSED(tech.call(&A::AddNode, r).first, Code::ALREADY_EXISTS, "node1.princeton.edu");
    auto bad = r;
    bad.set_hostname("node2.princeton.edu");
    bad.set_public_key("short");
    CHECK_REFUSED(tech.call(&A::AddNode, bad).first, Code::INVALID_ARGUMENT,
                  "public_key must be the node's raw 32-byte Ed25519 public key");
    bad = r;
    bad.set_hostname("not a hostname");
    CHECK_REFUSED(tech.call(&A::AddNode, bad).first, Code::INVALID_ARGUMENT, "hostname");
    bad = r;
    bad.set_hostname("node2.princeton.edu");
    bad.set_boot_state("running");
    CHECK_REFUSED(tech.call(&A::AddNode, bad).first, Code::INVALID_ARGUMENT, "boot_state");
    bad.set_boot_state("");
    bad.set_login_base("nosite");
    CHECK_REFUSED(admin().call(&A::AddNode, bad).first, Code::NOT_FOUND, "nosite");
    bad.set_login_base("mit");
    CHECK_REFUSED(tech.call(&A::AddNode, bad).first, Code::PERMISSION_DENIED, "mit");
  }

  SECTION("GetNodes: any caller, filtered by hostname and site") {
    addNode("node1.mit.edu", "mit");
    auto node_client = nodeClient("node1.mit.edu");
    for (auto* client : {&user, &node_client}) {
      auto [status, all] = client->call(&A::GetNodes, GetNodesRequest());
      REQUIRE_OK(status);
      REQUIRE(all.nodes_size() == 2);
      CHECK(all.nodes(0).hostname() == "node1.mit.edu");
      CHECK(all.nodes(0).last_contact() > 0);  // it logged in
    }
    GetNodesRequest by_site;
    by_site.set_login_base("princeton");
    auto [s2, princeton] = user.call(&A::GetNodes, by_site);
    REQUIRE_OK(s2);
    REQUIRE(princeton.nodes_size() == 1);
    CHECK(princeton.nodes(0).hostname() == "node1.princeton.edu");
    GetNodesRequest by_host;
    by_host.add_hostnames("NODE1.mit.edu");
    auto [s3, mit] = user.call(&A::GetNodes, by_host);
    REQUIRE_OK(s3);
    REQUIRE(mit.nodes_size() == 1);
    by_site.set_login_base("nosite");
    CHECK_STATUS(user.call(&A::GetNodes, by_site).first, Code::NOT_FOUND, "nosite");
    GetNodesRequest by_group;
    by_group.set_nodegroup("nogroup");
    CHECK_STATUS(user.call(&A::GetNodes, by_group).first, Code::NOT_FOUND, "nogroup");
  }

  SECTION("UpdateNode: a new key ends the node's sessions") {
    addNode("node2.princeton.edu", "princeton");
    auto node2 = nodeClient("node2.princeton.edu");
    UpdateNodeRequest u;
    u.set_hostname("node2.princeton.edu");
    u.set_boot_state("safeboot");
    CHECK_REFUSED(user.call(&A::UpdateNode, u).first, Code::PERMISSION_DENIED, "tech");
    auto [s2, safe] = tech.call(&A::UpdateNode, u);
    REQUIRE_OK(s2);
    CHECK(safe.boot_state() == "safeboot");
    CHECK_OK(node2.call(&A::GetNodes, GetNodesRequest()).first);  // same key: still in

    auto bad = u;
    bad.set_boot_state("running");
    CHECK_REFUSED(tech.call(&A::UpdateNode, bad).first, Code::INVALID_ARGUMENT, "boot_state");
    bad = u;
    bad.clear_boot_state();
    bad.set_public_key(std::string(31, 'k'));
    CHECK_REFUSED(tech.call(&A::UpdateNode, bad).first, Code::INVALID_ARGUMENT, "32-byte");
    bad.set_hostname("node9.princeton.edu");
    bad.set_public_key(bytesOf(key.public_key));
    CHECK_REFUSED(tech.call(&A::UpdateNode, bad).first, Code::NOT_FOUND, "node9");

    auto rekey = u;
    rekey.clear_boot_state();
    rekey.set_public_key(bytesOf(key.public_key));
    auto [s3, rekeyed] = tech.call(&A::UpdateNode, rekey);
    REQUIRE_OK(s3);
    CHECK(rekeyed.public_key() == bytesOf(key.public_key));
    CHECK(rekeyed.boot_state() == "safeboot");
    CHECK_STATUS(node2.call(&A::GetNodes, GetNodesRequest()).first, Code::UNAUTHENTICATED, "");
  }

  SECTION("DeleteNode marks it deleted and ends its sessions") {
    addNode("node2.princeton.edu", "princeton");
    addSliceRow("princeton_codeen", "princeton");
    bindSliceNode("princeton_codeen", "node2.princeton.edu");
    CHECK(namesOf(getNode("node2.princeton.edu").slices()) ==
          std::vector<std::string>{"princeton_codeen"});
    auto node2 = nodeClient("node2.princeton.edu");
    DeleteNodeRequest d;
    d.set_hostname("node2.princeton.edu");
    CHECK_REFUSED(user.call(&A::DeleteNode, d).first, Code::PERMISSION_DENIED, "tech");
    REQUIRE_OK(tech.call(&A::DeleteNode, d).first);
    CHECK_STATUS(node2.call(&A::GetNodes, GetNodesRequest()).first, Code::UNAUTHENTICATED, "");
    auto [s2, live] = admin().call(&A::GetNodes, GetNodesRequest());
    REQUIRE_OK(s2);
    REQUIRE(live.nodes_size() == 1);
    CHECK(live.nodes(0).hostname() == "node1.princeton.edu");
    auto deleted = getNode("node2.princeton.edu");
    CHECK(deleted.deleted_at() > 0);
    CHECK(deleted.slices_size() == 0);
    CHECK_REFUSED(tech.call(&A::DeleteNode, d).first, Code::NOT_FOUND, "node2");
  }
}

TEST_CASE_METHOD(AdminTest, "SetNodeTag and DeleteNodeTag", "[plc][pg][admin]") {
  addSite("princeton");
  addSite("mit");
  addNode("node1.princeton.edu", "princeton");
  auto tech = person("tech@princeton.edu", "princeton", {"tech"});
  auto mit_tech = person("tech@mit.edu", "mit", {"tech"});
  auto user = person("user@princeton.edu", "princeton");

  SetNodeTagRequest arch;
  arch.set_hostname("node1.princeton.edu");
  arch.set_tag("arch");  // min_role tech
  arch.set_value("x86_64");
  CHECK_REFUSED(user.call(&A::SetNodeTag, arch).first, Code::PERMISSION_DENIED, "tech");
  CHECK_REFUSED(mit_tech.call(&A::SetNodeTag, arch).first, Code::PERMISSION_DENIED, "princeton");
  auto [s1, tagged] = tech.call(&A::SetNodeTag, arch);
  REQUIRE_OK(s1);
  CHECK(tagged.tags().at("arch") == "x86_64");

  SetNodeTagRequest cap;
  cap.set_hostname("node1.princeton.edu");
  cap.set_tag("net_node_cap");  // a rate: canonicalised to bit/s
  cap.set_value("10Mbit");
  auto [s2, capped] = tech.call(&A::SetNodeTag, cap);
  REQUIRE_OK(s2);
  CHECK(capped.tags().at("net_node_cap") == "10000000");
  cap.set_value("fast");
  CHECK_REFUSED(tech.call(&A::SetNodeTag, cap).first, Code::INVALID_ARGUMENT, "net_node_cap");

  SetNodeTagRequest deployment;  // min_role admin
  deployment.set_hostname("node1.princeton.edu");
  deployment.set_tag("deployment");
  deployment.set_value("alpha");
  CHECK_REFUSED(tech.call(&A::SetNodeTag, deployment).first, Code::PERMISSION_DENIED, "admin");
  REQUIRE_OK(admin().call(&A::SetNodeTag, deployment).first);

  auto slice_tag = arch;
  slice_tag.set_tag("cpu_share");
  CHECK_REFUSED(admin().call(&A::SetNodeTag, slice_tag).first, Code::INVALID_ARGUMENT, "node");
  auto unknown = arch;
  unknown.set_tag("colour");
  CHECK_REFUSED(admin().call(&A::SetNodeTag, unknown).first, Code::NOT_FOUND, "colour");
  unknown = arch;
  unknown.set_hostname("node9.princeton.edu");
  CHECK_REFUSED(admin().call(&A::SetNodeTag, unknown).first, Code::NOT_FOUND, "node9");

  DeleteNodeTagRequest del;
  del.set_hostname("node1.princeton.edu");
  del.set_tag("deployment");
  CHECK_REFUSED(tech.call(&A::DeleteNodeTag, del).first, Code::PERMISSION_DENIED, "admin");
  del.set_tag("arch");
  CHECK_REFUSED(user.call(&A::DeleteNodeTag, del).first, Code::PERMISSION_DENIED, "tech");
  auto [s3, untagged] = tech.call(&A::DeleteNodeTag, del);
  REQUIRE_OK(s3);
  CHECK(untagged.tags().count("arch") == 0);
  CHECK(untagged.tags().at("deployment") == "alpha");
  CHECK_REFUSED(tech.call(&A::DeleteNodeTag, del).first, Code::NOT_FOUND, "arch");
}

// ------------------------------------------------------------- node groups

TEST_CASE_METHOD(AdminTest, "Node groups", "[plc][pg][admin]") {
  addSite("princeton");
  addNode("node1.princeton.edu", "princeton");
  addNode("node2.princeton.edu", "princeton");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  SetNodeTagRequest tag;
  tag.set_hostname("node2.princeton.edu");
  tag.set_tag("deployment");
  tag.set_value("alpha");
  REQUIRE_OK(admin().call(&A::SetNodeTag, tag).first);

  AddNodeGroupRequest add;
  add.set_name("alpha");
  add.set_tag("deployment");
  add.set_value("alpha");
  CHECK_REFUSED(pi.call(&A::AddNodeGroup, add).first, Code::PERMISSION_DENIED, "admin");
  auto [s1, group] = admin().call(&A::AddNodeGroup, add);
  REQUIRE_OK(s1);
  CHECK(group.name() == "alpha");
  CHECK(group.tag() == "deployment");
  CHECK(namesOf(group.hostnames()) == std::vector<std::string>{"node2.princeton.edu"});

  CHECK_REFUSED(admin().call(&A::AddNodeGroup, add).first, Code::ALREADY_EXISTS, "alpha");
  auto bad = add;
  bad.set_name("Alpha Nodes");
  CHECK_REFUSED(admin().call(&A::AddNodeGroup, bad).first, Code::INVALID_ARGUMENT,
                "node group name");
  bad = add;
  bad.set_name("beta");
  bad.set_tag("colour");
  CHECK_REFUSED(admin().call(&A::AddNodeGroup, bad).first, Code::NOT_FOUND, "colour");
  bad.set_tag("cpu_share");
  CHECK_REFUSED(admin().call(&A::AddNodeGroup, bad).first, Code::INVALID_ARGUMENT, "node");

  // A group follows its nodes' tags.
  tag.set_hostname("node1.princeton.edu");
  auto [s2, node1] = admin().call(&A::SetNodeTag, tag);
  REQUIRE_OK(s2);
  CHECK(namesOf(node1.nodegroups()) == std::vector<std::string>{"alpha"});
  GetNodeGroupsRequest get;
  get.add_names("alpha");
  auto [s3, groups] = pi.call(&A::GetNodeGroups, get);
  REQUIRE_OK(s3);
  REQUIRE(groups.nodegroups_size() == 1);
  CHECK(namesOf(groups.nodegroups(0).hostnames()) ==
        std::vector<std::string>{"node1.princeton.edu", "node2.princeton.edu"});
  GetNodesRequest in_group;
  in_group.set_nodegroup("alpha");
  auto [s4, members] = pi.call(&A::GetNodes, in_group);
  REQUIRE_OK(s4);
  CHECK(members.nodes_size() == 2);

  DeleteNodeGroupRequest del;
  del.set_name("alpha");
  CHECK_REFUSED(pi.call(&A::DeleteNodeGroup, del).first, Code::PERMISSION_DENIED, "admin");
  REQUIRE_OK(admin().call(&A::DeleteNodeGroup, del).first);
  CHECK(getNode("node1.princeton.edu").nodegroups_size() == 0);
  CHECK_REFUSED(admin().call(&A::DeleteNodeGroup, del).first, Code::NOT_FOUND, "alpha");
}

// --------------------------------------------------------------- tag types

TEST_CASE_METHOD(AdminTest, "Tag types", "[plc][pg][admin]") {
  addSite("princeton");
  addNode("node1.princeton.edu", "princeton");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});

  auto [s0, seeded] = pi.call(&A::GetTagTypes, GetTagTypesRequest());
  REQUIRE_OK(s0);
  CHECK(seeded.tag_types_size() >= 17);

  AddTagTypeRequest add;
  add.set_name("rack_power");
  add.set_description("power budget of the rack");
  add.set_category("node/hardware");
  add.set_min_role("tech");
  add.set_value_kind("int");
  add.set_default_value("0300");
  CHECK_REFUSED(pi.call(&A::AddTagType, add).first, Code::PERMISSION_DENIED, "admin");
  auto [s1, type] = admin().call(&A::AddTagType, add);
  REQUIRE_OK(s1);
  CHECK(type.name() == "rack_power");
  CHECK(type.default_value() == "300");
  CHECK(type.min_role() == "tech");

  CHECK_REFUSED(admin().call(&A::AddTagType, add).first, Code::ALREADY_EXISTS, "rack_power");
  auto bad = add;
  bad.set_name("other");
  bad.set_value_kind("float");
  CHECK_REFUSED(admin().call(&A::AddTagType, bad).first, Code::INVALID_ARGUMENT, "value_kind");
  bad = add;
  bad.set_name("other");
  bad.set_min_role("root");
  CHECK_REFUSED(admin().call(&A::AddTagType, bad).first, Code::INVALID_ARGUMENT, "min_role");
  bad = add;
  bad.set_name("other");
  bad.set_default_value("lots");
  CHECK_REFUSED(admin().call(&A::AddTagType, bad).first, Code::INVALID_ARGUMENT, "other");
  bad = add;
  bad.set_name("Bad Name");
  CHECK_REFUSED(admin().call(&A::AddTagType, bad).first, Code::INVALID_ARGUMENT, "tag type name");

  UpdateTagTypeRequest u;
  u.set_name("rack_power");
  u.set_min_role("admin");
  u.set_default_value("500");
  CHECK_REFUSED(pi.call(&A::UpdateTagType, u).first, Code::PERMISSION_DENIED, "admin");
  auto [s2, updated] = admin().call(&A::UpdateTagType, u);
  REQUIRE_OK(s2);
  CHECK(updated.min_role() == "admin");
  CHECK(updated.default_value() == "500");
  CHECK(updated.description() == "power budget of the rack");
  auto bad_update = u;
  bad_update.set_default_value("x");
  CHECK_REFUSED(admin().call(&A::UpdateTagType, bad_update).first, Code::INVALID_ARGUMENT,
                "rack_power");
  bad_update = u;
  bad_update.set_min_role("boss");
  CHECK_REFUSED(admin().call(&A::UpdateTagType, bad_update).first, Code::INVALID_ARGUMENT,
                "min_role");
  bad_update.set_name("nosuchtag");
  bad_update.clear_min_role();
  CHECK_REFUSED(admin().call(&A::UpdateTagType, bad_update).first, Code::NOT_FOUND, "nosuchtag");

  SetNodeTagRequest set;
  set.set_hostname("node1.princeton.edu");
  set.set_tag("rack_power");
  set.set_value("250");
  REQUIRE_OK(admin().call(&A::SetNodeTag, set).first);
  DeleteTagTypeRequest del;
  del.set_name("rack_power");
  CHECK_REFUSED(admin().call(&A::DeleteTagType, del).first, Code::FAILED_PRECONDITION,
                "1 node tag");
  CHECK_REFUSED(pi.call(&A::DeleteTagType, del).first, Code::PERMISSION_DENIED, "admin");
  DeleteNodeTagRequest untag;
  untag.set_hostname("node1.princeton.edu");
  untag.set_tag("rack_power");
  REQUIRE_OK(admin().call(&A::DeleteNodeTag, untag).first);
  REQUIRE_OK(admin().call(&A::DeleteTagType, del).first);
  GetTagTypesRequest get;
  get.add_names("rack_power");
  auto [s3, none] = admin().call(&A::GetTagTypes, get);
  REQUIRE_OK(s3);
  CHECK(none.tag_types_size() == 0);
  CHECK_REFUSED(admin().call(&A::DeleteTagType, del).first, Code::NOT_FOUND, "rack_power");
}

// -------------------------------------------------- destination blacklist

TEST_CASE_METHOD(AdminTest, "Destination blacklist", "[plc][pg][admin]") {
  addSite("princeton");
  addNode("node1.princeton.edu", "princeton");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});

  AddBlacklistEntryRequest add;
  add.set_prefix("10.1.2.3/8");
  add.set_reason("private network");
  CHECK_REFUSED(pi.call(&A::AddBlacklistEntry, add).first, Code::PERMISSION_DENIED, "admin");
  auto [s1, entry] = admin().call(&A::AddBlacklistEntry, add);
  REQUIRE_OK(s1);
  CHECK(entry.prefix() == "10.0.0.0/8");
  CHECK(entry.reason() == "private network");
  CHECK(entry.entry_id() > 0);
  auto same = add;
  same.set_prefix("10.0.0.0/8");
  CHECK_REFUSED(admin().call(&A::AddBlacklistEntry, same).first, Code::ALREADY_EXISTS,
                "10.0.0.0/8");
  auto bad = add;
  bad.set_prefix("10.0.0.0/33");
  CHECK_REFUSED(admin().call(&A::AddBlacklistEntry, bad).first, Code::INVALID_ARGUMENT, "/33");
  bad.set_prefix("example.com");
  CHECK_REFUSED(admin().call(&A::AddBlacklistEntry, bad).first, Code::INVALID_ARGUMENT,
                "example.com");
  AddBlacklistEntryRequest v6;
  v6.set_prefix("2001:db8::1");
  auto [s2, host6] = admin().call(&A::AddBlacklistEntry, v6);
  REQUIRE_OK(s2);
  CHECK(host6.prefix() == "2001:db8::1/128");

  auto node = nodeClient("node1.princeton.edu");
  auto [s3, list] = node.call(&A::GetBlacklist, Empty());
  REQUIRE_OK(s3);
  CHECK(list.entries_size() == 2);
  CHECK_STATUS(pi.call(&A::GetBlacklist, Empty()).first, Code::PERMISSION_DENIED, "admin");

  DeleteBlacklistEntryRequest del;
  del.set_entry_id(entry.entry_id());
  CHECK_REFUSED(pi.call(&A::DeleteBlacklistEntry, del).first, Code::PERMISSION_DENIED, "admin");
  REQUIRE_OK(admin().call(&A::DeleteBlacklistEntry, del).first);
  auto [s4, one] = admin().call(&A::GetBlacklist, Empty());
  REQUIRE_OK(s4);
  REQUIRE(one.entries_size() == 1);
  CHECK(one.entries(0).prefix() == "2001:db8::1/128");
  CHECK_REFUSED(admin().call(&A::DeleteBlacklistEntry, del).first, Code::NOT_FOUND, "entry");
}

// ---------------------------------------------------------------- PLC keys

TEST_CASE_METHOD(AdminTest, "PLC keys: get, rotate, retire", "[plc][pg][admin]") {
  addSite("princeton");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  auto [s1, before] = pi.call(&A::GetPlcKeys, Empty());
  REQUIRE_OK(s1);
  REQUIRE(before.keys_size() == 1);
  auto first = before.signing_key_id();
  CHECK(before.keys(0).key_id() == first);
  CHECK(before.keys(0).public_key().size() == 32);

  CHECK_REFUSED(pi.call(&A::RotatePlcKey, Empty()).first, Code::PERMISSION_DENIED, "admin");
  auto [s2, rotated] = admin().call(&A::RotatePlcKey, Empty());
  REQUIRE_OK(s2);
  CHECK(rotated.key_id() != first);
  auto [s3, after] = pi.call(&A::GetPlcKeys, Empty());
  REQUIRE_OK(s3);
  CHECK(after.signing_key_id() == rotated.key_id());
  REQUIRE(after.keys_size() == 2);
  for (const auto& k : after.keys()) {
    if (k.key_id() == first) CHECK(k.not_after() > 0);  // retired after a ticket lifetime
  }

  RetirePlcKeyRequest retire;
  retire.set_key_id(rotated.key_id());
  CHECK_REFUSED(admin().call(&A::RetirePlcKey, retire).first, Code::FAILED_PRECONDITION,
                "signing key");
  retire.set_key_id(first);
  CHECK_REFUSED(pi.call(&A::RetirePlcKey, retire).first, Code::PERMISSION_DENIED, "admin");
  REQUIRE_OK(admin().call(&A::RetirePlcKey, retire).first);
  retire.set_key_id("nosuchkey");
  CHECK_REFUSED(admin().call(&A::RetirePlcKey, retire).first, Code::NOT_FOUND, "nosuchkey");
  retire.set_key_id("");
  CHECK_REFUSED(admin().call(&A::RetirePlcKey, retire).first, Code::INVALID_ARGUMENT, "key_id");
}

// ------------------------------------------------------------------ events

TEST_CASE_METHOD(AdminTest, "GetEvents", "[plc][pg][admin]") {
  addSite("princeton");
  auto pi = person("pi@princeton.edu", "princeton", {"pi"});
  UpdateSiteRequest u;
  u.set_login_base("princeton");
  u.set_name("Princeton");
  REQUIRE_OK(pi.call(&A::UpdateSite, u).first);
  u.set_max_slices(50);
  CHECK_STATUS(pi.call(&A::UpdateSite, u).first, Code::PERMISSION_DENIED, "admin");

  GetEventsRequest by_method;
  by_method.set_method("UpdateSite");
  auto [s1, updates] = admin().call(&A::GetEvents, by_method);
  REQUIRE_OK(s1);
  REQUIRE(updates.events_size() == 2);
  // Newest first: the refused call, then the allowed one.
  CHECK(updates.events(0).result() == "PERMISSION_DENIED");
  CHECK(namesOf(updates.events(0).objects()) == std::vector<std::string>{"site:princeton"});
  CHECK(updates.events(1).result() == "OK");
  CHECK(updates.events(1).caller() == "pi@princeton.edu");
  CHECK(updates.events(1).role_used() == "pi");
  CHECK(namesOf(updates.events(1).objects()) == std::vector<std::string>{"site:princeton"});
  CHECK(updates.events(1).event_id() > 0);
  CHECK(updates.events(1).at() > 0);

  GetEventsRequest by_object;
  by_object.set_object("site:princeton");
  auto [s2, touched] = admin().call(&A::GetEvents, by_object);
  REQUIRE_OK(s2);
  std::vector<std::string> methods;
  for (const auto& e : touched.events()) methods.push_back(e.method());
  CHECK(methods == std::vector<std::string>{"UpdateSite", "UpdateSite", "AddRoleToPerson",
                                            "AddPerson", "AddSite"});

  GetEventsRequest limited;
  limited.set_limit(1);
  auto [s3, newest] = admin().call(&A::GetEvents, limited);
  REQUIRE_OK(s3);
  REQUIRE(newest.events_size() == 1);
  CHECK(newest.events(0).method() == "UpdateSite");
  limited.set_limit(10001);
  CHECK_STATUS(admin().call(&A::GetEvents, limited).first, Code::INVALID_ARGUMENT, "limit");
  limited.set_limit(-1);
  CHECK_STATUS(admin().call(&A::GetEvents, limited).first, Code::INVALID_ARGUMENT, "limit");

  GetEventsRequest since_future;
  since_future.set_since(4102444800);  // 2100
  auto [s4, none] = admin().call(&A::GetEvents, since_future);
  REQUIRE_OK(s4);
  CHECK(none.events_size() == 0);

  // Non-admins read only their own events.
  auto [s5, own] = pi.call(&A::GetEvents, GetEventsRequest());
  REQUIRE_OK(s5);
  REQUIRE(own.events_size() == 2);
  for (const auto& e : own.events()) CHECK(e.caller() == "pi@princeton.edu");
  GetEventsRequest others;
  others.set_caller(PlcFixture::kAdminEmail);
  CHECK_STATUS(pi.call(&A::GetEvents, others).first, Code::PERMISSION_DENIED, "admin");
  auto [s6, admins] = admin().call(&A::GetEvents, others);
  REQUIRE_OK(s6);
  CHECK(admins.events_size() >= 4);

  addNode("node1.princeton.edu", "princeton");
  CHECK_STATUS(nodeClient("node1.princeton.edu").call(&A::GetEvents, GetEventsRequest()).first,
               Code::PERMISSION_DENIED, "person");
}
