// Hostile input at PLC's RPC edge, through the real gRPC API against a real
// PostgreSQL and plcd: NUL bytes and control characters in strings, 1 MB values,
// times out of range, bytes gRPC cannot parse, and the audit record of every call
// (written in the transaction of the change it records; a commit whose outcome is
// unknown is reported as such and never retried).

// GCC's -Wnull-dereference flags gRPC 1.51's async unary call internals once they
// are inlined here (the raw client below); the code is gRPC's, not this file's.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "plc/auth.h"
#include "plc/change_bus.h"
#include "plc/config.h"
#include "plc/db.h"
#include "plc/plc_keys.h"
#include "plc/rpc.h"
#include "tests/support/child_process.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/plc_seed.h"

namespace {

using namespace planetlab::v1;
using namespace std::string_literals;
using plng::test::PlcClient;
using plng::test::PlcFixture;
using plng::test::Seeder;
using Code = grpc::StatusCode;
using A = Admin::Stub;
using S = Slice::Stub;
namespace gp = google::protobuf;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();

// Sends `bytes` as the request of `method` ("/planetlab.v1.Auth/Login") with no
// client-side serialisation at all, as a hostile client could.
grpc::Status rawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                     const std::string& method, const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  grpc::CompletionQueue cq;
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  auto call = stub.PrepareUnaryCall(&ctx, method, request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  REQUIRE(cq.Next(&tag, &ok));
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// Every method of plc.proto: "/planetlab.v1.<Service>/<Method>" and its request type.
struct MethodInfo {
  std::string path;
  const gp::Descriptor* input;
};
std::vector<MethodInfo> allMethods() {
  std::vector<MethodInfo> out;
  const auto* file = LoginRequest::descriptor()->file();
  for (int s = 0; s < file->service_count(); ++s) {
    const auto* service = file->service(s);
    for (int m = 0; m < service->method_count(); ++m) {
      const auto* method = service->method(m);
      out.push_back({"/" + service->full_name() + "/" + method->name(), method->input_type()});
    }
  }
  return out;
}

const gp::FieldDescriptor* firstStringField(const gp::Descriptor* d) {
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->type() == gp::FieldDescriptor::TYPE_STRING) return d->field(i);
  }
  return nullptr;
}

std::string varint(std::uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

class EdgeTest : public PlcFixture {
 protected:
  EdgeTest() : seed(*this) {}

  // Site princeton, its PI alice, and slice princeton_x (alice a member).
  PlcClient seedSlice() {
    seed.site("princeton");
    auto alice = seed.person("alice@princeton.edu", "princeton", {"pi"});
    AddSliceRequest add;
    add.set_name("princeton_x");
    add.set_description("original");
    add.set_url("https://princeton.edu/x");
    REQUIRE_OK(admin().call(&S::AddSlice, add).first);
    SliceMembersRequest members;
    members.set_name("princeton_x");
    members.add_emails("alice@princeton.edu");
    REQUIRE_OK(admin().call(&S::AddSliceMembers, members).first);
    return alice;
  }

  SliceInfo slice(const std::string& name) {
    GetSlicesRequest get;
    get.add_names(name);
    auto [status, slices] = admin().call(&S::GetSlices, get);
    REQUIRE_OK(status);
    REQUIRE(slices.slices_size() == 1);
    return slices.slices(0);
  }

  std::vector<Event> events(const std::string& method) {
    GetEventsRequest get;
    get.set_method(method);
    get.set_limit(1000);
    auto [status, resp] = admin().call(&A::GetEvents, get);
    REQUIRE_OK(status);
    return {resp.events().begin(), resp.events().end()};
  }

  std::string stateVersion() {
    return seed.sql("SELECT version::text FROM plc_state")[0][0].as<std::string>();
  }

  Seeder seed;
};

}  // namespace

// ---------------------------------------------------------------- item 4: NUL

TEST_CASE_METHOD(EdgeTest, "NUL bytes are refused at the edge and never reach the database",
                 "[plc][pg][edge]") {
  seedSlice();

  // A ticket for a name the database would cut at the NUL.
  GetSliceTicketRequest ticket;
  ticket.set_slice("princeton_x\0../../x"s);
  auto [ticket_status, signed_ticket] = admin().call(&S::GetSliceTicket, ticket);
  CHECK_STATUS(ticket_status, Code::INVALID_ARGUMENT, "slice");
  CHECK_STATUS(ticket_status, Code::INVALID_ARGUMENT, "NUL");
  CHECK(signed_ticket.body().empty());

  // The right password behind an email with a NUL tail.
  LoginRequest login;
  login.set_email(std::string(kAdminEmail) + "\0junk"s);
  login.set_password(kAdminPassword);
  auto [login_status, session] = anonymous().call(&Auth::Stub::Login, login);
  CHECK_STATUS(login_status, Code::INVALID_ARGUMENT, "email");
  CHECK(session.token().empty());

  // Stored cut at the NUL before.
  auto before = stateVersion();
  UpdateSliceRequest update;
  update.set_name("princeton_x");
  update.set_description("before\0after"s);
  CHECK_STATUS(admin().call(&S::UpdateSlice, update).first, Code::INVALID_ARGUMENT, "description");
  CHECK(slice("princeton_x").description() == "original");
  CHECK(stateVersion() == before);

  // INTERNAL before; the element is named by its index.
  GetSlicesRequest get;
  get.add_names("princeton_x");
  get.add_names("princeton_x\0y"s);
  CHECK_STATUS(admin().call(&S::GetSlices, get).first, Code::INVALID_ARGUMENT, "names[1]");

  // The refused mutation is in the audit log with its result.
  auto updates = events("UpdateSlice");
  REQUIRE(!updates.empty());
  CHECK(updates.front().result() == "INVALID_ARGUMENT");
}

TEST_CASE_METHOD(EdgeTest,
                 "control characters: refused in single-line fields, TAB LF CR allowed in "
                 "multi-line text",
                 "[plc][pg][edge]") {
  auto alice = seedSlice();

  AddSiteRequest site;
  site.set_login_base("evil");
  site.set_name("Evil \x1b[2J site");
  CHECK_STATUS(admin().call(&A::AddSite, site).first, Code::INVALID_ARGUMENT, "name");
  site.set_name("Evil\nsite");
  CHECK_STATUS(admin().call(&A::AddSite, site).first, Code::INVALID_ARGUMENT, "name");
  site.set_name("Evil\x7fsite");  // DEL
  CHECK_STATUS(admin().call(&A::AddSite, site).first, Code::INVALID_ARGUMENT, "name");
  site.set_name(
      "Evil \xc2\x9b"
      "31m site");  // U+009B, a C1 control (CSI)
  CHECK_STATUS(admin().call(&A::AddSite, site).first, Code::INVALID_ARGUMENT, "name");
  site.set_name("École des Mines — Zoë");  // ordinary Unicode text passes
  CHECK_OK(admin().call(&A::AddSite, site).first);

  // Descriptions are multi-line text.
  UpdateSliceRequest update;
  update.set_name("princeton_x");
  update.set_description("line one\nline two\ttabbed\r\n");
  REQUIRE_OK(alice.call(&S::UpdateSlice, update).first);
  CHECK(slice("princeton_x").description() == "line one\nline two\ttabbed\r\n");
  update.set_description("bell\a");
  CHECK_STATUS(alice.call(&S::UpdateSlice, update).first, Code::INVALID_ARGUMENT, "description");

  // An initscript is a tag value: multi-line.
  SetSliceTagRequest tag;
  tag.set_slice("princeton_x");
  tag.set_tag("initscript");
  tag.set_value("#!/bin/sh\n\techo hello\n");
  REQUIRE_OK(alice.call(&S::SetSliceTag, tag).first);
  tag.set_value("#!/bin/sh\n\x1b]0;title\a\n");
  CHECK_STATUS(alice.call(&S::SetSliceTag, tag).first, Code::INVALID_ARGUMENT, "value");

  // A key is one line: a second line would be a second authorized key on nodes.
  AddPersonKeyRequest key;
  key.set_email("alice@princeton.edu");
  key.set_key(plng::test::newSshKey("a") + "\n" + plng::test::newSshKey("evil"));
  CHECK_STATUS(alice.call(&A::AddPersonKey, key).first, Code::INVALID_ARGUMENT, "key");
  key.set_key(plng::test::newSshKey("a\rb"));
  CHECK_STATUS(alice.call(&A::AddPersonKey, key).first, Code::INVALID_ARGUMENT, "key");

  SliceNodesRequest nodes;
  nodes.set_name("princeton_x");
  nodes.add_hostnames("node1.princeton.edu\n");
  CHECK_STATUS(alice.call(&S::AddSliceNodes, nodes).first, Code::INVALID_ARGUMENT, "hostnames[0]");

  UpdatePersonRequest person;
  person.set_email("alice@princeton.edu");
  person.set_first_name("Alice\tTab");
  CHECK_STATUS(alice.call(&A::UpdatePerson, person).first, Code::INVALID_ARGUMENT, "first_name");
  person.set_first_name("Zoë");
  CHECK_OK(alice.call(&A::UpdatePerson, person).first);
}

TEST_CASE_METHOD(EdgeTest, "every RPC of plc.proto refuses a NUL in its strings at the edge",
                 "[plc][pg][edge]") {
  int checked = 0;
  for (const auto& m : allMethods()) {
    const auto* field = firstStringField(m.input);
    if (field == nullptr) continue;
    std::unique_ptr<gp::Message> request(
        gp::MessageFactory::generated_factory()->GetPrototype(m.input)->New());
    const auto* refl = request->GetReflection();
    if (field->is_repeated()) {
      refl->AddString(request.get(), field, "x\0y"s);
    } else {
      refl->SetString(request.get(), field, "x\0y"s);
    }
    INFO(m.path << " " << field->name());
    auto status = rawCall(plcd().channel(), admin().token(), m.path, request->SerializeAsString());
    CHECK_STATUS(status, Code::INVALID_ARGUMENT, field->name());
    ++checked;
  }
  // Every request type of the API but those without a string field.
  CHECK(checked > 40);
}

// ------------------------------------------------------------ item 5 and 19

TEST_CASE_METHOD(EdgeTest, "a change and its audit row commit together or not at all",
                 "[plc][pg][edge][audit]") {
  AddSiteRequest add;
  add.set_login_base("auditone");
  add.set_name("Audit One");
  REQUIRE_OK(admin().call(&A::AddSite, add).first);
  // One transaction wrote both rows: they carry the same xmin.
  auto same = seed.sql(
      "SELECT s.xmin::text = e.xmin::text FROM sites s, events e"
      " WHERE s.login_base = 'auditone' AND e.method = 'AddSite' AND e.result = 'OK'"
      " AND 'site:auditone' = ANY(e.objects)");
  REQUIRE(same.size() == 1);
  CHECK(same[0][0].as<bool>());

  // An audit row that cannot be written fails the call, and nothing changes.
  seed.sql(
      "ALTER TABLE events ADD CONSTRAINT edge_test_refuse_addsite"
      " CHECK (method <> 'AddSite' OR result <> 'OK') NOT VALID");
  auto before = stateVersion();
  add.set_login_base("audittwo");
  auto status = admin().call(&A::AddSite, add).first;
  CHECK_FALSE(status.ok());
  CHECK(seed.sql("SELECT 1 FROM sites WHERE login_base = 'audittwo'").empty());
  CHECK(stateVersion() == before);
  seed.sql("ALTER TABLE events DROP CONSTRAINT edge_test_refuse_addsite");
  // The failed call still left its event, written on its own.
  auto adds = events("AddSite");
  REQUIRE(!adds.empty());
  CHECK(adds.front().result() == plng::test::statusCodeName(status.error_code()));
  CHECK(std::find(adds.front().objects().begin(), adds.front().objects().end(), "site:audittwo") !=
        adds.front().objects().end());

  // Every mutation writes at most one event for a successful call.
  add.set_login_base("auditthree");
  REQUIRE_OK(admin().call(&A::AddSite, add).first);
  CHECK(seed.sql("SELECT count(*) FROM events WHERE 'site:auditthree' = ANY(objects)")[0][0]
            .as<int>() == 1);
}

TEST_CASE_METHOD(EdgeTest, "every login attempt leaves an event, with bounded values",
                 "[plc][pg][edge][audit]") {
  seed.site("princeton");
  seed.person("bob@princeton.edu", "princeton", {});
  LoginRequest login;
  login.set_email("bob@princeton.edu");
  login.set_password("wrong-password");
  CHECK_STATUS(anonymous().call(&Auth::Stub::Login, login).first, Code::UNAUTHENTICATED, "");
  login.set_email("nobody@princeton.edu");
  CHECK_STATUS(anonymous().call(&Auth::Stub::Login, login).first, Code::UNAUTHENTICATED, "");
  // A 12 KB email: its event could not be stored before (index row too large).
  const std::string huge = std::string(12 * 1024, 'e') + "@princeton.edu";
  login.set_email(huge);
  auto huge_status = anonymous().call(&Auth::Stub::Login, login).first;
  CHECK_FALSE(huge_status.ok());

  auto logins = events("Login");
  auto find = [&](const std::string& object_prefix, const std::string& result) {
    for (const auto& e : logins) {
      for (const auto& o : e.objects()) {
        if (o.rfind(object_prefix, 0) == 0 && e.result() == result) return &e;
      }
    }
    return static_cast<const Event*>(nullptr);
  };
  // The seeder's own login of bob, then the refused ones.
  CHECK(find("person:bob@princeton.edu", "OK") != nullptr);
  CHECK(find("person:bob@princeton.edu", "UNAUTHENTICATED") != nullptr);
  CHECK(find("person:nobody@princeton.edu", "UNAUTHENTICATED") != nullptr);
  const auto* big = find("person:eeee", plng::test::statusCodeName(huge_status.error_code()));
  REQUIRE(big != nullptr);
  for (const auto& o : big->objects()) CHECK(o.size() <= 300);
  CHECK(big->arguments().size() <= 2200);
  CHECK(big->message().size() <= 1100);
}

TEST_CASE_METHOD(EdgeTest,
                 "a commit whose outcome is unknown answers UNAVAILABLE and is not retried",
                 "[plc][pg][edge][audit]") {
  // A deferred trigger runs during COMMIT: the first time, it ends its own
  // connection there, so the client cannot know whether the commit happened.
  seed.sql("CREATE SEQUENCE edge_commit_kills");
  seed.sql(
      "CREATE FUNCTION edge_kill_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$"
      " BEGIN"
      "   IF nextval('edge_commit_kills') = 1 THEN"
      "     PERFORM pg_terminate_backend(pg_backend_pid());"
      "     PERFORM pg_sleep(10);"
      "   END IF;"
      "   RETURN NULL;"
      " END $$");
  seed.sql(
      "CREATE CONSTRAINT TRIGGER edge_kill_at_commit AFTER INSERT ON sites"
      " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.login_base = 'indoubt')"
      " EXECUTE FUNCTION edge_kill_at_commit()");
  AddSiteRequest add;
  add.set_login_base("indoubt");
  add.set_name("In Doubt");
  auto status = admin().call(&A::AddSite, add).first;
  CHECK_STATUS(status, Code::UNAVAILABLE, "may have been applied");
  // Nothing ran the transaction again after its COMMIT was sent.
  CHECK(seed.sql("SELECT last_value FROM edge_commit_kills")[0][0].as<int>() == 1);
  // The event says what the client was told.
  auto adds = events("AddSite");
  REQUIRE(!adds.empty());
  CHECK(adds.front().result() == "UNAVAILABLE");

  // A connection lost before COMMIT is still retried once, transparently.
  seed.sql("CREATE SEQUENCE edge_statement_kills");
  seed.sql(
      "CREATE FUNCTION edge_kill_in_statement() RETURNS trigger LANGUAGE plpgsql AS $$"
      " BEGIN"
      "   IF nextval('edge_statement_kills') = 1 THEN"
      "     PERFORM pg_terminate_backend(pg_backend_pid());"
      "     PERFORM pg_sleep(10);"
      "   END IF;"
      "   RETURN NEW;"
      " END $$");
  seed.sql(
      "CREATE TRIGGER edge_kill_in_statement BEFORE INSERT ON sites"
      " FOR EACH ROW WHEN (NEW.login_base = 'retried') EXECUTE FUNCTION edge_kill_in_statement()");
  add.set_login_base("retried");
  CHECK_OK(admin().call(&A::AddSite, add).first);
  CHECK(seed.sql("SELECT count(*) FROM sites WHERE login_base = 'retried'")[0][0].as<int>() == 1);
  CHECK(seed.sql("SELECT last_value FROM edge_statement_kills")[0][0].as<int>() == 2);
}

// RpcRunner itself, on the fixture's database: what a method body can do with
// Call::write, beyond what today's methods do through the API.
TEST_CASE_METHOD(EdgeTest, "Call::write: one write per call, and a kept change that still fails",
                 "[plc][pg][edge][audit]") {
  using namespace plng::plc;
  Database db(connectionString(), 2);
  PlcConfig config;
  Authenticator auth(db, 1000, std::make_shared<ScryptHasher>(config.scrypt_log2_n));
  PlcKeys keys(db);
  ChangeBus bus(connectionString(), [] {});
  PlcContext plc{db, config, auth, keys, bus};
  RpcRunner runner(plc);
  seed.sql("CREATE TABLE edge_kept (what text)");
  LoginRequest request;
  request.set_email("someone@princeton.edu");

  // A refused login that counts against its account keeps its count, and its one
  // event says what the client was told.
  grpc::ServerContext ctx;
  auto status = runner.mutate(
      &ctx, "EdgeKeepAndFail", request,
      [&](Call& call) {
        call.object("test:kept");
        call.write([&](pqxx::work& tx) {
          tx.exec0("INSERT INTO edge_kept VALUES ('failed attempt')");
          call.failAfterCommit(grpc::StatusCode::UNAUTHENTICATED, "wrong email or password");
        });
        FAIL("write() returned after failAfterCommit");
      },
      Access::kAnonymous);
  CHECK_STATUS(status, Code::UNAUTHENTICATED, "wrong email or password");
  auto kept = seed.sql(
      "SELECT k.xmin::text = e.xmin::text, e.result, e.message FROM edge_kept k, events e"
      " WHERE e.method = 'EdgeKeepAndFail'");
  REQUIRE(kept.size() == 1);
  CHECK(kept[0][0].as<bool>());
  CHECK(kept[0][1].as<std::string>() == "UNAUTHENTICATED");
  CHECK(kept[0][2].as<std::string>() == "wrong email or password");

  // A second write in one call is a bug: refused before it runs.
  grpc::ServerContext ctx2;
  status = runner.mutate(
      &ctx2, "EdgeTwoWrites", request,
      [&](Call& call) {
        call.write([&](pqxx::work& tx) { tx.exec0("INSERT INTO edge_kept VALUES ('first')"); });
        call.write([&](pqxx::work& tx) { tx.exec0("INSERT INTO edge_kept VALUES ('second')"); });
      },
      Access::kAnonymous);
  CHECK(status.error_code() == Code::INTERNAL);
  CHECK(seed.sql("SELECT 1 FROM edge_kept WHERE what = 'second'").empty());
}

// ------------------------------------------------------------ item 6: echoes

TEST_CASE_METHOD(EdgeTest, "a 1 MB value gets a short INVALID_ARGUMENT and bounded records",
                 "[plc][pg][edge]") {
  // A replica logging every call, to measure its log lines.
  plng::test::PlcdProcess::Options options;
  options.plcdPath = plcdPath();
  options.database = connectionString();
  options.logLevel = "debug";
  plng::test::PlcdProcess replica(options);
  PlcClient client(replica.channel(), admin().token());
  const std::string mb(1 << 20, 'A');

  AddPersonKeyRequest key;
  key.set_email(kAdminEmail);
  key.set_key(mb);
  auto key_status = client.call(&A::AddPersonKey, key).first;
  CHECK_STATUS(key_status, Code::INVALID_ARGUMENT, "SSH key");
  CHECK(key_status.error_message().size() <= 1024);
  CHECK(key_status.error_message().find("1048576 bytes") != std::string::npos);

  AddSiteRequest site;
  site.set_login_base(mb);
  site.set_name("x");
  auto site_status = client.call(&A::AddSite, site).first;
  CHECK_STATUS(site_status, Code::INVALID_ARGUMENT, "login_base");
  CHECK(site_status.error_message().size() <= 1024);

  GetSliceTicketRequest ticket;
  ticket.set_slice(mb);
  auto ticket_status = client.call(&S::GetSliceTicket, ticket).first;
  CHECK_STATUS(ticket_status, Code::INVALID_ARGUMENT, "slice");
  CHECK(ticket_status.error_message().size() <= 1024);

  for (const auto& e : events("AddPersonKey")) {
    CHECK(e.result() == "INVALID_ARGUMENT");
    CHECK(e.arguments().size() <= 2200);
    CHECK(e.message().size() <= 1100);
  }
  auto widest = seed.sql(
      "SELECT max(octet_length(arguments) + octet_length(message) + octet_length(objects::text)"
      " + octet_length(caller)) FROM events");
  CHECK(widest[0][0].as<int>() <= 8192);

  // Every log line is bounded too (the log was ~3 MB before).
  auto log = replica.log();
  CHECK(log.size() < 64 * 1024);
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) CHECK(line.size() <= 8192);
}

// ------------------------------------------------------------ item 8: times

TEST_CASE_METHOD(EdgeTest, "times out of range are INVALID_ARGUMENT, never INTERNAL",
                 "[plc][pg][edge]") {
  seedSlice();
  for (auto t : {kInt64Max, kInt64Min, std::int64_t{253402300800}, std::int64_t{-1}}) {
    INFO(t);
    GetEventsRequest events_req;
    events_req.set_since(t);
    CHECK_STATUS(admin().call(&A::GetEvents, events_req).first, Code::INVALID_ARGUMENT, "since");
    CreateApiTokenRequest token;
    token.set_expires_at(t);
    CHECK_STATUS(admin().call(&Auth::Stub::CreateApiToken, token).first, Code::INVALID_ARGUMENT,
                 "expires_at");
    RenewSliceRequest renew;
    renew.set_name("princeton_x");
    renew.set_expires_at(t);
    CHECK_STATUS(admin().call(&S::RenewSlice, renew).first, Code::INVALID_ARGUMENT, "expires_at");
  }
  // The last second of the range is a valid time.
  RenewSliceRequest renew;
  renew.set_name("princeton_x");
  renew.set_expires_at(253402300799);  // 9999-12-31 23:59:59 UTC
  auto [status, renewed] = admin().call(&S::RenewSlice, renew);
  CHECK_OK(status);
  CHECK(renewed.expires_at() == 253402300799);
}

// ----------------------------------------------------- item 10: bad bytes

TEST_CASE_METHOD(EdgeTest, "requests gRPC cannot parse answer INVALID_ARGUMENT",
                 "[plc][pg][edge]") {
  // The raw client works: an empty message is a valid Empty.
  CHECK_OK(rawCall(plcd().channel(), admin().token(), "/planetlab.v1.Auth/WhoAmI", ""));
  int checked = 0;
  for (const auto& m : allMethods()) {
    INFO(m.path);
    // A varint that never ends: not a protobuf message at all.
    auto garbage = rawCall(plcd().channel(), admin().token(), m.path, "\x0a\xff\xff\xff\xff\xff"s);
    CHECK_STATUS(garbage, Code::INVALID_ARGUMENT, m.input->full_name());
    ++checked;
    const auto* field = firstStringField(m.input);
    if (field == nullptr) continue;
    // A proto3 string that is not UTF-8.
    std::string bytes =
        varint(static_cast<std::uint64_t>(field->number()) << 3 | 2) + "\x02\xff\xfe"s;
    auto utf8 = rawCall(plcd().channel(), admin().token(), m.path, bytes);
    CHECK_STATUS(utf8, Code::INVALID_ARGUMENT, "UTF-8");
  }
  CHECK(checked > 60);
}

// Calls without a valid token are refused before any method code runs; each
// used to leave an event row, so anyone could grow the events table at request
// rate. Only the first login_source_burst per address (and the first refusal
// after) are recorded now; every call is still refused.
TEST_CASE_METHOD(EdgeTest, "calls without a valid token cannot flood the events table",
                 "[plc][pg][edge][audit]") {
  PlcClient forged(plcd().channel(), std::string(64, 'f'));
  PlcClient none = anonymous();
  AddSiteRequest add;
  add.set_login_base("flood");
  add.set_name("Flood");
  for (int i = 0; i < 100; ++i) {
    CHECK(forged.call(&A::AddSite, add).first.error_code() == Code::UNAUTHENTICATED);
    CHECK(none.call(&A::AddSite, add).first.error_code() == Code::UNAUTHENTICATED);
  }
  auto adds = events("AddSite");
  std::size_t refused = 0;
  for (const auto& e : adds) refused += e.result() == "UNAUTHENTICATED";
  INFO(refused << " of 200 refused calls recorded");
  CHECK(refused >= 1);
  CHECK(refused <= 21 + 1);  // login_source_burst (20) and the first refusal
  CHECK(seed.sql("SELECT count(*) FROM sites WHERE login_base = 'flood'")[0][0].as<int>() == 0);
}

// ------------------------------------------------------------ listen addresses

TEST_CASE_METHOD(PlcFixture, "plcd listens on every address of a comma-separated listen",
                 "[plc][pg][edge]") {
  // The local planet's plcd: loopback, plus the address its nodes reach.
  const int port = plng::test::pickFreePort();
  const int second_port = plng::test::pickFreePort();
  const std::string second = "127.0.0.2:" + std::to_string(second_port);
  plng::test::PlcdProcess::Options options;
  options.plcdPath = plcdPath();
  options.database = connectionString();
  options.port = port;
  options.extraArgs = {"--listen", "127.0.0.1:" + std::to_string(port) + ", " + second};
  plng::test::PlcdProcess replica(options);
  auto channel = grpc::CreateChannel(second, grpc::InsecureChannelCredentials());
  CHECK(channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)));
  replica.stop();

  // One address that cannot be bound (not on this host; nothing is sent to it):
  // plcd does not start half-listening.
  auto refused = plng::test::runPlcd(
      plcdPath(), {"--listen", "127.0.0.1:" + std::to_string(port) + ",192.0.2.254:8620",
                   "--database", connectionString(), "--metrics-listen=", "serve"});
  INFO(refused.describe());
  CHECK_FALSE(refused.succeeded());
  CHECK(refused.output.find("cannot listen on") != std::string::npos);
}
