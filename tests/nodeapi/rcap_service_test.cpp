// RcapService: who may acquire, bind and split rcaps, and the status codes a
// caller gets when refused. Tickets are signed with a test PLC key.
#include "sliverd/core/rcap_service.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "proto/status_name.h"
#include "tests/support/scratch_dir.h"

namespace v1 = planetlab::v1;
using plng::sliverd::RcapService;
using plng::sliverd::RcapTable;
using plng::sliverd::ResourceSpec;

namespace {

constexpr std::int64_t kNow = 1795428000;
constexpr std::int64_t kHour = 3600;
const std::string kNode = "planetlab1.cs.princeton.edu";

struct Fixture {
  plng::test::ScratchDir dir{"plng-rcapsvc"};
  plng::ticket::KeyPair plc = plng::ticket::generateKeyPair();
  std::shared_ptr<const plng::ticket::TrustedKeys> keys;
  std::unique_ptr<RcapTable> table;
  std::unique_ptr<RcapService> service;
  std::int64_t now = kNow;
  std::set<std::string> slivers{"princeton_broker", "princeton_target"};
  std::vector<std::string> bound_calls;

  Fixture() {
    v1::PlcPublicKey key;
    key.set_key_id(plng::ticket::keyIdOf(plc.public_key));
    key.set_public_key(plc.public_key.data(), plc.public_key.size());
    keys = std::make_shared<plng::ticket::TrustedKeys>(std::vector<v1::PlcPublicKey>{key});
    ResourceSpec granted;
    granted.cpu_share = 64;  // two slivers at PlanetLab's 32 shares
    table =
        std::make_unique<RcapTable>(dir / "rcaps", ResourceSpec{}, [granted] { return granted; });
    service = std::make_unique<RcapService>(
        *table, [this] { return keys; }, kNode, [this] { return now; },
        [this](const std::string& slice) -> std::optional<v1::SliverInfo> {
          if (!slivers.count(slice)) return std::nullopt;
          v1::SliverInfo info;
          info.set_slice_name(slice);
          *info.mutable_effective() = plng::sliverd::toRSpec(table->boundTo(slice));
          return info;
        },
        [this](const std::string& slice) { bound_calls.push_back(slice); });
  }

  v1::SignedTicket credential(const std::string& slice, bool delegations = true,
                              const std::string& node = kNode,
                              std::int64_t not_after = kNow + kHour,
                              const plng::ticket::PrivateKey* signer = nullptr) {
    v1::TicketBody body;
    body.set_ticket_id("00112233445566778899aabbccddeeff");
    body.set_slice_name(slice);
    body.set_xid(1042);
    auto* grant = body.add_nodes();
    grant->set_hostname(node);
    (*grant->mutable_tags())["delegations"] = delegations ? "true" : "false";
    body.set_not_before(kNow - kHour);
    body.set_not_after(not_after);
    body.set_issued_at(kNow - kHour);
    return plng::ticket::signTicket(body, signer ? *signer : plc.private_key);
  }

  grpc::Status acquire(const v1::SignedTicket& cred, std::uint32_t shares,
                       std::string* rcap = nullptr) {
    v1::AcquireRequest req;
    *req.mutable_credential() = cred;
    req.mutable_rspec()->set_cpu_share(shares);
    v1::AcquireResponse resp;
    grpc::Status status = service->acquire(nullptr, req, &resp);
    if (rcap) *rcap = resp.rcap();
    if (status.ok()) CHECK(resp.rspec().cpu_share() == shares);
    return status;
  }
  grpc::Status bind(const v1::SignedTicket& cred, const std::string& rcap, const std::string& slice,
                    v1::BindResponse* resp = nullptr) {
    v1::BindRequest req;
    *req.mutable_credential() = cred;
    req.set_rcap(rcap);
    req.set_slice_name(slice);
    v1::BindResponse local;
    return service->bind(nullptr, req, resp ? resp : &local);
  }
  grpc::Status split(const v1::SignedTicket& cred, const std::string& rcap, std::uint32_t shares,
                     v1::SplitResponse* resp) {
    v1::SplitRequest req;
    *req.mutable_credential() = cred;
    req.set_rcap(rcap);
    req.mutable_rspec()->set_cpu_share(shares);
    return service->split(nullptr, req, resp);
  }
};

std::string codeName(const grpc::Status& s) { return plng::statusCodeName(s.error_code()); }

}  // namespace

TEST_CASE("a slice with the delegations right acquires, splits and binds to another slice") {
  Fixture f;
  const auto broker = f.credential("princeton_broker");
  std::string rcap;
  REQUIRE(f.acquire(broker, 100, &rcap).ok());
  CHECK(rcap.size() == 32);
  CHECK(f.table->find(rcap)->owner_slice == "princeton_broker");
  // An rcap lives no longer than the credential that acquired it.
  CHECK(f.table->find(rcap)->expires_at == kNow + kHour);

  v1::SplitResponse split;
  REQUIRE(f.split(broker, rcap, 40, &split).ok());
  CHECK(split.remaining().cpu_share() == 60);
  CHECK(split.rcap().size() == 32);

  // Delegation: the broker binds the carved part to another slice's sliver.
  v1::BindResponse bound;
  REQUIRE(f.bind(broker, split.rcap(), "princeton_target", &bound).ok());
  CHECK(bound.sliver().slice_name() == "princeton_target");
  CHECK(bound.sliver().effective().cpu_share() == 40);
  CHECK(f.bound_calls == std::vector<std::string>{"princeton_target"});
  CHECK(f.service->boundTo("princeton_target").cpu_share == 40);
  CHECK(f.service->boundTo("princeton_broker").cpu_share == 0);

  // Bind with no slice name binds to the caller's own sliver.
  REQUIRE(f.bind(broker, rcap, "").ok());
  CHECK(f.service->boundTo("princeton_broker").cpu_share == 60);
}

TEST_CASE("without delegations=true every rcap call is PERMISSION_DENIED") {
  Fixture f;
  std::string rcap;
  REQUIRE(f.acquire(f.credential("princeton_broker"), 10, &rcap).ok());
  const auto plain = f.credential("princeton_plain", /*delegations=*/false);
  grpc::Status s = f.acquire(plain, 10);
  CHECK(codeName(s) == "PERMISSION_DENIED");
  CHECK_THAT(s.error_message(),
             Catch::Contains("slice princeton_plain lacks the delegations right"));
  v1::SplitResponse split;
  CHECK(codeName(f.split(plain, rcap, 1, &split)) == "PERMISSION_DENIED");
  CHECK(codeName(f.bind(plain, rcap, "princeton_target")) == "PERMISSION_DENIED");
  CHECK(f.table->find(rcap)->bound_to.empty());
}

TEST_CASE("credentials: missing, forged, expired, not yet valid, for another node") {
  Fixture f;
  CHECK(codeName(f.acquire(v1::SignedTicket{}, 10)) == "UNAUTHENTICATED");

  const auto other_plc = plng::ticket::generateKeyPair();
  CHECK(codeName(f.acquire(
            f.credential("princeton_broker", true, kNode, kNow + kHour, &other_plc.private_key),
            10)) == "UNAUTHENTICATED");

  auto tampered = f.credential("princeton_broker");
  tampered.mutable_signature()->back() ^= 1;
  CHECK(codeName(f.acquire(tampered, 10)) == "UNAUTHENTICATED");

  auto garbage = f.credential("princeton_broker");
  garbage.set_signature("short");
  CHECK(codeName(f.acquire(garbage, 10)) == "INVALID_ARGUMENT");

  grpc::Status expired = f.acquire(f.credential("princeton_broker", true, kNode, kNow - 1), 10);
  CHECK(codeName(expired) == "FAILED_PRECONDITION");
  CHECK_THAT(expired.error_message(), Catch::Contains("request a new ticket"));

  f.now = kNow - 2 * kHour;  // before not_before
  CHECK(codeName(f.acquire(f.credential("princeton_broker"), 10)) == "FAILED_PRECONDITION");
  f.now = kNow;

  grpc::Status wrong_node =
      f.acquire(f.credential("princeton_broker", true, "planetlab2.mit.edu"), 10);
  CHECK(codeName(wrong_node) == "FAILED_PRECONDITION");
  CHECK_THAT(wrong_node.error_message(), Catch::Contains("does not name node " + kNode));

  // A node that has no PLC keys yet says so rather than calling everything forged.
  f.keys = std::make_shared<plng::ticket::TrustedKeys>();
  CHECK(codeName(f.acquire(f.credential("princeton_broker"), 10)) == "UNAVAILABLE");
  CHECK(f.table->list().empty());
}

TEST_CASE("each rcap refusal has its own status code") {
  Fixture f;
  const auto broker = f.credential("princeton_broker");
  std::string rcap;
  REQUIRE(f.acquire(broker, 900, &rcap).ok());

  // 64 granted + 900 held: 36 left, and the message says so.
  grpc::Status full = f.acquire(broker, 37);
  CHECK(codeName(full) == "RESOURCE_EXHAUSTED");
  CHECK_THAT(full.error_message(), Catch::Contains("36 of 1000 shares left"));
  CHECK(codeName(f.acquire(broker, 0)) == "INVALID_ARGUMENT");  // asks for nothing

  v1::SplitResponse split;
  CHECK(codeName(f.split(broker, rcap, 901, &split)) == "OUT_OF_RANGE");
  CHECK(codeName(f.split(broker, "not-an-rcap", 1, &split)) == "INVALID_ARGUMENT");
  CHECK(codeName(f.split(broker, std::string(32, 'a'), 1, &split)) == "NOT_FOUND");
  CHECK(codeName(f.bind(broker, std::string(32, 'a'), "princeton_target")) == "NOT_FOUND");
  CHECK(codeName(f.bind(broker, "XYZ", "princeton_target")) == "INVALID_ARGUMENT");

  grpc::Status no_sliver = f.bind(broker, rcap, "princeton_elsewhere");
  CHECK(codeName(no_sliver) == "NOT_FOUND");
  CHECK_THAT(no_sliver.error_message(), Catch::Contains("no sliver of slice princeton_elsewhere"));

  REQUIRE(f.bind(broker, rcap, "princeton_target").ok());
  CHECK(f.bind(broker, rcap, "princeton_target").ok());  // idempotent
  grpc::Status again = f.bind(broker, rcap, "princeton_broker");
  CHECK(codeName(again) == "FAILED_PRECONDITION");
  CHECK_THAT(again.error_message(), Catch::Contains("already bound to slice princeton_target"));
  CHECK(codeName(f.split(broker, rcap, 1, &split)) == "FAILED_PRECONDITION");
}
