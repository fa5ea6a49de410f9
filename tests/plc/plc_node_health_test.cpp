// Node health at PLC against a real PostgreSQL and plcd (docs/plc.md, "Node
// health"): what nodes report (NodeSync.ReportStatus with NodeHealth), the
// bounded history PLC keeps, and the fleet view (Admin.GetNodeStatus and
// `plcctl node status`): site filter, last contact, nodes shown down after
// node_down_after_s of silence and up again once heard from.
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "tests/support/plc_seed.h"
#include "tests/support/scratch_dir.h"

using namespace plng::test;
using namespace std::chrono_literals;
using grpc::StatusCode;

namespace {

pb::NodeStatusReport healthReport(std::int64_t at, const std::string& version, double load1) {
  pb::NodeStatusReport report;
  report.set_reported_at(at);
  auto* usage = report.add_slice_net();
  usage->set_slice_name("princeton_a");
  usage->set_daily_bytes(10'000'000);
  usage->set_bytes_used(42);
  pb::NodeHealth* h = report.mutable_health();
  h->set_load1(load1);
  h->set_load5(0.5);
  h->set_load15(0.25);
  h->set_uptime_s(86400);
  h->set_memory_total_bytes(16ull << 30);
  h->set_memory_available_bytes(12ull << 30);
  h->set_disk_total_bytes(100ull << 30);
  h->set_disk_free_bytes(80ull << 30);
  h->set_software_version(version);
  h->set_last_reconcile_at(at - 5);
  h->set_last_reconcile_ok(false);
  h->set_slivers_running(7);
  auto* failed = h->add_slivers_failed();
  failed->set_slice_name("princeton_broken");
  failed->set_reason("vref busybox-9 is not on this node");
  failed->set_since(at - 60);
  (*h->mutable_features())["cgroup"] = "v2";
  (*h->mutable_features())["quota"] = "prjquota";
  (*h->mutable_features())["vnet"] = "bpf";
  h->set_plc_stream("open");
  return report;
}

pb::GetNodeStatusResponse status(const PlcClient& c, std::vector<std::string> hostnames,
                                 const std::string& site = "", std::uint32_t history = 0) {
  pb::GetNodeStatusRequest req;
  for (const auto& h : hostnames) req.add_hostnames(h);
  req.set_login_base(site);
  req.set_history(history);
  auto [s, resp] = c.call(&pb::Admin::Stub::GetNodeStatus, req);
  REQUIRE_OK(s);
  return resp;
}

std::vector<std::string> hostnames(const pb::GetNodeStatusResponse& r) {
  std::vector<std::string> out;
  for (const auto& n : r.nodes()) out.push_back(n.hostname());
  return out;
}

struct Fleet {
  explicit Fleet(PlcFixture& f) : seed(f) {
    seed.site("princeton");
    seed.site("mit");
    user = std::make_unique<PlcClient>(seed.person("user@princeton.edu", "princeton", {"user"}));
    n1 = seed.node("n1.princeton.edu", "princeton");
    n2 = seed.node("n2.princeton.edu", "princeton");
    m1 = seed.node("m1.mit.edu", "mit");
  }
  Seeder seed;
  std::unique_ptr<PlcClient> user;
  SeededNode n1, n2, m1;
};

// A plcd on the fixture's database with `config` (key = value lines).
PlcdProcess configuredPlcd(PlcFixture& fix, ScratchDir& dir, const std::string& config) {
  const auto path = dir.path() / "plcd.conf";
  std::ofstream(path) << config;
  return PlcdProcess(fix.plcdPath(), fix.connectionString(), {"--config", path.string()});
}

}  // namespace

TEST_CASE_METHOD(PlcFixture, "a node's full health report comes back in the fleet view",
                 "[plc][pg]") {
  Fleet f(*this);
  auto node = f.seed.nodeClient(f.n1);  // its login is its first contact
  const auto before = unixNow();
  REQUIRE_OK(
      node.call(&pb::NodeSync::Stub::ReportStatus, healthReport(before, "sliverd 1.2.3", 1.5))
          .first);

  auto all = status(*f.user, {});
  CHECK(hostnames(all) ==
        std::vector<std::string>{"m1.mit.edu", "n1.princeton.edu", "n2.princeton.edu"});
  CHECK(all.down_after_s() == 300);  // the documented default
  CHECK(all.now() >= before);
  const pb::NodeStatus& n1 = all.nodes(1);
  CHECK(n1.login_base() == "princeton");
  CHECK(n1.boot_state() == "boot");
  CHECK(n1.last_contact() >= before);
  CHECK(n1.received_at() >= before);
  CHECK_FALSE(n1.down());
  CHECK(n1.history().empty());  // not asked for
  // As sent, field by field (the stored bytes are the node's message).
  const auto expected = healthReport(before, "sliverd 1.2.3", 1.5);
  CHECK(google::protobuf::util::MessageDifferencer::Equals(n1.report(), expected));
  CHECK(n1.report().health().slivers_failed(0).reason() == "vref busybox-9 is not on this node");
  CHECK(n1.report().health().features().at("quota") == "prjquota");
  // Never heard from: down, with nothing reported.
  CHECK(all.nodes(2).down());
  CHECK(all.nodes(2).last_contact() == 0);
  CHECK(all.nodes(2).received_at() == 0);
  CHECK_FALSE(all.nodes(2).report().has_health());
}

TEST_CASE_METHOD(PlcFixture, "the fleet view filters by site and names what it cannot find",
                 "[plc][pg]") {
  Fleet f(*this);
  CHECK(hostnames(status(*f.user, {}, "princeton")) ==
        std::vector<std::string>{"n1.princeton.edu", "n2.princeton.edu"});
  CHECK(hostnames(status(*f.user, {}, "mit")) == std::vector<std::string>{"m1.mit.edu"});
  CHECK(hostnames(status(*f.user, {"n2.princeton.edu"}, "princeton")) ==
        std::vector<std::string>{"n2.princeton.edu"});

  pb::GetNodeStatusRequest req;
  req.set_login_base("nowhere");
  CHECK_STATUS(f.user->call(&pb::Admin::Stub::GetNodeStatus, req).first, StatusCode::NOT_FOUND,
               "no site with login_base 'nowhere'");
  req.set_login_base("mit");
  req.add_hostnames("n1.princeton.edu");
  CHECK_STATUS(f.user->call(&pb::Admin::Stub::GetNodeStatus, req).first, StatusCode::NOT_FOUND,
               "node n1.princeton.edu is at site princeton, not mit");
  req.Clear();
  req.add_hostnames("nowhere.princeton.edu");
  CHECK_STATUS(f.user->call(&pb::Admin::Stub::GetNodeStatus, req).first, StatusCode::NOT_FOUND,
               "nowhere.princeton.edu");
}

TEST_CASE_METHOD(PlcFixture, "who may report and read node health, and what a report may hold",
                 "[plc][pg]") {
  Fleet f(*this);
  auto node = f.seed.nodeClient(f.n1);
  const auto now = unixNow();
  // Nodes report (only their own: the report names no node); persons read.
  CHECK_STATUS(f.user->call(&pb::NodeSync::Stub::ReportStatus, healthReport(now, "v", 1)).first,
               StatusCode::PERMISSION_DENIED, "is not a node");
  CHECK_STATUS(node.call(&pb::Admin::Stub::GetNodeStatus, pb::GetNodeStatusRequest()).first,
               StatusCode::PERMISSION_DENIED, "must be called by a person");
  CHECK_STATUS(anonymous().call(&pb::Admin::Stub::GetNodeStatus, pb::GetNodeStatusRequest()).first,
               StatusCode::UNAUTHENTICATED, "");

  auto refused = [&](pb::NodeStatusReport report, const std::string& message) {
    CHECK_STATUS(node.call(&pb::NodeSync::Stub::ReportStatus, report).first,
                 StatusCode::INVALID_ARGUMENT, message);
  };
  auto report = healthReport(now, "v", 1);
  report.mutable_health()->mutable_slivers_failed(0)->set_reason(std::string(513, 'x'));
  refused(report, "health.slivers_failed.reason has 513 bytes; at most 512");
  report = healthReport(now, "v", 1);
  report.mutable_health()->mutable_slivers_failed(0)->clear_slice_name();
  refused(report, "health.slivers_failed: a slice_name is empty");
  report = healthReport(now, "v", 1);
  for (int i = 0; i < 65; ++i)
    (*report.mutable_health()->mutable_features())["f" + std::to_string(i)] = "x";
  refused(report, "health.features has 68 entries; at most 64");
  report = healthReport(now, "v", 1);
  (*report.mutable_health()->mutable_features())[""] = "x";
  refused(report, "a feature name is empty");
  report = healthReport(now, std::string(1025, 'v'), 1);
  refused(report, "health.software_version has 1025 bytes; at most 1024");
  report = healthReport(now, "v", 1);
  for (int i = 0; i < 1001; ++i) report.mutable_health()->add_slivers_failed()->set_slice_name("s");
  refused(report, "a node reports at most 1000");
  // Nothing refused was kept.
  CHECK(status(*f.user, {"n1.princeton.edu"}).nodes(0).received_at() == 0);

  // History: for named nodes only, and no more than PLC keeps.
  pb::GetNodeStatusRequest req;
  req.set_history(5);
  CHECK_STATUS(f.user->call(&pb::Admin::Stub::GetNodeStatus, req).first,
               StatusCode::INVALID_ARGUMENT, "history is given for named nodes only");
  for (int i = 0; i < 21; ++i) req.add_hostnames("n1.princeton.edu");
  CHECK_STATUS(f.user->call(&pb::Admin::Stub::GetNodeStatus, req).first,
               StatusCode::INVALID_ARGUMENT, "21 named");
  req.clear_hostnames();
  req.add_hostnames("n1.princeton.edu");
  req.set_history(121);
  CHECK_STATUS(f.user->call(&pb::Admin::Stub::GetNodeStatus, req).first,
               StatusCode::INVALID_ARGUMENT,
               "history 121: PLC keeps at most 120 reports per node (node_status_history)");
}

TEST_CASE("PLC keeps the last node_status_history reports; a silent node is down, then up",
          "[plc][pg]") {
  PlcFixture fix;
  ScratchDir dir("plc-node-health");
  PlcdProcess plcd = configuredPlcd(fix, dir, "node_status_history = 3\nnode_down_after_s = 2\n");
  Fleet f(fix);
  const PlcClient user(plcd.channel(), f.user->token());
  auto node = Seeder::nodeClient(plcd.channel(), f.n1);
  const auto t0 = unixNow();
  for (int i = 1; i <= 5; ++i) {
    REQUIRE_OK(node.call(&pb::NodeSync::Stub::ReportStatus,
                         healthReport(t0 + i, "sliverd 1." + std::to_string(i), i))
                   .first);
  }
  auto seen = status(user, {"n1.princeton.edu"}, "", 3);
  REQUIRE(seen.nodes(0).history_size() == 3);
  // Newest first: reports 5, 4, 3; the latest is also the node's report.
  CHECK(seen.nodes(0).history(0).report().reported_at() == t0 + 5);
  CHECK(seen.nodes(0).history(1).report().reported_at() == t0 + 4);
  CHECK(seen.nodes(0).history(2).report().reported_at() == t0 + 3);
  CHECK(seen.nodes(0).history(2).received_at() >= t0);
  CHECK(seen.nodes(0).report().health().software_version() == "sliverd 1.5");
  CHECK(status(user, {"n1.princeton.edu"}, "", 1).nodes(0).history_size() == 1);
  // Pruned in the database, not only in the answer.
  CHECK(f.seed.sql("SELECT count(*) FROM node_status_history")[0][0].as<int>() == 3);
  pb::GetNodeStatusRequest more;
  more.add_hostnames("n1.princeton.edu");
  more.set_history(4);
  CHECK_STATUS(user.call(&pb::Admin::Stub::GetNodeStatus, more).first, StatusCode::INVALID_ARGUMENT,
               "at most 3 reports per node");

  // Heard from just now: up. Silent for longer than node_down_after_s: down.
  auto now = status(user, {}, "princeton");
  CHECK(now.down_after_s() == 2);
  CHECK_FALSE(now.nodes(0).down());
  CHECK(now.nodes(1).down());  // n2: never heard from
  std::this_thread::sleep_for(3s);
  CHECK(status(user, {"n1.princeton.edu"}).nodes(0).down());
  // A report is contact.
  REQUIRE_OK(node.call(&pb::NodeSync::Stub::ReportStatus, healthReport(unixNow(), "v", 0)).first);
  CHECK_FALSE(status(user, {"n1.princeton.edu"}).nodes(0).down());
  std::this_thread::sleep_for(3s);
  CHECK(status(user, {"n1.princeton.edu"}).nodes(0).down());
  // So is a sync, without a report: last_contact moves, received_at does not.
  const auto reported = status(user, {"n1.princeton.edu"}).nodes(0).received_at();
  pb::GetSliversRequest sync;
  REQUIRE_OK(node.call(&pb::NodeSync::Stub::GetSlivers, sync).first);
  auto back = status(user, {"n1.princeton.edu"}).nodes(0);
  CHECK_FALSE(back.down());
  CHECK(back.received_at() == reported);
  CHECK(back.last_contact() > reported);
}

#ifdef PLNG_PLCCTL_PATH
namespace {

struct Run {
  int exit_status = -1;
  std::string out;
};

Run plcctl(const PlcdProcess& plcd, const std::string& token, const std::string& args) {
  // The real binary, as people and scripts run it.
  const std::string command = std::string(PLNG_PLCCTL_PATH) + " --plc " + plcd.address() +
                              " --token " + token + " " + args + " 2>&1";
  Run run;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) run.out.append(buf, n);
  run.exit_status = ::pclose(pipe);
  return run;
}

}  // namespace

TEST_CASE_METHOD(PlcFixture, "plcctl node status: the fleet view in a table and in JSON",
                 "[plc][pg][cli]") {
  Fleet f(*this);
  auto node = f.seed.nodeClient(f.n1);
  const auto now = unixNow();
  REQUIRE_OK(node.call(&pb::NodeSync::Stub::ReportStatus, healthReport(now - 1, "sliverd 1.0", 0.5))
                 .first);
  REQUIRE_OK(
      node.call(&pb::NodeSync::Stub::ReportStatus, healthReport(now, "sliverd 1.1", 2.25)).first);
  // m1 reports the way a node without health reports does: net usage only.
  auto m1 = f.seed.nodeClient(f.m1);
  pb::NodeStatusReport bare;
  bare.set_reported_at(now);
  bare.add_slice_net()->set_slice_name("mit_a");
  REQUIRE_OK(m1.call(&pb::NodeSync::Stub::ReportStatus, bare).first);

  auto table = plcctl(plcd(), f.user->token(), "node status");
  INFO(table.out);
  CHECK(table.exit_status == 0);
  CHECK_THAT(table.out,
             Catch::StartsWith("HOSTNAME          STATE  CONTACT  REPORTED  VERSION      "
                               "LOAD  MEMORY   SLIVERS  FEATURES\n"));
  CHECK_THAT(table.out, Catch::Matches("(.|\n)*\nn1.princeton.edu +up +[0-9]+s ago +[0-9]+s ago +"
                                       "sliverd 1.1 +2.25 +12G/16G +7/1 +"
                                       "cgroup=v2,quota=prjquota,vnet=bpf\n(.|\n)*"));
  // What exists of a node without health, and "-" for the rest.
  CHECK_THAT(table.out, Catch::Matches("(.|\n)*\nm1.mit.edu +up +[0-9]+s ago +[0-9]+s ago +"
                                       "- +- +- +- +-\n(.|\n)*"));
  CHECK_THAT(table.out, Catch::Contains("n2.princeton.edu  never  never    never     -"));

  auto site = plcctl(plcd(), f.user->token(), "node status --site mit");
  CHECK(site.exit_status == 0);
  CHECK_THAT(site.out, Catch::Contains("m1.mit.edu"));
  CHECK_THAT(site.out, !Catch::Contains("princeton.edu"));

  auto json = plcctl(plcd(), f.user->token(), "-o json node status n1.princeton.edu");
  INFO(json.out);
  CHECK(json.exit_status == 0);
  CHECK_THAT(json.out, Catch::Contains("\"hostname\": \"n1.princeton.edu\""));
  CHECK_THAT(json.out, Catch::Contains("\"down\": false"));
  CHECK_THAT(json.out, Catch::Contains("\"software_version\": \"sliverd 1.1\""));
  CHECK_THAT(json.out, Catch::Contains("\"reason\": \"vref busybox-9 is not on this node\""));

  auto history = plcctl(plcd(), f.user->token(), "node status n1.princeton.edu --history 5");
  INFO(history.out);
  CHECK(history.exit_status == 0);
  CHECK_THAT(history.out, Catch::Contains("n1.princeton.edu: up, 2 reports (newest first)"));
  CHECK_THAT(history.out, Catch::Contains("sliverd 1.1  2.25"));
  CHECK_THAT(history.out, Catch::Contains("sliverd 1.0  0.50"));
  CHECK_THAT(history.out, Catch::Contains("failed slivers (latest report):"));
  CHECK_THAT(history.out,
             Catch::Matches("(.|\n)*\nprinceton_broken +[0-9]+[sm] ago +vref busybox-9 "
                            "is not on this node\n(.|\n)*"));

  auto bad = plcctl(plcd(), f.user->token(), "node status --site nowhere");
  CHECK(bad.exit_status != 0);
  CHECK_THAT(bad.out, Catch::Contains("no site with login_base 'nowhere'"));
  auto unnamed = plcctl(plcd(), f.user->token(), "node status --history 3");
  CHECK(WEXITSTATUS(unnamed.exit_status) == 2);
  CHECK_THAT(unnamed.out, Catch::Contains("--history needs the nodes named"));
}
#endif
