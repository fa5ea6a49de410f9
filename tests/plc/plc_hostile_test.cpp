// Hostile users against PLC (issue 7): each test replays an attack that worked
// on an earlier PLC through the real gRPC API and a real PostgreSQL, and checks
// that it fails at every step, with the error a caller can act on, and changes
// nothing.
//   item 1: a PI of one site takes over a user of another site
//   item 2: a node logs in with a small-order key and a forged signature
//   item 3: one node challenge logs in several times; anonymous callers fill tables
//   item 7: one user's keys and tags stop a node from syncing
//   item 9: password guessing; which tokens mint API tokens
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "base/strings.h"
#include "proto/node_protocol.h"
#include "tests/support/plc_seed.h"
#include "tests/support/scratch_dir.h"

using namespace plng::test;
using namespace std::chrono_literals;
using grpc::StatusCode;

namespace {

using AuthApi = pb::Auth::Stub;
using AdminApi = pb::Admin::Stub;
using SliceApi = pb::Slice::Stub;

// An OpenSSH ed25519 line for raw key bytes (which PLC may refuse).
std::string sshEd25519(const std::string& key_bytes, const std::string& comment) {
  return sshKeyLine("ssh-ed25519", {key_bytes}, comment);
}

// A config file for a plcd of the test's own, removed with the object.
class ConfigFile {
 public:
  explicit ConfigFile(const std::string& text) { std::ofstream(path()) << text; }
  std::vector<std::string> args() const { return {"--config", path().string()}; }

 private:
  std::filesystem::path path() const { return dir_ / "plcd.conf"; }
  ScratchDir dir_{"plc_hostile"};
};

pb::LoginRequest loginRequest(const std::string& email, const std::string& password) {
  pb::LoginRequest r;
  r.set_email(email);
  r.set_password(password);
  return r;
}

grpc::Status login(const PlcClient& anon, const std::string& email, const std::string& password) {
  return anon.call(&AuthApi::Login, loginRequest(email, password)).first;
}

std::string challenge(const PlcClient& anon, const std::string& hostname) {
  pb::NodeChallengeRequest r;
  r.set_hostname(hostname);
  auto [status, resp] = anon.call(&AuthApi::GetNodeChallenge, r);
  REQUIRE_OK(status);
  return resp.nonce();
}

std::int64_t count(Seeder& seed, const std::string& query) {
  return seed.sql(query)[0][0].as<std::int64_t>();
}

std::vector<std::string> keysOf(const PlcClient& c, const std::string& email) {
  pb::GetKeysRequest r;
  r.set_email(email);
  auto [status, resp] = c.call(&AdminApi::GetKeys, r);
  REQUIRE_OK(status);
  std::vector<std::string> out;
  for (const auto& k : resp.keys()) out.push_back(k.key());
  return out;
}

}  // namespace

// ------------------------------------------------------------------- item 1

TEST_CASE_METHOD(PlcFixture, "a PI of site B cannot take over a user of site A (issue 7, item 1)",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  seed.site("siteb");
  auto victim = seed.person("victim@a.edu", "sitea", {});
  const std::string victim_password = "password-victim@a.edu";
  const auto victim_key = seed.key("victim@a.edu");
  auto pi_b = seed.person("pi@b.edu", "siteb", {"pi"});
  pb::AddSliceRequest slice;
  slice.set_name("sitea_exp");
  REQUIRE_OK(admin().call(&SliceApi::AddSlice, slice).first);
  pb::SliceMembersRequest members;
  members.set_name("sitea_exp");
  members.add_emails("victim@a.edu");
  REQUIRE_OK(admin().call(&SliceApi::AddSliceMembers, members).first);
  const auto attacker_key = newSshKey("mallory@b");
  auto anon = anonymous();

  auto ticketKeys = [&] {
    pb::GetSliceTicketRequest r;
    r.set_slice("sitea_exp");
    auto [status, ticket] = admin().call(&SliceApi::GetSliceTicket, r);
    REQUIRE_OK(status);
    pb::TicketBody body;
    REQUIRE(body.ParseFromString(ticket.body()));
    std::vector<std::string> keys;
    for (const auto& k : body.member_keys()) keys.push_back(k.key());
    return keys;
  };
  auto sitesOfVictim = [&] {
    pb::GetPersonsRequest r;
    r.add_emails("victim@a.edu");
    auto [status, resp] = admin().call(&AdminApi::GetPersons, r);
    REQUIRE_OK(status);
    REQUIRE(resp.persons_size() == 1);
    std::vector<std::string> sites;
    for (const auto& s : resp.persons(0).sites()) sites.push_back(s);
    return sites;
  };

  // Step 1: the PI of B joins A's user to B.
  pb::PersonSiteRequest join;
  join.set_email("victim@a.edu");
  join.set_login_base("siteb");
  CHECK_STATUS(pi_b.call(&AdminApi::AddPersonToSite, join).first, StatusCode::PERMISSION_DENIED,
               "admin");
  CHECK(sitesOfVictim() == std::vector<std::string>{"sitea"});

  // Every later step independently: an admin makes the membership, as if step 1
  // had worked (where it did work, the membership is there already).
  auto joined = admin().call(&AdminApi::AddPersonToSite, join).first;
  if (joined.error_code() != StatusCode::ALREADY_EXISTS) REQUIRE_OK(joined);
  REQUIRE(sitesOfVictim() == std::vector<std::string>{"sitea", "siteb"});

  // Step 2: the PI of B changes the user's password...
  pb::UpdatePersonRequest password;
  password.set_email("victim@a.edu");
  password.set_password("mallory-knows-this");
  CHECK_STATUS(pi_b.call(&AdminApi::UpdatePerson, password).first, StatusCode::PERMISSION_DENIED,
               "every one of their sites");
  // Step 3: ... and logs in as him: the password is still the victim's.
  CHECK_STATUS(login(anon, "victim@a.edu", "mallory-knows-this"), StatusCode::UNAUTHENTICATED,
               "wrong email or password");
  CHECK_OK(login(anon, "victim@a.edu", victim_password));
  CHECK_OK(victim.call(&AuthApi::WhoAmI, pb::Empty()).first);

  // Step 4: adds his own key, which would show in A's slice tickets.
  pb::AddPersonKeyRequest add_key;
  add_key.set_email("victim@a.edu");
  add_key.set_key(attacker_key);
  CHECK_STATUS(pi_b.call(&AdminApi::AddPersonKey, add_key).first, StatusCode::PERMISSION_DENIED,
               "every one of their sites");
  CHECK(keysOf(admin(), "victim@a.edu") == std::vector<std::string>{victim_key});
  CHECK(ticketKeys() == std::vector<std::string>{victim_key});

  // The same class: disabling, deleting the account, or deleting its key.
  auto victim_key_id = seed.sql(
                               "SELECT min(key_id) FROM keys k JOIN persons p USING (person_id)"
                               " WHERE p.email = 'victim@a.edu'")[0][0]
                           .as<std::int64_t>();
  pb::UpdatePersonRequest disable;
  disable.set_email("victim@a.edu");
  disable.set_enabled(false);
  CHECK_STATUS(pi_b.call(&AdminApi::UpdatePerson, disable).first, StatusCode::PERMISSION_DENIED,
               "every one of their sites");
  pb::DeletePersonRequest del;
  del.set_email("victim@a.edu");
  CHECK_STATUS(pi_b.call(&AdminApi::DeletePerson, del).first, StatusCode::PERMISSION_DENIED,
               "every one of their sites");
  pb::DeleteKeyRequest del_key;
  del_key.set_key_id(victim_key_id);
  CHECK_STATUS(pi_b.call(&AdminApi::DeleteKey, del_key).first, StatusCode::PERMISSION_DENIED,
               "every one of their sites");
  CHECK_OK(victim.call(&AuthApi::WhoAmI, pb::Empty()).first);
  CHECK(ticketKeys() == std::vector<std::string>{victim_key});

  // What a PI of B may still do: describe the person, and take them off site B.
  pb::UpdatePersonRequest names;
  names.set_email("victim@a.edu");
  names.set_first_name("Victor");
  CHECK_OK(pi_b.call(&AdminApi::UpdatePerson, names).first);
  CHECK_OK(pi_b.call(&AdminApi::RemovePersonFromSite, join).first);
  CHECK(sitesOfVictim() == std::vector<std::string>{"sitea"});

  // A PI of every one of the person's sites resets the password; the reset ends
  // the person's other login sessions.
  auto pi_a = seed.person("pi@a.edu", "sitea", {"pi"});
  password.set_password("reset-by-pi-of-a");
  CHECK_OK(pi_a.call(&AdminApi::UpdatePerson, password).first);
  CHECK_STATUS(victim.call(&AuthApi::WhoAmI, pb::Empty()).first, StatusCode::UNAUTHENTICATED, "");
  CHECK_OK(login(anon, "victim@a.edu", "reset-by-pi-of-a"));
}

// ------------------------------------------------------------------- item 2

TEST_CASE_METHOD(PlcFixture, "small-order node keys are refused and never log in (issue 7, item 2)",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  auto anon = anonymous();
  const std::string all_zero(32, '\0');
  std::string identity(32, '\0');
  identity[0] = 1;
  const std::string forged = std::string(1, '\1') + std::string(63, '\0');  // R = identity, S = 0

  // The attack: AddNode with such a key.
  for (const auto& weak : {all_zero, identity}) {
    pb::AddNodeRequest add;
    add.set_hostname("weak.a.edu");
    add.set_login_base("sitea");
    add.set_public_key(weak);
    CHECK_STATUS(admin().call(&AdminApi::AddNode, add).first, StatusCode::INVALID_ARGUMENT,
                 "small-order");
  }
  // A non-canonical encoding (y = p + 5) and a y with no point.
  std::string non_canonical(32, '\xff');
  non_canonical[0] = static_cast<char>(0xed + 5);
  non_canonical[31] = 0x7f;
  pb::AddNodeRequest add;
  add.set_hostname("weak.a.edu");
  add.set_login_base("sitea");
  add.set_public_key(non_canonical);
  CHECK_STATUS(admin().call(&AdminApi::AddNode, add).first, StatusCode::INVALID_ARGUMENT,
               "not canonically encoded");
  CHECK(count(seed, "SELECT count(*) FROM nodes") == 0);

  // A node key changed to a weak one is refused as well.
  auto good = seed.node("good.a.edu", "sitea");
  pb::UpdateNodeRequest rekey;
  rekey.set_hostname("good.a.edu");
  rekey.set_public_key(all_zero);
  CHECK_STATUS(admin().call(&AdminApi::UpdateNode, rekey).first, StatusCode::INVALID_ARGUMENT,
               "small-order");

  // A weak key already in the database (registered before keys were vetted):
  // the forged signature never logs in, whatever the nonce. (With OpenSSL alone
  // it logs in every time with the identity, 1 time in 4 with the all-zero
  // key.) 2 x 8 attempts stay within the failures one address may make.
  for (const auto& [hostname, weak] : std::vector<std::pair<std::string, std::string>>{
           {"zero.a.edu", all_zero}, {"identity.a.edu", identity}}) {
    seed.sql(
        "INSERT INTO nodes (hostname, site_id, boot_state, public_key)"
        " SELECT $1, site_id, 'boot', decode($2, 'hex') FROM sites WHERE login_base = 'sitea'",
        hostname, plng::base::toHex(weak));
    for (int i = 0; i < 8; ++i) {
      auto nonce = challenge(anon, hostname);
      CHECK_STATUS(anon.call(&AuthApi::NodeLogin, nodeLoginRequest(hostname, nonce, forged)).first,
                   StatusCode::UNAUTHENTICATED, "signature does not match");
    }
  }
  CHECK(count(seed, "SELECT count(*) FROM sessions WHERE kind = 'node'") == 0);

  // The honest node still logs in.
  auto node = Seeder::nodeClient(plcd().channel(), good);
  auto [status, me] = node.call(&AuthApi::WhoAmI, pb::Empty());
  REQUIRE_OK(status);
  CHECK(me.kind() == "node");

  // SSH keys are Ed25519 keys too: sshd would accept such a forgery for a slice.
  pb::AddPersonKeyRequest ssh;
  ssh.set_email(kAdminEmail);
  ssh.set_key(sshEd25519(all_zero, "weak@key"));
  CHECK_STATUS(admin().call(&AdminApi::AddPersonKey, ssh).first, StatusCode::INVALID_ARGUMENT,
               "small-order");

  // PLC never publishes a weak key of its own (a row altered behind its back).
  seed.sql(
      "INSERT INTO plc_keys (key_id, public_key, private_key, is_signing, retired_at)"
      " VALUES ('weakweakweakweak', decode($1, 'hex'), decode($1, 'hex'), false, now())",
      plng::base::toHex(identity));
  seed.bump();
  auto [keys_status, keys] = admin().call(&AdminApi::GetPlcKeys, pb::Empty());
  REQUIRE_OK(keys_status);
  REQUIRE(keys.keys_size() >= 1);
  for (const auto& k : keys.keys()) CHECK(k.key_id() != "weakweakweakweak");
  auto [state_status, state] = node.call(&pb::NodeSync::Stub::GetSlivers, pb::GetSliversRequest());
  REQUIRE_OK(state_status);
  for (const auto& k : state.plc_keys()) CHECK(k.key_id() != "weakweakweakweak");
  std::vector<pb::PlcPublicKey> published(state.plc_keys().begin(), state.plc_keys().end());
  CHECK_NOTHROW(plng::ticket::TrustedKeys(published));
}

// ------------------------------------------------------------------- item 3

TEST_CASE_METHOD(PlcFixture, "one node challenge logs in once, however many race (issue 7, item 3)",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  auto node = seed.node("n1.a.edu", "sitea");
  auto other = seed.node("n2.a.edu", "sitea");
  auto anon = anonymous();
  // Several connections, as several attackers (or a node and an eavesdropper) would have.
  std::vector<PlcClient> clients;
  for (int i = 0; i < 4; ++i) clients.emplace_back(plcd().newChannel());
  // Connected before the first race: the race is the challenge's, not the
  // channels' first connection to plcd (slow on a loaded host under ASan).
  for (const auto& c : clients)
    REQUIRE(c.channel()->WaitForConnected(std::chrono::system_clock::now() + 30s));

  constexpr int kRounds = 30, kRacers = 16;
  for (int round = 0; round < kRounds; ++round) {
    auto nonce = challenge(anon, "n1.a.edu");
    auto request = signedNodeLogin("n1.a.edu", nonce, node.private_key);
    std::atomic<int> go{0}, ok{0}, used{0}, other_codes{0};
    std::mutex others_mutex;
    std::map<std::string, int> others;  // "code: message" of any other answer, for the report
    std::vector<std::thread> racers;
    for (int i = 0; i < kRacers; ++i) {
      racers.emplace_back([&, i] {
        const PlcClient& c = clients[static_cast<std::size_t>(i) % clients.size()];
        while (go.load() == 0) std::this_thread::yield();
        auto status = c.call(&AuthApi::NodeLogin, request).first;
        if (status.ok()) {
          ++ok;
        } else if (status.error_code() == StatusCode::UNAUTHENTICATED &&
                   status.error_message().find("used") != std::string::npos) {
          ++used;
        } else {
          ++other_codes;
          std::lock_guard lock(others_mutex);
          ++others[std::to_string(status.error_code()) + ": " + status.error_message()];
        }
      });
    }
    go = 1;
    for (auto& t : racers) t.join();
    INFO("round " << round);
    std::string other_answers;
    for (const auto& [answer, times] : others)
      other_answers += std::to_string(times) + " x " + answer + "\n";
    INFO("other answers:\n" << other_answers);
    CHECK(ok.load() == 1);
    CHECK(used.load() == kRacers - 1);
    CHECK(other_codes.load() == 0);
  }
  CHECK(count(seed, "SELECT count(*) FROM sessions WHERE kind = 'node'") == kRounds);

  // A challenge is bound to its node, and cannot be made up or altered.
  auto nonce = challenge(anon, "n1.a.edu");
  CHECK_STATUS(
      anon.call(&AuthApi::NodeLogin, signedNodeLogin("n2.a.edu", nonce, other.private_key)).first,
      StatusCode::UNAUTHENTICATED, "challenge");
  auto altered = nonce;
  altered[3] = static_cast<char>(altered[3] ^ 1);  // a later expiry
  CHECK_STATUS(
      anon.call(&AuthApi::NodeLogin, signedNodeLogin("n1.a.edu", altered, node.private_key)).first,
      StatusCode::UNAUTHENTICATED, "challenge");
  auto made_up = std::string(32, '\x42');
  CHECK_STATUS(
      anon.call(&AuthApi::NodeLogin, signedNodeLogin("n1.a.edu", made_up, node.private_key)).first,
      StatusCode::UNAUTHENTICATED, "challenge");
  // The untouched nonce still works once.
  CHECK_OK(
      anon.call(&AuthApi::NodeLogin, signedNodeLogin("n1.a.edu", nonce, node.private_key)).first);
}

TEST_CASE_METHOD(PlcFixture, "anonymous GetNodeChallenge stores nothing (issue 7, item 3)",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  auto node = seed.node("n1.a.edu", "sitea");
  auto anon = anonymous();
  const auto rows = [&] {
    // Every table's row count (the audit log included: a query writes no event).
    std::map<std::string, std::int64_t> out;
    for (const auto& r : seed.sql("SELECT relname, n_live_tup FROM pg_stat_user_tables")) {
      out[r[0].as<std::string>()] = 0;
    }
    for (auto& [table, n] : out) n = count(seed, "SELECT count(*) FROM " + table);
    return out;
  };
  auto early = challenge(anon, "n1.a.edu");  // the node's own, asked before the flood
  auto before = rows();
  std::atomic<int> failures{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&] {
      PlcClient c(plcd().newChannel());
      pb::NodeChallengeRequest r;
      r.set_hostname("n1.a.edu");
      for (int i = 0; i < 250; ++i) {
        if (!c.call(&AuthApi::GetNodeChallenge, r).first.ok()) ++failures;
      }
    });
  }
  for (auto& t : callers) t.join();
  CHECK(failures.load() == 0);
  CHECK(rows() == before);
  CHECK(count(seed, "SELECT count(*) FROM node_challenges_used") == 0);
  // Nothing was evicted: the challenge asked before the 2,000 others still works.
  CHECK_OK(
      anon.call(&AuthApi::NodeLogin, signedNodeLogin("n1.a.edu", early, node.private_key)).first);
}

TEST_CASE_METHOD(PlcFixture, "a node challenge expires", "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  auto node = seed.node("n1.a.edu", "sitea");
  ConfigFile config("node_challenge_ttl = 1\n");
  PlcdProcess short_lived(plcdPath(), connectionString(), config.args());
  PlcClient anon(short_lived.channel());
  auto nonce = challenge(anon, "n1.a.edu");
  std::this_thread::sleep_for(2100ms);
  CHECK_STATUS(
      anon.call(&AuthApi::NodeLogin, signedNodeLogin("n1.a.edu", nonce, node.private_key)).first,
      StatusCode::UNAUTHENTICATED, "expired");
}

// ------------------------------------------------------------------- item 7

TEST_CASE_METHOD(PlcFixture, "one user cannot grow a node's state without bound (issue 7, item 7)",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  auto user = seed.person("user@a.edu", "sitea", {});
  auto keyCount = [&] { return keysOf(admin(), "user@a.edu").size(); };

  SECTION("the issue's attack: 80 keys with 60,000-character comments") {
    int refused = 0;
    for (int i = 0; i < 80; ++i) {
      pb::AddPersonKeyRequest r;
      r.set_key(newSshKey(std::string(60000, static_cast<char>('a' + i % 26))));
      auto status = user.call(&AdminApi::AddPersonKey, r).first;
      CHECK_STATUS(status, StatusCode::INVALID_ARGUMENT, "max_key_length");
      refused += status.ok() ? 0 : 1;
    }
    CHECK(refused == 80);
    CHECK(keyCount() == 0);
  }

  SECTION("key comment length and keys per person") {
    pb::AddPersonKeyRequest r;
    r.set_key(newSshKey(std::string(257, 'c')));
    CHECK_STATUS(user.call(&AdminApi::AddPersonKey, r).first, StatusCode::INVALID_ARGUMENT,
                 "max_key_comment_length");
    r.set_key(newSshKey(std::string(256, 'c')));
    CHECK_OK(user.call(&AdminApi::AddPersonKey, r).first);
    for (int i = 1; i < 10; ++i) {
      r.set_key(newSshKey("k" + std::to_string(i)));
      REQUIRE_OK(user.call(&AdminApi::AddPersonKey, r).first);
    }
    r.set_key(newSshKey("eleventh"));
    CHECK_STATUS(user.call(&AdminApi::AddPersonKey, r).first, StatusCode::RESOURCE_EXHAUSTED,
                 "max_keys_per_person is 10");
    r.set_email("user@a.edu");  // an admin is held to it too
    CHECK_STATUS(admin().call(&AdminApi::AddPersonKey, r).first, StatusCode::RESOURCE_EXHAUSTED,
                 "max_keys_per_person");
    CHECK(keyCount() == 10);
  }

  SECTION("tag values and the tags of one slice") {
    pb::AddSliceRequest slice;
    slice.set_name("sitea_big");
    REQUIRE_OK(admin().call(&SliceApi::AddSlice, slice).first);
    pb::SliceMembersRequest m;
    m.set_name("sitea_big");
    m.add_emails("user@a.edu");
    REQUIRE_OK(admin().call(&SliceApi::AddSliceMembers, m).first);
    pb::SetSliceTagRequest tag;
    tag.set_slice("sitea_big");
    tag.set_tag("initscript");
    // An initscript is a multi-line script: 16 KiB of it is fine.
    std::string script = "#!/bin/sh\n";
    while (script.size() + 20 <= 16384) script += "echo line of script\n";
    script.resize(16384, '#');
    tag.set_value(script);
    CHECK_OK(user.call(&SliceApi::SetSliceTag, tag).first);
    tag.set_value(script + "x");
    CHECK_STATUS(user.call(&SliceApi::SetSliceTag, tag).first, StatusCode::INVALID_ARGUMENT,
                 "max_tag_value_length is 16384");
    // Many values of at most the maximum each still meet the slice's total.
    pb::SetSliceTagRequest vref;
    vref.set_slice("sitea_big");
    vref.set_tag("vref");
    vref.set_value(std::string(16384, 'v'));
    CHECK_STATUS(user.call(&SliceApi::SetSliceTag, vref).first, StatusCode::RESOURCE_EXHAUSTED,
                 "max_slice_tag_bytes is 32768");
    pb::GetSliceTagsRequest get;
    get.set_slice("sitea_big");
    auto [status, tags] = user.call(&SliceApi::GetSliceTags, get);
    REQUIRE_OK(status);
    REQUIRE(tags.tags_size() == 1);
    CHECK(tags.tags(0).value() == script);
  }
}

TEST_CASE_METHOD(PlcFixture, "slice members, member keys and tag counts are limited",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  for (const char* email : {"a@a.edu", "b@a.edu", "c@a.edu"}) seed.person(email, "sitea", {});
  ConfigFile config(
      "max_slice_members = 2\nmax_slice_tags = 2\nmax_slice_key_bytes = 1000\n"
      "max_keys_per_person = 20\n");
  PlcdProcess limited(plcdPath(), connectionString(), config.args());
  PlcClient admin(limited.channel());
  REQUIRE_OK(admin.login(kAdminEmail, kAdminPassword));
  pb::AddSliceRequest slice;
  slice.set_name("sitea_s");
  REQUIRE_OK(admin.call(&SliceApi::AddSlice, slice).first);
  pb::SliceMembersRequest m;
  m.set_name("sitea_s");
  m.add_emails("a@a.edu");
  m.add_emails("b@a.edu");
  REQUIRE_OK(admin.call(&SliceApi::AddSliceMembers, m).first);
  m.clear_emails();
  m.add_emails("c@a.edu");
  CHECK_STATUS(admin.call(&SliceApi::AddSliceMembers, m).first, StatusCode::RESOURCE_EXHAUSTED,
               "max_slice_members is 2");

  // Member keys: each costs its line, its owner's email and 16 bytes.
  pb::AddPersonKeyRequest key;
  key.set_email("a@a.edu");
  int added = 0;
  grpc::Status last;
  for (int i = 0; i < 20; ++i) {
    key.set_key(newSshKey("k" + std::to_string(i)));
    last = admin.call(&AdminApi::AddPersonKey, key).first;
    if (!last.ok()) break;
    ++added;
  }
  CHECK_STATUS(last, StatusCode::RESOURCE_EXHAUSTED, "max_slice_key_bytes is 1000");
  CHECK(added == 1000 / static_cast<int>(newSshKey("k1").size() + 7 + 16));
  auto bytes = count(seed,
                     "SELECT sum(octet_length(k.key_text) + octet_length(p.email) + 16)"
                     " FROM keys k JOIN persons p USING (person_id)");
  CHECK(bytes <= 1000);
  // A member whose keys would not fit cannot join a slice either.
  key.set_email("c@a.edu");
  for (int i = 0; i < 8; ++i) {
    key.set_key(newSshKey("c" + std::to_string(i)));
    REQUIRE_OK(admin.call(&AdminApi::AddPersonKey, key).first);
  }
  pb::SliceMembersRequest swap;
  swap.set_name("sitea_s");
  swap.add_emails("b@a.edu");
  REQUIRE_OK(admin.call(&SliceApi::RemoveSliceMembers, swap).first);
  CHECK_STATUS(admin.call(&SliceApi::AddSliceMembers, m).first, StatusCode::RESOURCE_EXHAUSTED,
               "max_slice_key_bytes");

  // Tags: at most two, whatever their scope.
  pb::SetSliceTagRequest tag;
  tag.set_slice("sitea_s");
  tag.set_tag("cpu_share");
  tag.set_value("10");
  REQUIRE_OK(admin.call(&SliceApi::SetSliceTag, tag).first);
  tag.set_tag("initscript");
  tag.set_value("true");
  REQUIRE_OK(admin.call(&SliceApi::SetSliceTag, tag).first);
  tag.set_value("false");  // replacing a value adds no tag
  REQUIRE_OK(admin.call(&SliceApi::SetSliceTag, tag).first);
  tag.set_tag("vref");
  tag.set_value("debian12");
  CHECK_STATUS(admin.call(&SliceApi::SetSliceTag, tag).first, StatusCode::RESOURCE_EXHAUSTED,
               "max_slice_tags is 2");
  CHECK(count(seed, "SELECT count(*) FROM slice_tags") == 2);
}

// ------------------------------------------------------------------- item 9

namespace {

// "try again after 2026-... (in 3 s)" → 3; -1 when the message names no wait.
int retryInSeconds(const grpc::Status& status) {
  const auto& m = status.error_message();
  auto at = m.find("(in ");
  if (at == std::string::npos) return -1;
  return std::stoi(m.substr(at + 4));
}

// The answer with the email and the times taken out, to compare two accounts.
std::string shape(const grpc::Status& status, const std::string& email) {
  auto m = status.error_message();
  for (auto at = m.find(email); at != std::string::npos; at = m.find(email)) {
    m.replace(at, email.size(), "<email>");
  }
  if (auto at = m.find("try again after"); at != std::string::npos) m.resize(at);
  return statusCodeName(status.error_code()) + ": " + m;
}

std::vector<std::string> loginEvents(const PlcClient& admin, const std::string& email) {
  pb::GetEventsRequest r;
  r.set_method("Login");
  r.set_object("person:" + email);
  r.set_limit(1000);
  auto [status, events] = admin.call(&AdminApi::GetEvents, r);
  REQUIRE_OK(status);
  std::vector<std::string> results;
  for (const auto& e : events.events()) results.insert(results.begin(), e.result());
  return results;
}

}  // namespace

TEST_CASE_METHOD(PlcFixture,
                 "password guessing is limited per account, the same for unknown emails "
                 "(issue 7, item 9)",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  seed.person("alice@a.edu", "sitea", {});
  const std::string right = "password-alice@a.edu";
  ConfigFile config(
      "login_free_failures = 3\nlogin_lockout_base_s = 4\nlogin_lockout_max_s = 5\n"
      "login_source_burst = 1000\n");
  PlcdProcess one(plcdPath(), connectionString(), config.args());
  PlcdProcess two(plcdPath(), connectionString(), config.args());
  PlcClient a(one.channel()), b(two.channel());

  // Attempts alternate between the two replicas: the count is shared.
  std::vector<std::string> known, unknown;
  std::vector<grpc::Status> known_status;
  for (int i = 0; i < 4; ++i) {
    const PlcClient& c = i % 2 ? b : a;
    known_status.push_back(login(c, "alice@a.edu", "wrong-" + std::to_string(i)));
    known.push_back(shape(known_status.back(), "alice@a.edu"));
    unknown.push_back(
        shape(login(c, "nobody@a.edu", "wrong-" + std::to_string(i)), "nobody@a.edu"));
  }
  CHECK(known == unknown);  // nothing tells a registered email from another
  CHECK_STATUS(known_status[0], StatusCode::UNAUTHENTICATED, "wrong email or password");
  CHECK(retryInSeconds(known_status[1]) == -1);
  CHECK_STATUS(known_status[2], StatusCode::UNAUTHENTICATED, "too many failed logins");
  CHECK(retryInSeconds(known_status[2]) >= 1);
  CHECK(retryInSeconds(known_status[2]) <= 4);
  CHECK_STATUS(known_status[3], StatusCode::RESOURCE_EXHAUSTED,
               "too many failed logins for alice@a.edu; try again after");

  // While the account waits, even its password is refused, by every replica,
  // without trying it.
  auto locked = login(b, "alice@a.edu", right);
  CHECK_STATUS(locked, StatusCode::RESOURCE_EXHAUSTED, "try again after");
  CHECK_STATUS(login(a, "alice@a.edu", right), StatusCode::RESOURCE_EXHAUSTED, "try again after");
  std::this_thread::sleep_for(std::chrono::seconds(retryInSeconds(locked)) + 500ms);

  // Then it logs in, which clears the count.
  CHECK_OK(login(b, "alice@a.edu", right));
  CHECK(count(seed, "SELECT count(*) FROM login_failures WHERE login = 'alice@a.edu'") == 0);
  auto fresh = login(a, "alice@a.edu", "wrong-again");
  CHECK_STATUS(fresh, StatusCode::UNAUTHENTICATED, "wrong email or password");
  CHECK(retryInSeconds(fresh) == -1);

  // However long an attack goes on, one failure never locks the account for
  // longer than login_lockout_max_s: an admin is never locked out for good.
  seed.sql(
      "UPDATE login_failures SET failures = 1000000, locked_until = now()"
      " WHERE login = 'alice@a.edu'");
  auto capped = login(a, "alice@a.edu", "wrong-forever");
  CHECK_STATUS(capped, StatusCode::UNAUTHENTICATED, "try again after");
  CHECK(retryInSeconds(capped) >= 4);
  CHECK(retryInSeconds(capped) <= 5);
  // An admin's password reset ends the wait at once.
  pb::UpdatePersonRequest reset;
  reset.set_email("alice@a.edu");
  reset.set_password("fresh-password-1");
  REQUIRE_OK(admin().call(&AdminApi::UpdatePerson, reset).first);
  CHECK_OK(login(a, "alice@a.edu", "fresh-password-1"));

  // Every attempt is in the audit log: successes, wrong passwords, waits, and
  // attempts on unknown emails.
  CHECK(loginEvents(admin(), "alice@a.edu") ==
        std::vector<std::string>{"OK",  // the Seeder's login
                                 "UNAUTHENTICATED", "UNAUTHENTICATED", "UNAUTHENTICATED",
                                 "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED",
                                 "OK", "UNAUTHENTICATED", "UNAUTHENTICATED", "OK"});
  CHECK(loginEvents(admin(), "nobody@a.edu") ==
        std::vector<std::string>{"UNAUTHENTICATED", "UNAUTHENTICATED", "UNAUTHENTICATED",
                                 "RESOURCE_EXHAUSTED"});
}

TEST_CASE_METHOD(PlcFixture, "concurrent guesses cannot pass the login limits together",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  seed.person("alice@a.edu", "sitea", {});
  auto guess = [&](const std::vector<std::string>& args, const std::vector<std::string>& emails) {
    ConfigFile config(args[0]);
    PlcdProcess guarded(plcdPath(), connectionString(), config.args());
    std::atomic<int> go{0}, tried{0}, refused{0}, other{0};
    std::mutex mutex;
    std::vector<std::string> others;
    // A few connections, all up before the guesses start (connecting 24 at once
    // on a loaded machine can time out).
    std::vector<PlcClient> clients;
    for (int i = 0; i < 4; ++i) {
      clients.emplace_back(guarded.newChannel());
      REQUIRE(clients.back().channel()->WaitForConnected(std::chrono::system_clock::now() + 20s));
    }
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < emails.size(); ++i) {
      threads.emplace_back([&, i] {
        const PlcClient& c = clients[i % clients.size()];
        while (go.load() == 0) std::this_thread::yield();
        auto status = login(c, emails[i], "guess-" + std::to_string(i));
        if (status.error_code() == StatusCode::UNAUTHENTICATED) {
          ++tried;
        } else if (status.error_code() == StatusCode::RESOURCE_EXHAUSTED) {
          ++refused;
        } else {
          ++other;
          std::lock_guard lock(mutex);
          others.push_back(describeStatus(status));
        }
      });
    }
    go = 1;
    for (auto& t : threads) t.join();
    CAPTURE(others);
    CHECK(other.load() == 0);
    return std::pair{tried.load(), refused.load()};
  };
  // 24 guesses at once at one account: only the free failures try a password.
  auto [tried, refused] =
      guess({"login_free_failures = 3\nlogin_lockout_base_s = 60\nlogin_lockout_max_s = 60\n"
             "login_source_burst = 1000\n"},
            std::vector<std::string>(24, "alice@a.edu"));
  CHECK(tried == 3);
  CHECK(refused == 21);
  seed.sql("DELETE FROM login_failures");
  // 24 guesses at once from one address: only its budget tries a password.
  std::vector<std::string> many;
  for (int i = 0; i < 24; ++i) many.push_back("guess" + std::to_string(i) + "@a.edu");
  std::tie(tried, refused) =
      guess({"login_source_burst = 3\nlogin_source_refill_s = 3600\n"}, many);
  CHECK(tried == 3);
  CHECK(refused == 21);
}

TEST_CASE_METHOD(PlcFixture, "failed logins are limited per client address", "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  seed.person("alice@a.edu", "sitea", {});
  auto node = seed.node("n1.a.edu", "sitea");
  ConfigFile config("login_source_burst = 3\nlogin_source_refill_s = 3600\n");
  PlcdProcess guarded(plcdPath(), connectionString(), config.args());
  PlcClient anon(guarded.channel());
  // An attacker trying one password on many accounts.
  for (int i = 0; i < 3; ++i) {
    CHECK_STATUS(login(anon, "guess" + std::to_string(i) + "@a.edu", "password"),
                 StatusCode::UNAUTHENTICATED, "wrong email or password");
  }
  for (int i = 0; i < 10; ++i) {
    CHECK_STATUS(login(anon, "alice@a.edu", "password-alice@a.edu"), StatusCode::RESOURCE_EXHAUSTED,
                 "too many failed logins from 127.0.0.1");
  }
  auto nonce = challenge(anon, "n1.a.edu");
  CHECK_STATUS(
      anon.call(&AuthApi::NodeLogin, signedNodeLogin("n1.a.edu", nonce, node.private_key)).first,
      StatusCode::RESOURCE_EXHAUSTED, "127.0.0.1");
  // Only the first refusal of the period is recorded: a flood does not grow the log.
  CHECK(count(seed,
              "SELECT count(*) FROM events WHERE method IN ('Login', 'NodeLogin')"
              " AND result = 'RESOURCE_EXHAUSTED'") == 1);
  // The limit is this plcd's: another replica still serves the address.
  CHECK_OK(login(anonymous(), "alice@a.edu", "password-alice@a.edu"));
}

TEST_CASE_METHOD(PlcFixture, "only a password session mints API tokens (issue 7, item 9)",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  auto node = Seeder::nodeClient(plcd().channel(), seed.node("n1.a.edu", "sitea"));
  pb::CreateApiTokenRequest r;
  r.set_description("minted");
  CHECK_STATUS(node.call(&AuthApi::CreateApiToken, r).first, StatusCode::PERMISSION_DENIED,
               "person");

  auto [made, token] = admin().call(&AuthApi::CreateApiToken, r);
  REQUIRE_OK(made);
  PlcClient script = anonymous().withToken(token.token());
  CHECK_OK(script.call(&AuthApi::WhoAmI, pb::Empty()).first);
  CHECK_STATUS(script.call(&AuthApi::CreateApiToken, r).first, StatusCode::PERMISSION_DENIED,
               "needs a session from Login");

  r.set_expires_at(static_cast<std::int64_t>(std::time(nullptr)) + 400LL * 86400);
  CHECK_STATUS(admin().call(&AuthApi::CreateApiToken, r).first, StatusCode::INVALID_ARGUMENT,
               "api_token_ttl (365 days)");
  CHECK(count(seed, "SELECT count(*) FROM sessions WHERE kind = 'api'") == 1);
}

TEST_CASE_METHOD(PlcFixture, "the tokens one person or node holds are bounded",
                 "[plc][pg][hostile]") {
  Seeder seed(*this);
  seed.site("sitea");
  seed.person("alice@a.edu", "sitea", {});
  ConfigFile config("max_login_sessions = 3\nmax_api_tokens_per_person = 2\n");
  PlcdProcess limited(plcdPath(), connectionString(), config.args());
  std::vector<PlcClient> sessions;
  for (int i = 0; i < 6; ++i) {
    sessions.emplace_back(limited.channel());
    REQUIRE_OK(sessions.back().login("alice@a.edu", "password-alice@a.edu"));
  }
  // A new login ends the oldest beyond the limit.
  for (int i = 0; i < 6; ++i) {
    auto status = sessions[static_cast<std::size_t>(i)].call(&AuthApi::WhoAmI, pb::Empty()).first;
    INFO("session " << i);
    if (i < 3) {
      CHECK_STATUS(status, StatusCode::UNAUTHENTICATED, "");
    } else {
      CHECK_OK(status);
    }
  }
  // Ended and expired rows go: the table holds the live ones and the last one ended.
  CHECK(count(seed,
              "SELECT count(*) FROM sessions s JOIN persons p USING (person_id)"
              " WHERE p.email = 'alice@a.edu'") <= 4);

  pb::CreateApiTokenRequest r;
  r.set_description("script");
  const auto& alice = sessions.back();
  auto [first, token] = alice.call(&AuthApi::CreateApiToken, r);
  REQUIRE_OK(first);
  REQUIRE_OK(alice.call(&AuthApi::CreateApiToken, r).first);
  CHECK_STATUS(alice.call(&AuthApi::CreateApiToken, r).first, StatusCode::RESOURCE_EXHAUSTED,
               "max_api_tokens_per_person is 2");
  pb::RevokeApiTokenRequest revoke;
  revoke.set_id(token.info().id());
  REQUIRE_OK(alice.call(&AuthApi::RevokeApiToken, revoke).first);
  CHECK_OK(alice.call(&AuthApi::CreateApiToken, r).first);
}
