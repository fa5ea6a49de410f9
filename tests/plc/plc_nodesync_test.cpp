// NodeSync against a real PostgreSQL and plcd: a node's desired state
// (GetSlivers) and the stream that brings it a new state whenever something
// affecting it changes, through any plcd on the database (WatchSlivers).
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "tests/support/plc_seed.h"
#include "tests/support/sliver_stream.h"

using namespace plng::test;
using namespace std::chrono_literals;
using grpc::StatusCode;

namespace {

pb::NodeState slivers(const PlcClient& c, const std::string& hostname = "") {
  pb::GetSliversRequest req;
  req.set_hostname(hostname);
  auto [status, state] = c.call(&pb::NodeSync::Stub::GetSlivers, req);
  REQUIRE_OK(status);
  return state;
}

const pb::SliverSpec* findSliver(const pb::NodeState& s, const std::string& name) {
  for (const auto& sliver : s.slivers()) {
    if (sliver.slice_name() == name) return &sliver;
  }
  return nullptr;
}

std::vector<std::string> sliverNames(const pb::NodeState& s) {
  std::vector<std::string> out;
  for (const auto& sliver : s.slivers()) out.push_back(sliver.slice_name());
  return out;
}

void addSlice(const PlcClient& c, const std::string& name) {
  pb::AddSliceRequest req;
  req.set_name(name);
  req.set_description("test slice");
  req.set_url("https://example.edu/");
  REQUIRE_OK(c.call(&pb::Slice::Stub::AddSlice, req).first);
}

void bind(const PlcClient& c, const std::string& slice, const std::string& host) {
  pb::SliceNodesRequest req;
  req.set_name(slice);
  req.add_hostnames(host);
  REQUIRE_OK(c.call(&pb::Slice::Stub::AddSliceNodes, req).first);
}

void addMember(const PlcClient& c, const std::string& slice, const std::string& email) {
  pb::SliceMembersRequest req;
  req.set_name(slice);
  req.add_emails(email);
  REQUIRE_OK(c.call(&pb::Slice::Stub::AddSliceMembers, req).first);
}

void setTag(const PlcClient& c, const std::string& slice, const std::string& tag,
            const std::string& value, const std::string& node = "") {
  pb::SetSliceTagRequest req;
  req.set_slice(slice);
  req.set_tag(tag);
  req.set_value(value);
  req.set_node(node);
  REQUIRE_OK(c.call(&pb::Slice::Stub::SetSliceTag, req).first);
}

using Watch = plng::test::SliverStream;

struct Planet {
  explicit Planet(PlcFixture& f) : fix(f), seed(f) {
    seed.site("princeton");
    pi = std::make_unique<PlcClient>(seed.person("pi@princeton.edu", "princeton", {"pi"}));
    user = std::make_unique<PlcClient>(seed.person("user@princeton.edu", "princeton", {"user"}));
    n1 = seed.node("n1.princeton.edu", "princeton");
    n2 = seed.node("n2.princeton.edu", "princeton");
  }
  PlcFixture& fix;
  Seeder seed;
  std::unique_ptr<PlcClient> pi, user;
  SeededNode n1, n2;
};

}  // namespace

TEST_CASE_METHOD(PlcFixture, "GetSlivers: the node's live slivers, keys, tags and policy",
                 "[plc][pg]") {
  Planet p(*this);
  auto user_key = p.seed.key("user@princeton.edu");
  p.seed.key("pi@princeton.edu");
  p.seed.blacklist("198.51.100.0/24", "abuse report 17");
  p.seed.nodeTag("n1.princeton.edu", "net_node_cap", "20000000");
  p.seed.nodeTag("n2.princeton.edu", "net_node_cap", "30000000");
  for (auto name :
       {"princeton_live", "princeton_expired", "princeton_elsewhere", "princeton_deleted"}) {
    addSlice(*p.pi, name);
  }
  addMember(*p.pi, "princeton_live", "user@princeton.edu");
  bind(*p.pi, "princeton_live", "n1.princeton.edu");
  bind(*p.pi, "princeton_expired", "n1.princeton.edu");
  bind(*p.pi, "princeton_elsewhere", "n2.princeton.edu");
  bind(*p.pi, "princeton_deleted", "n1.princeton.edu");
  setTag(admin(), "princeton_live", "cpu_share", "64");
  setTag(admin(), "princeton_live", "mem_limit", "1G", "n1.princeton.edu");
  setTag(admin(), "princeton_live", "mem_limit", "2G", "n2.princeton.edu");
  pb::DeleteSliceRequest del;
  del.set_name("princeton_deleted");
  REQUIRE_OK(p.pi->call(&pb::Slice::Stub::DeleteSlice, del).first);
  p.seed.sql(
      "UPDATE slices SET expires_at = now() - interval '1 minute'"
      " WHERE name = 'princeton_expired'");

  auto node = p.seed.nodeClient(p.n1);
  auto before = unixNow();
  auto state = slivers(node);
  CHECK(state.hostname() == "n1.princeton.edu");
  CHECK(state.version() > 0);
  CHECK(state.generated_at() >= before);
  CHECK(sliverNames(state) == std::vector<std::string>{"princeton_live"});
  const auto* live = findSliver(state, "princeton_live");
  REQUIRE(live != nullptr);
  CHECK(live->xid() >= 1000);
  CHECK(live->instantiation() == "plc-instantiated");
  CHECK(live->expires_at() > unixNow());
  REQUIRE(live->keys_size() == 1);  // members only; the PI is not one
  CHECK(live->keys(0).person_email() == "user@princeton.edu");
  CHECK(live->keys(0).key() == user_key);
  CHECK(live->tags().at("cpu_share") == "64");
  CHECK(live->tags().at("mem_limit") == "1073741824");
  CHECK(live->tags().at("vref") == "debian12");
  auto plc_keys = p.seed.plcKeys();
  REQUIRE(state.plc_keys_size() == static_cast<int>(plc_keys.size()));
  CHECK(state.plc_keys(0).key_id() == plc_keys[0].key_id());
  CHECK(state.plc_keys(0).public_key() == plc_keys[0].public_key());
  REQUIRE(state.blacklist_size() == 1);
  CHECK(state.blacklist(0).prefix() == "198.51.100.0/24");
  CHECK(state.blacklist(0).reason() == "abuse report 17");
  // The node's own tags, as set: no other node's, no tag type's default (the
  // node's configuration gives those).
  CHECK(std::map<std::string, std::string>(state.node_tags().begin(), state.node_tags().end()) ==
        std::map<std::string, std::string>{{"net_node_cap", "20000000"}});
  CHECK(p.seed
            .sql("SELECT last_contact >= now() - interval '1 minute' FROM nodes"
                 " WHERE hostname = 'n1.princeton.edu'")[0][0]
            .as<bool>());

  // Versions: the same while nothing changes, higher after any change.
  auto v1 = state.version();
  CHECK(slivers(node).version() == v1);
  addSlice(*p.pi, "princeton_unrelated");
  auto v2 = slivers(node).version();
  CHECK(v2 > v1);
  setTag(admin(), "princeton_live", "cpu_share", "128");
  auto changed = slivers(node);
  CHECK(changed.version() > v2);
  CHECK(findSliver(changed, "princeton_live")->tags().at("cpu_share") == "128");

  // Admins may read any node's state; nodes only their own; others nothing.
  auto n2_state = slivers(admin(), "N2.princeton.edu");
  CHECK(n2_state.hostname() == "n2.princeton.edu");
  CHECK(sliverNames(n2_state) == std::vector<std::string>{"princeton_elsewhere"});
  CHECK(slivers(node, "n1.princeton.edu").hostname() == "n1.princeton.edu");
  pb::GetSliversRequest req;
  req.set_hostname("n2.princeton.edu");
  CHECK_STATUS(node.call(&pb::NodeSync::Stub::GetSlivers, req).first, StatusCode::PERMISSION_DENIED,
               "only its own state");
  CHECK_STATUS(p.pi->call(&pb::NodeSync::Stub::GetSlivers, req).first,
               StatusCode::PERMISSION_DENIED, "for nodes");
  CHECK_STATUS(anonymous().call(&pb::NodeSync::Stub::GetSlivers, req).first,
               StatusCode::UNAUTHENTICATED, "");
  req.set_hostname("ghost.princeton.edu");
  CHECK_STATUS(admin().call(&pb::NodeSync::Stub::GetSlivers, req).first, StatusCode::NOT_FOUND,
               "ghost");
  req.clear_hostname();
  CHECK_STATUS(admin().call(&pb::NodeSync::Stub::GetSlivers, req).first,
               StatusCode::INVALID_ARGUMENT, "hostname");
}

TEST_CASE_METHOD(PlcFixture, "WatchSlivers delivers changes made through another plcd",
                 "[plc][pg]") {
  Planet p(*this);
  addSlice(*p.pi, "princeton_watched");
  addSlice(*p.pi, "princeton_other");
  bind(*p.pi, "princeton_watched", "n1.princeton.edu");
  bind(*p.pi, "princeton_other", "n2.princeton.edu");

  // The stream is held by this fixture's plcd (A); changes go through replica B.
  auto replica = startReplica();
  PlcClient admin_b(replica.channel(), admin().token());
  auto node = p.seed.nodeClient(p.n1);

  Watch watch(node, /*since_version=*/0);
  auto first = watch.next(10s);
  REQUIRE(first.has_value());
  CHECK(first->hostname() == "n1.princeton.edu");
  CHECK(sliverNames(*first) == std::vector<std::string>{"princeton_watched"});
  CHECK(first->version() == slivers(node).version());

  // Affecting n1, through B: the stream on A gets it, with a higher version.
  setTag(admin_b, "princeton_watched", "cpu_share", "256");
  auto second = watch.next(10s);
  REQUIRE(second.has_value());
  CHECK(second->version() > first->version());
  CHECK(findSliver(*second, "princeton_watched")->tags().at("cpu_share") == "256");

  // Not affecting n1: a version bump, but no message.
  setTag(admin_b, "princeton_other", "cpu_share", "512");
  setTag(admin_b, "princeton_watched", "mem_limit", "1G", "n2.princeton.edu");
  addSlice(admin_b, "princeton_new");
  CHECK_FALSE(watch.next(3s).has_value());

  // A new sliver, a new member key, a renewal: each arrives, versions rising.
  bind(admin_b, "princeton_new", "n1.princeton.edu");
  auto third = watch.next(10s);
  REQUIRE(third.has_value());
  CHECK(third->version() > second->version());
  CHECK(sliverNames(*third) == std::vector<std::string>{"princeton_new", "princeton_watched"});
  auto key = p.seed.key("user@princeton.edu");
  addMember(admin_b, "princeton_watched", "user@princeton.edu");
  auto fourth = watch.next(10s);
  REQUIRE(fourth.has_value());
  CHECK(fourth->version() > third->version());
  // The key may come in the same message as the membership or (when the key was
  // added through the API) its own.
  while (findSliver(*fourth, "princeton_watched")->keys_size() == 0) {
    auto more = watch.next(10s);
    REQUIRE(more.has_value());
    fourth = more;
  }
  CHECK(findSliver(*fourth, "princeton_watched")->keys(0).key() == key);

  // A stream opened with the current epoch and version gets nothing until a change.
  auto current = slivers(node);
  CHECK_FALSE(current.epoch().empty());
  Watch quiet(PlcClient(replica.channel(), node.token()), current.version(), "", current.epoch());
  CHECK_FALSE(quiet.next(2s).has_value());
  pb::SliceNodesRequest unbind;
  unbind.set_name("princeton_new");
  unbind.add_hostnames("n1.princeton.edu");
  REQUIRE_OK(admin().call(&pb::Slice::Stub::RemoveSliceNodes, unbind).first);
  auto on_b = quiet.next(10s);
  REQUIRE(on_b.has_value());
  CHECK(sliverNames(*on_b) == std::vector<std::string>{"princeton_watched"});
  auto on_a = watch.next(10s);
  REQUIRE(on_a.has_value());
  CHECK(on_a->version() == on_b->version());

  // A client going away ends its stream.
  watch.cancel();
  auto ended = watch.finished(5s);
  REQUIRE(ended.has_value());
  CHECK(ended->error_code() == StatusCode::CANCELLED);

  // Only the node itself (or an admin) may watch.
  Watch intruder(*p.user, 0, "n1.princeton.edu");
  auto refused = intruder.finished(5s);
  REQUIRE(refused.has_value());
  CHECK(refused->error_code() == StatusCode::PERMISSION_DENIED);
  Watch admin_watch(admin(), 0, "n2.princeton.edu");
  auto n2_state = admin_watch.next(10s);
  REQUIRE(n2_state.has_value());
  CHECK(n2_state->hostname() == "n2.princeton.edu");
}

TEST_CASE_METHOD(PlcFixture, "WatchSlivers streams end when plcd shuts down", "[plc][pg]") {
  Planet p(*this);
  auto node = p.seed.nodeClient(p.n1);
  Watch watch(node, 0);
  REQUIRE(watch.next(10s).has_value());
  auto started = std::chrono::steady_clock::now();
  plcd().stop();
  auto ended = watch.finished(10s);
  REQUIRE(ended.has_value());
  CHECK(std::chrono::steady_clock::now() - started < 6s);
}

namespace {

pb::NodeStatusReport statusReport(std::int64_t at, const std::string& slice, std::uint64_t used,
                                  bool capped) {
  pb::NodeStatusReport report;
  report.set_reported_at(at);
  auto* usage = report.add_slice_net();
  usage->set_slice_name(slice);
  usage->set_daily_bytes(10'000'000);
  usage->set_bytes_used(used);
  usage->set_window_start(at - 3600);
  usage->set_ceil_bps(capped ? 5'000 : 10'000'000);
  usage->set_capped(capped);
  return report;
}

pb::GetNodeStatusResponse nodeStatus(const PlcClient& c, std::vector<std::string> hostnames) {
  pb::GetNodeStatusRequest req;
  for (const auto& h : hostnames) req.add_hostnames(h);
  auto [status, resp] = c.call(&pb::Admin::Stub::GetNodeStatus, req);
  REQUIRE_OK(status);
  return resp;
}

}  // namespace

TEST_CASE_METHOD(PlcFixture, "ReportStatus keeps each node's latest report; GetNodeStatus shows it",
                 "[plc][pg]") {
  Planet p(*this);
  auto node = p.seed.nodeClient(p.n1);
  // Never reported: listed, with nothing in it.
  auto none = nodeStatus(*p.user, {"n1.princeton.edu"});
  REQUIRE(none.nodes_size() == 1);
  CHECK(none.nodes(0).received_at() == 0);
  CHECK(none.nodes(0).report().slice_net().empty());

  const auto before = unixNow();
  REQUIRE_OK(
      node.call(&pb::NodeSync::Stub::ReportStatus, statusReport(before, "princeton_a", 1, false))
          .first);
  // A later report replaces the earlier one.
  REQUIRE_OK(node.call(&pb::NodeSync::Stub::ReportStatus,
                       statusReport(before + 30, "princeton_b", 9'500'000, true))
                 .first);
  // Any enabled person reads it: a user as well as an admin.
  for (const PlcClient* reader : {p.user.get(), &admin()}) {
    auto all = nodeStatus(*reader, {});
    REQUIRE(all.nodes_size() == 2);  // every node, reported or not
    CHECK(all.nodes(0).hostname() == "n1.princeton.edu");
    CHECK(all.nodes(0).received_at() >= before);
    CHECK(all.nodes(0).received_at() <= unixNow());
    REQUIRE(all.nodes(0).report().slice_net_size() == 1);
    const auto& usage = all.nodes(0).report().slice_net(0);
    CHECK(usage.slice_name() == "princeton_b");
    CHECK(usage.bytes_used() == 9'500'000);
    CHECK(usage.capped());
    CHECK(usage.ceil_bps() == 5'000);
    CHECK(all.nodes(0).report().reported_at() == before + 30);
    CHECK(all.nodes(1).hostname() == "n2.princeton.edu");
    CHECK(all.nodes(1).received_at() == 0);
  }

  // Refusals: a node reads no status, a person reports none, nobody reports
  // anonymously, an unknown node is named, a report is bounded.
  CHECK_STATUS(node.call(&pb::Admin::Stub::GetNodeStatus, pb::GetNodeStatusRequest()).first,
               StatusCode::PERMISSION_DENIED, "must be called by a person");
  CHECK_STATUS(
      p.pi->call(&pb::NodeSync::Stub::ReportStatus, statusReport(before, "princeton_a", 1, false))
          .first,
      StatusCode::PERMISSION_DENIED, "is not a node");
  CHECK_STATUS(
      anonymous()
          .call(&pb::NodeSync::Stub::ReportStatus, statusReport(before, "princeton_a", 1, false))
          .first,
      StatusCode::UNAUTHENTICATED, "");
  pb::GetNodeStatusRequest unknown;
  unknown.add_hostnames("nowhere.princeton.edu");
  CHECK_STATUS(p.user->call(&pb::Admin::Stub::GetNodeStatus, unknown).first, StatusCode::NOT_FOUND,
               "nowhere.princeton.edu");
  pb::NodeStatusReport huge;
  for (int i = 0; i < 4097; ++i) huge.add_slice_net()->set_slice_name("princeton_x");
  CHECK_STATUS(node.call(&pb::NodeSync::Stub::ReportStatus, huge).first,
               StatusCode::INVALID_ARGUMENT, "at most 4096");
  pb::NodeStatusReport unnamed;
  unnamed.add_slice_net();
  CHECK_STATUS(node.call(&pb::NodeSync::Stub::ReportStatus, unnamed).first,
               StatusCode::INVALID_ARGUMENT, "slice_name is empty");
  // What was refused left the stored report as it was.
  CHECK(nodeStatus(admin(), {"n1.princeton.edu"}).nodes(0).report().slice_net(0).slice_name() ==
        "princeton_b");
}
