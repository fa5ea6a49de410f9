// Ticket redemption through a real gRPC server in process (NodeManager on a
// loopback port) with a test PLC key: valid tickets are accepted once; forged,
// tampered, expired, not-yet-valid, wrong-node and malformed tickets are refused
// with distinct codes and nothing is recorded.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <ctime>

#include "base/file.h"
#include "sliverd/core/reconciler.h"
#include "sliverd/nodemanager/node_manager_service.h"
#include "tests/sliverd/fake_runtime.h"
#include "tests/sliverd/sliverd_test_util.h"

using namespace plng::sliverd;
namespace pb = planetlab::v1;
using grpc::StatusCode;
using plng::test::FakeRuntime;
using plng::test::TempDir;

namespace {

const std::string kHost = "n1.example.org";

std::int64_t unixNow() { return static_cast<std::int64_t>(std::time(nullptr)); }

struct Node {
  TempDir dir;
  FakeRuntime runtime;
  DesiredState state{dir.nodePaths(), kHost};
  Reconciler reconciler{runtime, state,
                        Reconciler::Options{.paths = dir.nodePaths(),
                                            .stop_grace = std::chrono::milliseconds(1),
                                            .delete_grace_s = 60,
                                            .effective_config = {},
                                            .on_destroyed = {},
                                            .on_present = {},
                                            .clock = {}}};
  int reconciles = 0;
  NodeManagerService service{
      state, nullptr,
      NodeManagerService::Hooks{.changed =
                                    [this] {
                                      ++reconciles;
                                      reconciler.reconcileOnce();
                                    },
                                .describe =
                                    [this](const std::string& slice) {
                                      return describeSliver(slice, state.lookup(slice, unixNow()),
                                                            runtime.get(slice),
                                                            reconciler.failure(slice));
                                    },
                                .node_info = {},
                                .clock = {}}};
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<pb::NodeManager::Stub> stub;
  plng::ticket::KeyPair plc_key = plng::ticket::generateKeyPair();

  Node() {
    pb::NodeState s;
    s.set_version(1);
    s.set_hostname(kHost);
    auto* key = s.add_plc_keys();
    key->set_key_id(plng::ticket::keyIdOf(plc_key.public_key));
    key->set_public_key(std::string(plc_key.public_key.begin(), plc_key.public_key.end()));
    key->set_created_at(unixNow() - 3600);
    REQUIRE(state.setPlcState(s));
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    REQUIRE(port != 0);
    stub = pb::NodeManager::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                        grpc::InsecureChannelCredentials()));
  }
  ~Node() { server->Shutdown(); }

  pb::TicketBody body(const std::string& id, const std::string& host = kHost) const {
    pb::TicketBody b;
    b.set_ticket_id(id);
    b.set_slice_name("princeton_demo");
    b.set_xid(1042);
    b.set_issued_at(unixNow());
    b.set_not_before(unixNow() - 60);
    b.set_not_after(unixNow() + 3600);
    b.set_instantiation("plc-instantiated");
    auto* grant = b.add_nodes();
    grant->set_hostname(host);
    (*grant->mutable_tags())["cpu_share"] = "64";
    auto* key = b.add_member_keys();
    key->set_person_email("alice@princeton.edu");
    key->set_key("ssh-ed25519 AAAAC3Nza alice");
    return b;
  }
  pb::SignedTicket sign(const pb::TicketBody& b) const {
    return plng::ticket::signTicket(b, plc_key.private_key);
  }
  std::pair<grpc::Status, pb::RedeemTicketResponse> redeem(const pb::SignedTicket& t) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    pb::RedeemTicketRequest request;
    *request.mutable_ticket() = t;
    pb::RedeemTicketResponse response;
    auto status = stub->RedeemTicket(&ctx, request, &response);
    return {status, response};
  }
};

void expectRefused(Node& node, const pb::SignedTicket& t, StatusCode code,
                   const std::string& message_part) {
  auto [status, response] = node.redeem(t);
  CHECK(status.error_code() == code);
  CHECK_THAT(status.error_message(), Catch::Contains(message_part));
  CHECK(node.state.desired(unixNow()).empty());
  CHECK_FALSE(node.runtime.has("princeton_demo"));
  CHECK(node.reconciles == 0);
}

}  // namespace

TEST_CASE("RedeemTicket: a valid ticket creates the sliver; the same ticket again does not",
          "[sliverd][ticket]") {
  Node node;
  const auto ticket = node.sign(node.body("5f3a9c"));
  auto [status, response] = node.redeem(ticket);
  REQUIRE(status.ok());
  CHECK(response.created());
  CHECK(response.sliver().slice_name() == "princeton_demo");
  CHECK(response.sliver().xid() == 1042);
  CHECK(response.sliver().source() == "ticket");
  CHECK(response.sliver().state() == "running");
  CHECK(response.sliver().rspec().cpu_share() == 64);
  CHECK(node.runtime.running("princeton_demo"));
  CHECK(node.runtime.changes() ==
        std::vector<std::string>{"create princeton_demo", "start princeton_demo"});
  CHECK(plng::base::readFileIfExists(node.dir.nodePaths().authorizedKeys("princeton_demo")) ==
        std::string("ssh-ed25519 AAAAC3Nza alice\n"));

  auto [again, second] = node.redeem(ticket);
  REQUIRE(again.ok());
  CHECK_FALSE(second.created());
  CHECK(second.sliver().state() == "running");
  CHECK(node.reconciles == 1);
  CHECK(node.runtime.changes() ==
        std::vector<std::string>{"create princeton_demo", "start princeton_demo"});
}

TEST_CASE("RedeemTicket: forged and tampered tickets are UNAUTHENTICATED", "[sliverd][ticket]") {
  Node node;
  SECTION("signed by a key PLC never published") {
    auto forger = plng::ticket::generateKeyPair();
    expectRefused(node, plng::ticket::signTicket(node.body("aa01"), forger.private_key),
                  StatusCode::UNAUTHENTICATED, "unknown PLC key");
  }
  SECTION("PLC's key id, someone else's signature") {
    auto forger = plng::ticket::generateKeyPair();
    auto forged = plng::ticket::signTicket(node.body("aa02"), forger.private_key);
    forged.set_key_id(plng::ticket::keyIdOf(node.plc_key.public_key));
    auto b = node.body("aa02");
    b.set_issuer_key_id(forged.key_id());
    forged.set_body(b.SerializeAsString());
    expectRefused(node, forged, StatusCode::UNAUTHENTICATED, "does not verify");
  }
  SECTION("a genuine ticket with its body altered") {
    auto t = node.sign(node.body("aa03"));
    pb::TicketBody b;
    REQUIRE(b.ParseFromString(t.body()));
    (*b.mutable_nodes(0)->mutable_tags())["cpu_share"] = "1000";
    t.set_body(b.SerializeAsString());
    expectRefused(node, t, StatusCode::UNAUTHENTICATED, "does not verify");
  }
}

TEST_CASE("RedeemTicket: expired, not-yet-valid and other-node tickets are FAILED_PRECONDITION",
          "[sliverd][ticket]") {
  Node node;
  SECTION("expired") {
    auto b = node.body("bb01");
    b.set_not_before(unixNow() - 7200);
    b.set_not_after(unixNow() - 10);
    expectRefused(node, node.sign(b), StatusCode::FAILED_PRECONDITION, "expired");
  }
  SECTION("not yet valid") {
    auto b = node.body("bb02");
    b.set_not_before(unixNow() + 600);
    b.set_not_after(unixNow() + 7200);
    expectRefused(node, node.sign(b), StatusCode::FAILED_PRECONDITION, "not yet valid");
  }
  SECTION("for another node") {
    expectRefused(node, node.sign(node.body("bb03", "n2.example.org")),
                  StatusCode::FAILED_PRECONDITION,
                  "n2.example.org, not this node (n1.example.org)");
  }
}

TEST_CASE("RedeemTicket: malformed tickets are INVALID_ARGUMENT", "[sliverd][ticket]") {
  Node node;
  SECTION("no ticket") {
    expectRefused(node, pb::SignedTicket(), StatusCode::INVALID_ARGUMENT, "needs a ticket");
  }
  SECTION("body that does not parse (though signed with PLC's key)") {
    pb::SignedTicket t;
    t.set_body("\xff\xff\xff garbage");
    auto sig = plng::ticket::sign(node.plc_key.private_key, t.body());
    t.set_signature(std::string(sig.begin(), sig.end()));
    t.set_key_id(plng::ticket::keyIdOf(node.plc_key.public_key));
    expectRefused(node, t, StatusCode::INVALID_ARGUMENT, "malformed");
  }
  SECTION("truncated signature") {
    auto t = node.sign(node.body("cc02"));
    t.set_signature(t.signature().substr(0, 10));
    expectRefused(node, t, StatusCode::INVALID_ARGUMENT, "malformed");
  }
}

TEST_CASE("RedeemTicket: before the node knows PLC's keys it asks to retry", "[sliverd][ticket]") {
  TempDir dir;
  DesiredState state(dir.nodePaths(), kHost);
  NodeManagerService service(state, nullptr, {});
  grpc::ServerContext ctx;
  pb::RedeemTicketRequest request;
  auto pair = plng::ticket::generateKeyPair();
  pb::TicketBody b;
  b.set_ticket_id("dd01");
  *request.mutable_ticket() = plng::ticket::signTicket(b, pair.private_key);
  pb::RedeemTicketResponse response;
  auto status = service.RedeemTicket(&ctx, &request, &response);
  CHECK(status.error_code() == StatusCode::UNAVAILABLE);
  CHECK_THAT(status.error_message(), Catch::Contains("has not received PLC's public keys"));
}

TEST_CASE("Acquire/Bind/Split answer UNIMPLEMENTED without an rcap service", "[sliverd][ticket]") {
  Node node;
  grpc::ClientContext ctx;
  pb::AcquireResponse response;
  auto status = node.stub->Acquire(&ctx, pb::AcquireRequest(), &response);
  CHECK(status.error_code() == StatusCode::UNIMPLEMENTED);
  grpc::ClientContext info_ctx;
  pb::NodeInfo info;
  REQUIRE(node.stub->GetNodeInfo(&info_ctx, pb::GetNodeInfoRequest(), &info).ok());
  CHECK(info.hostname() == kHost);
  CHECK(info.plc_state_version() == 1);
}
