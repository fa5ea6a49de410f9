// PLC's authorisation matrix: every method of Auth, Admin, Slice and NodeSync,
// called by every kind of caller, against a real plcd over a real PostgreSQL.
//
// The rules are PlanetLab's (who may do what to sites, persons, keys, nodes,
// slices and their tags). Each row of the tables below names one method — or one
// method with particular arguments, where the rule depends on them — the callers
// the rules allow, how to prepare fresh objects for a single call, and the call.
// The driver runs every row as every caller kind:
//   allowed ⇒ the call succeeds;
//   refused ⇒ PERMISSION_DENIED (UNAUTHENTICATED without a token), and no table
//             of PLC's database changed (the audit log aside).
// One plcd and database serve the whole matrix; each call gets its own objects
// with unique names, so a successful delete by one caller cannot hide a refusal
// of the next.
//
// Built twice: plc_authz_test calls over gRPC; plc_authz_json_test
// (PLNG_AUTHZ_THROUGH_JSON) makes the same calls through plcd's JSON API
// (plc/portal.h), the matrix's callers on a channel that turns each unary call
// into JSON over HTTP (tests/support/json_client.h): the rules hold through the
// second encoding.
#include <grpcpp/client_context.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "proto/ticket.h"
#include "tests/support/json_client.h"
#include "tests/support/plc_client.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/plc_node_login.h"
#include "tests/support/ssh_key.h"

namespace {

namespace pb = planetlab::v1;
using AuthApi = pb::Auth::Stub;
using AdminApi = pb::Admin::Stub;
using SliceApi = pb::Slice::Stub;
using SyncApi = pb::NodeSync::Stub;
using plng::test::describeStatus;
using plng::test::PlcClient;
using plng::test::PlcFixture;
using plng::test::statusCodeName;

// ------------------------------------------------------------------ callers

enum class Who : unsigned {
  kAdmin,      // PLC operator
  kPi,         // PI of site A, which owns the objects under test
  kPiOther,    // PI of site B
  kTech,       // tech of site A
  kMember,     // user at site A, member of the slice under test
  kNonMember,  // user at site A, not a member of it
  kNode,       // a node of site A, logged in with its key
  kAnonymous,  // no token
};
constexpr std::array kEveryone = {Who::kAdmin,  Who::kPi,        Who::kPiOther, Who::kTech,
                                  Who::kMember, Who::kNonMember, Who::kNode,    Who::kAnonymous};

const char* nameOf(Who who) {
  switch (who) {
    case Who::kAdmin:
      return "admin";
    case Who::kPi:
      return "pi";
    case Who::kPiOther:
      return "pi_other";
    case Who::kTech:
      return "tech";
    case Who::kMember:
      return "user_member";
    case Who::kNonMember:
      return "user_nonmember";
    case Who::kNode:
      return "node";
    case Who::kAnonymous:
      return "anonymous";
  }
  return "?";
}

bool isPerson(Who who) { return who != Who::kNode && who != Who::kAnonymous; }

// The callers a row allows, as a set of bits.
using Mask = unsigned;
constexpr Mask bit(Who who) { return 1u << static_cast<unsigned>(who); }

namespace allow {
constexpr Mask kAdmin = bit(Who::kAdmin);
constexpr Mask kPi = bit(Who::kPi);
constexpr Mask kPiOther = bit(Who::kPiOther);
constexpr Mask kTech = bit(Who::kTech);
constexpr Mask kMember = bit(Who::kMember);
constexpr Mask kNode = bit(Who::kNode);
constexpr Mask kPersons = kAdmin | kPi | kPiOther | kTech | kMember | bit(Who::kNonMember);
constexpr Mask kAuthenticated = kPersons | kNode;
constexpr Mask kAnyone = kAuthenticated | bit(Who::kAnonymous);
}  // namespace allow

// A call whose result is wrong in a way its status alone does not show.
struct CaseFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string bytesOf(std::span<const std::uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// A digest of every table of PLC's database (one md5 per table), to tell whether
// a refused call changed anything.
using Snapshot = std::map<std::string, std::string>;

// ------------------------------------------------------------------ the world

// The shared setup: sites A and B, one person of each kind logged in, two nodes of
// site A (one logged in), a slice of site A with the member and the node.
class World {
 public:
  static constexpr const char* kPassword = "authz-password-0";

  World() {
    try {
#ifdef PLNG_AUTHZ_THROUGH_JSON
      fx_.emplace(plng::test::PlcFixtureOptions{.portal = true});
      callerChannel_ =
          plng::test::jsonBridgeChannel(fx_->plcd().portalAddress(), fx_->plcd().address());
#else
      fx_.emplace();
      callerChannel_ = fx_->plcd().channel();
#endif
      // Setup runs on an API token of the admin: the matrix changes the admin's
      // password, which ends the admin's other login sessions.
      pb::CreateApiTokenRequest token;
      token.set_description("authz matrix setup");
      auto [status, made] = fx_->admin().call(&AuthApi::CreateApiToken, token);
      if (!status.ok()) throw std::runtime_error("setup API token: " + describeStatus(status));
      setupAdmin_.emplace(fx_->anonymous().withToken(made.token()));
      setUp();
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }

  bool ready() const { return error_.empty(); }
  PlcFixture& fx() { return *fx_; }
  const std::string& setupError() const { return error_; }

  std::string siteA, siteB;
  std::string node, otherNode;  // hostnames at site A; `node` is the kNode caller
  std::string slice;            // of site A; members: kMember; nodes: `node`

  const PlcClient& admin() const { return *setupAdmin_; }
  const PlcClient& as(Who who) const { return callers_.at(who); }
  const std::string& emailOf(Who who) const { return emails_.at(who); }
  // The person a "self" row acts on: the caller, or for callers that are not
  // persons, the slice member.
  Who self(Who who) const { return isPerson(who) ? who : Who::kMember; }

  const char* passwordOf(Who who) const {
    return who == Who::kAdmin ? PlcFixture::kAdminPassword : kPassword;
  }

  // A fresh session for `who` (after a call that may have ended its session).
  void relogin(Who who) {
    if (isPerson(who)) {
      callers_.at(who).setToken(login(emailOf(who), passwordOf(who)));
    } else if (who == Who::kNode) {
      callers_.at(who).setToken(nodeLogin(node, nodeKey_.private_key));
    }
  }

  std::string uid() { return std::to_string(++counter_); }

  // A unary call as `caller` (the admin by default) that must succeed: setup.
  template <class Stub, class Req, class Resp>
  Resp must(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
            const std::type_identity_t<Req>& request, const PlcClient* caller = nullptr) const {
    Resp response;
    auto status = (caller ? *caller : admin()).call(method, request, &response);
    if (!status.ok()) {
      throw std::runtime_error("setup call " + request.GetTypeName() + " {" +
                               request.ShortDebugString() + "} failed: " + describeStatus(status));
    }
    return response;
  }

  // --- fresh objects, made by the admin

  // A site; `staffed`: the kPi caller is its PI and the kTech caller its tech.
  std::string newSite(bool staffed) {
    pb::AddSiteRequest r;
    r.set_login_base("az" + uid());
    r.set_name("Authz site " + r.login_base());
    r.set_url("https://" + r.login_base() + ".authz.test/");
    must(&AdminApi::AddSite, r);
    if (staffed) {
      joinSite(emailOf(Who::kPi), r.login_base(), "pi");
      joinSite(emailOf(Who::kTech), r.login_base(), "tech");
    }
    return r.login_base();
  }

  // An enabled person whose primary site is `site`, with `role` there (if any).
  std::string newPerson(const std::string& site, const std::string& role = {},
                        const std::string& prefix = "p") {
    pb::AddPersonRequest r;
    r.set_email(prefix + uid() + "@authz.test");
    r.set_first_name("Authz");
    r.set_last_name(prefix);
    r.set_password(kPassword);
    r.set_login_base(site);
    must(&AdminApi::AddPerson, r);
    setEnabled(r.email(), true);
    if (!role.empty()) grant(r.email(), role, site);
    return r.email();
  }

  // A person of `site` for calls that destroy nothing, made once per `purpose`:
  // adding a person costs a deliberately slow password hash.
  const std::string& targetPerson(const std::string& site, const std::string& purpose = "t") {
    auto key = site + "/" + purpose;
    auto it = targets_.find(key);
    if (it == targets_.end()) it = targets_.emplace(key, newPerson(site, {}, purpose)).first;
    return it->second;
  }

  // A person of sites A and B (made once): a PI of one of them must not take
  // over the account (issue 7, item 1).
  const std::string& personOfAandB(const std::string& purpose = "ab") {
    auto& email = personsAB_[purpose];
    if (email.empty()) email = newPersonOfAandB();
    return email;
  }
  std::string newPersonOfAandB() {
    auto email = newPerson(siteA, {}, "ab");
    joinSite(email, siteB, "user");
    return email;
  }

  void setEnabled(const std::string& email, bool enabled) {
    pb::UpdatePersonRequest r;
    r.set_email(email);
    r.set_enabled(enabled);
    must(&AdminApi::UpdatePerson, r);
  }

  // Grants `role` at `site` (site ignored for admin); already holding it is fine.
  void grant(const std::string& email, const std::string& role, const std::string& site) {
    pb::PersonRoleRequest r;
    r.set_email(email);
    r.set_role(role);
    if (role != "admin") r.set_login_base(site);
    auto status = admin().call(&AdminApi::AddRoleToPerson, r).first;
    if (!status.ok() && status.error_code() != grpc::StatusCode::ALREADY_EXISTS) {
      throw std::runtime_error("granting " + role + " at " + site + " to " + email +
                               " failed: " + describeStatus(status));
    }
  }

  // Takes `role` at `site` away; not holding it is fine.
  void revoke(const std::string& email, const std::string& role, const std::string& site) {
    pb::PersonRoleRequest r;
    r.set_email(email);
    r.set_role(role);
    if (role != "admin") r.set_login_base(site);
    auto status = admin().call(&AdminApi::DeleteRoleFromPerson, r).first;
    if (!status.ok() && status.error_code() != grpc::StatusCode::NOT_FOUND) {
      throw std::runtime_error("revoking " + role + " at " + site + " from " + email +
                               " failed: " + describeStatus(status));
    }
  }

  void joinSite(const std::string& email, const std::string& site, const std::string& role) {
    pb::PersonSiteRequest r;
    r.set_email(email);
    r.set_login_base(site);
    must(&AdminApi::AddPersonToSite, r);
    grant(email, role, site);
  }

  // Adds a fresh SSH key to `email`; returns its key_id.
  std::int64_t newKey(const std::string& email) {
    pb::AddPersonKeyRequest r;
    r.set_email(email);
    r.set_key(plng::test::newSshKey("k" + uid() + "@authz"));
    return must(&AdminApi::AddPersonKey, r).key_id();
  }

  std::string newNode(const std::string& site,
                      const plng::ticket::KeyPair& key = plng::ticket::generateKeyPair()) {
    pb::AddNodeRequest r;
    r.set_hostname("n" + uid() + ".authz.test");
    r.set_login_base(site);
    r.set_public_key(bytesOf(key.public_key));
    r.set_boot_state("boot");
    must(&AdminApi::AddNode, r);
    return r.hostname();
  }

  void setNodeTag(const std::string& hostname, const std::string& tag, const std::string& value) {
    pb::SetNodeTagRequest r;
    r.set_hostname(hostname);
    r.set_tag(tag);
    r.set_value(value);
    must(&AdminApi::SetNodeTag, r);
  }

  std::string newOrganization(bool withSiteA) {
    pb::AddOrganizationRequest r;
    r.set_name("org" + uid());
    r.set_description("authz test organization");
    must(&AdminApi::AddOrganization, r);
    if (withSiteA) {
      pb::OrganizationSiteRequest s;
      s.set_organization(r.name());
      s.set_login_base(siteA);
      must(&AdminApi::AddSiteToOrganization, s);
    }
    return r.name();
  }

  std::string newNodeGroup() {
    pb::AddNodeGroupRequest r;
    r.set_name("ng" + uid());
    r.set_tag("arch");
    r.set_value("arch" + r.name());
    must(&AdminApi::AddNodeGroup, r);
    return r.name();
  }

  std::string newTagType() {
    pb::AddTagTypeRequest r;
    r.set_name("tt" + uid());
    r.set_description("authz test tag");
    r.set_category("slice/config");
    r.set_min_role("user");
    r.set_value_kind("string");
    must(&AdminApi::AddTagType, r);
    return r.name();
  }

  // A /24 no other call uses.
  std::string newPrefix() {
    auto n = std::stoul(uid());
    return "10." + std::to_string(n / 256 % 256) + "." + std::to_string(n % 256) + ".0/24";
  }

  // A site requested (RequestSite) and not yet approved. Asked with the setup
  // admin's token, which is not charged to the address's join budget.
  std::string newPendingSite() {
    pb::RequestSiteRequest r;
    r.set_login_base("rq" + uid());
    r.set_name("Requested site " + r.login_base());
    r.set_url("https://" + r.login_base() + ".authz.test/");
    r.set_pi_email("pi-" + r.login_base() + "@authz.test");
    r.set_pi_first_name("Requesting");
    r.set_pi_last_name("Pi");
    r.set_pi_password(kPassword);
    r.set_tech_contact_name("Tech Contact");
    r.set_tech_contact_email(r.pi_email());
    must(&AdminApi::RequestSite, r);
    return r.login_base();
  }

  // A person registered (RegisterPerson) at `site`, disabled.
  std::string newRegisteredPerson(const std::string& site) {
    pb::RegisterPersonRequest r;
    r.set_email("reg" + uid() + "@authz.test");
    r.set_first_name("Registered");
    r.set_last_name("Person");
    r.set_password(kPassword);
    r.set_login_base(site);
    must(&AdminApi::RegisterPerson, r);
    return r.email();
  }

  std::int64_t newBlacklistEntry() {
    pb::AddBlacklistEntryRequest r;
    r.set_prefix(newPrefix());
    r.set_reason("authz test");
    return must(&AdminApi::AddBlacklistEntry, r).entry_id();
  }

  // A slice of site A with the kMember caller as its member and `hostnames` bound.
  std::string newSlice(const std::vector<std::string>& hostnames = {}) {
    pb::AddSliceRequest r;
    r.set_name(siteA + "_s" + uid());
    r.set_description("authz test slice");
    r.set_url("https://authz.test/" + r.name());
    must(&SliceApi::AddSlice, r);
    pb::SliceMembersRequest m;
    m.set_name(r.name());
    m.add_emails(emailOf(Who::kMember));
    must(&SliceApi::AddSliceMembers, m);
    if (!hostnames.empty()) {
      pb::SliceNodesRequest n;
      n.set_name(r.name());
      for (const auto& h : hostnames) n.add_hostnames(h);
      must(&SliceApi::AddSliceNodes, n);
    }
    return r.name();
  }

  std::int64_t newSliceTag(const std::string& sliceName, const std::string& tag,
                           const std::string& value) {
    pb::SetSliceTagRequest r;
    r.set_slice(sliceName);
    r.set_tag(tag);
    r.set_value(value);
    return must(&SliceApi::SetSliceTag, r).slice_tag_id();
  }

  // --- authentication

  std::string login(const std::string& email, const std::string& password = kPassword) const {
    pb::LoginRequest r;
    r.set_email(email);
    r.set_password(password);
    auto anonymous = fx_->anonymous();
    return must(&AuthApi::Login, r, &anonymous).token();
  }

  // A nonce from GetNodeChallenge, asked anonymously.
  std::string challenge(const std::string& hostname) const {
    pb::NodeChallengeRequest r;
    r.set_hostname(hostname);
    auto anonymous = fx_->anonymous();
    return must(&AuthApi::GetNodeChallenge, r, &anonymous).nonce();
  }

  std::string nodeLogin(const std::string& hostname, const plng::ticket::PrivateKey& key) const {
    auto anonymous = fx_->anonymous();
    return must(&AuthApi::NodeLogin,
                plng::test::signedNodeLogin(hostname, challenge(hostname), key), &anonymous)
        .token();
  }
  const plng::ticket::KeyPair& nodeKey() const { return nodeKey_; }
  // A caller of the matrix: over gRPC, or through the JSON API.
  PlcClient client(std::string token) const { return PlcClient(callerChannel_, std::move(token)); }

  // --- database state

  Snapshot snapshot() {
    pqxx::nontransaction tx(*db_);
    Snapshot s;
    for (const auto& row : tx.exec(snapshotSql_)) s[row[0].c_str()] = row[1].c_str();
    return s;
  }

 private:
  void setUp() {
    // The maximum quota: the matrix creates hundreds of slices at site A.
    siteA = newSite(/*staffed=*/false);
    siteB = newSite(/*staffed=*/false);
    pb::UpdateSiteRequest quota;
    quota.set_login_base(siteA);
    quota.set_max_slices(100000);
    quota.set_max_slivers(100000);
    must(&AdminApi::UpdateSite, quota);

    emails_[Who::kAdmin] = PlcFixture::kAdminEmail;
    emails_[Who::kPi] = newPerson(siteA, "pi", "pi");
    emails_[Who::kPiOther] = newPerson(siteB, "pi", "pio");
    emails_[Who::kTech] = newPerson(siteA, "tech", "tech");
    emails_[Who::kMember] = newPerson(siteA, "user", "member");
    emails_[Who::kNonMember] = newPerson(siteA, "user", "nonmember");
    emails_[Who::kNode] = "";
    emails_[Who::kAnonymous] = "";

    nodeKey_ = plng::ticket::generateKeyPair();
    node = newNode(siteA, nodeKey_);
    otherNode = newNode(siteA);
    slice = newSlice({node});

    // The admin caller has a session of its own: the matrix logs it out.
    for (Who who :
         {Who::kAdmin, Who::kPi, Who::kPiOther, Who::kTech, Who::kMember, Who::kNonMember}) {
      callers_.emplace(who, client(login(emailOf(who), passwordOf(who))));
    }
    callers_.emplace(Who::kNode, client(nodeLogin(node, nodeKey_.private_key)));
    callers_.emplace(Who::kAnonymous, client({}));

    db_ = std::make_unique<pqxx::connection>(fx_->connectionString());
    pqxx::nontransaction tx(*db_);
    // Left out: the audit log, which grows with every call, allowed or not; a
    // node's last contact, which any call it makes may refresh; the slice expiry
    // sweeper's bookmark, which plcd advances in the background.
    for (const auto& row :
         tx.exec("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                 " AND table_type = 'BASE TABLE' AND table_name <> 'events' ORDER BY 1")) {
      const std::string table = row[0].c_str();
      if (!snapshotSql_.empty()) snapshotSql_ += " UNION ALL ";
      snapshotSql_ += "SELECT " + tx.quote(table) +
                      ", coalesce(md5(string_agg(x, '|' ORDER BY x)), '') FROM (SELECT"
                      " (to_jsonb(r) - 'last_contact' - 'expiries_seen_until')::text AS x FROM " +
                      tx.quote_name(table) + " r) s";
    }
  }

  std::optional<PlcFixture> fx_;
  std::shared_ptr<grpc::Channel> callerChannel_;  // of the matrix's callers
  std::optional<PlcClient> setupAdmin_;           // the fixture's admin session, for setup calls
  std::map<Who, PlcClient> callers_;
  std::map<Who, std::string> emails_;
  std::map<std::string, std::string> targets_;    // "site/purpose" → targetPerson()
  std::map<std::string, std::string> personsAB_;  // purpose → personOfAandB()
  plng::ticket::KeyPair nodeKey_{};
  std::unique_ptr<pqxx::connection> db_;
  std::string snapshotSql_;
  unsigned counter_ = 0;
  std::string error_;
};

World& world() {
  // Built on first use; its fixture starts the binary's PostgreSQL, which thus
  // outlives it (statics are destroyed in reverse order of construction).
  static World instance;
  if (!instance.ready())
    FAIL("setting up sites, persons and nodes failed: " << instance.setupError());
  return instance;
}

// ------------------------------------------------------------------ the driver

// One (row, caller) call: the caller's identity and what prepare() made for it.
struct Case {
  Case(World& world, Who caller) : w(world), who(caller), uid(world.uid()) {}

  World& w;
  Who who;
  std::string uid;  // unique among all calls: names fresh objects
  std::string email, site, hostname, slice, name;
  std::int64_t id = 0;

  const PlcClient& client() const { return w.as(who); }
  const std::string& selfEmail() const { return w.emailOf(w.self(who)); }

  template <class Stub, class Req, class Resp>
  grpc::Status rpc(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                   const std::type_identity_t<Req>& request, Resp* response = nullptr) const {
    Resp ignored;
    return client().call(method, request, response ? response : &ignored);
  }
};

struct Row {
  std::string method;  // with the arguments that matter to the rule
  Mask allowed;
  std::function<void(Case&)> prepare;  // fresh objects, made by the admin; or nullptr
  std::function<grpc::Status(Case&)> call;
  bool endsSession = false;  // the call may end the caller's session: log in again after
};

std::string changedTables(const Snapshot& before, const Snapshot& after) {
  std::string changed;
  for (const auto& [table, digest] : after) {
    auto it = before.find(table);
    if (it == before.end() || it->second != digest)
      changed += (changed.empty() ? "" : ", ") + table;
  }
  return changed;
}

// What is wrong with `status` for a call that should be `allowed` (or not).
std::optional<std::string> judge(const grpc::Status& status, bool allowed, Who who) {
  if (allowed) {
    if (status.ok()) return std::nullopt;
    return "expected allowed (OK), got " + describeStatus(status);
  }
  const auto refusal = who == Who::kAnonymous ? grpc::StatusCode::UNAUTHENTICATED
                                              : grpc::StatusCode::PERMISSION_DENIED;
  if (status.error_code() == refusal) return std::nullopt;
  return "expected refused (" + statusCodeName(refusal) + "), got " + describeStatus(status);
}

// Runs one row as one caller; returns what went wrong, if anything.
std::optional<std::string> runCase(World& w, const Row& row, Who who) {
  const bool allowed = (row.allowed & bit(who)) != 0;
  Case c(w, who);
  std::optional<std::string> failure;
  try {
    if (row.prepare) row.prepare(c);
  } catch (const std::exception& e) {
    failure = std::string("preparing the call failed: ") + e.what();
  }
  if (!failure) {
    try {
      std::optional<Snapshot> before;
      if (!allowed) before = w.snapshot();
      auto status = row.call(c);
      failure = judge(status, allowed, who);
      if (!failure && before) {
        if (auto changed = changedTables(*before, w.snapshot()); !changed.empty()) {
          failure = "refused (" + describeStatus(status) + ") but changed table(s) " + changed;
        }
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  // After the state check: logging in again adds a session.
  if (row.endsSession) {
    try {
      w.relogin(who);
    } catch (const std::exception& e) {
      failure = failure.value_or("") + "; logging in again failed: " + e.what();
    }
  }
  if (failure) return row.method + " as " + nameOf(who) + ": " + *failure;
  return std::nullopt;
}

void runMatrix(const std::vector<Row>& rows) {
  World& w = world();
  for (const auto& row : rows) {
    for (Who who : kEveryone) {
      if (auto failure = runCase(w, row, who)) {
        FAIL_CHECK(*failure);
      } else {
        SUCCEED(row.method << " as " << nameOf(who));
      }
    }
  }
}

// ------------------------------------------------------------------ the rules
using namespace allow;

std::vector<Row> authRows() {
  return {
      {"Login", kAnyone, nullptr,
       [](Case& c) {
         pb::LoginRequest r;
         r.set_email(c.w.emailOf(Who::kMember));
         r.set_password(World::kPassword);
         return c.rpc(&AuthApi::Login, r);
       }},
      {"Logout", kAuthenticated, nullptr,
       [](Case& c) { return c.rpc(&AuthApi::Logout, pb::Empty()); },
       /*endsSession=*/true},
      {"WhoAmI", kAuthenticated, nullptr,
       [](Case& c) { return c.rpc(&AuthApi::WhoAmI, pb::Empty()); }},
      {"CreateApiToken", kPersons, nullptr,
       [](Case& c) {
         pb::CreateApiTokenRequest r;
         r.set_description("authz " + c.uid);
         return c.rpc(&AuthApi::CreateApiToken, r);
       }},
      {"ListApiTokens", kPersons, nullptr,
       [](Case& c) { return c.rpc(&AuthApi::ListApiTokens, pb::Empty()); }},
      {"RevokeApiToken(own token)", kPersons,
       [](Case& c) {
         pb::CreateApiTokenRequest r;
         r.set_description("authz " + c.uid);
         c.id = c.w.must(&AuthApi::CreateApiToken, r, &c.w.as(c.w.self(c.who))).info().id();
       },
       [](Case& c) {
         pb::RevokeApiTokenRequest r;
         r.set_id(c.id);
         return c.rpc(&AuthApi::RevokeApiToken, r);
       }},
      {"GetNodeChallenge", kAnyone, nullptr,
       [](Case& c) {
         pb::NodeChallengeRequest r;
         r.set_hostname(c.w.node);
         return c.rpc(&AuthApi::GetNodeChallenge, r);
       }},
      {"NodeLogin", kAnyone, [](Case& c) { c.name = c.w.challenge(c.w.node); },
       [](Case& c) {
         return c.rpc(&AuthApi::NodeLogin,
                      plng::test::signedNodeLogin(c.w.node, c.name, c.w.nodeKey().private_key));
       }},
  };
}

std::vector<Row> adminRows() {
  auto staffedSite = [](Case& c) { c.site = c.w.newSite(/*staffed=*/true); };
  auto personAtA = [](Case& c) { c.email = c.w.newPerson(c.w.siteA); };
  auto targetAtA = [](Case& c) { c.email = c.w.targetPerson(c.w.siteA); };
  auto personAtB = [](Case& c) { c.email = c.w.newPerson(c.w.siteB); };
  auto self = [](Case& c) { c.email = c.selfEmail(); };
  auto nodeAtA = [](Case& c) { c.hostname = c.w.newNode(c.w.siteA); };
  auto updatePerson = [](auto fill) {
    return [fill](Case& c) {
      pb::UpdatePersonRequest r;
      r.set_email(c.email);
      fill(c, r);
      return c.rpc(&AdminApi::UpdatePerson, r);
    };
  };
  auto updateSite = [](auto fill) {
    return [fill](Case& c) {
      pb::UpdateSiteRequest r;
      r.set_login_base(c.site);
      fill(r);
      return c.rpc(&AdminApi::UpdateSite, r);
    };
  };
  // Role rows act on one person per site (another for admin), first given or
  // relieved of the role so that every caller meets the same state.
  constexpr bool kAtA = false, kAtB = true;
  auto roleHolder = [](std::string role, bool atSiteB, bool holds) {
    return [role, atSiteB, holds](Case& c) {
      const auto& site = atSiteB ? c.w.siteB : c.w.siteA;
      c.email = c.w.targetPerson(site, role == "admin" ? "admin" : "roles");
      if (holds) {
        c.w.grant(c.email, role, site);
      } else {
        c.w.revoke(c.email, role, site);
      }
    };
  };
  auto roleCall = [](auto method, std::string role, bool atSiteB) {
    return [method, role, atSiteB](Case& c) {
      pb::PersonRoleRequest r;
      r.set_email(c.email);
      r.set_role(role);
      if (role != "admin") r.set_login_base(atSiteB ? c.w.siteB : c.w.siteA);
      return c.rpc(method, r);
    };
  };
  auto addKey = [](Case& c) {
    pb::AddPersonKeyRequest r;
    r.set_email(c.email);
    r.set_key(plng::test::newSshKey("authz" + c.uid + "@test"));
    return c.rpc(&AdminApi::AddPersonKey, r);
  };
  auto getKeys = [](Case& c) {
    pb::GetKeysRequest r;
    r.set_email(c.email);
    return c.rpc(&AdminApi::GetKeys, r);
  };
  auto deleteKey = [](Case& c) {
    pb::DeleteKeyRequest r;
    r.set_key_id(c.id);
    return c.rpc(&AdminApi::DeleteKey, r);
  };
  auto setNodeTag = [](std::string tag) {
    return [tag](Case& c) {
      pb::SetNodeTagRequest r;
      r.set_hostname(c.hostname);
      r.set_tag(tag);
      r.set_value("v" + c.uid);
      return c.rpc(&AdminApi::SetNodeTag, r);
    };
  };
  auto empty = [](auto method) { return [method](Case& c) { return c.rpc(method, pb::Empty()); }; };

  return {
      // ---- sites
      {"AddSite", kAdmin, nullptr,
       [](Case& c) {
         pb::AddSiteRequest r;
         r.set_login_base("az" + c.uid);
         r.set_name("Authz site " + c.uid);
         return c.rpc(&AdminApi::AddSite, r);
       }},
      {"GetSites", kAuthenticated, nullptr,
       [](Case& c) { return c.rpc(&AdminApi::GetSites, pb::GetSitesRequest()); }},
      {"UpdateSite(name, url)", kAdmin | kPi, staffedSite, updateSite([](pb::UpdateSiteRequest& r) {
         r.set_name("Renamed " + r.login_base());
         r.set_url("https://renamed.authz.test/");
       })},
      {"UpdateSite(max_slices)", kAdmin, staffedSite,
       updateSite([](pb::UpdateSiteRequest& r) { r.set_max_slices(42); })},
      {"UpdateSite(max_slivers)", kAdmin, staffedSite,
       updateSite([](pb::UpdateSiteRequest& r) { r.set_max_slivers(42); })},
      {"UpdateSite(enabled)", kAdmin, staffedSite,
       updateSite([](pb::UpdateSiteRequest& r) { r.set_enabled(false); })},
      {"DeleteSite", kAdmin, staffedSite,
       [](Case& c) {
         pb::DeleteSiteRequest r;
         r.set_login_base(c.site);
         return c.rpc(&AdminApi::DeleteSite, r);
       }},
      // Joining: anyone may ask for a site (it starts pending), only admins approve.
      {"RequestSite", kAnyone, nullptr,
       [](Case& c) {
         pb::RequestSiteRequest r;
         r.set_login_base("rs" + c.uid);
         r.set_name("Requested " + c.uid);
         r.set_url("https://rs" + c.uid + ".authz.test/");
         r.set_pi_email("rs" + c.uid + "@authz.test");
         r.set_pi_first_name("Requesting");
         r.set_pi_last_name("Pi");
         r.set_pi_password(World::kPassword);
         r.set_tech_contact_name("Tech");
         r.set_tech_contact_email(r.pi_email());
         return c.rpc(&AdminApi::RequestSite, r);
       }},
      {"ApproveSite", kAdmin, [](Case& c) { c.site = c.w.newPendingSite(); },
       [](Case& c) {
         pb::ApproveSiteRequest r;
         r.set_login_base(c.site);
         return c.rpc(&AdminApi::ApproveSite, r);
       }},
      {"GetSites(pending_only)", kAuthenticated, nullptr,
       [](Case& c) {
         pb::GetSitesRequest r;
         r.set_pending_only(true);
         return c.rpc(&AdminApi::GetSites, r);
       }},

      // ---- organizations
      {"AddOrganization", kAdmin, nullptr,
       [](Case& c) {
         pb::AddOrganizationRequest r;
         r.set_name("org" + c.uid);
         return c.rpc(&AdminApi::AddOrganization, r);
       }},
      {"GetOrganizations", kAuthenticated, nullptr,
       [](Case& c) { return c.rpc(&AdminApi::GetOrganizations, pb::GetOrganizationsRequest()); }},
      {"AddSiteToOrganization(site A)", kAdmin,
       [](Case& c) { c.name = c.w.newOrganization(/*withSiteA=*/false); },
       [](Case& c) {
         pb::OrganizationSiteRequest r;
         r.set_organization(c.name);
         r.set_login_base(c.w.siteA);
         return c.rpc(&AdminApi::AddSiteToOrganization, r);
       }},
      {"RemoveSiteFromOrganization(site A)", kAdmin,
       [](Case& c) { c.name = c.w.newOrganization(/*withSiteA=*/true); },
       [](Case& c) {
         pb::OrganizationSiteRequest r;
         r.set_organization(c.name);
         r.set_login_base(c.w.siteA);
         return c.rpc(&AdminApi::RemoveSiteFromOrganization, r);
       }},
      {"DeleteOrganization", kAdmin,
       [](Case& c) { c.name = c.w.newOrganization(/*withSiteA=*/false); },
       [](Case& c) {
         pb::DeleteOrganizationRequest r;
         r.set_name(c.name);
         return c.rpc(&AdminApi::DeleteOrganization, r);
       }},

      // ---- persons
      {"AddPerson(at site A)", kAdmin | kPi, nullptr,
       [](Case& c) {
         pb::AddPersonRequest r;
         r.set_email("new" + c.uid + "@authz.test");
         r.set_first_name("New");
         r.set_last_name("Person");
         r.set_password(World::kPassword);
         r.set_login_base(c.w.siteA);
         return c.rpc(&AdminApi::AddPerson, r);
       }},
      {"GetPersons", kPersons, nullptr,
       [](Case& c) { return c.rpc(&AdminApi::GetPersons, pb::GetPersonsRequest()); }},
      // Registration: anyone may register at an enabled site; a PI of the site
      // (or an admin) enables the account.
      {"RegisterPerson(at site A)", kAnyone, nullptr,
       [](Case& c) {
         pb::RegisterPersonRequest r;
         r.set_email("rp" + c.uid + "@authz.test");
         r.set_first_name("Registering");
         r.set_last_name("Person");
         r.set_password(World::kPassword);
         r.set_login_base(c.w.siteA);
         return c.rpc(&AdminApi::RegisterPerson, r);
       }},
      {"UpdatePerson(enabled) of a person registered at site A", kAdmin | kPi,
       [](Case& c) { c.email = c.w.newRegisteredPerson(c.w.siteA); },
       updatePerson([](Case&, pb::UpdatePersonRequest& r) { r.set_enabled(true); })},
      {"UpdatePerson(names) of a user at site A", kAdmin | kPi, targetAtA,
       updatePerson([](Case& c, pb::UpdatePersonRequest& r) { r.set_first_name("F" + c.uid); })},
      {"UpdatePerson(names) of self", kPersons, self,
       updatePerson([](Case& c, pb::UpdatePersonRequest& r) { r.set_last_name("L" + c.uid); })},
      {"UpdatePerson(password) of a user at site A", kAdmin | kPi, targetAtA,
       updatePerson(
           [](Case& c, pb::UpdatePersonRequest& r) { r.set_password("changed-" + c.uid); })},
      {"UpdatePerson(password) of self", kPersons, self,
       updatePerson([](Case& c, pb::UpdatePersonRequest& r) {
         r.set_password(c.w.passwordOf(c.w.self(c.who)));  // unchanged: later rows log in again
       }),
       /*endsSession=*/true},
      {"UpdatePerson(enabled) of a user at site A", kAdmin | kPi,
       [](Case& c) {
         c.email = c.w.targetPerson(c.w.siteA);
         c.w.setEnabled(c.email, true);
       },
       updatePerson([](Case&, pb::UpdatePersonRequest& r) { r.set_enabled(false); })},
      // Only a PI of one of the person's sites (or an admin) sets `enabled`, even
      // on themselves: pi and pi_other are PIs of their own site.
      {"UpdatePerson(enabled) of self", kAdmin | kPi | kPiOther, self,
       updatePerson([](Case&, pb::UpdatePersonRequest& r) { r.set_enabled(true); })},
      {"DeletePerson(user at site A)", kAdmin | kPi, personAtA,
       [](Case& c) {
         pb::DeletePersonRequest r;
         r.set_email(c.email);
         return c.rpc(&AdminApi::DeletePerson, r);
       }},
      {"AddPersonToSite(site A, person of site B)", kAdmin, personAtB,
       [](Case& c) {
         pb::PersonSiteRequest r;
         r.set_email(c.email);
         r.set_login_base(c.w.siteA);
         return c.rpc(&AdminApi::AddPersonToSite, r);
       }},
      {"RemovePersonFromSite(site A, person of site B)", kAdmin | kPi,
       [](Case& c) {
         c.email = c.w.newPerson(c.w.siteB);
         c.w.joinSite(c.email, c.w.siteA, "user");
       },
       [](Case& c) {
         pb::PersonSiteRequest r;
         r.set_email(c.email);
         r.set_login_base(c.w.siteA);
         return c.rpc(&AdminApi::RemovePersonFromSite, r);
       }},
      {"AddRoleToPerson(tech at site A)", kAdmin | kPi, roleHolder("tech", kAtA, /*holds=*/false),
       roleCall(&AdminApi::AddRoleToPerson, "tech", kAtA)},
      {"AddRoleToPerson(pi at site A)", kAdmin | kPi, roleHolder("pi", kAtA, /*holds=*/false),
       roleCall(&AdminApi::AddRoleToPerson, "pi", kAtA)},
      {"AddRoleToPerson(tech at site B)", kAdmin | kPiOther,
       roleHolder("tech", kAtB, /*holds=*/false),
       roleCall(&AdminApi::AddRoleToPerson, "tech", kAtB)},
      {"AddRoleToPerson(admin)", kAdmin, roleHolder("admin", kAtA, /*holds=*/false),
       roleCall(&AdminApi::AddRoleToPerson, "admin", kAtA)},
      {"DeleteRoleFromPerson(tech at site A)", kAdmin | kPi,
       roleHolder("tech", kAtA, /*holds=*/true),
       roleCall(&AdminApi::DeleteRoleFromPerson, "tech", kAtA)},
      {"DeleteRoleFromPerson(admin)", kAdmin, roleHolder("admin", kAtA, /*holds=*/true),
       roleCall(&AdminApi::DeleteRoleFromPerson, "admin", kAtA)},

      // ---- keys
      {"AddPersonKey(own)", kPersons, self, addKey},
      {"AddPersonKey(user at site A)", kAdmin | kPi, targetAtA, addKey},
      {"GetKeys(own)", kAuthenticated, self, getKeys},
      // Each key row has a person of its own: the rows add keys to them, and a
      // person holds at most max_keys_per_person.
      {"GetKeys(user at site A)", kAdmin | kPi | kNode,
       [](Case& c) {
         c.email = c.w.targetPerson(c.w.siteA, "getkeys");
         c.w.newKey(c.email);
       },
       getKeys},
      {"DeleteKey(own)", kPersons, [](Case& c) { c.id = c.w.newKey(c.selfEmail()); }, deleteKey},
      {"DeleteKey(of a user at site A)", kAdmin | kPi,
       [](Case& c) { c.id = c.w.newKey(c.w.targetPerson(c.w.siteA, "delkey")); }, deleteKey},
      // ---- a person of sites A and B: the account takes a PI of both (or admin)
      {"UpdatePerson(names) of a person of sites A and B", kAdmin | kPi | kPiOther,
       [](Case& c) { c.email = c.w.personOfAandB(); },
       updatePerson([](Case& c, pb::UpdatePersonRequest& r) { r.set_first_name("F" + c.uid); })},
      {"UpdatePerson(password) of a person of sites A and B", kAdmin,
       [](Case& c) { c.email = c.w.personOfAandB(); },
       updatePerson(
           [](Case& c, pb::UpdatePersonRequest& r) { r.set_password("changed-" + c.uid); })},
      {"UpdatePerson(enabled) of a person of sites A and B", kAdmin,
       [](Case& c) {
         c.email = c.w.personOfAandB();
         c.w.setEnabled(c.email, true);
       },
       updatePerson([](Case&, pb::UpdatePersonRequest& r) { r.set_enabled(false); })},
      {"AddPersonKey(person of sites A and B)", kAdmin,
       [](Case& c) { c.email = c.w.personOfAandB(); }, addKey},
      {"GetKeys(person of sites A and B)", kAdmin | kPi | kPiOther | kNode,
       [](Case& c) { c.email = c.w.personOfAandB(); }, getKeys},
      {"DeleteKey(of a person of sites A and B)", kAdmin,
       [](Case& c) { c.id = c.w.newKey(c.w.personOfAandB("delkey")); }, deleteKey},
      {"DeletePerson(person of sites A and B)", kAdmin,
       [](Case& c) { c.email = c.w.newPersonOfAandB(); },
       [](Case& c) {
         pb::DeletePersonRequest r;
         r.set_email(c.email);
         return c.rpc(&AdminApi::DeletePerson, r);
       }},
      {"RemovePersonFromSite(site B, person of sites A and B)", kAdmin | kPiOther,
       [](Case& c) { c.email = c.w.newPersonOfAandB(); },
       [](Case& c) {
         pb::PersonSiteRequest r;
         r.set_email(c.email);
         r.set_login_base(c.w.siteB);
         return c.rpc(&AdminApi::RemovePersonFromSite, r);
       }},
      {"BlacklistKey", kAdmin,
       [](Case& c) { c.id = c.w.newKey(c.w.targetPerson(c.w.siteA, "blacklist")); },
       [](Case& c) {
         pb::BlacklistKeyRequest r;
         r.set_key_id(c.id);
         return c.rpc(&AdminApi::BlacklistKey, r);
       }},
      {"GetBlacklistedKeys", kAdmin, nullptr, empty(&AdminApi::GetBlacklistedKeys)},

      // ---- nodes
      {"AddNode(at site A)", kAdmin | kPi | kTech, nullptr,
       [](Case& c) {
         pb::AddNodeRequest r;
         r.set_hostname("new" + c.uid + ".authz.test");
         r.set_login_base(c.w.siteA);
         r.set_public_key(bytesOf(plng::ticket::generateKeyPair().public_key));
         return c.rpc(&AdminApi::AddNode, r);
       }},
      {"GetNodes", kAuthenticated, nullptr,
       [](Case& c) { return c.rpc(&AdminApi::GetNodes, pb::GetNodesRequest()); }},
      {"UpdateNode(boot_state)", kAdmin | kPi | kTech, nodeAtA,
       [](Case& c) {
         pb::UpdateNodeRequest r;
         r.set_hostname(c.hostname);
         r.set_boot_state("safeboot");
         return c.rpc(&AdminApi::UpdateNode, r);
       }},
      {"DeleteNode", kAdmin | kPi | kTech, nodeAtA,
       [](Case& c) {
         pb::DeleteNodeRequest r;
         r.set_hostname(c.hostname);
         return c.rpc(&AdminApi::DeleteNode, r);
       }},
      {"SetNodeTag(arch, min_role tech)", kAdmin | kPi | kTech, nodeAtA, setNodeTag("arch")},
      {"SetNodeTag(deployment, min_role admin)", kAdmin, nodeAtA, setNodeTag("deployment")},
      {"DeleteNodeTag(arch, min_role tech)", kAdmin | kPi | kTech,
       [](Case& c) {
         c.hostname = c.w.newNode(c.w.siteA);
         c.w.setNodeTag(c.hostname, "arch", "x86_64");
       },
       [](Case& c) {
         pb::DeleteNodeTagRequest r;
         r.set_hostname(c.hostname);
         r.set_tag("arch");
         return c.rpc(&AdminApi::DeleteNodeTag, r);
       }},

      // ---- node groups
      {"AddNodeGroup", kAdmin, nullptr,
       [](Case& c) {
         pb::AddNodeGroupRequest r;
         r.set_name("ng" + c.uid);
         r.set_tag("arch");
         r.set_value("arch" + c.uid);
         return c.rpc(&AdminApi::AddNodeGroup, r);
       }},
      {"GetNodeGroups", kAuthenticated, nullptr,
       [](Case& c) { return c.rpc(&AdminApi::GetNodeGroups, pb::GetNodeGroupsRequest()); }},
      {"DeleteNodeGroup", kAdmin, [](Case& c) { c.name = c.w.newNodeGroup(); },
       [](Case& c) {
         pb::DeleteNodeGroupRequest r;
         r.set_name(c.name);
         return c.rpc(&AdminApi::DeleteNodeGroup, r);
       }},

      // ---- tag types
      {"AddTagType", kAdmin, nullptr,
       [](Case& c) {
         pb::AddTagTypeRequest r;
         r.set_name("tt" + c.uid);
         r.set_category("slice/config");
         r.set_min_role("user");
         r.set_value_kind("string");
         return c.rpc(&AdminApi::AddTagType, r);
       }},
      {"GetTagTypes", kAuthenticated, nullptr,
       [](Case& c) { return c.rpc(&AdminApi::GetTagTypes, pb::GetTagTypesRequest()); }},
      {"UpdateTagType(description)", kAdmin, [](Case& c) { c.name = c.w.newTagType(); },
       [](Case& c) {
         pb::UpdateTagTypeRequest r;
         r.set_name(c.name);
         r.set_description("changed " + c.uid);
         return c.rpc(&AdminApi::UpdateTagType, r);
       }},
      {"DeleteTagType", kAdmin, [](Case& c) { c.name = c.w.newTagType(); },
       [](Case& c) {
         pb::DeleteTagTypeRequest r;
         r.set_name(c.name);
         return c.rpc(&AdminApi::DeleteTagType, r);
       }},

      // ---- destination blacklist
      {"AddBlacklistEntry", kAdmin, nullptr,
       [](Case& c) {
         pb::AddBlacklistEntryRequest r;
         r.set_prefix(c.w.newPrefix());
         r.set_reason("authz " + c.uid);
         return c.rpc(&AdminApi::AddBlacklistEntry, r);
       }},
      {"GetBlacklist", kAdmin | kNode, nullptr, empty(&AdminApi::GetBlacklist)},
      {"DeleteBlacklistEntry", kAdmin, [](Case& c) { c.id = c.w.newBlacklistEntry(); },
       [](Case& c) {
         pb::DeleteBlacklistEntryRequest r;
         r.set_entry_id(c.id);
         return c.rpc(&AdminApi::DeleteBlacklistEntry, r);
       }},

      // ---- PLC signing keys
      {"GetPlcKeys", kAuthenticated, nullptr, empty(&AdminApi::GetPlcKeys)},
      {"RotatePlcKey", kAdmin, nullptr, empty(&AdminApi::RotatePlcKey)},
      {"RetirePlcKey(the previous signing key)", kAdmin,
       [](Case& c) {
         c.name = c.w.must(&AdminApi::GetPlcKeys, pb::Empty()).signing_key_id();
         c.w.must(&AdminApi::RotatePlcKey, pb::Empty());
       },
       [](Case& c) {
         pb::RetirePlcKeyRequest r;
         r.set_key_id(c.name);
         return c.rpc(&AdminApi::RetirePlcKey, r);
       }},

      // ---- audit log: admins see every event, others only their own
      {"GetEvents", kPersons, nullptr,
       [](Case& c) {
         pb::GetEventsRequest r;
         r.set_limit(10000);
         pb::GetEventsResponse events;
         auto status = c.rpc(&AdminApi::GetEvents, r, &events);
         if (!status.ok() || !isPerson(c.who)) return status;
         bool othersSeen = false;
         for (const auto& e : events.events()) {
           if (e.caller() == c.w.emailOf(c.who)) continue;
           if (c.who != Who::kAdmin) {
             throw CaseFailure("GetEvents showed " + c.w.emailOf(c.who) + " an event of " +
                               e.caller() + " (" + e.method() + ")");
           }
           othersSeen = true;
         }
         if (c.who == Who::kAdmin && !othersSeen) {
           throw CaseFailure("GetEvents showed the admin only the admin's own events");
         }
         return status;
       }},

      // ---- nodes' status (daily byte budgets): any enabled person reads it
      {"GetNodeStatus", kPersons, nullptr,
       [](Case& c) {
         pb::GetNodeStatusRequest r;
         r.add_hostnames(c.w.node);
         return c.rpc(&AdminApi::GetNodeStatus, r);
       }},
      // ---- flow archive: anyone with an account may ask who sent traffic to an
      // address, as PlanetLab's auditing service answered anyone
      {"GetFlows", kPersons, nullptr,
       [](Case& c) {
         pb::GetFlowsRequest r;
         r.set_dst("192.0.2.0/24");
         return c.rpc(&AdminApi::GetFlows, r);
       }},
  };
}

std::vector<Row> sliceRows() {
  auto freshSlice = [](Case& c) { c.slice = c.w.newSlice(); };
  auto sliceWithNode = [](Case& c) { c.slice = c.w.newSlice({c.w.node}); };
  auto members = [](auto method, Who member) {
    return [method, member](Case& c) {
      pb::SliceMembersRequest r;
      r.set_name(c.slice);
      r.add_emails(c.w.emailOf(member));
      return c.rpc(method, r);
    };
  };
  auto nodes = [](auto method) {
    return [method](Case& c) {
      pb::SliceNodesRequest r;
      r.set_name(c.slice);
      r.add_hostnames(c.w.node);
      return c.rpc(method, r);
    };
  };
  auto setTag = [](std::string tag, std::string value) {
    return [tag, value](Case& c) {
      pb::SetSliceTagRequest r;
      r.set_slice(c.slice);
      r.set_tag(tag);
      r.set_value(value);
      return c.rpc(&SliceApi::SetSliceTag, r);
    };
  };
  auto withTag = [](std::string tag, std::string value) {
    return [tag, value](Case& c) {
      c.slice = c.w.newSlice();
      c.id = c.w.newSliceTag(c.slice, tag, value);
    };
  };
  auto deleteTag = [](Case& c) {
    pb::DeleteSliceTagRequest r;
    r.set_slice_tag_id(c.id);
    return c.rpc(&SliceApi::DeleteSliceTag, r);
  };
  const Mask kSliceStaff = kAdmin | kPi;  // admin or PI of the slice's site
  const Mask kSliceUsers = kSliceStaff | kMember;

  return {
      {"AddSlice(prefix site A)", kSliceStaff, nullptr,
       [](Case& c) {
         pb::AddSliceRequest r;
         r.set_name(c.w.siteA + "_new" + c.uid);
         r.set_description("authz");
         return c.rpc(&SliceApi::AddSlice, r);
       }},
      {"GetSlices", kPersons, nullptr,
       [](Case& c) {
         pb::GetSlicesRequest r;
         r.add_names(c.w.slice);
         return c.rpc(&SliceApi::GetSlices, r);
       }},
      {"GetSliceTags", kPersons, nullptr,
       [](Case& c) {
         pb::GetSliceTagsRequest r;
         r.set_slice(c.w.slice);
         return c.rpc(&SliceApi::GetSliceTags, r);
       }},
      {"UpdateSlice(description)", kSliceStaff, freshSlice,
       [](Case& c) {
         pb::UpdateSliceRequest r;
         r.set_name(c.slice);
         r.set_description("changed " + c.uid);
         return c.rpc(&SliceApi::UpdateSlice, r);
       }},
      {"RenewSlice", kSliceUsers, freshSlice,
       [](Case& c) {
         pb::RenewSliceRequest r;
         r.set_name(c.slice);
         r.set_expires_at(now() + 30 * 24 * 3600);
         return c.rpc(&SliceApi::RenewSlice, r);
       }},
      {"DeleteSlice", kSliceStaff, freshSlice,
       [](Case& c) {
         pb::DeleteSliceRequest r;
         r.set_name(c.slice);
         return c.rpc(&SliceApi::DeleteSlice, r);
       }},
      {"AddSliceMembers(user_nonmember)", kSliceStaff, freshSlice,
       members(&SliceApi::AddSliceMembers, Who::kNonMember)},
      {"RemoveSliceMembers(user_member)", kSliceStaff, freshSlice,
       members(&SliceApi::RemoveSliceMembers, Who::kMember)},
      {"AddSliceNodes(node of site A)", kSliceUsers, freshSlice, nodes(&SliceApi::AddSliceNodes)},
      {"RemoveSliceNodes(node of site A)", kSliceUsers, sliceWithNode,
       nodes(&SliceApi::RemoveSliceNodes)},
      {"SetSliceTag(initscript, min_role user)", kSliceUsers, freshSlice,
       setTag("initscript", "#!/bin/sh\ntrue\n")},
      {"SetSliceTag(cpu_cap, min_role pi)", kSliceStaff, freshSlice, setTag("cpu_cap", "50")},
      {"SetSliceTag(cpu_share, min_role admin)", kAdmin, freshSlice, setTag("cpu_share", "64")},
      {"DeleteSliceTag(initscript, min_role user)", kSliceUsers,
       withTag("initscript", "#!/bin/sh\n"), deleteTag},
      {"DeleteSliceTag(cpu_cap, min_role pi)", kSliceStaff, withTag("cpu_cap", "25"), deleteTag},
      {"DeleteSliceTag(cpu_share, min_role admin)", kAdmin, withTag("cpu_share", "16"), deleteTag},
      {"GetSliceTicket", kSliceUsers, nullptr,
       [](Case& c) {
         pb::GetSliceTicketRequest r;
         r.set_slice(c.w.slice);
         return c.rpc(&SliceApi::GetSliceTicket, r);
       }},
  };
}

// WatchSlivers: reads the first state, then cancels the stream.
grpc::Status watchOnce(const Case& c, const std::string& hostname) {
  pb::WatchSliversRequest r;
  r.set_hostname(hostname);
  auto ctx = c.client().context();
  auto reader = c.client().nodeSync().WatchSlivers(ctx.get(), r);
  pb::NodeState state;
  if (reader->Read(&state)) {
    ctx->TryCancel();
    reader->Finish();
    return grpc::Status::OK;
  }
  auto status = reader->Finish();
  if (status.ok()) return {grpc::StatusCode::INTERNAL, "WatchSlivers ended without a state"};
  return status;
}

std::vector<Row> nodeSyncRows() {
  // Which node a caller names: the node itself may leave the hostname empty.
  auto ownNode = [](const Case& c) { return c.who == Who::kNode ? std::string() : c.w.node; };
  auto named = [](const std::string World::*hostname) {
    return [hostname](const Case& c) { return c.w.*hostname; };
  };
  auto getSlivers = [](auto target) {
    return [target](Case& c) {
      pb::GetSliversRequest r;
      r.set_hostname(target(c));
      return c.rpc(&SyncApi::GetSlivers, r);
    };
  };
  auto watch = [](auto target) { return [target](Case& c) { return watchOnce(c, target(c)); }; };
  const Mask kItselfOrAdmin = kAdmin | kNode;

  return {
      {"GetSlivers(own node; the node leaves hostname empty)", kItselfOrAdmin, nullptr,
       getSlivers(ownNode)},
      {"GetSlivers(own node by hostname)", kItselfOrAdmin, nullptr,
       getSlivers(named(&World::node))},
      {"GetSlivers(another node of site A)", kAdmin, nullptr, getSlivers(named(&World::otherNode))},
      {"WatchSlivers(own node; the node leaves hostname empty)", kItselfOrAdmin, nullptr,
       watch(ownNode)},
      {"WatchSlivers(own node by hostname)", kItselfOrAdmin, nullptr, watch(named(&World::node))},
      {"WatchSlivers(another node of site A)", kAdmin, nullptr, watch(named(&World::otherNode))},
      // A report carries no hostname: a node reports its own status, nobody else's.
      {"ReportStatus(own node)", kNode, nullptr,
       [](Case& c) {
         pb::NodeStatusReport r;
         r.set_reported_at(1'800'000'000);
         r.add_slice_net()->set_slice_name("site_a_slice");
         return c.rpc(&SyncApi::ReportStatus, r);
       }},
      // A node reports its own flows; the session names the node.
      {"ReportFlows", kNode, nullptr,
       [](Case& c) {
         pb::ReportFlowsRequest r;
         r.set_batch_id("authz-" + c.w.uid());
         auto* f = r.add_flows();
         f->set_slice_name(c.w.slice);
         f->set_protocol(17);
         f->set_src_addr(std::string("\x0a\x00\x00\x01", 4));
         f->set_dst_addr(std::string("\xc0\x00\x02\x07", 4));
         f->set_dst_port(53);
         f->set_packets(1);
         f->set_bytes(60);
         f->set_first_seen_ns(now() * 1000000000);
         f->set_last_seen_ns(now() * 1000000000);
         return c.rpc(&SyncApi::ReportFlows, r);
       }},
  };
}

}  // namespace

// ------------------------------------------------------------------ tests

TEST_CASE("authorisation matrix: Auth", "[plc][pg][authz]") { runMatrix(authRows()); }

TEST_CASE("authorisation matrix: Admin", "[plc][pg][authz]") { runMatrix(adminRows()); }

TEST_CASE("authorisation matrix: Slice", "[plc][pg][authz]") { runMatrix(sliceRows()); }

TEST_CASE("authorisation matrix: NodeSync", "[plc][pg][authz]") { runMatrix(nodeSyncRows()); }

TEST_CASE("a non-admin may not grant a role above their own", "[plc][pg][authz]") {
  World& w = world();
  auto grantSelf = [&](Who who, const std::string& role) {
    pb::PersonRoleRequest r;
    r.set_email(w.emailOf(who));
    r.set_role(role);
    if (role != "admin") r.set_login_base(w.siteA);
    return w.as(who).call(&AdminApi::AddRoleToPerson, r).first;
  };
  CHECK_STATUS(grantSelf(Who::kPi, "admin"), grpc::StatusCode::PERMISSION_DENIED, "");
  CHECK_STATUS(grantSelf(Who::kTech, "pi"), grpc::StatusCode::PERMISSION_DENIED, "");
  CHECK_STATUS(grantSelf(Who::kMember, "tech"), grpc::StatusCode::PERMISSION_DENIED, "");

  for (Who who : {Who::kPi, Who::kTech, Who::kMember}) {
    INFO("roles of " << nameOf(who) << " after refused grants");
    auto me = w.as(who).call(&AuthApi::WhoAmI, pb::Empty());
    REQUIRE_OK(me.first);
    for (const auto& grant : me.second.roles()) {
      CHECK(grant.role() != "admin");
      if (who != Who::kPi) CHECK(grant.role() != "pi");
      if (who == Who::kMember) CHECK(grant.role() != "tech");
    }
  }
}

TEST_CASE("a disabled person cannot log in, and their session ends", "[plc][pg][authz]") {
  World& w = world();
  const auto email = w.newPerson(w.siteA, "user");
  auto person = w.client(w.login(email));
  REQUIRE_OK(person.call(&AuthApi::WhoAmI, pb::Empty()).first);

  pb::UpdatePersonRequest disable;
  disable.set_email(email);
  disable.set_enabled(false);
  w.must(&AdminApi::UpdatePerson, disable);

  pb::LoginRequest login;
  login.set_email(email);
  login.set_password(World::kPassword);
  CHECK_STATUS(w.fx().anonymous().call(&AuthApi::Login, login).first,
               grpc::StatusCode::PERMISSION_DENIED, "disabled");
  CHECK_STATUS(person.call(&AuthApi::WhoAmI, pb::Empty()).first, grpc::StatusCode::UNAUTHENTICATED,
               "");
}

TEST_CASE("a deleted node's token stops working", "[plc][pg][authz]") {
  World& w = world();
  const auto key = plng::ticket::generateKeyPair();
  const auto hostname = w.newNode(w.siteA, key);
  auto node = w.client(w.nodeLogin(hostname, key.private_key));
  auto me = node.call(&AuthApi::WhoAmI, pb::Empty());
  REQUIRE_OK(me.first);
  CHECK(me.second.kind() == "node");
  CHECK(me.second.hostname() == hostname);
  REQUIRE_OK(node.call(&SyncApi::GetSlivers, pb::GetSliversRequest()).first);

  pb::DeleteNodeRequest del;
  del.set_hostname(hostname);
  w.must(&AdminApi::DeleteNode, del);

  CHECK_STATUS(node.call(&AuthApi::WhoAmI, pb::Empty()).first, grpc::StatusCode::UNAUTHENTICATED,
               "");
  CHECK_STATUS(node.call(&SyncApi::GetSlivers, pb::GetSliversRequest()).first,
               grpc::StatusCode::UNAUTHENTICATED, "");
  pb::NodeChallengeRequest challenge;
  challenge.set_hostname(hostname);
  CHECK_FALSE(w.fx().anonymous().call(&AuthApi::GetNodeChallenge, challenge).first.ok());
}
