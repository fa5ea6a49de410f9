// The `ports` slice tag at PLC, against a real PostgreSQL and plcd: values are
// validated and stored canonically, and no change may leave two slices
// reserving one port on one node — whichever way the change reaches that node
// (slice, node group or node scoped tags, adding a slice to nodes, a node
// joining or leaving a node group, a node group deleted, a narrower tag
// deleted). A refused change leaves everything as it was and is audited.
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <thread>

#include "plc/db.h"
#include "tests/support/plc_seed.h"

using namespace plng::test;
using grpc::StatusCode;

namespace {

grpc::Status deleteTag(const PlcClient& c, std::int64_t slice_tag_id) {
  pb::DeleteSliceTagRequest req;
  req.set_slice_tag_id(slice_tag_id);
  return c.call(&pb::Slice::Stub::DeleteSliceTag, req).first;
}

grpc::Status setNodeTag(const PlcClient& c, const std::string& hostname, const std::string& tag,
                        const std::string& value) {
  pb::SetNodeTagRequest req;
  req.set_hostname(hostname);
  req.set_tag(tag);
  req.set_value(value);
  return c.call(&pb::Admin::Stub::SetNodeTag, req).first;
}

// Two princeton slices and one of mit; nodes n1, n2 (mit); group "alpha" holds
// the nodes whose deployment is alpha, n1 among them.
struct Planet {
  explicit Planet(PlcFixture& f) : fix(f), seed(f) {
    seed.site("princeton", /*max_slices=*/10, /*max_slivers=*/100);
    seed.site("mit", /*max_slices=*/10, /*max_slivers=*/100);
    pi = std::make_unique<PlcClient>(seed.person("pi@princeton.edu", "princeton", {"pi"}));
    seed.node("n1.mit.edu", "mit");
    seed.node("n2.mit.edu", "mit");
    seed.nodeTag("n1.mit.edu", "deployment", "alpha");
    seed.nodeGroup("alpha", "deployment", "alpha");
    seed.nodeGroup("beta", "deployment", "beta");
    for (const char* name : {"princeton_a", "princeton_b", "princeton_c"}) {
      pb::AddSliceRequest req;
      req.set_name(name);
      req.set_description("ports test");
      req.set_url("https://princeton.example.edu/");
      REQUIRE_OK(pi->call(&pb::Slice::Stub::AddSlice, req).first);
    }
  }
  // Every (slice, node) binding and every slice tag and node tag: what a refused
  // change must leave as it was.
  std::string state() {
    std::string out;
    for (const auto& r :
         seed.sql("SELECT 'bind ' || sl.name || ' ' || n.hostname FROM slice_nodes"
                  " JOIN slices sl USING (slice_id) JOIN nodes n USING (node_id)"
                  " UNION ALL SELECT 'tag ' || st.slice_tag_id || ' ' || st.value"
                  " FROM slice_tags st"
                  " UNION ALL SELECT 'node ' || node_id || ' ' || tag_type_id || ' ' || value"
                  " FROM node_tags"
                  " UNION ALL SELECT 'group ' || name FROM nodegroups ORDER BY 1")) {
      out += r[0].as<std::string>() + "\n";
    }
    return out;
  }
  // The result of the last call of `method`, as audited.
  std::string lastResult(const std::string& method) {
    auto rows = seed.sql(
        "SELECT result, message FROM events WHERE method = $1 ORDER BY event_id DESC LIMIT 1",
        method);
    REQUIRE(rows.size() == 1);
    return rows[0][0].as<std::string>() + ": " + rows[0][1].as<std::string>();
  }
  PlcFixture& fix;
  Seeder seed;
  std::unique_ptr<PlcClient> pi;
};

}  // namespace

TEST_CASE_METHOD(PlcFixture, "ports: validated, stored canonically; net_max_ports defaults to 2000",
                 "[plc][pg]") {
  Planet p(*this);
  auto [status, tag] = setSliceTag(admin(), "princeton_a", "ports", "udp:53, tcp:81,TCP:80");
  REQUIRE_OK(status);
  CHECK(tag.value() == "tcp:80-81,udp:53");
  CHECK(p.seed.sql("SELECT value FROM slice_tags WHERE slice_tag_id = $1", tag.slice_tag_id())[0][0]
            .as<std::string>() == "tcp:80-81,udp:53");

  const auto before = p.state();
  CHECK_STATUS(setSliceTag(admin(), "princeton_a", "ports", "80,443").first,
               StatusCode::INVALID_ARGUMENT, "tag ports: item 1 \"80\": expected <tcp|udp>:");
  CHECK_STATUS(setSliceTag(admin(), "princeton_a", "ports", "tcp:80,udp:0").first,
               StatusCode::INVALID_ARGUMENT, "item 2 \"udp:0\": port 0 is out of range");
  CHECK_STATUS(setSliceTag(admin(), "princeton_a", "ports", "tcp:80,,udp:53").first,
               StatusCode::INVALID_ARGUMENT, "item 2 is empty");
  // Reserving ports is the admins' to grant, as on PlanetLab.
  CHECK_STATUS(setSliceTag(*p.pi, "princeton_a", "ports", "tcp:8080").first,
               StatusCode::PERMISSION_DENIED, "setting tag ports requires role admin");
  CHECK(p.state() == before);

  pb::GetTagTypesRequest types;
  types.add_names("net_max_ports");
  types.add_names("ports");
  auto [types_status, resp] = admin().call(&pb::Admin::Stub::GetTagTypes, types);
  REQUIRE_OK(types_status);
  std::map<std::string, pb::TagType> by_name;
  for (const auto& t : resp.tag_types()) by_name[t.name()] = t;
  REQUIRE(by_name.count("net_max_ports") == 1);
  CHECK(by_name["net_max_ports"].default_value() == "2000");
  CHECK(by_name["net_max_ports"].value_kind() == "int");
  CHECK(by_name["ports"].description().find("tcp:80") != std::string::npos);
  CHECK(setSliceTag(admin(), "princeton_a", "net_max_ports", "500").second.value() == "500");

  // A default would reserve the same ports for every slice: refused.
  pb::UpdateTagTypeRequest update;
  update.set_name("ports");
  update.set_default_value("tcp:80");
  CHECK_STATUS(admin().call(&pb::Admin::Stub::UpdateTagType, update).first,
               StatusCode::INVALID_ARGUMENT, "tag ports takes no default");
  update.set_default_value("");
  REQUIRE_OK(admin().call(&pb::Admin::Stub::UpdateTagType, update).first);
}

TEST_CASE_METHOD(PlcFixture, "ports: a slice-wide reservation may not collide on a shared node",
                 "[plc][pg]") {
  Planet p(*this);
  REQUIRE_OK(sliceNodes(admin(), "princeton_a", {"n1.mit.edu"}));
  REQUIRE_OK(sliceNodes(admin(), "princeton_b", {"n1.mit.edu", "n2.mit.edu"}));
  REQUIRE_OK(sliceNodes(admin(), "princeton_c", {"n2.mit.edu"}));
  REQUIRE_OK(setSliceTag(admin(), "princeton_a", "ports", "tcp:80,udp:53").first);

  const auto before = p.state();
  CHECK_STATUS(setSliceTag(admin(), "princeton_b", "ports", "tcp:6000,tcp:79-81").first,
               StatusCode::FAILED_PRECONDITION,
               "slices princeton_a and princeton_b would both reserve tcp:80 on node n1.mit.edu");
  CHECK(p.state() == before);
  CHECK(p.lastResult("SetSliceTag").rfind("FAILED_PRECONDITION: slices princeton_a and", 0) == 0);

  // Another protocol, or a port next to it, is no collision.
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "udp:80,tcp:81,tcp:79,udp:54").first);
  CHECK(p.lastResult("SetSliceTag") == "OK: ");
  // Nor is the same port on a node the two do not share: c is on n2 only.
  REQUIRE_OK(setSliceTag(admin(), "princeton_c", "ports", "tcp:80").first);
  // Setting a slice's own value again, changed, is checked against the others.
  CHECK_STATUS(setSliceTag(admin(), "princeton_c", "ports", "tcp:80,udp:80").first,
               StatusCode::FAILED_PRECONDITION,
               "slices princeton_b and princeton_c would both reserve udp:80 on node n2.mit.edu");
  CHECK_STATUS(setSliceTag(admin(), "princeton_c", "ports", "tcp:80-90").first,
               StatusCode::FAILED_PRECONDITION, "would both reserve tcp:81 on node n2.mit.edu");
}

TEST_CASE_METHOD(PlcFixture, "ports: node and node group scoped reservations", "[plc][pg]") {
  Planet p(*this);
  REQUIRE_OK(sliceNodes(admin(), "princeton_a", {"n1.mit.edu", "n2.mit.edu"}));
  REQUIRE_OK(sliceNodes(admin(), "princeton_b", {"n1.mit.edu", "n2.mit.edu"}));
  REQUIRE_OK(setSliceTag(admin(), "princeton_a", "ports", "tcp:80", "n1.mit.edu").first);

  auto before = p.state();
  CHECK_STATUS(setSliceTag(admin(), "princeton_b", "ports", "tcp:80", "n1.mit.edu").first,
               StatusCode::FAILED_PRECONDITION,
               "slices princeton_a and princeton_b would both reserve tcp:80 on node n1.mit.edu");
  // Through node group alpha, which holds n1.
  CHECK_STATUS(setSliceTag(admin(), "princeton_b", "ports", "tcp:80", "", "alpha").first,
               StatusCode::FAILED_PRECONDITION, "would both reserve tcp:80 on node n1.mit.edu");
  // Slice-wide, it reaches n1 too.
  CHECK_STATUS(setSliceTag(admin(), "princeton_b", "ports", "tcp:80").first,
               StatusCode::FAILED_PRECONDITION, "on node n1.mit.edu");
  CHECK(p.state() == before);

  // On n2, where a reserves nothing, b may; and a node value overrides b's wider
  // one on n1 (node > node group > slice), so b may reserve tcp:80 elsewhere.
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "tcp:80", "n2.mit.edu").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "udp:5000", "n1.mit.edu").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "tcp:80").first);
  // ... and then a may not take tcp:80 slice-wide: b holds it on n2.
  CHECK_STATUS(setSliceTag(admin(), "princeton_a", "ports", "tcp:80").first,
               StatusCode::FAILED_PRECONDITION,
               "slices princeton_a and princeton_b would both reserve tcp:80 on node n2.mit.edu");
}

TEST_CASE_METHOD(PlcFixture, "ports: adding a slice to a node checks its reservation there",
                 "[plc][pg]") {
  Planet p(*this);
  REQUIRE_OK(sliceNodes(admin(), "princeton_a", {"n1.mit.edu"}));
  REQUIRE_OK(setSliceTag(admin(), "princeton_a", "ports", "tcp:6000-6010").first);
  // b reserves an overlapping range while on no node: nothing to collide with yet.
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "tcp:6010-6020").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_c", "ports", "udp:6000-6010").first);

  auto before = p.state();
  CHECK_STATUS(sliceNodes(*p.pi, "princeton_b", {"n2.mit.edu", "n1.mit.edu"}),
               StatusCode::FAILED_PRECONDITION,
               "slices princeton_a and princeton_b would both reserve tcp:6010 on node n1.mit.edu");
  CHECK(p.state() == before);  // n2 was not added either
  CHECK(p.lastResult("AddSliceNodes").rfind("FAILED_PRECONDITION", 0) == 0);
  REQUIRE_OK(sliceNodes(*p.pi, "princeton_b", {"n2.mit.edu"}));
  REQUIRE_OK(sliceNodes(*p.pi, "princeton_c", {"n1.mit.edu", "n2.mit.edu"}));  // udp: no collision
}

TEST_CASE_METHOD(PlcFixture, "ports: node group membership changing through node tags",
                 "[plc][pg]") {
  Planet p(*this);
  REQUIRE_OK(sliceNodes(admin(), "princeton_a", {"n1.mit.edu", "n2.mit.edu"}));
  REQUIRE_OK(sliceNodes(admin(), "princeton_b", {"n1.mit.edu", "n2.mit.edu"}));
  REQUIRE_OK(setSliceTag(admin(), "princeton_a", "ports", "tcp:443").first);
  // b reserves tcp:443 on beta's nodes: none yet.
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "tcp:443", "", "beta").first);

  // n1 joining beta would make b's reservation apply there.
  auto before = p.state();
  CHECK_STATUS(setNodeTag(admin(), "n1.mit.edu", "deployment", "beta"),
               StatusCode::FAILED_PRECONDITION,
               "slices princeton_a and princeton_b would both reserve tcp:443 on node n1.mit.edu");
  CHECK_STATUS(setNodeTag(admin(), "n2.mit.edu", "deployment", "beta"),
               StatusCode::FAILED_PRECONDITION, "on node n2.mit.edu");
  CHECK(p.state() == before);
  CHECK(p.lastResult("SetNodeTag").rfind("FAILED_PRECONDITION", 0) == 0);
  // Other node tags change nothing here.
  REQUIRE_OK(setNodeTag(admin(), "n2.mit.edu", "arch", "x86_64"));

  // A node leaving a group uncovers the slice-wide value the group's value hid.
  // b: nothing on alpha's nodes (n1), udp:1 elsewhere (n2). a: udp:1 and tcp:443
  // on n1, tcp:443 only on n2.
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "", "", "beta").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "", "", "alpha").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_a", "ports", "tcp:443", "n2.mit.edu").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_a", "ports", "udp:1,tcp:443").first);
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "udp:1").first);
  before = p.state();
  pb::DeleteNodeTagRequest untag;
  untag.set_hostname("n1.mit.edu");
  untag.set_tag("deployment");
  CHECK_STATUS(admin().call(&pb::Admin::Stub::DeleteNodeTag, untag).first,
               StatusCode::FAILED_PRECONDITION,
               "slices princeton_a and princeton_b would both reserve udp:1 on node n1.mit.edu");
  pb::DeleteNodeGroupRequest ungroup;
  ungroup.set_name("alpha");
  CHECK_STATUS(admin().call(&pb::Admin::Stub::DeleteNodeGroup, ungroup).first,
               StatusCode::FAILED_PRECONDITION, "would both reserve udp:1 on node n1.mit.edu");
  CHECK(p.state() == before);
  CHECK(p.lastResult("DeleteNodeGroup").rfind("FAILED_PRECONDITION", 0) == 0);
  // A group no node belongs to goes freely.
  ungroup.set_name("beta");
  REQUIRE_OK(admin().call(&pb::Admin::Stub::DeleteNodeGroup, ungroup).first);
}

TEST_CASE_METHOD(PlcFixture, "ports: deleting a narrower value uncovers the wider one",
                 "[plc][pg]") {
  Planet p(*this);
  REQUIRE_OK(sliceNodes(admin(), "princeton_a", {"n1.mit.edu"}));
  REQUIRE_OK(sliceNodes(admin(), "princeton_b", {"n1.mit.edu", "n2.mit.edu"}));
  REQUIRE_OK(setSliceTag(admin(), "princeton_a", "ports", "tcp:22022").first);
  // b: nothing on n1, tcp:22022 elsewhere.
  auto [status, narrow] = setSliceTag(admin(), "princeton_b", "ports", "", "n1.mit.edu");
  REQUIRE_OK(status);
  REQUIRE_OK(setSliceTag(admin(), "princeton_b", "ports", "tcp:22022").first);

  const auto before = p.state();
  CHECK_STATUS(deleteTag(admin(), narrow.slice_tag_id()), StatusCode::FAILED_PRECONDITION,
               "slices princeton_a and princeton_b would both reserve tcp:22022 on node "
               "n1.mit.edu");
  CHECK(p.state() == before);
  CHECK(p.lastResult("DeleteSliceTag").rfind("FAILED_PRECONDITION", 0) == 0);
  // Once a gives the port up, the narrower value may go.
  REQUIRE_OK(setSliceTag(admin(), "princeton_a", "ports", "tcp:22023").first);
  REQUIRE_OK(deleteTag(admin(), narrow.slice_tag_id()));
}

TEST_CASE_METHOD(PlcFixture, "ports: values of the old grammar become both protocols",
                 "[plc][pg]") {
  Planet p(*this);
  REQUIRE_OK(sliceNodes(admin(), "princeton_a", {"n1.mit.edu"}));
  REQUIRE_OK(sliceNodes(admin(), "princeton_b", {"n1.mit.edu"}));
  // As a database older than migration 3 held them.
  p.seed.sql(
      "INSERT INTO slice_tags (slice_id, tag_type_id, value)"
      " SELECT sl.slice_id, tt.tag_type_id, '80,8000-8100' FROM slices sl, tag_types tt"
      " WHERE sl.name = 'princeton_a' AND tt.name = 'ports'");
  p.seed.sql(
      "INSERT INTO slice_tags (slice_id, tag_type_id, value)"
      " SELECT sl.slice_id, tt.tag_type_id, '80' FROM slices sl, tag_types tt"
      " WHERE sl.name = 'princeton_b' AND tt.name = 'ports'");
  const auto& migration = plng::plc::migrations().at(2);
  REQUIRE(migration.version == 3);
  {
    // It may run again: nothing else changes.
    pqxx::connection conn(connectionString());
    pqxx::work tx(conn);
    tx.exec(migration.sql);
    tx.commit();
  }
  auto value = [&](const std::string& slice) {
    return p.seed
        .sql(
            "SELECT st.value FROM slice_tags st JOIN slices sl USING (slice_id)"
            " WHERE sl.name = $1",
            slice)[0][0]
        .as<std::string>();
  };
  CHECK(value("princeton_a") == "tcp:80,tcp:8000-8100,udp:80,udp:8000-8100");
  CHECK(value("princeton_b") == "tcp:80,udp:80");
  CHECK(p.seed.sql("SELECT count(*) FROM tag_types WHERE name = 'net_max_ports'")[0][0].as<int>() ==
        1);

  // The two collided before the rule: changes that leave that as it was pass,
  // a new collision does not.
  REQUIRE_OK(setNodeTag(admin(), "n1.mit.edu", "arch", "x86_64"));
  REQUIRE_OK(sliceNodes(admin(), "princeton_b", {"n2.mit.edu"}));
  REQUIRE_OK(setSliceTag(admin(), "princeton_c", "ports", "udp:8050").first);
  CHECK_STATUS(sliceNodes(admin(), "princeton_c", {"n1.mit.edu"}), StatusCode::FAILED_PRECONDITION,
               "slices princeton_a and princeton_c would both reserve udp:8050 on node n1.mit.edu");
}

TEST_CASE_METHOD(PlcFixture, "ports: two colliding reservations made at once never both pass",
                 "[plc][pg]") {
  Planet p(*this);
  REQUIRE_OK(sliceNodes(admin(), "princeton_a", {"n1.mit.edu"}));
  REQUIRE_OK(sliceNodes(admin(), "princeton_b", {"n1.mit.edu"}));
  // Each round, a and b ask for the same new port at the same moment, through
  // plcd's thread pool and two database connections: one may win, never both.
  for (int round = 0; round < 20; ++round) {
    const std::string port = "tcp:" + std::to_string(10000 + round);
    std::atomic<int> ready{0};
    grpc::Status results[2];
    auto reserve = [&](int i, const std::string& slice) {
      ++ready;
      while (ready.load() < 2) std::this_thread::yield();
      results[i] = setSliceTag(admin(), slice, "ports", port).first;
    };
    std::thread a(reserve, 0, "princeton_a");
    std::thread b(reserve, 1, "princeton_b");
    a.join();
    b.join();
    INFO("round " << round << ": " << results[0].error_message() << " / "
                  << results[1].error_message());
    CHECK_FALSE((results[0].ok() && results[1].ok()));
    for (const auto& r : results) {
      if (!r.ok()) CHECK(r.error_code() == StatusCode::FAILED_PRECONDITION);
    }
    // Free the port for the next round, whoever holds it.
    for (const char* slice : {"princeton_a", "princeton_b"}) {
      REQUIRE_OK(setSliceTag(admin(), slice, "ports", "").first);
    }
  }
}
