// DesiredState: the merge of PLC's state and redeemed tickets, its persistence
// (the last PLC state is enforced after a restart while PLC is unreachable),
// ticket idempotence and expiry. No root.
#include "sliverd/core/desired_state.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "base/file.h"
#include "tests/sliverd/sliverd_test_util.h"

using namespace plng::sliverd;
namespace pb = planetlab::v1;
using plng::test::TempDir;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kHost = "n1.example.org";

pb::SliverSpec spec(const std::string& slice, std::uint32_t xid, std::int64_t expires_at,
                    std::map<std::string, std::string> tags = {},
                    std::vector<std::string> keys = {}) {
  pb::SliverSpec s;
  s.set_slice_name(slice);
  s.set_xid(xid);
  s.set_expires_at(expires_at);
  for (const auto& [k, v] : tags) (*s.mutable_tags())[k] = v;
  for (const auto& k : keys) s.add_keys()->set_key(k);
  return s;
}

pb::NodeState plcState(std::int64_t version, std::vector<pb::SliverSpec> specs) {
  pb::NodeState s;
  s.set_version(version);
  s.set_hostname(kHost);
  for (auto& sp : specs) *s.add_slivers() = sp;
  auto pair = plng::ticket::generateKeyPair();
  auto* key = s.add_plc_keys();
  key->set_key_id(plng::ticket::keyIdOf(pair.public_key));
  key->set_public_key(std::string(pair.public_key.begin(), pair.public_key.end()));
  return s;
}

struct Ticket {
  pb::SignedTicket signed_ticket;
  pb::TicketBody body;
};

Ticket ticket(const std::string& id, const std::string& slice, std::int64_t issued_at,
              std::int64_t not_after, std::map<std::string, std::string> tags = {},
              std::vector<std::string> keys = {}, const std::string& host = kHost) {
  pb::TicketBody body;
  body.set_ticket_id(id);
  body.set_slice_name(slice);
  body.set_xid(2000);
  body.set_issued_at(issued_at);
  body.set_not_before(issued_at);
  body.set_not_after(not_after);
  auto* grant = body.add_nodes();
  grant->set_hostname(host);
  for (const auto& [k, v] : tags) (*grant->mutable_tags())[k] = v;
  for (const auto& k : keys) body.add_member_keys()->set_key(k);
  auto pair = plng::ticket::generateKeyPair();
  return Ticket{plng::ticket::signTicket(body, pair.private_key), body};
}

}  // namespace

TEST_CASE("DesiredState: PLC's slivers become desired slivers with config, keys and expiry",
          "[sliverd][desired]") {
  TempDir dir;
  DesiredState state(dir.nodePaths(), kHost);
  REQUIRE(state.setPlcState(plcState(5, {spec("pl_a", 1001, kNow + 100, {{"cpu_share", "64"}},
                                              {"ssh-ed25519 BBB b", "ssh-ed25519 AAA a"})})));
  auto d = state.desired(kNow);
  REQUIRE(d.size() == 1);
  const auto& a = d.at("pl_a");
  CHECK(a.config == plng::node::sliverConfigFromTags("pl_a", 1001, {{"cpu_share", "64"}}));
  CHECK(a.config.resources.cpu_share == 64);
  CHECK(a.expires_at == kNow + 100);
  CHECK(a.keys == std::vector<std::string>{"ssh-ed25519 AAA a", "ssh-ed25519 BBB b"});
  CHECK(a.source == "plc");
  CHECK(a.invalid.empty());
  CHECK(state.plcVersion() == 5);
  CHECK_FALSE(state.trustedKeys()->empty());
}

TEST_CASE("DesiredState: PLC's description, URL and PIs of a slice are carried for the audit page",
          "[sliverd][desired]") {
  TempDir dir;
  DesiredState state(dir.nodePaths(), kHost);
  auto described = spec("pl_a", 1001, kNow + 100);
  described.set_description("Measures latency");
  described.set_url("https://example.org/a");
  auto* pi = described.add_contacts();
  pi->set_name("Ada");
  pi->set_email("ada@example.org");
  pi->set_role("pi");
  REQUIRE(state.setPlcState(plcState(5, {described, spec("pl_b", 1002, kNow + 100)})));
  auto a = state.lookup("pl_a", kNow);
  REQUIRE(a);
  CHECK(a->about == SliceAbout{.description = "Measures latency",
                               .url = "https://example.org/a",
                               .contacts = {{"Ada", "ada@example.org", "pi"}}});
  CHECK(state.lookup("pl_b", kNow)->about == SliceAbout{});
}

TEST_CASE("DesiredState: an older or equal PLC version changes nothing", "[sliverd][desired]") {
  TempDir dir;
  DesiredState state(dir.nodePaths(), kHost);
  REQUIRE(state.setPlcState(plcState(5, {spec("pl_a", 1001, kNow + 100)})));
  auto generation = state.generation();
  CHECK_FALSE(state.setPlcState(plcState(5, {})));
  CHECK_FALSE(state.setPlcState(plcState(4, {})));
  CHECK(state.desired(kNow).contains("pl_a"));
  CHECK(state.generation() == generation);
  CHECK(state.setPlcState(plcState(6, {})));
  CHECK(state.desired(kNow).empty());
}

TEST_CASE("DesiredState: a state of another PLC epoch is taken whatever its version",
          "[sliverd][desired]") {
  TempDir dir;
  auto inEpoch = [](const std::string& epoch, pb::NodeState state) {
    state.set_epoch(epoch);
    return state;
  };
  {
    DesiredState state(dir.nodePaths(), kHost);
    REQUIRE(state.setPlcState(inEpoch("e1", plcState(9, {spec("pl_a", 1001, kNow + 100)}))));
    // PLC's database went back (restored, or a crash lost commits): version 3 of a
    // new epoch replaces version 9 of the old one.
    REQUIRE(state.setPlcState(inEpoch("e2", plcState(3, {spec("pl_b", 1002, kNow + 100)}))));
    CHECK(state.plcPosition().epoch == "e2");
    CHECK(state.plcPosition().version == 3);
    CHECK_FALSE(state.desired(kNow).contains("pl_a"));
    // Within the new epoch, versions order as before.
    CHECK_FALSE(state.setPlcState(inEpoch("e2", plcState(3, {}))));
    CHECK_FALSE(state.setPlcState(inEpoch("e2", plcState(2, {}))));
    CHECK(state.setPlcState(inEpoch("e2", plcState(4, {spec("pl_b", 1002, kNow + 100)}))));
  }
  // The epoch is persisted with the version: a restarted sliverd compares within it.
  DesiredState restarted(dir.nodePaths(), kHost);
  CHECK(restarted.load().empty());
  CHECK(restarted.plcPosition().epoch == "e2");
  CHECK(restarted.plcPosition().version == 4);
  CHECK_FALSE(restarted.setPlcState(inEpoch("e2", plcState(4, {}))));
  CHECK(restarted.setPlcState(inEpoch("e3", plcState(1, {}))));
  CHECK(restarted.desired(kNow).empty());
}

TEST_CASE("DesiredState: the last PLC state and tickets survive a restart", "[sliverd][desired]") {
  TempDir dir;
  const auto t = ticket("a1b2", "pl_t", kNow - 10, kNow + 1000);
  {
    DesiredState state(dir.nodePaths(), kHost);
    REQUIRE(state.setPlcState(plcState(7, {spec("pl_a", 1001, kNow + 100)})));
    REQUIRE(state.addTicket(t.signed_ticket, t.body));
  }
  CHECK(std::filesystem::exists(dir.nodePaths().state_dir / "plc-state"));
  CHECK(std::filesystem::exists(dir.nodePaths().state_dir / "tickets" / "a1b2"));
  DesiredState restarted(dir.nodePaths(), kHost);
  CHECK(restarted.load().empty());
  CHECK(restarted.plcVersion() == 7);
  auto d = restarted.desired(kNow);
  CHECK(d.contains("pl_a"));
  CHECK(d.contains("pl_t"));
  CHECK_FALSE(restarted.trustedKeys()->empty());
  // Redeeming the same ticket after the restart is still recognised.
  CHECK_FALSE(restarted.addTicket(t.signed_ticket, t.body));
}

TEST_CASE("DesiredState: a damaged state file is reported, not fatal", "[sliverd][desired]") {
  TempDir dir;
  std::filesystem::create_directories(dir.nodePaths().state_dir / "tickets");
  plng::base::writeFileAtomic(dir.nodePaths().state_dir / "plc-state", "\xff\xff not a protobuf",
                              0644);
  plng::base::writeFileAtomic(dir.nodePaths().state_dir / "tickets" / "deadbeef", "junk", 0644);
  DesiredState state(dir.nodePaths(), kHost);
  auto warnings = state.load();
  CHECK(warnings.size() == 2);
  CHECK(state.plcVersion() == 0);
  CHECK(state.desired(kNow).empty());
}

TEST_CASE("DesiredState: a ticket is recorded once (idempotent by ticket id)",
          "[sliverd][desired]") {
  TempDir dir;
  DesiredState state(dir.nodePaths(), kHost);
  const auto t = ticket("0123abcd", "pl_t", kNow - 10, kNow + 1000, {{"cpu_share", "48"}},
                        {"ssh-ed25519 KKK k"});
  CHECK(state.addTicket(t.signed_ticket, t.body));
  auto generation = state.generation();
  CHECK_FALSE(state.addTicket(t.signed_ticket, t.body));
  CHECK(state.generation() == generation);
  CHECK(state.hasTicket("0123abcd"));
  auto d = state.desired(kNow);
  REQUIRE(d.size() == 1);
  CHECK(d.at("pl_t").source == "ticket");
  CHECK(d.at("pl_t").config.resources.cpu_share == 48);
  CHECK(d.at("pl_t").expires_at == kNow + 1000);
  CHECK(d.at("pl_t").keys == std::vector<std::string>{"ssh-ed25519 KKK k"});
}

TEST_CASE("DesiredState: tickets for other nodes or with unsafe ids are refused",
          "[sliverd][desired]") {
  TempDir dir;
  DesiredState state(dir.nodePaths(), kHost);
  auto other = ticket("abcd", "pl_t", kNow, kNow + 10, {}, {}, "n2.example.org");
  CHECK_THROWS_WITH(state.addTicket(other.signed_ticket, other.body),
                    Catch::Contains("does not name node n1.example.org"));
  auto sneaky = ticket("../../etc/passwd", "pl_t", kNow, kNow + 10);
  CHECK_THROWS_AS(state.addTicket(sneaky.signed_ticket, sneaky.body), std::invalid_argument);
  CHECK(state.desired(kNow).empty());
  // Host names compare case-insensitively.
  auto upper = ticket("abce", "pl_t", kNow, kNow + 10, {}, {}, "N1.Example.ORG");
  CHECK(state.addTicket(upper.signed_ticket, upper.body));
}

TEST_CASE("DesiredState: PLC and tickets merge per slice", "[sliverd][desired]") {
  TempDir dir;
  DesiredState state(dir.nodePaths(), kHost);
  REQUIRE(state.setPlcState(plcState(
      1, {spec("pl_both", 1001, kNow + 100, {{"cpu_share", "64"}}, {"ssh-ed25519 PPP plc"})})));
  auto older = ticket("t1", "pl_both", kNow - 50, kNow + 5000, {{"cpu_share", "10"}},
                      {"ssh-ed25519 TTT ticket"});
  auto t2 = ticket("t2", "pl_tix", kNow - 50, kNow + 100, {{"cpu_share", "10"}});
  auto t3 = ticket("t3", "pl_tix", kNow - 40, kNow + 200, {{"cpu_share", "20"}});
  REQUIRE(state.addTicket(older.signed_ticket, older.body));
  REQUIRE(state.addTicket(t3.signed_ticket, t3.body));
  REQUIRE(state.addTicket(t2.signed_ticket, t2.body));
  auto d = state.desired(kNow);
  const auto& both = d.at("pl_both");
  CHECK(both.source == "plc+ticket");
  CHECK(both.config.resources.cpu_share == 64);  // PLC's view wins
  CHECK(both.expires_at == kNow + 5000);         // the later end
  CHECK(both.keys == std::vector<std::string>{"ssh-ed25519 PPP plc", "ssh-ed25519 TTT ticket"});
  const auto& tix = d.at("pl_tix");
  CHECK(tix.source == "ticket");
  CHECK(tix.config.resources.cpu_share == 20);  // the newest ticket
  CHECK(tix.expires_at == kNow + 200);
}

TEST_CASE("DesiredState: expiry", "[sliverd][desired]") {
  TempDir dir;
  DesiredState state(dir.nodePaths(), kHost);
  auto t = ticket("t1", "pl_t", kNow - 50, kNow + 100);
  REQUIRE(state.addTicket(t.signed_ticket, t.body));
  REQUIRE(state.setPlcState(plcState(1, {spec("pl_p", 1001, kNow + 100)})));
  CHECK_FALSE(state.desired(kNow + 99).at("pl_t").expired(kNow + 99));
  // Expired slices stay in the map, marked expired, so their slivers get deleted.
  auto later = state.desired(kNow + 100);
  CHECK(later.at("pl_t").expired(kNow + 100));
  CHECK(later.at("pl_p").expired(kNow + 100));
  // A live ticket keeps a slice whose PLC entry expired.
  auto t2 = ticket("t2", "pl_p", kNow, kNow + 500);
  REQUIRE(state.addTicket(t2.signed_ticket, t2.body));
  auto merged = state.desired(kNow + 200).at("pl_p");
  CHECK_FALSE(merged.expired(kNow + 200));
  CHECK(merged.source == "ticket");
  // Ticket records are forgotten a day after they expire.
  state.pruneTickets(kNow + 100 + DesiredState::kTicketRetentionS);
  CHECK(state.hasTicket("t1"));
  state.pruneTickets(kNow + 101 + DesiredState::kTicketRetentionS);
  CHECK_FALSE(state.hasTicket("t1"));
  CHECK_FALSE(std::filesystem::exists(dir.nodePaths().state_dir / "tickets" / "t1"));
}

TEST_CASE("writeAuthorizedKeys: one OpenSSH line per key, rewritten only on change",
          "[sliverd][desired]") {
  TempDir dir;
  auto paths = dir.nodePaths();
  writeAuthorizedKeys(paths, "pl_a", {"ssh-ed25519 AAA a", "ssh-rsa BBB b"});
  CHECK(plng::base::readFileIfExists(paths.authorizedKeys("pl_a")) ==
        std::string("ssh-ed25519 AAA a\nssh-rsa BBB b\n"));
  auto before = std::filesystem::last_write_time(paths.authorizedKeys("pl_a"));
  writeAuthorizedKeys(paths, "pl_a", {"ssh-ed25519 AAA a", "ssh-rsa BBB b"});
  CHECK(std::filesystem::last_write_time(paths.authorizedKeys("pl_a")) == before);
  writeAuthorizedKeys(paths, "pl_a", {});
  CHECK(plng::base::readFileIfExists(paths.authorizedKeys("pl_a")) == std::string());
}
