// Slice service against a real PostgreSQL and plcd: PlanetLab's slice policy
// (naming, quotas, expiry and renewal, who may do what), slice tags and their
// precedence on nodes, and signed tickets verified as a node would.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "base/proc.h"
#include "plc/node_state.h"
#include "proto/ticket.h"
#include "tests/support/plc_seed.h"

using namespace plng::test;
using grpc::StatusCode;

namespace {

constexpr std::int64_t kDay = 24 * 3600;
constexpr std::int64_t kWeek = 7 * kDay;

pb::AddSliceRequest sliceRequest(const std::string& name, bool described = true) {
  pb::AddSliceRequest req;
  req.set_name(name);
  if (described) {
    req.set_description("measuring " + name);
    req.set_url("https://example.edu/" + name);
  }
  return req;
}

pb::SliceInfo addSlice(const PlcClient& c, const std::string& name, bool described = true) {
  auto [status, slice] = c.call(&pb::Slice::Stub::AddSlice, sliceRequest(name, described));
  REQUIRE_OK(status);
  return slice;
}

// The live slice of that name, as GetSlices reports it.
pb::SliceInfo getSlice(const PlcClient& c, const std::string& name) {
  pb::GetSlicesRequest req;
  req.add_names(name);
  auto [status, resp] = c.call(&pb::Slice::Stub::GetSlices, req);
  REQUIRE_OK(status);
  REQUIRE(resp.slices_size() == 1);
  return resp.slices(0);
}

grpc::Status members(const PlcClient& c, const std::string& slice,
                     const std::vector<std::string>& emails, bool add = true) {
  pb::SliceMembersRequest req;
  req.set_name(slice);
  for (const auto& e : emails) req.add_emails(e);
  return c.call(add ? &pb::Slice::Stub::AddSliceMembers : &pb::Slice::Stub::RemoveSliceMembers, req)
      .first;
}

grpc::Status renew(const PlcClient& c, const std::string& slice, std::int64_t expires_at) {
  pb::RenewSliceRequest req;
  req.set_name(slice);
  req.set_expires_at(expires_at);
  return c.call(&pb::Slice::Stub::RenewSlice, req).first;
}

std::pair<grpc::Status, pb::SignedTicket> ticket(const PlcClient& c, const std::string& slice,
                                                 const std::vector<std::string>& hostnames = {}) {
  pb::GetSliceTicketRequest req;
  req.set_slice(slice);
  for (const auto& h : hostnames) req.add_hostnames(h);
  return c.call(&pb::Slice::Stub::GetSliceTicket, req);
}

std::vector<std::string> list(const google::protobuf::RepeatedPtrField<std::string>& f) {
  return {f.begin(), f.end()};
}

std::int64_t count(Seeder& seed, const std::string& query) {
  return seed.sql(query)[0][0].as<std::int64_t>();
}

// A site "princeton" with a PI, a user and a tech; a site "mit" with its own PI.
struct Planet {
  explicit Planet(PlcFixture& f) : fix(f), seed(f) {
    seed.site("princeton", /*max_slices=*/3, /*max_slivers=*/5);
    seed.site("mit");
    pi = std::make_unique<PlcClient>(seed.person("pi@princeton.edu", "princeton", {"pi"}));
    user = std::make_unique<PlcClient>(seed.person("user@princeton.edu", "princeton", {"user"}));
    other = std::make_unique<PlcClient>(seed.person("other@princeton.edu", "princeton", {"user"}));
    mitpi = std::make_unique<PlcClient>(seed.person("pi@mit.edu", "mit", {"pi"}));
  }
  PlcFixture& fix;
  Seeder seed;
  std::unique_ptr<PlcClient> pi, user, other, mitpi;
};

}  // namespace

TEST_CASE("effective tags: node beats node group beats slice beats default", "[plc]") {
  using plng::plc::EffectiveTagResolver;
  using plng::plc::TagScope;
  EffectiveTagResolver r;
  r.addDefault("mem_limit", "1");
  r.addDefault("vref", "debian12");
  r.addSliceTag(7, "mem_limit", "2", 10);
  r.addNodeTag(7, 1, TagScope::kNode, "mem_limit", "4", 11);
  r.addNodeTag(7, 1, TagScope::kNodeGroup, "mem_limit", "3", 99);
  r.addNodeTag(7, 2, TagScope::kNodeGroup, "mem_limit", "3", 12);
  r.addNodeTag(7, 2, TagScope::kNodeGroup, "cpu_cap", "20", 30);
  r.addNodeTag(7, 2, TagScope::kNodeGroup, "cpu_cap", "10", 20);
  CHECK(r.resolve(7, 1).at("mem_limit") == "4");
  CHECK(r.resolve(7, 2).at("mem_limit") == "3");
  CHECK(r.resolve(7, 2).at("cpu_cap") == "20");  // highest slice_tag_id among groups
  CHECK(r.resolve(7, 3).at("mem_limit") == "2");
  CHECK(r.resolve(8, 1).at("mem_limit") == "1");
  CHECK(r.resolve(8, 1).at("vref") == "debian12");
  CHECK(r.resolve(8, 1).count("cpu_cap") == 0);
}

TEST_CASE_METHOD(PlcFixture, "AddSlice: naming, defaults, permissions and quota", "[plc][pg]") {
  Planet p(*this);
  auto before = unixNow();
  auto slice = addSlice(*p.pi, "princeton_codeen");
  CHECK(slice.name() == "princeton_codeen");
  CHECK(slice.login_base() == "princeton");
  CHECK(slice.instantiation() == "plc-instantiated");
  CHECK(slice.max_nodes() == 100);
  CHECK(slice.creator() == "pi@princeton.edu");
  CHECK(slice.xid() >= 1000);
  CHECK(slice.deleted_at() == 0);
  CHECK(slice.expires_at() >= before + 2 * kWeek);
  CHECK(slice.expires_at() <= unixNow() + 2 * kWeek + 1);  // epoch is rounded
  CHECK(slice.description() == "measuring princeton_codeen");
  // Recorded with the objects and the role that allowed it.
  auto event = p.seed.sql(
      "SELECT role_used, result FROM events WHERE method = 'AddSlice'"
      " AND 'slice:princeton_codeen' = ANY(objects) AND result = 'OK'");
  REQUIRE(event.size() == 1);
  CHECK(event[0][0].as<std::string>() == "pi");

  // xid is stable: GetSlices reports the same one.
  CHECK(getSlice(*p.user, "princeton_codeen").xid() == slice.xid());

  auto slices_now = [&] { return count(p.seed, "SELECT count(*) FROM slices"); };
  auto n = slices_now();
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::AddSlice, sliceRequest("princeton_codeen")).first,
               StatusCode::ALREADY_EXISTS, "princeton_codeen");
  for (std::string bad : {"princeton", "Princeton_x", "princeton_", "princeton-x",
                          "princeton_abcdefghijklmnopqrstuvwxyz", "_x", ""}) {
    INFO(bad);
    CHECK_STATUS(p.pi->call(&pb::Slice::Stub::AddSlice, sliceRequest(bad)).first,
                 StatusCode::INVALID_ARGUMENT, "");
  }
  auto bad_url = sliceRequest("princeton_badurl");
  bad_url.set_url("ftp://x");
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::AddSlice, bad_url).first, StatusCode::INVALID_ARGUMENT,
               "url");
  auto bad_inst = sliceRequest("princeton_badinst");
  bad_inst.set_instantiation("magic");
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::AddSlice, bad_inst).first, StatusCode::INVALID_ARGUMENT,
               "instantiation");
  auto bad_max = sliceRequest("princeton_badmax");
  bad_max.set_max_nodes(-1);
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::AddSlice, bad_max).first, StatusCode::INVALID_ARGUMENT,
               "max_nodes");
  CHECK(slices_now() == n);

  // The prefix names the site, which must exist and be enabled; only its PI (or
  // an admin) may create there.
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::AddSlice, sliceRequest("nosuch_x")).first,
               StatusCode::NOT_FOUND, "nosuch");
  CHECK_STATUS(p.user->call(&pb::Slice::Stub::AddSlice, sliceRequest("princeton_u")).first,
               StatusCode::PERMISSION_DENIED, "AddSlice requires role pi at site princeton");
  CHECK_STATUS(p.mitpi->call(&pb::Slice::Stub::AddSlice, sliceRequest("princeton_m")).first,
               StatusCode::PERMISSION_DENIED, "pi at site princeton");
  auto big = sliceRequest("princeton_big");
  big.set_max_nodes(1000);
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::AddSlice, big).first, StatusCode::PERMISSION_DENIED,
               "requires role admin");
  CHECK(slices_now() == n);
  auto [admin_status, admin_slice] = admin().call(&pb::Slice::Stub::AddSlice, big);
  REQUIRE_OK(admin_status);
  CHECK(admin_slice.max_nodes() == 1000);
  CHECK(admin_slice.xid() != slice.xid());
  CHECK(admin_slice.creator() == kAdminEmail);

  auto delegated = sliceRequest("mit_broker");
  delegated.set_instantiation("delegated");
  auto [dstatus, dslice] = p.mitpi->call(&pb::Slice::Stub::AddSlice, delegated);
  REQUIRE_OK(dstatus);
  CHECK(dslice.instantiation() == "delegated");

  // princeton holds 3 slices at most.
  addSlice(*p.pi, "princeton_third");
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::AddSlice, sliceRequest("princeton_fourth")).first,
               StatusCode::RESOURCE_EXHAUSTED,
               "site princeton has 3 of 3 slices; ask an admin to raise max_slices");
  CHECK_STATUS(admin().call(&pb::Slice::Stub::AddSlice, sliceRequest("princeton_fourth")).first,
               StatusCode::RESOURCE_EXHAUSTED, "3 of 3");
  pb::DeleteSliceRequest del;
  del.set_name("princeton_third");
  REQUIRE_OK(p.pi->call(&pb::Slice::Stub::DeleteSlice, del).first);
  addSlice(*p.pi, "princeton_fourth");

  // A disabled site creates nothing.
  p.seed.sql("UPDATE sites SET enabled = false WHERE login_base = 'mit'");
  CHECK_STATUS(p.mitpi->call(&pb::Slice::Stub::AddSlice, sliceRequest("mit_x")).first,
               StatusCode::FAILED_PRECONDITION, "disabled");
}

TEST_CASE_METHOD(PlcFixture, "GetSlices filters and lists members and nodes", "[plc][pg]") {
  Planet p(*this);
  p.seed.node("n1.princeton.edu", "princeton");
  p.seed.node("n2.mit.edu", "mit");
  addSlice(*p.pi, "princeton_a");
  addSlice(*p.pi, "princeton_b");
  addSlice(*p.mitpi, "mit_c");
  REQUIRE_OK(members(*p.pi, "princeton_a", {"user@princeton.edu", "other@princeton.edu"}));
  REQUIRE_OK(members(*p.mitpi, "mit_c", {"user@princeton.edu"}));
  REQUIRE_OK(sliceNodes(*p.pi, "princeton_a", {"n1.princeton.edu", "n2.mit.edu"}));
  REQUIRE_OK(sliceNodes(*p.pi, "princeton_b", {"n1.princeton.edu"}));

  auto names = [&](pb::GetSlicesRequest req) {
    auto [status, resp] = p.user->call(&pb::Slice::Stub::GetSlices, req);
    REQUIRE_OK(status);
    std::vector<std::string> out;
    for (const auto& s : resp.slices()) out.push_back(s.name());
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(names({}) == V{"mit_c", "princeton_a", "princeton_b"});
  pb::GetSlicesRequest req;
  req.add_names("princeton_b");
  req.add_names("mit_c");
  req.add_names("nosuch_x");
  CHECK(names(req) == V{"mit_c", "princeton_b"});
  req.Clear();
  req.set_login_base("princeton");
  CHECK(names(req) == V{"princeton_a", "princeton_b"});
  req.Clear();
  req.set_member("USER@princeton.edu");
  CHECK(names(req) == V{"mit_c", "princeton_a"});
  req.Clear();
  req.set_hostname("n1.princeton.edu");
  CHECK(names(req) == V{"princeton_a", "princeton_b"});
  req.set_login_base("mit");
  CHECK(names(req).empty());

  auto a = getSlice(*p.user, "princeton_a");
  CHECK(list(a.members()) == V{"other@princeton.edu", "user@princeton.edu"});
  CHECK(list(a.nodes()) == V{"n1.princeton.edu", "n2.mit.edu"});

  pb::DeleteSliceRequest del;
  del.set_name("princeton_b");
  REQUIRE_OK(p.pi->call(&pb::Slice::Stub::DeleteSlice, del).first);
  CHECK(names({}) == V{"mit_c", "princeton_a"});
  req.Clear();
  req.set_include_deleted(true);
  req.add_names("princeton_b");
  auto [status, resp] = p.user->call(&pb::Slice::Stub::GetSlices, req);
  REQUIRE_OK(status);
  REQUIRE(resp.slices_size() == 1);
  CHECK(resp.slices(0).deleted_at() > 0);
  CHECK(list(resp.slices(0).nodes()) == V{"n1.princeton.edu"});

  // Nodes have no business listing slices.
  auto node = p.seed.nodeClient(p.seed.node("n3.princeton.edu", "princeton"));
  CHECK_STATUS(node.call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest()).first,
               StatusCode::PERMISSION_DENIED, "");
  CHECK_STATUS(anonymous().call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest()).first,
               StatusCode::UNAUTHENTICATED, "");

  // A thousand slices, each with members and nodes, list in one go.
  p.seed.sql(
      "INSERT INTO slices (name, site_id, instantiation, expires_at, max_nodes)"
      " SELECT 'mit_bulk' || g, site_id, 'plc-instantiated', now() + interval '1 day', 10"
      " FROM sites, generate_series(1, 1000) g WHERE login_base = 'mit'");
  p.seed.sql(
      "INSERT INTO slice_members (slice_id, person_id)"
      " SELECT sl.slice_id, p.person_id FROM slices sl, persons p"
      " WHERE sl.name LIKE 'mit_bulk%' AND p.email LIKE '%princeton.edu'");
  p.seed.sql(
      "INSERT INTO slice_nodes (slice_id, node_id)"
      " SELECT sl.slice_id, n.node_id FROM slices sl, nodes n WHERE sl.name LIKE 'mit_bulk%'");
  auto started = std::chrono::steady_clock::now();
  std::tie(status, resp) = p.user->call(&pb::Slice::Stub::GetSlices, pb::GetSlicesRequest());
  auto elapsed = std::chrono::steady_clock::now() - started;
  REQUIRE_OK(status);
  CHECK(resp.slices_size() == 1002);
  for (const auto& s : resp.slices()) {
    if (s.name().rfind("mit_bulk", 0) != 0) continue;
    REQUIRE(s.members_size() == 3);
    REQUIRE(s.nodes_size() == 3);
  }
  INFO("GetSlices of 1002 slices took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
  CHECK(elapsed < std::chrono::seconds(2));
}

TEST_CASE_METHOD(PlcFixture, "UpdateSlice and DeleteSlice belong to the site's PI", "[plc][pg]") {
  Planet p(*this);
  auto original = addSlice(*p.pi, "princeton_upd");
  REQUIRE_OK(members(*p.pi, "princeton_upd", {"user@princeton.edu"}));

  pb::UpdateSliceRequest req;
  req.set_name("princeton_upd");
  req.set_description("new words");
  req.set_url("http://new.example.edu/");
  req.set_instantiation("delegated");
  req.set_max_nodes(50);
  auto [status, updated] = p.pi->call(&pb::Slice::Stub::UpdateSlice, req);
  REQUIRE_OK(status);
  CHECK(updated.description() == "new words");
  CHECK(updated.url() == "http://new.example.edu/");
  CHECK(updated.instantiation() == "delegated");
  CHECK(updated.max_nodes() == 50);
  CHECK(updated.expires_at() == original.expires_at());

  auto unchanged = [&] {
    auto s = getSlice(*p.pi, "princeton_upd");
    CHECK(s.description() == "new words");
    CHECK(s.max_nodes() == 50);
    CHECK(s.instantiation() == "delegated");
  };
  pb::UpdateSliceRequest raise;
  raise.set_name("princeton_upd");
  raise.set_description("sneaky");
  raise.set_max_nodes(51);
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::UpdateSlice, raise).first,
               StatusCode::PERMISSION_DENIED, "requires role admin");
  CHECK_STATUS(p.user->call(&pb::Slice::Stub::UpdateSlice, req).first,
               StatusCode::PERMISSION_DENIED, "UpdateSlice requires role pi at site princeton");
  CHECK_STATUS(p.mitpi->call(&pb::Slice::Stub::UpdateSlice, req).first,
               StatusCode::PERMISSION_DENIED, "");
  pb::UpdateSliceRequest bad;
  bad.set_name("princeton_upd");
  bad.set_description("x");
  bad.set_url("not a url");
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::UpdateSlice, bad).first, StatusCode::INVALID_ARGUMENT,
               "url");
  bad.clear_url();
  bad.set_instantiation("sometimes");
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::UpdateSlice, bad).first, StatusCode::INVALID_ARGUMENT,
               "instantiation");
  bad.clear_instantiation();
  bad.set_max_nodes(-3);
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::UpdateSlice, bad).first, StatusCode::INVALID_ARGUMENT,
               "max_nodes");
  pb::UpdateSliceRequest empty;
  empty.set_name("princeton_upd");
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::UpdateSlice, empty).first, StatusCode::INVALID_ARGUMENT,
               "nothing to update");
  unchanged();
  raise.clear_description();
  raise.set_max_nodes(500);
  std::tie(status, updated) = admin().call(&pb::Slice::Stub::UpdateSlice, raise);
  REQUIRE_OK(status);
  CHECK(updated.max_nodes() == 500);
  pb::UpdateSliceRequest missing;
  missing.set_name("princeton_nosuch");
  missing.set_description("x");
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::UpdateSlice, missing).first, StatusCode::NOT_FOUND,
               "princeton_nosuch");

  pb::DeleteSliceRequest del;
  del.set_name("princeton_upd");
  CHECK_STATUS(p.user->call(&pb::Slice::Stub::DeleteSlice, del).first,
               StatusCode::PERMISSION_DENIED, "DeleteSlice requires role pi");
  del.set_name("princeton_UPD");
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::DeleteSlice, del).first, StatusCode::INVALID_ARGUMENT,
               "");
  del.set_name("princeton_upd");
  REQUIRE_OK(p.pi->call(&pb::Slice::Stub::DeleteSlice, del).first);
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::DeleteSlice, del).first, StatusCode::NOT_FOUND, "");
  CHECK_STATUS(p.pi->call(&pb::Slice::Stub::UpdateSlice, req).first, StatusCode::NOT_FOUND, "");
  // The name is free again, with a new xid; the old slice stays in the history.
  auto reborn = addSlice(*p.pi, "princeton_upd");
  CHECK(reborn.xid() != original.xid());
  pb::GetSlicesRequest hist;
  hist.add_names("princeton_upd");
  hist.set_include_deleted(true);
  auto [hstatus, history] = p.user->call(&pb::Slice::Stub::GetSlices, hist);
  REQUIRE_OK(hstatus);
  REQUIRE(history.slices_size() == 2);
  CHECK(history.slices(0).xid() == original.xid());
  CHECK(history.slices(0).deleted_at() > 0);
  CHECK(history.slices(1).deleted_at() == 0);
}

TEST_CASE_METHOD(PlcFixture, "RenewSlice: limits for non-admins, description and URL first",
                 "[plc][pg]") {
  Planet p(*this);
  auto slice = addSlice(*p.pi, "princeton_renew", /*described=*/false);
  REQUIRE_OK(members(*p.pi, "princeton_renew", {"user@princeton.edu"}));
  auto expiry = [&] { return getSlice(*p.pi, "princeton_renew").expires_at(); };

  CHECK_STATUS(renew(*p.user, "princeton_renew", unixNow() + 3 * kWeek),
               StatusCode::FAILED_PRECONDITION,
               "set a description and URL first: plcctl slice update");
  CHECK_STATUS(renew(*p.pi, "princeton_renew", unixNow() + 3 * kWeek),
               StatusCode::FAILED_PRECONDITION, "description");
  CHECK(expiry() == slice.expires_at());

  pb::UpdateSliceRequest upd;
  upd.set_name("princeton_renew");
  upd.set_description("a CDN");
  upd.set_url("https://codeen.example.edu/");
  REQUIRE_OK(p.pi->call(&pb::Slice::Stub::UpdateSlice, upd).first);

  auto target = unixNow() + 8 * kWeek - 60;
  REQUIRE_OK(renew(*p.user, "princeton_renew", target));
  CHECK(expiry() == target);
  auto event = p.seed.sql(
      "SELECT role_used FROM events WHERE method = 'RenewSlice' AND result = 'OK'"
      " AND 'slice:princeton_renew' = ANY(objects)");
  REQUIRE(event.size() == 1);
  CHECK(event[0][0].as<std::string>() == "user");

  CHECK_STATUS(renew(*p.user, "princeton_renew", unixNow() + 8 * kWeek + 3600),
               StatusCode::INVALID_ARGUMENT, "latest allowed");
  CHECK_STATUS(renew(*p.pi, "princeton_renew", unixNow() + 9 * kWeek), StatusCode::INVALID_ARGUMENT,
               "latest allowed");
  CHECK_STATUS(renew(*p.pi, "princeton_renew", unixNow() - 10), StatusCode::INVALID_ARGUMENT,
               "not in the future");
  CHECK_STATUS(renew(admin(), "princeton_renew", 0), StatusCode::INVALID_ARGUMENT, "");
  CHECK_STATUS(renew(*p.other, "princeton_renew", unixNow() + kWeek), StatusCode::PERMISSION_DENIED,
               "membership of slice princeton_renew");
  CHECK_STATUS(renew(*p.mitpi, "princeton_renew", unixNow() + kWeek), StatusCode::PERMISSION_DENIED,
               "");
  CHECK_STATUS(renew(*p.pi, "princeton_nosuch", unixNow() + kWeek), StatusCode::NOT_FOUND, "");
  CHECK(expiry() == target);

  REQUIRE_OK(renew(*p.pi, "princeton_renew", unixNow() + kWeek));
  auto far = unixNow() + 52 * kWeek;
  REQUIRE_OK(renew(admin(), "princeton_renew", far));
  CHECK(expiry() == far);
}

TEST_CASE_METHOD(PlcFixture, "slice members: the PI adds and removes them, all or nothing",
                 "[plc][pg]") {
  Planet p(*this);
  addSlice(*p.pi, "princeton_team");
  auto member_list = [&] { return list(getSlice(*p.pi, "princeton_team").members()); };
  using V = std::vector<std::string>;

  pb::SliceMembersRequest req;
  req.set_name("princeton_team");
  req.add_emails("user@princeton.edu");
  req.add_emails("pi@mit.edu");
  auto [status, info] = p.pi->call(&pb::Slice::Stub::AddSliceMembers, req);
  REQUIRE_OK(status);
  CHECK(list(info.members()) == V{"pi@mit.edu", "user@princeton.edu"});
  // Again: nothing changes, nothing fails.
  REQUIRE_OK(members(*p.pi, "princeton_team", {"user@princeton.edu"}));
  CHECK(member_list() == V{"pi@mit.edu", "user@princeton.edu"});

  CHECK_STATUS(members(*p.pi, "princeton_team", {"other@princeton.edu", "ghost@princeton.edu"}),
               StatusCode::NOT_FOUND, "ghost@princeton.edu");
  CHECK_STATUS(members(*p.pi, "princeton_team", {"not an email"}), StatusCode::INVALID_ARGUMENT,
               "");
  CHECK_STATUS(members(*p.pi, "princeton_team", {}), StatusCode::INVALID_ARGUMENT, "email");
  CHECK_STATUS(members(*p.user, "princeton_team", {"other@princeton.edu"}),
               StatusCode::PERMISSION_DENIED, "AddSliceMembers requires role pi");
  CHECK_STATUS(members(*p.mitpi, "princeton_team", {"other@princeton.edu"}),
               StatusCode::PERMISSION_DENIED, "");
  CHECK_STATUS(members(*p.pi, "princeton_nosuch", {"other@princeton.edu"}), StatusCode::NOT_FOUND,
               "princeton_nosuch");
  CHECK(member_list() == V{"pi@mit.edu", "user@princeton.edu"});

  CHECK_STATUS(members(*p.pi, "princeton_team", {"pi@mit.edu", "ghost@princeton.edu"}, false),
               StatusCode::NOT_FOUND, "ghost");
  CHECK_STATUS(members(*p.user, "princeton_team", {"pi@mit.edu"}, false),
               StatusCode::PERMISSION_DENIED, "RemoveSliceMembers requires role pi");
  CHECK(member_list() == V{"pi@mit.edu", "user@princeton.edu"});
  REQUIRE_OK(members(*p.pi, "princeton_team", {"pi@mit.edu"}, false));
  CHECK(member_list() == V{"user@princeton.edu"});
  REQUIRE_OK(members(admin(), "princeton_team", {"user@princeton.edu"}, false));
  CHECK(member_list().empty());
}

TEST_CASE_METHOD(PlcFixture, "slice nodes: members add them within max_nodes and max_slivers",
                 "[plc][pg]") {
  Planet p(*this);  // princeton: max_slivers 5
  for (int i = 1; i <= 4; ++i) p.seed.node("n" + std::to_string(i) + ".mit.edu", "mit");
  addSlice(*p.pi, "princeton_a");
  addSlice(*p.pi, "princeton_b");
  REQUIRE_OK(members(*p.pi, "princeton_a", {"user@princeton.edu"}));
  auto node_list = [&](const std::string& s) { return list(getSlice(*p.pi, s).nodes()); };
  using V = std::vector<std::string>;

  // A member may add nodes to their slice (as on PlanetLab).
  REQUIRE_OK(sliceNodes(*p.user, "princeton_a", {"n1.mit.edu", "N2.mit.edu"}));
  CHECK(node_list("princeton_a") == V{"n1.mit.edu", "n2.mit.edu"});
  auto event = p.seed.sql(
      "SELECT role_used FROM events WHERE method = 'AddSliceNodes' AND result = 'OK'"
      " AND 'node:n1.mit.edu' = ANY(objects) AND 'slice:princeton_a' = ANY(objects)");
  REQUIRE(event.size() == 1);
  CHECK(event[0][0].as<std::string>() == "user");

  CHECK_STATUS(sliceNodes(*p.other, "princeton_a", {"n3.mit.edu"}), StatusCode::PERMISSION_DENIED,
               "membership of slice princeton_a");
  CHECK_STATUS(sliceNodes(*p.user, "princeton_b", {"n3.mit.edu"}), StatusCode::PERMISSION_DENIED,
               "");
  CHECK_STATUS(sliceNodes(*p.user, "princeton_a", {"n3.mit.edu", "ghost.mit.edu"}),
               StatusCode::NOT_FOUND, "ghost.mit.edu");
  CHECK_STATUS(sliceNodes(*p.user, "princeton_a", {"not a host"}), StatusCode::INVALID_ARGUMENT,
               "");
  CHECK_STATUS(sliceNodes(*p.user, "princeton_a", {}), StatusCode::INVALID_ARGUMENT, "hostname");
  CHECK(node_list("princeton_a") == V{"n1.mit.edu", "n2.mit.edu"});

  // max_nodes of the slice.
  pb::UpdateSliceRequest upd;
  upd.set_name("princeton_a");
  upd.set_max_nodes(3);
  REQUIRE_OK(p.pi->call(&pb::Slice::Stub::UpdateSlice, upd).first);
  CHECK_STATUS(sliceNodes(*p.user, "princeton_a", {"n3.mit.edu", "n4.mit.edu"}),
               StatusCode::RESOURCE_EXHAUSTED, "max_nodes is 3");
  CHECK(node_list("princeton_a") == V{"n1.mit.edu", "n2.mit.edu"});
  REQUIRE_OK(sliceNodes(*p.user, "princeton_a", {"n3.mit.edu"}));

  // max_slivers of the site, summed over its slices: 3 + 2 = 5 fits, 6 does not.
  REQUIRE_OK(sliceNodes(*p.pi, "princeton_b", {"n1.mit.edu", "n2.mit.edu"}));
  CHECK_STATUS(sliceNodes(*p.pi, "princeton_b", {"n3.mit.edu"}), StatusCode::RESOURCE_EXHAUSTED,
               "site princeton would have 6 slivers but its max_slivers is 5");
  CHECK_STATUS(sliceNodes(admin(), "princeton_b", {"n3.mit.edu"}), StatusCode::RESOURCE_EXHAUSTED,
               "max_slivers");
  CHECK(node_list("princeton_b") == V{"n1.mit.edu", "n2.mit.edu"});
  // Adding what is already there changes nothing and is not refused.
  REQUIRE_OK(sliceNodes(*p.pi, "princeton_b", {"n1.mit.edu"}));

  CHECK_STATUS(sliceNodes(*p.user, "princeton_a", {"n1.mit.edu", "ghost.mit.edu"}, false),
               StatusCode::NOT_FOUND, "ghost");
  CHECK(node_list("princeton_a") == V{"n1.mit.edu", "n2.mit.edu", "n3.mit.edu"});
  REQUIRE_OK(sliceNodes(*p.user, "princeton_a", {"n1.mit.edu", "n2.mit.edu"}, false));
  CHECK(node_list("princeton_a") == V{"n3.mit.edu"});
  // Freed slivers may be used again.
  REQUIRE_OK(sliceNodes(*p.pi, "princeton_b", {"n3.mit.edu"}));
}

TEST_CASE_METHOD(PlcFixture, "slice tags: roles, validation, scope and replacement", "[plc][pg]") {
  Planet p(*this);
  auto n1 = p.seed.node("n1.mit.edu", "mit");
  p.seed.nodeGroup("alpha", "deployment", "alpha");
  addSlice(*p.pi, "princeton_tags");
  REQUIRE_OK(members(*p.pi, "princeton_tags", {"user@princeton.edu"}));
  auto tags = [&] {
    pb::GetSliceTagsRequest req;
    req.set_slice("princeton_tags");
    auto [status, resp] = p.other->call(&pb::Slice::Stub::GetSliceTags, req);
    REQUIRE_OK(status);
    std::vector<std::string> out;
    for (const auto& t : resp.tags()) {
      out.push_back(t.tag() + "=" + t.value() + "@" + t.node() + "/" + t.nodegroup());
    }
    return out;
  };
  using V = std::vector<std::string>;

  auto [status, tag] = setSliceTag(*p.user, "princeton_tags", "initscript", "echo hi");
  REQUIRE_OK(status);
  CHECK(tag.slice() == "princeton_tags");
  CHECK(tag.tag() == "initscript");
  CHECK(tag.value() == "echo hi");
  CHECK(tag.slice_tag_id() > 0);
  CHECK_STATUS(setSliceTag(*p.user, "princeton_tags", "cpu_share", "64").first,
               StatusCode::PERMISSION_DENIED, "setting tag cpu_share requires role admin");
  CHECK_STATUS(setSliceTag(*p.user, "princeton_tags", "cpu_cap", "50").first,
               StatusCode::PERMISSION_DENIED, "setting tag cpu_cap requires role pi");
  REQUIRE_OK(setSliceTag(*p.pi, "princeton_tags", "cpu_cap", "50").first);
  CHECK_STATUS(setSliceTag(*p.pi, "princeton_tags", "cpu_share", "64").first,
               StatusCode::PERMISSION_DENIED, "setting tag cpu_share requires role admin");
  CHECK_STATUS(setSliceTag(*p.other, "princeton_tags", "initscript", "x").first,
               StatusCode::PERMISSION_DENIED, "membership of slice princeton_tags");
  CHECK_STATUS(setSliceTag(*p.mitpi, "princeton_tags", "initscript", "x").first,
               StatusCode::PERMISSION_DENIED, "");

  // Values are stored canonically.
  std::tie(status, tag) = setSliceTag(admin(), "princeton_tags", "mem_limit", "256M");
  REQUIRE_OK(status);
  CHECK(tag.value() == "268435456");
  // Setting the same (tag, scope) again replaces the value, keeping the id.
  auto [status2, tag2] = setSliceTag(admin(), "princeton_tags", "mem_limit", "512M");
  REQUIRE_OK(status2);
  CHECK(tag2.slice_tag_id() == tag.slice_tag_id());
  std::tie(status, tag) = setSliceTag(admin(), "princeton_tags", "mem_limit", "1G", "N1.mit.edu");
  REQUIRE_OK(status);
  CHECK(tag.node() == "n1.mit.edu");
  CHECK(tag.slice_tag_id() != tag2.slice_tag_id());
  std::tie(status, tag) = setSliceTag(admin(), "princeton_tags", "mem_limit", "768M", "", "alpha");
  REQUIRE_OK(status);
  CHECK(tag.nodegroup() == "alpha");
  auto group_tag_id = tag.slice_tag_id();

  auto before = tags();
  CHECK(before == V{"cpu_cap=50@/", "initscript=echo hi@/", "mem_limit=536870912@/",
                    "mem_limit=805306368@/alpha", "mem_limit=1073741824@n1.mit.edu/"});

  // Bad input changes nothing.
  CHECK_STATUS(setSliceTag(admin(), "princeton_tags", "nosuch", "1").first, StatusCode::NOT_FOUND,
               "nosuch");
  CHECK_STATUS(setSliceTag(admin(), "princeton_tags", "arch", "x86_64").first,
               StatusCode::INVALID_ARGUMENT, "not a slice tag");
  CHECK_STATUS(setSliceTag(admin(), "princeton_tags", "cpu_share", "lots").first,
               StatusCode::INVALID_ARGUMENT, "cpu_share");
  CHECK_STATUS(setSliceTag(admin(), "princeton_tags", "ports", "80,70000").first,
               StatusCode::INVALID_ARGUMENT, "ports");
  CHECK_STATUS(
      setSliceTag(admin(), "princeton_tags", "cpu_share", "64", "n1.mit.edu", "alpha").first,
      StatusCode::INVALID_ARGUMENT, "not both");
  CHECK_STATUS(setSliceTag(admin(), "princeton_tags", "cpu_share", "64", "ghost.mit.edu").first,
               StatusCode::NOT_FOUND, "ghost.mit.edu");
  CHECK_STATUS(setSliceTag(admin(), "princeton_tags", "cpu_share", "64", "", "beta").first,
               StatusCode::NOT_FOUND, "beta");
  CHECK_STATUS(setSliceTag(admin(), "princeton_nosuch", "cpu_share", "64").first,
               StatusCode::NOT_FOUND, "princeton_nosuch");
  CHECK_STATUS(setSliceTag(admin(), "princeton_tags", "", "64").first, StatusCode::INVALID_ARGUMENT,
               "tag");
  CHECK(tags() == before);

  pb::DeleteSliceTagRequest del;
  del.set_slice_tag_id(group_tag_id);
  CHECK_STATUS(p.user->call(&pb::Slice::Stub::DeleteSliceTag, del).first,
               StatusCode::PERMISSION_DENIED, "deleting tag mem_limit requires role admin");
  CHECK_STATUS(p.other->call(&pb::Slice::Stub::DeleteSliceTag, del).first,
               StatusCode::PERMISSION_DENIED, "");
  CHECK(tags() == before);
  REQUIRE_OK(admin().call(&pb::Slice::Stub::DeleteSliceTag, del).first);
  CHECK_STATUS(admin().call(&pb::Slice::Stub::DeleteSliceTag, del).first, StatusCode::NOT_FOUND,
               "");
  del.set_slice_tag_id(0);
  CHECK_STATUS(admin().call(&pb::Slice::Stub::DeleteSliceTag, del).first,
               StatusCode::INVALID_ARGUMENT, "");
  CHECK(tags() == V{"cpu_cap=50@/", "initscript=echo hi@/", "mem_limit=536870912@/",
                    "mem_limit=1073741824@n1.mit.edu/"});

  pb::GetSliceTagsRequest missing;
  missing.set_slice("princeton_nosuch");
  CHECK_STATUS(p.user->call(&pb::Slice::Stub::GetSliceTags, missing).first, StatusCode::NOT_FOUND,
               "");
  // Tags are for persons to read; nodes get theirs, resolved, through NodeSync.
  pb::GetSliceTagsRequest by_node;
  by_node.set_slice("princeton_tags");
  CHECK_STATUS(p.seed.nodeClient(n1).call(&pb::Slice::Stub::GetSliceTags, by_node).first,
               StatusCode::PERMISSION_DENIED, "person");
}

TEST_CASE_METHOD(PlcFixture, "tickets: signed, with member keys and effective tags per node",
                 "[plc][pg]") {
  Planet p(*this);
  for (auto h : {"n1.mit.edu", "n2.mit.edu", "n3.mit.edu"}) p.seed.node(h, "mit");
  auto n4 = p.seed.node("n4.mit.edu", "mit");
  p.seed.nodeTag("n1.mit.edu", "deployment", "alpha");
  p.seed.nodeTag("n1.mit.edu", "arch", "x86_64");
  p.seed.nodeTag("n2.mit.edu", "deployment", "alpha");
  p.seed.nodeGroup("alpha", "deployment", "alpha");
  p.seed.nodeGroup("x86", "arch", "x86_64");
  auto user_key = p.seed.key("user@princeton.edu");
  auto user_key2 = p.seed.key("user@princeton.edu");
  auto pi_key = p.seed.key("pi@princeton.edu");
  p.seed.key("other@princeton.edu");

  auto slice = addSlice(*p.pi, "princeton_tix");
  REQUIRE_OK(members(*p.pi, "princeton_tix", {"user@princeton.edu", "pi@princeton.edu"}));
  REQUIRE_OK(sliceNodes(*p.pi, "princeton_tix", {"n1.mit.edu", "n2.mit.edu", "n3.mit.edu"}));
  // Precedence: default < slice < node group < node.
  REQUIRE_OK(setSliceTag(admin(), "princeton_tix", "mem_limit", "256M").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_tix", "mem_limit", "512M", "", "alpha").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_tix", "mem_limit", "1G", "n1.mit.edu").first);
  // Two matching groups: the later tag wins.
  REQUIRE_OK(setSliceTag(*p.pi, "princeton_tix", "cpu_cap", "10", "", "alpha").first);
  REQUIRE_OK(setSliceTag(*p.pi, "princeton_tix", "cpu_cap", "20", "", "x86").first);
  REQUIRE_OK(setSliceTag(*p.user, "princeton_tix", "vref", "fedora39", "n3.mit.edu").first);
  // Tags of another slice do not leak in.
  addSlice(*p.pi, "princeton_noise");
  REQUIRE_OK(setSliceTag(admin(), "princeton_noise", "mem_limit", "2G", "n1.mit.edu").first);

  plng::ticket::TrustedKeys trusted(p.seed.plcKeys());
  auto issued_from = unixNow();
  auto [status, signed_ticket] = ticket(*p.user, "princeton_tix");
  REQUIRE_OK(status);
  auto body = plng::ticket::verifyTicket(signed_ticket, trusted, unixNow());
  CHECK(body.slice_name() == "princeton_tix");
  CHECK(body.xid() == slice.xid());
  CHECK(body.instantiation() == "plc-instantiated");
  CHECK(body.ticket_id().size() == 32);
  CHECK(body.issuer_key_id() == signed_ticket.key_id());
  CHECK(body.issued_at() >= issued_from);
  CHECK(body.issued_at() <= unixNow());
  CHECK(body.not_before() == body.issued_at() - 300);
  CHECK(body.not_after() == body.issued_at() + kWeek);  // the slice lives two weeks

  std::multiset<std::string> keys;
  for (const auto& k : body.member_keys()) keys.insert(k.person_email() + " " + k.key());
  CHECK(keys == std::multiset<std::string>{"pi@princeton.edu " + pi_key,
                                           "user@princeton.edu " + user_key,
                                           "user@princeton.edu " + user_key2});

  std::map<std::string, std::map<std::string, std::string>> grants;
  for (const auto& n : body.nodes()) grants[n.hostname()] = {n.tags().begin(), n.tags().end()};
  REQUIRE(grants.size() == 3);
  CHECK(grants["n1.mit.edu"]["mem_limit"] == "1073741824");
  CHECK(grants["n2.mit.edu"]["mem_limit"] == "536870912");
  CHECK(grants["n3.mit.edu"]["mem_limit"] == "268435456");
  CHECK(grants["n1.mit.edu"]["cpu_cap"] == "20");
  CHECK(grants["n2.mit.edu"]["cpu_cap"] == "10");
  CHECK(grants["n3.mit.edu"]["cpu_cap"] == "0");  // the default
  CHECK(grants["n1.mit.edu"]["vref"] == "debian12");
  CHECK(grants["n3.mit.edu"]["vref"] == "fedora39");
  CHECK(grants["n2.mit.edu"]["cpu_share"] == "32");
  CHECK(grants["n2.mit.edu"]["delegations"] == "false");
  CHECK(grants["n2.mit.edu"].count("ports") == 0);  // no default: absent
  CHECK(grants["n2.mit.edu"].count("arch") == 0);   // a node tag, not a slice tag
  CHECK(grants["n2.mit.edu"].count("initscript") == 0);

  // A second ticket has its own id; PIs and admins get tickets too.
  auto [status_b, second] = ticket(*p.pi, "princeton_tix");
  REQUIRE_OK(status_b);
  CHECK(plng::ticket::verifyTicket(second, trusted, unixNow()).ticket_id() != body.ticket_id());
  REQUIRE_OK(ticket(admin(), "princeton_tix").first);

  // Named nodes only; each must be in the slice.
  std::tie(status, signed_ticket) = ticket(*p.user, "princeton_tix", {"N2.mit.edu"});
  REQUIRE_OK(status);
  body = plng::ticket::verifyTicket(signed_ticket, trusted, unixNow());
  REQUIRE(body.nodes_size() == 1);
  CHECK(body.nodes(0).hostname() == "n2.mit.edu");
  CHECK_STATUS(ticket(*p.user, "princeton_tix", {"n1.mit.edu", "n4.mit.edu"}).first,
               StatusCode::FAILED_PRECONDITION,
               "node n4.mit.edu is not in slice princeton_tix; add it first");
  CHECK_STATUS(ticket(*p.user, "princeton_tix", {"ghost.mit.edu"}).first,
               StatusCode::FAILED_PRECONDITION, "not in slice");
  CHECK_STATUS(ticket(*p.user, "princeton_tix", {"bad host"}).first, StatusCode::INVALID_ARGUMENT,
               "");

  // Who may ask.
  CHECK_STATUS(ticket(*p.other, "princeton_tix").first, StatusCode::PERMISSION_DENIED,
               "GetSliceTicket requires role pi at site princeton or membership");
  CHECK_STATUS(ticket(*p.mitpi, "princeton_tix").first, StatusCode::PERMISSION_DENIED, "");
  CHECK_STATUS(ticket(p.seed.nodeClient(n4), "princeton_tix").first, StatusCode::PERMISSION_DENIED,
               "must be called by a person");
  CHECK_STATUS(ticket(*p.user, "princeton_nosuch").first, StatusCode::NOT_FOUND, "");
  CHECK_STATUS(ticket(anonymous(), "princeton_tix").first, StatusCode::UNAUTHENTICATED, "");

  // A change through another plcd reaches this plcd's tickets with its change
  // notification, at the latest after SliceGrantCache::kTrustFor.
  {
    auto replica = startReplica();
    PlcClient admin_b(replica.channel(), admin().token());
    auto keys_in_ticket = [&] {
      auto [s, t] = ticket(*p.user, "princeton_tix");
      REQUIRE_OK(s);
      return plng::ticket::verifyTicket(t, trusted, unixNow()).member_keys_size();
    };
    REQUIRE(keys_in_ticket() == 3);
    pb::SliceMembersRequest rm;
    rm.set_name("princeton_tix");
    rm.add_emails("pi@princeton.edu");
    REQUIRE_OK(admin_b.call(&pb::Slice::Stub::RemoveSliceMembers, rm).first);
    auto changed_at = std::chrono::steady_clock::now();
    while (keys_in_ticket() != 2 &&
           std::chrono::steady_clock::now() - changed_at < std::chrono::seconds(3)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(keys_in_ticket() == 2);
    CHECK(std::chrono::steady_clock::now() - changed_at <
          plng::plc::SliceGrantCache::kTrustFor + std::chrono::milliseconds(500));
    // Through this plcd, a change shows in the very next ticket.
    REQUIRE_OK(members(admin(), "princeton_tix", {"pi@princeton.edu"}));
    CHECK(keys_in_ticket() == 3);
  }

  // A slice about to expire: the ticket ends with it. An expired one gets none.
  auto soon = unixNow() + kDay;
  REQUIRE_OK(renew(*p.user, "princeton_tix", soon));
  std::tie(status, signed_ticket) = ticket(*p.user, "princeton_tix");
  REQUIRE_OK(status);
  CHECK(plng::ticket::verifyTicket(signed_ticket, trusted, unixNow()).not_after() == soon);
  // A change made elsewhere (here straight in the database, announced as every
  // write is) reaches this plcd's tickets with its notification, at the latest
  // after SliceGrantCache::kTrustFor.
  p.seed.sql(
      "UPDATE slices SET expires_at = now() - interval '1 hour'"
      " WHERE name = 'princeton_tix'");
  p.seed.bump();
  auto changed_at = std::chrono::steady_clock::now();
  while (ticket(*p.user, "princeton_tix").first.ok() &&
         std::chrono::steady_clock::now() - changed_at < std::chrono::seconds(3)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(std::chrono::steady_clock::now() - changed_at <
        plng::plc::SliceGrantCache::kTrustFor + std::chrono::milliseconds(500));
  CHECK_STATUS(ticket(*p.user, "princeton_tix").first, StatusCode::FAILED_PRECONDITION,
               "slice princeton_tix expired at");

  // Tickets are reads: no audit event per ticket.
  CHECK(count(p.seed, "SELECT count(*) FROM events WHERE method = 'GetSliceTicket'") == 0);
}

// Not run by default: ./plc_slice_test "[bench]". Tickets per second and latency
// percentiles with concurrent brokers (the load generator shares the machine).
TEST_CASE_METHOD(PlcFixture, "GetSliceTicket throughput", "[.][bench][plc][pg]") {
  Planet p(*this);
  p.seed.sql("UPDATE sites SET max_slivers = 1000 WHERE login_base = 'princeton'");
  for (int i = 1; i <= 10; ++i) p.seed.node("n" + std::to_string(i) + ".mit.edu", "mit");
  p.seed.nodeTag("n1.mit.edu", "deployment", "alpha");
  p.seed.nodeGroup("alpha", "deployment", "alpha");
  for (auto e : {"user@princeton.edu", "pi@princeton.edu", "other@princeton.edu"}) {
    p.seed.key(e);
    p.seed.key(e);
  }
  addSlice(*p.pi, "princeton_bench");
  REQUIRE_OK(members(*p.pi, "princeton_bench",
                     {"user@princeton.edu", "pi@princeton.edu", "other@princeton.edu"}));
  std::vector<std::string> hosts;
  for (int i = 1; i <= 10; ++i) hosts.push_back("n" + std::to_string(i) + ".mit.edu");
  REQUIRE_OK(sliceNodes(*p.pi, "princeton_bench", hosts));
  REQUIRE_OK(setSliceTag(admin(), "princeton_bench", "mem_limit", "256M").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_bench", "mem_limit", "512M", "", "alpha").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_bench", "cpu_share", "64", "n2.mit.edu").first);

  // CPU seconds used so far by plcd and by the PostgreSQL backends serving this
  // fixture's database: per-ticket cost, which a loaded machine does not distort.
  auto server_cpu = [&] {
    auto ticks = [](pid_t pid) -> double {
      const auto stat = plng::base::readProcStat(pid);
      if (!stat) return 0;
      return static_cast<double>(stat->utime + stat->stime) /
             static_cast<double>(::sysconf(_SC_CLK_TCK));
    };
    double plcd_s = ticks(plcd().pid());
    double pg_s = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      std::ifstream cmd(entry.path() / "cmdline");
      std::string line;
      std::getline(cmd, line, '\0');
      if (line.find("postgres: ") == 0 &&
          line.find(" " + databaseName() + " ") != std::string::npos) {
        pg_s += ticks(static_cast<pid_t>(std::stol(entry.path().filename().string())));
      }
    }
    return std::pair(plcd_s, pg_s);
  };

  const int threads = 16;
  const auto duration = std::chrono::seconds(5);
  std::vector<std::vector<double>> latencies(threads);
  std::atomic<int> failures{0};
  std::mutex first_failure_mutex;
  std::string first_failure;
  std::vector<std::thread> workers;
  auto cpu_before = server_cpu();
  auto deadline = std::chrono::steady_clock::now() + duration;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      // Each broker on its own connection, as separate brokers would be.
      PlcClient c(plcd().newChannel(), p.user->token());
      pb::GetSliceTicketRequest req;
      req.set_slice("princeton_bench");
      while (std::chrono::steady_clock::now() < deadline) {
        pb::SignedTicket out;
        auto started = std::chrono::steady_clock::now();
        auto ctx = c.context();
        auto status = c.slice().GetSliceTicket(ctx.get(), req, &out);
        latencies[static_cast<std::size_t>(t)].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                .count());
        if (!status.ok() && failures++ == 0) {
          std::lock_guard lock(first_failure_mutex);
          first_failure = describeStatus(status);
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  auto cpu_after = server_cpu();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double q) { return all[static_cast<std::size_t>(q * (all.size() - 1))]; };
  std::cout << "GetSliceTicket (10 nodes, 6 keys): " << all.size() / duration.count()
            << " tickets/s, p50 " << pct(0.5) << " ms, p99 " << pct(0.99) << " ms, failures "
            << failures << "\n"
            << "  server CPU per ticket: plcd "
            << (cpu_after.first - cpu_before.first) * 1e6 / all.size() << " us, PostgreSQL "
            << (cpu_after.second - cpu_before.second) * 1e6 / all.size() << " us\n";
  INFO(first_failure);
  CHECK(failures == 0);
}
