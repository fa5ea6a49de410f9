// The flow archive against a real PostgreSQL and plcd: nodes report the flows
// their slivers sent (NodeSync.ReportFlows), PLC keeps them in day partitions
// for flow_retention_days, and anyone with an account asks who sent traffic to
// an address (Admin.GetFlows) and who answers for those slices. Also: the
// slice's description, URL and PIs in each node's state (SliverSpec).
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "plc/db.h"
#include "plc/flow_archive.h"
#include "tests/support/plc_seed.h"
#include "tests/support/scratch_dir.h"

using namespace plng::test;
using grpc::StatusCode;

namespace {

constexpr std::int64_t kNsPerSecond = 1000000000;

std::string address(const std::string& text) {
  unsigned char buf[16];
  const bool v6 = text.find(':') != std::string::npos;
  REQUIRE(inet_pton(v6 ? AF_INET6 : AF_INET, text.c_str(), buf) == 1);
  return std::string(reinterpret_cast<const char*>(buf), v6 ? 16 : 4);
}

pb::FlowRecord flow(const std::string& slice, std::uint32_t xid, std::uint32_t protocol,
                    const std::string& src, const std::string& dst, std::uint32_t dst_port,
                    std::int64_t first_s, std::int64_t last_s, const std::string& refused = "") {
  pb::FlowRecord f;
  f.set_slice_name(slice);
  f.set_xid(xid);
  f.set_protocol(protocol);
  f.set_src_addr(address(src));
  f.set_dst_addr(address(dst));
  f.set_src_port(40000);
  f.set_dst_port(dst_port);
  f.set_tcp_flags(protocol == 6 ? 0x1b : 0);
  f.set_packets(10);
  f.set_bytes(1500);
  f.set_first_seen_ns(first_s * kNsPerSecond);
  f.set_last_seen_ns(last_s * kNsPerSecond);
  f.set_refused(refused);
  return f;
}

pb::ReportFlowsRequest batch(const std::string& id, std::vector<pb::FlowRecord> flows) {
  pb::ReportFlowsRequest r;
  r.set_batch_id(id);
  for (auto& f : flows) *r.add_flows() = std::move(f);
  return r;
}

std::pair<grpc::Status, pb::ReportFlowsResponse> report(const PlcClient& node,
                                                        const pb::ReportFlowsRequest& r) {
  return node.call(&pb::NodeSync::Stub::ReportFlows, r);
}

pb::GetFlowsResponse flows(const PlcClient& c, pb::GetFlowsRequest r) {
  auto [status, resp] = c.call(&pb::Admin::Stub::GetFlows, r);
  REQUIRE_OK(status);
  return resp;
}

pb::GetFlowsRequest to(const std::string& dst) {
  pb::GetFlowsRequest r;
  r.set_dst(dst);
  return r;
}

// A site with a PI, a plain user and a disabled PI, a slice with a description
// and URL on one node, logged in as that node.
struct Planet {
  explicit Planet(PlcFixture& fixture) : fix(fixture), seed(fixture) {
    seed.site("audit");
    pi = std::make_unique<PlcClient>(seed.person("pi@audit.test", "audit", {"pi"}));
    user = std::make_unique<PlcClient>(seed.person("user@audit.test", "audit", {"user"}));
    seed.person("gone@audit.test", "audit", {"pi"});
    pb::UpdatePersonRequest disable;
    disable.set_email("gone@audit.test");
    disable.set_enabled(false);
    REQUIRE_OK(fix.admin().call(&pb::Admin::Stub::UpdatePerson, disable).first);

    pb::AddSliceRequest add;
    add.set_name("audit_probe");
    add.set_description("Probes the Internet's paths");
    add.set_url("https://probe.audit.test/");
    auto [status, info] = pi->call(&pb::Slice::Stub::AddSlice, add);
    REQUIRE_OK(status);
    xid = info.xid();
    node = seed.node("n1.audit.test", "audit");
    other = seed.node("n2.audit.test", "audit");
    REQUIRE_OK(sliceNodes(*pi, "audit_probe", {node.hostname}));
    nodeClient = std::make_unique<PlcClient>(seed.nodeClient(node));
    otherClient = std::make_unique<PlcClient>(seed.nodeClient(other));
  }

  std::int64_t storedRows() {
    return seed.sql("SELECT count(*) FROM flows")[0][0].as<std::int64_t>();
  }

  PlcFixture& fix;
  Seeder seed;
  std::unique_ptr<PlcClient> pi, user, nodeClient, otherClient;
  std::uint32_t xid = 0;
  SeededNode node, other;
};

}  // namespace

TEST_CASE_METHOD(PlcFixture, "nodes report flows and GetFlows answers by address and prefix",
                 "[plc][pg][flows]") {
  Planet p(*this);
  const auto now = unixNow();
  auto [status, stored] = report(
      *p.nodeClient,
      batch("b1", {flow("audit_probe", p.xid, 6, "10.0.0.1", "192.0.2.7", 80, now - 100, now - 50),
                   flow("audit_probe", p.xid, 17, "10.0.0.1", "192.0.2.9", 53, now - 30, now - 20),
                   flow("audit_probe", p.xid, 1, "10.0.0.1", "198.51.100.1", 8 << 8, now - 10,
                        now - 10, "blacklist"),
                   flow("audit_probe", p.xid, 58, "2001:db8:1::1", "2001:db8::7", 128 << 8, now - 5,
                        now - 4)}));
  REQUIRE_OK(status);
  CHECK(stored.stored() == 4);
  REQUIRE_OK(report(*p.otherClient, batch("b1", {flow("", 0, 17, "10.0.0.2", "192.0.2.7", 123,
                                                      now - 40, now - 40)}))
                 .first);

  SECTION("an address, a prefix, each family; latest first, with the slice's contacts") {
    auto one = flows(*p.user, to("192.0.2.9"));
    REQUIRE(one.flows_size() == 1);
    const auto& a = one.flows(0);
    CHECK(a.node() == "n1.audit.test");
    CHECK(a.flow().slice_name() == "audit_probe");
    CHECK(a.flow().xid() == p.xid);
    CHECK(a.flow().protocol() == 17);
    CHECK(a.flow().src_addr() == address("10.0.0.1"));
    CHECK(a.flow().dst_addr() == address("192.0.2.9"));
    CHECK(a.flow().dst_port() == 53);
    CHECK(a.flow().packets() == 10);
    CHECK(a.flow().bytes() == 1500);
    CHECK(a.flow().first_seen_ns() == (now - 30) * kNsPerSecond);
    CHECK(a.flow().last_seen_ns() == (now - 20) * kNsPerSecond);
    CHECK(a.slice_description() == "Probes the Internet's paths");
    CHECK(a.slice_url() == "https://probe.audit.test/");
    REQUIRE(a.contacts_size() == 1);  // the disabled PI and the user are no contacts
    CHECK(a.contacts(0).email() == "pi@audit.test");
    CHECK(a.contacts(0).name() == "First Last");
    CHECK(a.contacts(0).role() == "pi");
    CHECK_FALSE(one.truncated());

    auto prefix = flows(*p.user, to("192.0.2.0/24"));
    REQUIRE(prefix.flows_size() == 3);
    CHECK(prefix.flows(0).flow().dst_addr() == address("192.0.2.9"));
    CHECK(prefix.flows(1).node() == "n2.audit.test");  // a flow of no known slice
    CHECK(prefix.flows(1).contacts_size() == 0);
    CHECK(prefix.flows(2).flow().dst_port() == 80);

    // The GiST index on dst serves prefix queries in every day partition.
    pqxx::connection c(connectionString());
    pqxx::work tx(c);
    tx.exec("SET LOCAL enable_seqscan = off");
    std::string plan;
    for (const auto& row : tx.exec("EXPLAIN SELECT * FROM flows WHERE dst <<= '192.0.2.0/24'")) {
      plan += row[0].as<std::string>() + "\n";
    }
    INFO(plan);
    CHECK_THAT(plan, Catch::Contains("dst_idx"));

    auto v6 = flows(*p.user, to("2001:db8::/32"));
    REQUIRE(v6.flows_size() == 1);
    CHECK(v6.flows(0).flow().protocol() == 58);
    CHECK(flows(*p.user, to("2001:db8::8")).flows_size() == 0);

    auto refused = flows(*p.user, to("198.51.100.1"));
    REQUIRE(refused.flows_size() == 1);
    CHECK(refused.flows(0).flow().refused() == "blacklist");
    CHECK(flows(*p.user, to("203.0.113.0/24")).flows_size() == 0);
  }

  SECTION("plcctl audit shows them, with who answers for the slice") {
    // The real binary: plcctl sets up its own logging for the process.
    const std::string command = std::string(PLNG_PLCCTL_PATH) + " --plc " + plcd().address() +
                                " --token " + p.user->token() + " audit --dst 192.0.2.0/24 2>&1";
    std::string out;
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
    const int exit_status = ::pclose(pipe);
    INFO(out);
    CHECK(exit_status == 0);
    CHECK_THAT(out, Catch::Contains("n1.audit.test  audit_probe  udp"));
    CHECK_THAT(out, Catch::Contains("10.0.0.1:40000 -> 192.0.2.9:53"));
    CHECK_THAT(out, Catch::Contains("n2.audit.test  -"));
    CHECK_THAT(out, Catch::Contains("audit_probe  Probes the Internet's paths  "
                                    "https://probe.audit.test/  First Last <pi@audit.test> (pi)"));
  }

  SECTION("filters: node, slice, since and until; limit and truncated") {
    auto r = to("192.0.2.0/24");
    r.set_node("n2.audit.test");
    CHECK(flows(*p.pi, r).flows_size() == 1);
    r.set_node("");
    r.set_slice("audit_probe");
    CHECK(flows(*p.pi, r).flows_size() == 2);
    r.set_slice("");
    r.set_since(now - 45);  // overlapping the window is enough
    CHECK(flows(*p.pi, r).flows_size() == 2);
    r.set_until(now - 35);
    auto early = flows(*p.pi, r);
    REQUIRE(early.flows_size() == 1);
    CHECK(early.flows(0).node() == "n2.audit.test");
    r.set_since(now - 3 * 3600);
    r.set_until(now - 2 * 3600);
    CHECK(flows(*p.pi, r).flows_size() == 0);

    auto limited = to("192.0.2.0/24");
    limited.set_limit(2);
    auto two = flows(*p.pi, limited);
    CHECK(two.flows_size() == 2);
    CHECK(two.truncated());
    limited.set_limit(3);
    CHECK_FALSE(flows(*p.pi, limited).truncated());

    auto unknown = to("192.0.2.0/24");
    unknown.set_node("nowhere.audit.test");
    CHECK_STATUS(p.pi->call(&pb::Admin::Stub::GetFlows, unknown).first, StatusCode::NOT_FOUND,
                 "nowhere.audit.test");
  }
}

TEST_CASE_METHOD(PlcFixture, "a batch repeated is stored once", "[plc][pg][flows]") {
  Planet p(*this);
  const auto now = unixNow();
  auto b = batch("node-42",
                 {flow("audit_probe", p.xid, 6, "10.0.0.1", "192.0.2.7", 80, now - 9, now - 8),
                  flow("audit_probe", p.xid, 6, "10.0.0.1", "192.0.2.8", 80, now - 9, now - 8)});
  auto first = report(*p.nodeClient, b);
  REQUIRE_OK(first.first);
  CHECK(first.second.stored() == 2);
  auto again = report(*p.nodeClient, b);
  REQUIRE_OK(again.first);
  CHECK(again.second.stored() == 2);
  CHECK(p.storedRows() == 2);
  CHECK(flows(*p.user, to("192.0.2.7")).flows_size() == 1);
  // Batch ids are the node's own: another node's batch of the same id is another batch.
  REQUIRE_OK(report(*p.otherClient, b).first);
  CHECK(p.storedRows() == 4);
  // And the same node's next batch is stored.
  b.set_batch_id("node-43");
  REQUIRE_OK(report(*p.nodeClient, b).first);
  CHECK(p.storedRows() == 6);
  CHECK(p.seed.sql("SELECT count(*) FROM events WHERE method = 'ReportFlows'")[0][0].as<int>() ==
        0);
  CHECK(p.seed.sql("SELECT count(*) FROM flow_batches")[0][0].as<int>() == 3);
}

TEST_CASE_METHOD(PlcFixture, "ReportFlows refuses callers other than nodes and bad records",
                 "[plc][pg][flows]") {
  Planet p(*this);
  const auto now = unixNow();
  const auto good = [&] {
    return flow("audit_probe", p.xid, 6, "10.0.0.1", "192.0.2.7", 80, now - 2, now - 1);
  };
  REQUIRE_OK(report(*p.nodeClient, batch("ok", {good()})).first);

  CHECK_STATUS(report(*p.pi, batch("p", {good()})).first, StatusCode::PERMISSION_DENIED,
               "for nodes");
  CHECK_STATUS(report(admin(), batch("a", {good()})).first, StatusCode::PERMISSION_DENIED,
               "for nodes");
  CHECK_STATUS(report(anonymous(), batch("x", {good()})).first, StatusCode::UNAUTHENTICATED, "");

  struct Bad {
    const char* what;
    std::function<void(pb::ReportFlowsRequest&)> spoil;
    const char* message;
  };
  const std::vector<Bad> bad = {
      {"no batch id", [](auto& r) { r.set_batch_id(""); }, "batch_id"},
      {"batch id with a space", [](auto& r) { r.set_batch_id("a b"); }, "batch_id"},
      {"5-byte address", [](auto& r) { r.mutable_flows(0)->set_src_addr("12345"); },
       "flows[0].src_addr"},
      {"mixed families", [](auto& r) { r.mutable_flows(0)->set_dst_addr(address("2001:db8::1")); },
       "flows[0].dst_addr"},
      {"protocol 256", [](auto& r) { r.mutable_flows(0)->set_protocol(256); }, "protocol"},
      {"port 65536", [](auto& r) { r.mutable_flows(0)->set_dst_port(65536); }, "dst_port"},
      {"tcp flags 256", [](auto& r) { r.mutable_flows(0)->set_tcp_flags(256); }, "tcp_flags"},
      {"last before first",
       [](auto& r) { r.mutable_flows(0)->set_last_seen_ns(r.flows(0).first_seen_ns() - 1); },
       "last_seen_ns"},
      {"no first time", [](auto& r) { r.mutable_flows(0)->set_first_seen_ns(0); }, "first_seen_ns"},
      {"a day ahead",
       [now](auto& r) { r.mutable_flows(0)->set_last_seen_ns((now + 86400) * kNsPerSecond); },
       "ahead of PLC's clock"},
      {"packets past int64",
       [](auto& r) { r.mutable_flows(0)->set_packets(std::uint64_t{1} << 63); }, "packets"},
      {"refused with markup", [](auto& r) { r.mutable_flows(0)->set_refused("<b>x</b>"); },
       "refused"},
      {"bad slice name", [](auto& r) { r.mutable_flows(0)->set_slice_name("Not A Slice"); },
       "flows[0].slice_name"},
      {"over flow_batch_max",
       [&](auto& r) {
         for (int i = 0; i < 10000; ++i) *r.add_flows() = good();
       },
       "flow_batch_max"},
  };
  for (const auto& b : bad) {
    INFO(b.what);
    auto r = batch(std::string("bad-") + b.what[0], {good()});
    b.spoil(r);
    CHECK_STATUS(report(*p.nodeClient, r).first, StatusCode::INVALID_ARGUMENT, b.message);
  }
  CHECK(p.storedRows() == 1);
  CHECK(p.seed.sql("SELECT count(*) FROM flow_batches")[0][0].as<int>() == 1);
}

TEST_CASE_METHOD(PlcFixture, "GetFlows needs a person and a destination", "[plc][pg][flows]") {
  Planet p(*this);
  CHECK_OK(p.user->call(&pb::Admin::Stub::GetFlows, to("192.0.2.7")).first);
  CHECK_STATUS(anonymous().call(&pb::Admin::Stub::GetFlows, to("192.0.2.7")).first,
               StatusCode::UNAUTHENTICATED, "");
  CHECK_STATUS(p.nodeClient->call(&pb::Admin::Stub::GetFlows, to("192.0.2.7")).first,
               StatusCode::PERMISSION_DENIED, "person");
  CHECK_STATUS(p.user->call(&pb::Admin::Stub::GetFlows, to("")).first, StatusCode::INVALID_ARGUMENT,
               "dst is required");
  for (const char* dst : {"192.0.2", "192.0.2.0/33", "example.org", "2001:db8::/129"}) {
    INFO(dst);
    CHECK_STATUS(p.user->call(&pb::Admin::Stub::GetFlows, to(dst)).first,
                 StatusCode::INVALID_ARGUMENT, "dst:");
  }
  auto r = to("192.0.2.7");
  r.set_limit(100001);
  CHECK_STATUS(p.user->call(&pb::Admin::Stub::GetFlows, r).first, StatusCode::INVALID_ARGUMENT,
               "limit");
  r.set_limit(100000);
  CHECK_OK(p.user->call(&pb::Admin::Stub::GetFlows, r).first);
  r.set_since(2000000000);
  r.set_until(1000000000);
  CHECK_STATUS(p.user->call(&pb::Admin::Stub::GetFlows, r).first, StatusCode::INVALID_ARGUMENT,
               "after until");
}

TEST_CASE_METHOD(PlcFixture, "retention drops whole days and PLC takes no flows older",
                 "[plc][pg][flows]") {
  Planet p(*this);
  const auto now = unixNow();
  const std::int64_t day = 86400;
  REQUIRE_OK(
      report(*p.nodeClient, batch("old", {flow("audit_probe", p.xid, 6, "10.0.0.1", "192.0.2.7", 80,
                                               now - 10 * day, now - 10 * day + 5),
                                          flow("audit_probe", p.xid, 6, "10.0.0.1", "192.0.2.7", 80,
                                               now - 5, now - 1)}))
          .first);
  auto partitions = [&] {
    return p.seed.sql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'flows'::regclass")[0][0]
        .as<int>();
  };
  CHECK(partitions() == 2);
  auto week = to("192.0.2.7");
  week.set_since(now - 20 * day);
  CHECK(flows(*p.user, week).flows_size() == 2);

  plng::plc::Database db(connectionString(), 1);
  const auto clock = std::chrono::system_clock::from_time_t(now);
  CHECK(plng::plc::dropExpiredFlowPartitions(db, 90, clock) == 0);
  CHECK(partitions() == 2);
  CHECK(plng::plc::dropExpiredFlowPartitions(db, 5, clock) == 1);
  CHECK(partitions() == 1);
  auto left = flows(*p.user, week);
  REQUIRE(left.flows_size() == 1);
  CHECK(left.flows(0).flow().last_seen_ns() == (now - 1) * kNsPerSecond);

  // A record whose day is already past retention (90 days) is not stored.
  auto ancient =
      report(*p.nodeClient, batch("ancient", {flow("audit_probe", p.xid, 6, "10.0.0.1", "192.0.2.7",
                                                   80, now - 100 * day, now - 100 * day)}));
  REQUIRE_OK(ancient.first);
  CHECK(ancient.second.stored() == 0);
  CHECK(partitions() == 1);
}

TEST_CASE("a node stores at most flow_node_daily_max flows a day", "[plc][pg][flows]") {
  ScratchDir dir("plc-flows");
  const auto config = dir.path() / "plcd.conf";
  std::ofstream(config) << "flow_node_daily_max = 3\n";
  PlcFixture fix;
  PlcdProcess limited(fix.plcdPath(), fix.connectionString(), {"--config", config.string()});
  Planet p(fix);
  auto node = Seeder::nodeClient(limited.channel(), p.node);
  const auto now = unixNow();
  auto two = [&](const std::string& id) {
    return batch(id, {flow("audit_probe", p.xid, 17, "10.0.0.1", "192.0.2.7", 53, now - 2, now),
                      flow("audit_probe", p.xid, 17, "10.0.0.1", "192.0.2.8", 53, now - 2, now)});
  };
  REQUIRE_OK(report(node, two("d1")).first);
  CHECK_STATUS(report(node, two("d2")).first, StatusCode::RESOURCE_EXHAUSTED,
               "flow_node_daily_max");
  auto one = two("d3");
  one.mutable_flows()->RemoveLast();
  CHECK_OK(report(node, one).first);
  CHECK(p.storedRows() == 3);
}

TEST_CASE_METHOD(PlcFixture, "a node's state names who answers for each slice",
                 "[plc][pg][flows]") {
  Planet p(*this);
  auto [status, state] =
      p.nodeClient->call(&pb::NodeSync::Stub::GetSlivers, pb::GetSliversRequest());
  REQUIRE_OK(status);
  REQUIRE(state.slivers_size() == 1);
  const auto& spec = state.slivers(0);
  CHECK(spec.description() == "Probes the Internet's paths");
  CHECK(spec.url() == "https://probe.audit.test/");
  REQUIRE(spec.contacts_size() == 1);
  CHECK(spec.contacts(0).email() == "pi@audit.test");
  CHECK(spec.contacts(0).name() == "First Last");
  CHECK(spec.contacts(0).role() == "pi");

  // A new PI of the site is a contact in the next state.
  p.seed.addRole("user@audit.test", "pi", "audit");
  std::tie(status, state) =
      p.nodeClient->call(&pb::NodeSync::Stub::GetSlivers, pb::GetSliversRequest());
  REQUIRE_OK(status);
  REQUIRE(state.slivers(0).contacts_size() == 2);
  CHECK(state.slivers(0).contacts(1).email() == "user@audit.test");
}
