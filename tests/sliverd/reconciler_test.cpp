// The reconciler's decisions (plan) against fake state, and the executor through
// a recording fake runtime: create, update in place, start, stop, grace, expiry,
// idempotence, and one failing sliver not holding up the others. No root.
#include "sliverd/core/reconciler.h"

#include <catch2/catch.hpp>

#include "base/file.h"
#include "tests/sliverd/fake_runtime.h"
#include "tests/sliverd/sliverd_test_util.h"

using namespace plng::sliverd;
using plng::node::SliverPhase;
using plng::node::SliverStatus;
using plng::test::FakeRuntime;
using plng::test::TempDir;
using plng::test::wanted;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;
constexpr std::int64_t kGrace = 3600;

SliverStatus existing(const DesiredSliver& d, SliverPhase phase) {
  SliverStatus s;
  s.config = d.config;
  s.phase = phase;
  return s;
}

std::vector<std::string> kinds(const std::vector<Action>& actions) {
  std::vector<std::string> out;
  for (const auto& a : actions) out.push_back(std::string(toString(a.kind)) + " " + a.slice);
  return out;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("plan: a missing wanted sliver is created and started", "[sliverd][reconciler]") {
  DesiredMap desired{{"pl_a", wanted("pl_a", 1001, {{"cpu_share", "64"}})}};
  auto actions = plan(desired, {}, {}, kNow, kGrace);
  CHECK(kinds(actions) == Strings{"create pl_a", "start pl_a"});
  CHECK(actions[0].config == desired["pl_a"].config);
  CHECK(actions[0].config.resources.cpu_share == 64);
}

TEST_CASE("plan: nothing to do when actual matches desired (idempotence)",
          "[sliverd][reconciler]") {
  DesiredMap desired{{"pl_a", wanted("pl_a", 1001)}, {"pl_b", wanted("pl_b", 1002)}};
  std::vector<SliverStatus> actual{existing(desired["pl_a"], SliverPhase::kRunning),
                                   existing(desired["pl_b"], SliverPhase::kRunning)};
  CHECK(plan(desired, actual, {}, kNow, kGrace).empty());
}

TEST_CASE("plan: a changed config is updated in place, not recreated", "[sliverd][reconciler]") {
  DesiredMap desired{{"pl_a", wanted("pl_a", 1001, {{"cpu_share", "128"}})}};
  std::vector<SliverStatus> actual{
      existing(wanted("pl_a", 1001, {{"cpu_share", "32"}}), SliverPhase::kRunning)};
  auto actions = plan(desired, actual, {}, kNow, kGrace);
  REQUIRE(kinds(actions) == Strings{"update pl_a"});
  CHECK(actions[0].config.resources.cpu_share == 128);
}

TEST_CASE("plan: a stopped wanted sliver is started (after its update)", "[sliverd][reconciler]") {
  DesiredMap desired{{"pl_a", wanted("pl_a", 1001, {{"cpu_share", "128"}})},
                     {"pl_b", wanted("pl_b", 1002)}};
  std::vector<SliverStatus> actual{
      existing(wanted("pl_a", 1001, {{"cpu_share", "32"}}), SliverPhase::kStopped),
      existing(desired["pl_b"], SliverPhase::kStopped)};
  CHECK(kinds(plan(desired, actual, {}, kNow, kGrace)) ==
        Strings{"update pl_a", "start pl_a", "start pl_b"});
}

TEST_CASE("plan: unwanted slivers are stopped, then deleted after the grace period",
          "[sliverd][reconciler]") {
  auto old = wanted("pl_old", 1003);
  SECTION("running: stop") {
    CHECK(kinds(plan({}, {existing(old, SliverPhase::kRunning)}, {}, kNow, kGrace)) ==
          Strings{"stop pl_old"});
  }
  SECTION("stopped without a record: the grace period starts now") {
    CHECK(kinds(plan({}, {existing(old, SliverPhase::kStopped)}, {}, kNow, kGrace)) ==
          Strings{"mark-unwanted pl_old"});
  }
  SECTION("stopped within the grace period: kept") {
    CHECK(plan({}, {existing(old, SliverPhase::kStopped)}, {{"pl_old", kNow - kGrace + 1}}, kNow,
               kGrace)
              .empty());
  }
  SECTION("stopped for the whole grace period: destroyed") {
    CHECK(kinds(plan({}, {existing(old, SliverPhase::kStopped)}, {{"pl_old", kNow - kGrace}}, kNow,
                     kGrace)) == Strings{"destroy pl_old"});
  }
  SECTION("restarted by hand while unwanted: stopped again") {
    CHECK(kinds(plan({}, {existing(old, SliverPhase::kRunning)}, {{"pl_old", kNow - 10}}, kNow,
                     kGrace)) == Strings{"stop pl_old"});
  }
  SECTION("wanted again within the grace period: started, not deleted") {
    DesiredMap desired{{"pl_old", old}};
    CHECK(kinds(plan(desired, {existing(old, SliverPhase::kStopped)}, {{"pl_old", kNow - 10}}, kNow,
                     kGrace)) == Strings{"start pl_old"});
  }
}

TEST_CASE("plan: expired slivers are deleted at once, and never created", "[sliverd][reconciler]") {
  DesiredMap desired{{"pl_exp", wanted("pl_exp", 1004, {}, kNow)},
                     {"pl_gone", wanted("pl_gone", 1005, {}, kNow - 100)},
                     {"pl_live", wanted("pl_live", 1006, {}, kNow + 1)}};
  std::vector<SliverStatus> actual{existing(desired["pl_exp"], SliverPhase::kRunning),
                                   existing(desired["pl_live"], SliverPhase::kRunning)};
  CHECK(kinds(plan(desired, actual, {}, kNow, kGrace)) == Strings{"destroy pl_exp"});
}

TEST_CASE("plan: a slice whose tags cannot be applied is reported, never created",
          "[sliverd][reconciler]") {
  DesiredSliver bad = wanted("pl_bad", 1007);
  bad.invalid = "cpu_share: 'lots' is not a number";
  DesiredMap desired{{"pl_bad", bad}};
  auto actions = plan(desired, {}, {}, kNow, kGrace);
  REQUIRE(kinds(actions) == Strings{"report-invalid pl_bad"});
  CHECK(actions[0].reason == bad.invalid);
  // An existing sliver keeps running on its last good config.
  CHECK(kinds(plan(desired, {existing(wanted("pl_bad", 1007), SliverPhase::kRunning)}, {}, kNow,
                   kGrace)) == Strings{"report-invalid pl_bad"});
}

namespace {

struct Bench {
  TempDir dir;
  FakeRuntime runtime;
  DesiredState state{dir.nodePaths(), "n1.example.org"};
  std::int64_t now = kNow;
  Reconciler reconciler{runtime, state,
                        Reconciler::Options{.paths = dir.nodePaths(),
                                            .stop_grace = std::chrono::milliseconds(1234),
                                            .delete_grace_s = kGrace,
                                            .effective_config = {},
                                            .on_destroyed = {},
                                            .on_present = {},
                                            .clock = [this] { return now; }}};

  void plc(std::vector<planetlab::v1::SliverSpec> specs, std::int64_t version) {
    planetlab::v1::NodeState s;
    s.set_version(version);
    s.set_hostname("n1.example.org");
    for (auto& spec : specs) *s.add_slivers() = spec;
    REQUIRE(state.setPlcState(s));
  }
};

planetlab::v1::SliverSpec spec(const std::string& slice, std::uint32_t xid,
                               std::map<std::string, std::string> tags = {},
                               std::vector<std::string> keys = {}) {
  planetlab::v1::SliverSpec s;
  s.set_slice_name(slice);
  s.set_xid(xid);
  s.set_expires_at(kNow + 86400);
  for (const auto& [k, v] : tags) (*s.mutable_tags())[k] = v;
  for (const auto& k : keys) s.add_keys()->set_key(k);
  return s;
}

}  // namespace

TEST_CASE("Reconciler: creates, updates, and a second pass changes nothing",
          "[sliverd][reconciler]") {
  Bench b;
  b.plc({spec("pl_a", 1001, {}, {"ssh-ed25519 AAAAkeyA alice"}), spec("pl_b", 1002)}, 1);
  auto result = b.reconciler.reconcileOnce();
  CHECK(result.failed.empty());
  CHECK(b.runtime.changes() == Strings{"create pl_a", "start pl_a", "create pl_b", "start pl_b"});
  CHECK(b.runtime.running("pl_a"));
  // Members' keys land where sshd's AuthorizedKeysCommand reads them.
  CHECK(plng::base::readFileIfExists(b.dir.nodePaths().authorizedKeys("pl_a")) ==
        std::string("ssh-ed25519 AAAAkeyA alice\n"));
  CHECK(plng::base::readFileIfExists(b.dir.nodePaths().authorizedKeys("pl_b")) == std::string());

  b.runtime.clearCalls();
  CHECK(b.reconciler.reconcileOnce().applied.empty());
  CHECK(b.runtime.changes().empty());

  b.plc({spec("pl_a", 1001, {{"cpu_share", "200"}}), spec("pl_b", 1002)}, 2);
  b.reconciler.reconcileOnce();
  CHECK(b.runtime.changes() == Strings{"update pl_a"});
  CHECK(b.runtime.config("pl_a")->resources.cpu_share == 200);
  CHECK(plng::base::readFileIfExists(b.dir.nodePaths().authorizedKeys("pl_a")) == std::string());
}

TEST_CASE("Reconciler: the grace period before deletion survives a restart",
          "[sliverd][reconciler]") {
  Bench b;
  b.plc({spec("pl_a", 1001)}, 1);
  b.reconciler.reconcileOnce();
  b.plc({}, 2);
  b.runtime.clearCalls();
  b.reconciler.reconcileOnce();
  CHECK(b.runtime.changes() == Strings{"stop pl_a"});
  CHECK(b.runtime.lastGrace() == std::chrono::milliseconds(1234));
  CHECK(b.reconciler.unwantedSince() == std::map<std::string, std::int64_t>{{"pl_a", kNow}});

  // A new daemon (new Reconciler on the same state dir) keeps the recorded time.
  b.now = kNow + kGrace - 1;
  Reconciler again(b.runtime, b.state,
                   Reconciler::Options{.paths = b.dir.nodePaths(),
                                       .stop_grace = std::chrono::milliseconds(1),
                                       .delete_grace_s = kGrace,
                                       .effective_config = {},
                                       .on_destroyed = {},
                                       .on_present = {},
                                       .clock = [&] { return b.now; }});
  b.runtime.clearCalls();
  again.reconcileOnce();
  CHECK(b.runtime.changes().empty());
  CHECK(b.runtime.has("pl_a"));

  b.now = kNow + kGrace;
  again.reconcileOnce();
  CHECK(b.runtime.changes() == Strings{"destroy pl_a"});
  CHECK_FALSE(b.runtime.has("pl_a"));
  CHECK(again.unwantedSince().empty());
}

TEST_CASE("Reconciler: expired slivers are deleted without a grace period",
          "[sliverd][reconciler]") {
  Bench b;
  b.plc({spec("pl_a", 1001)}, 1);
  b.reconciler.reconcileOnce();
  b.runtime.clearCalls();
  b.now = kNow + 86400;  // spec's expires_at; PLC unreachable, last state kept
  b.reconciler.reconcileOnce();
  CHECK(b.runtime.changes() == Strings{"destroy pl_a"});
  b.runtime.clearCalls();
  b.reconciler.reconcileOnce();
  CHECK(b.runtime.changes().empty());
}

TEST_CASE("Reconciler: one failing sliver does not stop the others", "[sliverd][reconciler]") {
  Bench b;
  b.runtime.failOn("pl_bad", "no space left for pl_bad's storage");
  b.plc({spec("pl_a", 1001), spec("pl_bad", 1002), spec("pl_c", 1003)}, 1);
  auto result = b.reconciler.reconcileOnce();
  REQUIRE(result.failed.size() == 1);
  CHECK(result.failed[0].slice == "pl_bad");
  CHECK(b.runtime.running("pl_a"));
  CHECK(b.runtime.running("pl_c"));
  // The failing create is not followed by a start of the same sliver.
  CHECK(b.runtime.changes() ==
        Strings{"create pl_a", "start pl_a", "create pl_bad", "create pl_c", "start pl_c"});
  auto why = b.reconciler.failure("pl_bad");
  REQUIRE(why);
  CHECK_THAT(*why, Catch::Contains("create failed") && Catch::Contains("no space left"));
  CHECK_FALSE(b.reconciler.failure("pl_a"));

  auto info = describeSliver("pl_bad", b.state.lookup("pl_bad", b.now), std::nullopt,
                             b.reconciler.failure("pl_bad"));
  CHECK(info.state() == "failed");
  CHECK_THAT(info.message(), Catch::Contains("no space left"));

  // Retried at the next pass; once it works, the failure is gone.
  b.runtime.failOn("pl_bad", "");
  b.reconciler.reconcileOnce();
  CHECK(b.runtime.running("pl_bad"));
  CHECK_FALSE(b.reconciler.failure("pl_bad"));
}

TEST_CASE("Reconciler: a slice with bad tags is failed with the reason, others go on",
          "[sliverd][reconciler]") {
  Bench b;
  b.plc({spec("pl_a", 1001), spec("pl_bad", 1002, {{"cpu_share", "not-a-number"}})}, 1);
  auto result = b.reconciler.reconcileOnce();
  CHECK(b.runtime.running("pl_a"));
  CHECK_FALSE(b.runtime.has("pl_bad"));
  auto why = b.reconciler.failure("pl_bad");
  REQUIRE(why);
  CHECK_THAT(*why, Catch::Contains("cpu_share"));
}

TEST_CASE("Reconciler: when the runtime cannot list slivers, nothing is changed",
          "[sliverd][reconciler]") {
  Bench b;
  b.plc({spec("pl_a", 1001)}, 1);
  b.runtime.failList("cgroup tree unreadable");
  CHECK_THROWS_WITH(b.reconciler.reconcileOnce(), Catch::Contains("cgroup tree unreadable"));
  CHECK(b.runtime.changes().empty());
}

TEST_CASE("Reconciler: enforces the effective config (bound rcaps applied)",
          "[sliverd][reconciler]") {
  TempDir dir;
  FakeRuntime runtime;
  DesiredState state(dir.nodePaths(), "n1.example.org");
  planetlab::v1::NodeState s;
  s.set_version(1);
  *s.add_slivers() = spec("pl_a", 1001, {{"cpu_share", "100"}});
  state.setPlcState(s);
  Reconciler reconciler(runtime, state,
                        Reconciler::Options{.paths = dir.nodePaths(),
                                            .stop_grace = std::chrono::milliseconds(1),
                                            .delete_grace_s = kGrace,
                                            .effective_config =
                                                [](plng::node::SliverConfig c) {
                                                  if (c.slice == "pl_a") {
                                                    c.resources.cpu_share += 250;
                                                  }
                                                  return c;
                                                },
                                            .on_destroyed = {},
                                            .on_present = {},
                                            .clock = [] { return kNow; }});
  reconciler.reconcileOnce();
  CHECK(runtime.config("pl_a")->resources.cpu_share == 350);
}

TEST_CASE("Reconciler: tells once about present slivers and about destroyed ones",
          "[sliverd][reconciler]") {
  TempDir dir;
  FakeRuntime runtime;
  DesiredState state(dir.nodePaths(), "n1.example.org");
  std::vector<std::string> events;
  bool account_fails = true;
  std::int64_t now = kNow;
  Reconciler reconciler(
      runtime, state,
      Reconciler::Options{
          .paths = dir.nodePaths(),
          .stop_grace = std::chrono::milliseconds(1),
          .delete_grace_s = 0,
          .effective_config = {},
          .on_destroyed = [&](const std::string& s) { events.push_back("destroyed " + s); },
          .on_present =
              [&](const std::string& s) {
                if (s == "pl_b" && account_fails) {
                  throw std::runtime_error("uid range full");
                }
                events.push_back("present " + s);
              },
          .clock = [&] { return now; }});
  planetlab::v1::NodeState s;
  s.set_version(1);
  *s.add_slivers() = spec("pl_a", 1001);
  *s.add_slivers() = spec("pl_b", 1002);
  state.setPlcState(s);
  reconciler.reconcileOnce();
  CHECK(events == Strings{"present pl_a"});
  REQUIRE(reconciler.failure("pl_b"));
  CHECK_THAT(*reconciler.failure("pl_b"), Catch::Contains("uid range full"));
  account_fails = false;
  reconciler.reconcileOnce();
  reconciler.reconcileOnce();
  CHECK(events == Strings{"present pl_a", "present pl_b"});
  CHECK_FALSE(reconciler.failure("pl_b"));

  s.set_version(2);
  s.clear_slivers();
  *s.add_slivers() = spec("pl_b", 1002);
  state.setPlcState(s);
  reconciler.reconcileOnce();  // stop
  reconciler.reconcileOnce();  // grace 0: destroy
  CHECK(events == Strings{"present pl_a", "present pl_b", "destroyed pl_a"});
}

TEST_CASE("plan: a sliver stopped on purpose stays stopped; a crashed one is started",
          "[sliverd][reconciler]") {
  DesiredMap desired{{"pl_held", wanted("pl_held", 1001)},
                     {"pl_crashed", wanted("pl_crashed", 1002)}};
  std::vector<SliverStatus> actual{existing(desired["pl_held"], SliverPhase::kStopped),
                                   existing(desired["pl_crashed"], SliverPhase::kStopped)};
  const std::map<std::string, std::string> held{{"pl_held", "the node operator"}};
  CHECK(kinds(plan(desired, actual, {}, kNow, kGrace, held)) == Strings{"start pl_crashed"});
  // A held sliver still gets a changed config applied, just not started.
  desired["pl_held"] = wanted("pl_held", 1001, {{"cpu_share", "99"}});
  CHECK(kinds(plan(desired, actual, {}, kNow, kGrace, held)) ==
        Strings{"start pl_crashed", "update pl_held"});
  // Once the mark is gone it is started like any stopped sliver.
  CHECK(kinds(plan(desired, actual, {}, kNow, kGrace)) ==
        Strings{"start pl_crashed", "update pl_held", "start pl_held"});
}

TEST_CASE("Reconciler: the held mark on disk keeps a sliver stopped until released",
          "[sliverd][reconciler]") {
  Bench b;
  const auto paths = b.dir.nodePaths();
  b.plc({spec("pl_a", 1001), spec("pl_b", 1002)}, 1);
  b.reconciler.reconcileOnce();
  REQUIRE(b.runtime.running("pl_a"));

  // pl_a stopped by its users (as the local API does), pl_b's init died.
  holdSliver(paths, "pl_a", "slice pl_a");
  b.runtime.stop("pl_a", std::chrono::milliseconds(0));
  b.runtime.stop("pl_b", std::chrono::milliseconds(0));
  b.runtime.clearCalls();
  b.reconciler.reconcileOnce();
  CHECK(b.runtime.changes() == Strings{"start pl_b"});
  CHECK_FALSE(b.runtime.running("pl_a"));
  CHECK(heldBy(paths, "pl_a") == std::optional<std::string>("slice pl_a"));
  auto info = describeSliver("pl_a", b.state.lookup("pl_a", b.now), b.runtime.get("pl_a"),
                             std::nullopt, heldBy(paths, "pl_a"));
  CHECK(info.state() == "stopped");
  CHECK(info.message() == "stopped by slice pl_a; start it with sliverctl start");

  releaseSliver(paths, "pl_a");
  CHECK_FALSE(heldBy(paths, "pl_a"));
  b.runtime.clearCalls();
  b.reconciler.reconcileOnce();
  CHECK(b.runtime.changes() == Strings{"start pl_a"});

  // Destroying the sliver removes its mark: a new sliver of the slice starts.
  holdSliver(paths, "pl_a", "the node operator");
  b.runtime.stop("pl_a", std::chrono::milliseconds(0));
  b.plc({spec("pl_b", 1002)}, 2);
  b.reconciler.reconcileOnce();
  b.now += kGrace;
  b.reconciler.reconcileOnce();
  REQUIRE_FALSE(b.runtime.has("pl_a"));
  CHECK_FALSE(heldBy(paths, "pl_a"));
}

TEST_CASE("Reconciler: failures survive a restart, until a pass clears them",
          "[sliverd][reconciler]") {
  TempDir dir;
  FakeRuntime runtime;
  DesiredState state{dir.nodePaths(), "n1.example.org"};
  auto options = [&] {
    Reconciler::Options o;
    o.paths = dir.nodePaths();
    o.clock = [] { return kNow; };
    return o;
  };
  planetlab::v1::NodeState s;
  s.set_version(1);
  s.set_hostname("n1.example.org");
  *s.add_slivers() = spec("pl_bad", 1002);
  REQUIRE(state.setPlcState(s));
  runtime.failOn("pl_bad", "reference image /x/nosuchimage is missing");
  {
    Reconciler first(runtime, state, options());
    first.reconcileOnce();
    REQUIRE(first.failure("pl_bad"));
  }
  // A new sliverd, before its first pass: still failed, and why.
  Reconciler second(runtime, state, options());
  auto why = second.failure("pl_bad");
  REQUIRE(why);
  CHECK_THAT(*why, Catch::Contains("create failed") && Catch::Contains("nosuchimage is missing"));
  CHECK(second.report("pl_bad").failure == why);
  runtime.failOn("pl_bad", "");
  second.reconcileOnce();
  CHECK_FALSE(second.failure("pl_bad"));
  CHECK_FALSE(Reconciler(runtime, state, options()).failure("pl_bad"));
}

TEST_CASE("Reconciler: a failure's message is bounded", "[sliverd][reconciler]") {
  Bench b;
  // An error can quote a program's whole output; "é" makes sure the cut lands
  // between characters (SliverInfo.message is UTF-8).
  std::string huge = "mkfs said: ";
  while (huge.size() < 64 * 1024) huge += "é";
  b.runtime.failOn("pl_bad", huge);
  b.plc({spec("pl_bad", 1002)}, 1);
  b.reconciler.reconcileOnce();
  auto why = b.reconciler.failure("pl_bad");
  REQUIRE(why);
  CHECK(why->size() < kMaxReportBytes + 64);
  CHECK_THAT(*why, Catch::EndsWith("bytes)"));
  auto info = describeSliver("pl_bad", b.state.lookup("pl_bad", b.now), std::nullopt, why);
  std::string wire;
  CHECK(info.SerializeToString(&wire));
  planetlab::v1::SliverInfo back;
  CHECK(back.ParseFromString(wire));
}

TEST_CASE("Reconciler: a disk quota over the node's ceiling is clamped, and says so",
          "[sliverd][reconciler]") {
  Bench b;
  constexpr std::uint64_t kCeiling = 3ull << 30;
  b.reconciler.setDiskCeiling(kCeiling, "the sliver storage's 4.0 GiB less its reserve");
  b.plc({spec("pl_big", 1001, {{"disk_quota", std::to_string(5ull << 30)}}), spec("pl_none", 1002),
         spec("pl_small", 1003, {{"disk_quota", "67108864"}})},
        1);
  b.reconciler.reconcileOnce();
  CHECK(b.runtime.get("pl_big")->config.disk_quota_bytes == kCeiling);
  CHECK(b.runtime.get("pl_none")->config.disk_quota_bytes == kCeiling);
  CHECK(b.runtime.get("pl_small")->config.disk_quota_bytes == 64ull << 20);
  auto big = b.reconciler.notice("pl_big");
  REQUIRE(big);
  CHECK(*big ==
        "disk_quota 5.0 GiB: this node gives one sliver at most 3.0 GiB (the sliver storage's "
        "4.0 GiB less its reserve); that is enforced");
  REQUIRE(b.reconciler.notice("pl_none"));
  CHECK_THAT(*b.reconciler.notice("pl_none"), Catch::StartsWith("no disk_quota granted"));
  CHECK_FALSE(b.reconciler.notice("pl_small"));
  // Shown by the API, without making the sliver failed.
  auto info = describeSliver("pl_big", b.state.lookup("pl_big", b.now), b.runtime.get("pl_big"),
                             std::nullopt, std::nullopt, b.reconciler.notice("pl_big"));
  CHECK(info.state() == "running");
  CHECK(info.message() == *big);
  // Clamped configs are what is enforced: a second pass changes nothing.
  b.runtime.clearCalls();
  b.reconciler.reconcileOnce();
  CHECK(b.runtime.changes().empty());
  // Within the ceiling again: the notice goes.
  b.plc({spec("pl_big", 1001, {{"disk_quota", std::to_string(1ull << 30)}})}, 2);
  b.reconciler.reconcileOnce();
  CHECK_FALSE(b.reconciler.notice("pl_big"));
}
