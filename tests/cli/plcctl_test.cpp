// plcctl without a real PLC: the parser, value conversions, config file,
// output formats and command table, then whole command lines run against an
// in-process fake PLC (a gRPC server implementing a few RPCs) to check what
// users see: exit codes, messages, tables, JSON, the saved session.
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "base/strings.h"
#include "cli/app.h"
#include "cli/args.h"
#include "cli/client_config.h"
#include "cli/command_table.h"
#include "cli/commands.h"
#include "cli/errors.h"
#include "cli/output.h"
#include "cli/values.h"
#include "proto/plc.grpc.pb.h"
#include "tests/support/scratch_dir.h"

namespace v1 = planetlab::v1;
using namespace plcctl;

namespace {

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> result;
  for (std::string word; in >> word;) result.push_back(word);
  return result;
}

EnvLookup envFrom(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const char* name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

// ------------------------------------------------------------------ args

TEST_CASE("options take values in every accepted spelling", "[cli]") {
  FlagSpec output = flag::value("output", "FORMAT", "");
  output.short_name = 'o';
  const std::vector<FlagSpec> flags = {flag::value("name", "NAME", ""),
                                       flag::repeated("node", "HOST", ""),
                                       flag::toggle("deleted", ""), output};
  const std::vector<std::string> tokens = {
      "pos1", "--name", "Princeton U", "--node=a", "--node",
      "b",    "-ojson", "--deleted",   "--",       "--not-an-option"};
  const ParsedArgs args = parseArgs(tokens, flags);
  CHECK(args.value("name") == "Princeton U");
  CHECK(args.values("node") == std::vector<std::string>{"a", "b"});
  CHECK(args.value("output") == "json");
  CHECK(args.has("deleted"));
  CHECK(args.positionals() == std::vector<std::string>{"pos1", "--not-an-option"});
}

TEST_CASE("malformed command lines are usage errors that say what is wrong", "[cli]") {
  const std::vector<FlagSpec> flags = {flag::required("name", "NAME", ""),
                                       flag::toggle("deleted", "")};
  auto parse = [&](const std::string& line) { return parseArgs(words(line), flags); };
  CHECK_THROWS_WITH(parse("--bogus"), "unknown option --bogus");
  CHECK_THROWS_WITH(parse("--name"), Catch::Contains("--name needs a value"));
  CHECK_THROWS_WITH(parse("--name --deleted"), Catch::Contains("--name needs a value"));
  CHECK_THROWS_WITH(parse("--deleted=yes"), "--deleted takes no value");
  CHECK_THROWS_WITH(parse("--name a --name b"), "--name given more than once");

  const std::vector<PositionalSpec> positionals = {arg::one("SLICE", ""), arg::optional("TAG", "")};
  CHECK_THROWS_WITH(checkArgs(parse("x"), flags, positionals), Catch::Contains("--name"));
  CHECK_THROWS_WITH(checkArgs(parse("--name n"), flags, positionals), "missing argument SLICE");
  CHECK_THROWS_WITH(checkArgs(parse("--name n a b c"), flags, positionals),
                    "unexpected argument 'c'");
  CHECK_NOTHROW(checkArgs(parse("--name n a b"), flags, positionals));
  CHECK_THROWS_AS(parse("--bogus"), UsageError);
}

// ------------------------------------------------------------------ values

TEST_CASE("times are read as dates, date-times or unix seconds, in UTC", "[cli]") {
  CHECK(parseTime("2026-12-31", "--expires") == 1798675200);
  CHECK(parseTime("2026-12-31T18:00", "--expires") == 1798740000);
  CHECK(parseTime("2026-12-31 18:00:00Z", "--expires") == 1798740000);
  CHECK(parseTime("2026-12-31T20:00+02:00", "--expires") == 1798740000);
  CHECK(parseTime("1798675200", "--expires") == 1798675200);
  CHECK_THROWS_WITH(parseTime("2026-02-30", "--expires"), Catch::StartsWith("--expires: expected"));
  CHECK_THROWS_AS(parseTime("tomorrow", "--expires"), UsageError);
  CHECK_THROWS_AS(parseTime("2026-12-31T25:00", "--expires"), UsageError);
  CHECK(parseTimeOrAgo("2h", "--since", 10000) == 10000 - 7200);
}

TEST_CASE("durations, integers and booleans", "[cli]") {
  CHECK(parseDuration("30", "--timeout") == 30);
  CHECK(parseDuration("2m", "--timeout") == 120);
  CHECK(parseDuration("14d", "--x") == 14 * 86400);
  CHECK_THROWS_AS(parseDuration("5x", "--timeout"), UsageError);
  CHECK_THROWS_AS(parseDuration("m", "--timeout"), UsageError);
  CHECK(parseInteger("42", "N") == 42);
  CHECK_THROWS_WITH(parseInteger("4x", "--limit"), "--limit: expected an integer, got '4x'");
  CHECK_THROWS_WITH(parseInt32("0", "--limit", 1), Catch::Contains("out of range"));
  CHECK(parseBool("yes", "--enabled"));
  CHECK_FALSE(parseBool("false", "--enabled"));
  CHECK_THROWS_AS(parseBool("maybe", "--enabled"), UsageError);
}

TEST_CASE("timestamps print as UTC minutes, unset ones as a dash", "[cli]") {
  CHECK(formatTime(1795428000) == "2026-11-23 10:00");
  CHECK(formatTime(0) == "-");
  CHECK(formatTimeFromNow(1000 + 3 * 86400, 1000) == formatTime(1000 + 3 * 86400) + " (in 3d)");
  // A slice's time left: "(!)" within a week, when PLC mails its first reminder.
  CHECK(formatExpiry(1000 + 38 * 86400 + 5 * 3600, 1000) == "in 38d 5h");
  CHECK(formatExpiry(1000 + 7 * 86400, 1000) == "in 7d 0h");
  CHECK(formatExpiry(1000 + 7 * 86400 - 1, 1000) == "in 6d 23h (!)");
  CHECK(formatExpiry(1000 + 3 * 86400 + 4 * 3600 + 59, 1000) == "in 3d 4h (!)");
  CHECK(formatExpiry(1000 + 5 * 3600 + 12 * 60, 1000) == "in 5h 12m (!)");
  CHECK(formatExpiry(1000 + 30, 1000) == "in 1m (!)");
  CHECK(formatExpiry(1000, 1000) == "expired");
  CHECK(formatExpiry(0, 1000) == "-");
  CHECK(plng::base::toHex(std::string("\x01\xab", 2)) == "01ab");
  CHECK(parseHex("0x01AB", "--hex") == std::string("\x01\xab", 2));
  CHECK_THROWS_AS(parseHex("abc", "--hex"), UsageError);
}

// ------------------------------------------------------------------ config

TEST_CASE("the config file keeps comments and unknown lines when saved", "[cli]") {
  ConfigFile config = ConfigFile::parse(
      "# my PLC\nplc = plc.example.org:8620\ntoken = \"abc\"\ncolour = blue\n", "cfg");
  CHECK(config.get("plc") == "plc.example.org:8620");
  CHECK(config.get("token") == "abc");
  REQUIRE(config.warnings().size() == 1);
  CHECK_THAT(config.warnings()[0], Catch::Contains("unknown key 'colour'"));
  config.set("token", "xyz");
  config.erase("plc");
  CHECK(config.render() == "# my PLC\ncolour = blue\ntoken = xyz\n");
  CHECK_THROWS_WITH(ConfigFile::parse("plc\n", "cfg"), Catch::StartsWith("cfg:1: expected"));
}

TEST_CASE("settings come from flag, then environment, then config, then default", "[cli]") {
  const std::vector<FlagSpec> global = globalFlags();
  const ConfigFile config =
      ConfigFile::parse("plc = config-host:1\ntoken = config-token\ntoken_expires_at = 99\n", "c");
  const auto env = envFrom({{"PLCCTL_PLC", "env-host:2"}});

  ClientSettings settings =
      resolveSettings(parseArgs(words("--plc flag-host"), global), env, config);
  CHECK(settings.plc.value == "flag-host:8620");
  CHECK(settings.plc.source == "--plc");
  CHECK(settings.token.value == "config-token");
  CHECK(settings.token_expires_at == 99);

  settings = resolveSettings(parseArgs(words("--token t"), global), env, config);
  CHECK(settings.plc.value == "env-host:2");
  CHECK(settings.token.value == "t");
  CHECK(settings.token_expires_at == 0);

  settings = resolveSettings(ParsedArgs(), envFrom({}), config);
  CHECK(settings.plc.value == "config-host:1");
  settings = resolveSettings(ParsedArgs(), envFrom({}), ConfigFile::parse("", "c"));
  CHECK(settings.plc.value == "127.0.0.1:8620");
  CHECK(settings.plc.source == "default");
  CHECK(settings.token.value.empty());
  CHECK_FALSE(settings.tls);
}

TEST_CASE("the config path honours --config, PLCCTL_CONFIG, XDG and HOME", "[cli]") {
  const std::vector<FlagSpec> global = globalFlags();
  const auto home = envFrom({{"HOME", "/home/a"}});
  CHECK(resolveConfigPath(ParsedArgs(), home) == "/home/a/.config/plcctl/config");
  CHECK(resolveConfigPath(ParsedArgs(), envFrom({{"HOME", "/h"}, {"XDG_CONFIG_HOME", "/x"}})) ==
        "/x/plcctl/config");
  CHECK(resolveConfigPath(ParsedArgs(), envFrom({{"PLCCTL_CONFIG", "/e"}})) == "/e");
  CHECK(resolveConfigPath(parseArgs(words("--config /f"), global), home) == "/f");
}

TEST_CASE("PLC addresses get the default port when they have none", "[cli]") {
  CHECK(normalizePlcAddress("plc.example.org") == "plc.example.org:8620");
  CHECK(normalizePlcAddress("10.0.0.1:9000") == "10.0.0.1:9000");
  CHECK(normalizePlcAddress("[::1]") == "[::1]:8620");
  CHECK(normalizePlcAddress("[::1]:1") == "[::1]:1");
  CHECK(normalizePlcAddress("unix:/run/plcd.sock") == "unix:/run/plcd.sock");
  CHECK_THROWS_AS(normalizePlcAddress(" "), UsageError);
}

// ------------------------------------------------------------------ output

TEST_CASE("tables align columns, details align values", "[cli]") {
  Table table({"name", "xid"});
  table.addRow({"princeton_codeen", "1"});
  table.addRow({"mit_x", "1234"});
  std::ostringstream out;
  table.print(out);
  CHECK(out.str() ==
        "NAME              XID\n"
        "princeton_codeen  1\n"
        "mit_x             1234\n");

  Details details;
  details.add("name", "x");
  details.add("members", "a@b\nc@d");
  details.add("url", "");
  std::ostringstream detail_out;
  details.print(detail_out);
  CHECK(detail_out.str() ==
        "name:    x\n"
        "members: a@b\n"
        "         c@d\n"
        "url:     -\n");
}

TEST_CASE("JSON output keeps proto field names and every field", "[cli]") {
  v1::Site site;
  site.set_login_base("princeton");
  const std::string json = toJson(site, /*pretty=*/false);
  CHECK_THAT(json, Catch::Contains("\"login_base\":\"princeton\""));
  CHECK_THAT(json, Catch::Contains("\"max_slices\":0"));

  std::ostringstream out, err;
  Printer printer(OutputFormat::kJson, out, err);
  google::protobuf::RepeatedPtrField<v1::Site> sites;
  printer.list(sites, View<v1::Site>{"sites", {}});
  CHECK(out.str() == "[]\n");
  printer.strings(std::vector<std::string>{"a\"b"}, "fingerprint", "keys");
  CHECK(out.str() == "[]\n[\n  \"a\\\"b\"\n]\n");
}

// ------------------------------------------------------------------ command table

TEST_CASE("every command has a summary, an example and a handler", "[cli]") {
  const CommandTable table = buildCommandTable();
  const std::vector<FlagSpec> global = globalFlags();
  for (const CommandSpec& command : table.commands()) {
    INFO(command.path);
    CHECK(command.run != nullptr);
    CHECK_FALSE(command.summary.empty());
    CHECK_FALSE(command.examples.empty());
    const std::string help = table.help(command.path, global);
    CHECK_THAT(help, Catch::StartsWith("Usage: plcctl " + command.path));
    // Command options must not collide with global ones.
    for (const FlagSpec& spec : command.flags) {
      for (const FlagSpec& global_spec : global) CHECK(spec.name != global_spec.name);
    }
  }
  CHECK_THAT(table.help("", global), Catch::Contains("slice"));
  CHECK_THAT(table.help("slice tag", global), Catch::Contains("delete"));
}

TEST_CASE("command words are found around global options", "[cli]") {
  const CommandTable table = buildCommandTable();
  const auto resolution =
      table.resolve(words("-o json --plc h:1 slice tag set s t v"), globalFlags());
  REQUIRE(resolution.command != nullptr);
  CHECK(resolution.path == "slice tag set");
  CHECK(resolution.rest == words("-o json --plc h:1 s t v"));
  const auto unknown = table.resolve(words("slice frob"), globalFlags());
  CHECK(unknown.unknown_word == "frob");
  CHECK_THAT(table.unknownCommandMessage(unknown), Catch::Contains("expected one of: add, list"));
}

// ------------------------------------------------------------------ against a fake PLC

namespace {

constexpr const char* kToken = "tok-alice";

std::optional<std::string> bearer(grpc::ServerContext* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return std::string(it->second.data(), it->second.size());
}

bool authorised(grpc::ServerContext* context) {
  return bearer(context) == std::string("Bearer ") + kToken;
}

const grpc::Status kUnauthenticated(grpc::StatusCode::UNAUTHENTICATED, "invalid or expired token");

class FakeAuth final : public v1::Auth::Service {
 public:
  std::string last_password;
  bool logged_out = false;

  grpc::Status Login(grpc::ServerContext*, const v1::LoginRequest* request,
                     v1::LoginResponse* response) override {
    last_password = request->password();
    if (request->email() != "alice@princeton.edu" || request->password() != "s3cret-pw") {
      return {grpc::StatusCode::UNAUTHENTICATED, "wrong email or password"};
    }
    response->set_token(kToken);
    response->set_expires_at(4102444800);
    return grpc::Status::OK;
  }
  grpc::Status Logout(grpc::ServerContext* context, const v1::Empty*, v1::Empty*) override {
    if (!authorised(context)) return kUnauthenticated;
    logged_out = true;
    return grpc::Status::OK;
  }
  grpc::Status WhoAmI(grpc::ServerContext* context, const v1::Empty*,
                      v1::WhoAmIResponse* response) override {
    if (!authorised(context)) return kUnauthenticated;
    response->set_kind("person");
    response->set_email("alice@princeton.edu");
    auto* role = response->add_roles();
    role->set_role("pi");
    role->set_login_base("princeton");
    return grpc::Status::OK;
  }
};

class FakeAdmin final : public v1::Admin::Service {
 public:
  grpc::Status GetSites(grpc::ServerContext* context, const v1::GetSitesRequest* request,
                        v1::GetSitesResponse* response) override {
    if (!authorised(context)) return kUnauthenticated;
    for (const char* login_base : {"princeton", "mit"}) {
      if (!request->login_bases().empty() &&
          std::find(request->login_bases().begin(), request->login_bases().end(), login_base) ==
              request->login_bases().end()) {
        continue;
      }
      v1::Site* site = response->add_sites();
      site->set_login_base(login_base);
      site->set_name(std::string(login_base) + " university");
      site->set_enabled(true);
      site->set_max_slices(10);
      site->set_created_at(1795428000);
    }
    return grpc::Status::OK;
  }
  grpc::Status DeleteSite(grpc::ServerContext*, const v1::DeleteSiteRequest*, v1::Empty*) override {
    return {grpc::StatusCode::PERMISSION_DENIED, "deleting a site needs the admin role"};
  }

  // Joining needs no token: these record whether one came.
  v1::RequestSiteRequest last_site_request;
  v1::RegisterPersonRequest last_registration;
  bool join_token_sent = false;
  grpc::Status RequestSite(grpc::ServerContext* context, const v1::RequestSiteRequest* request,
                           v1::Site* response) override {
    join_token_sent = bearer(context).has_value();
    last_site_request = *request;
    response->set_login_base(request->login_base());
    response->set_pending(true);
    return grpc::Status::OK;
  }
  grpc::Status RegisterPerson(grpc::ServerContext* context,
                              const v1::RegisterPersonRequest* request,
                              v1::Person* response) override {
    join_token_sent = bearer(context).has_value();
    last_registration = *request;
    response->set_email(request->email());
    return grpc::Status::OK;
  }

  v1::GetFlowsRequest last_flows_request;
  // Two flows to 192.0.2.7, one of a slice PLC knows, one ICMP; truncated.
  grpc::Status GetFlows(grpc::ServerContext* context, const v1::GetFlowsRequest* request,
                        v1::GetFlowsResponse* response) override {
    if (!authorised(context)) return kUnauthenticated;
    last_flows_request = *request;
    auto* tcp = response->add_flows();
    tcp->set_node("n1.princeton.edu");
    tcp->set_slice_description("Measures paths\nacross the Internet");
    tcp->set_slice_url("https://x.princeton.edu/");
    auto* pi = tcp->add_contacts();
    pi->set_name("Alice Smith");
    pi->set_email("alice@princeton.edu");
    pi->set_role("pi");
    auto* f = tcp->mutable_flow();
    f->set_slice_name("princeton_x");
    f->set_protocol(6);
    f->set_src_addr(std::string("\x0a\x00\x00\x01", 4));
    f->set_dst_addr(std::string("\xc0\x00\x02\x07", 4));
    f->set_src_port(40000);
    f->set_dst_port(80);
    f->set_packets(12);
    f->set_bytes(3400);
    f->set_first_seen_ns(1795428000LL * 1000000000LL);
    f->set_last_seen_ns(1795428005LL * 1000000000LL);
    auto* icmp = response->add_flows();
    icmp->set_node("n2.mit.edu");
    auto* g = icmp->mutable_flow();
    g->set_protocol(1);
    g->set_src_addr(std::string("\x0a\x00\x00\x02", 4));
    g->set_dst_addr(std::string("\xc0\x00\x02\x07", 4));
    g->set_dst_port(8 << 8);
    g->set_packets(1);
    g->set_bytes(84);
    g->set_first_seen_ns(1795428010LL * 1000000000LL);
    g->set_last_seen_ns(1795428010LL * 1000000000LL);
    g->set_refused("blacklist");
    response->set_truncated(true);
    return grpc::Status::OK;
  }
};

class FakeSlice final : public v1::Slice::Service {
 public:
  std::int64_t renewed_to = 0;

  grpc::Status GetSlices(grpc::ServerContext* context, const v1::GetSlicesRequest*,
                         v1::GetSlicesResponse* response) override {
    if (!authorised(context)) return kUnauthenticated;
    auto* soon = response->add_slices();
    soon->set_name("princeton_soon");
    soon->set_expires_at(unixNow() + 3 * 86400 + 4 * 3600 + 600);
    auto* later = response->add_slices();
    later->set_name("princeton_later");
    later->set_expires_at(unixNow() + 30 * 86400 + 600);
    return grpc::Status::OK;
  }

  grpc::Status RenewSlice(grpc::ServerContext* context, const v1::RenewSliceRequest* request,
                          v1::SliceInfo* response) override {
    if (!authorised(context)) return kUnauthenticated;
    renewed_to = request->expires_at();
    response->set_name(request->name());
    response->set_expires_at(request->expires_at());
    return grpc::Status::OK;
  }
  grpc::Status GetSliceTicket(grpc::ServerContext*, const v1::GetSliceTicketRequest* request,
                              v1::SignedTicket* response) override {
    v1::TicketBody body;
    body.set_ticket_id("00ff");
    body.set_slice_name(request->slice());
    body.set_xid(1234);
    for (const std::string& hostname : request->hostnames())
      body.add_nodes()->set_hostname(hostname);
    body.set_not_before(1795428000);
    body.set_not_after(1798675200);
    body.SerializeToString(response->mutable_body());
    response->set_signature(std::string(64, 's'));
    response->set_key_id("abcd");
    return grpc::Status::OK;
  }
};

class FakeNodeSync final : public v1::NodeSync::Service {
 public:
  grpc::Status WatchSlivers(grpc::ServerContext* context, const v1::WatchSliversRequest* request,
                            grpc::ServerWriter<v1::NodeState>* writer) override {
    for (std::int64_t version = request->since_version() + 1; !context->IsCancelled(); ++version) {
      v1::NodeState state;
      state.set_version(version);
      state.set_hostname(request->hostname());
      if (!writer->Write(state)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return grpc::Status::OK;
  }
};

class FakePlc {
 public:
  FakePlc() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&auth);
    builder.RegisterService(&admin);
    builder.RegisterService(&slice);
    builder.RegisterService(&node_sync);
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
    address = "127.0.0.1:" + std::to_string(port);
  }
  FakePlc(const FakePlc&) = delete;
  FakePlc& operator=(const FakePlc&) = delete;
  ~FakePlc() { server_->Shutdown(std::chrono::system_clock::now()); }

  FakeAuth auth;
  FakeAdmin admin;
  FakeSlice slice;
  FakeNodeSync node_sync;
  std::string address;

 private:
  std::unique_ptr<grpc::Server> server_;
};

struct Result {
  int code;
  std::string out;
  std::string err;
};

// Runs a plcctl command line with `stdin_text` as standard input.
Result runCli(const std::vector<std::string>& arguments, const EnvLookup& env,
              const std::string& stdin_text = "") {
  std::istringstream in(stdin_text);
  std::streambuf* saved = std::cin.rdbuf(in.rdbuf());
  std::ostringstream out, err;
  const int code = runPlcctl(arguments, out, err, env);
  std::cin.rdbuf(saved);
  return {code, out.str(), err.str()};
}

}  // namespace

TEST_CASE("a session: login, calls with the saved token, logout", "[cli][grpc]") {
  FakePlc plc;
  plng::test::ScratchDir dir("plcctl_test");
  const std::string config = (dir.path() / "sub" / "config").string();
  const auto env = envFrom({{"PLCCTL_CONFIG", config}});

  auto run = [&](const std::string& line, const std::string& input = "") {
    return runCli(words(line), env, input);
  };

  SECTION("without a token nothing is sent and the user is told to log in") {
    const Result result = run("whoami --plc " + plc.address);
    CHECK(result.code == kExitFailure);
    CHECK_THAT(result.err, Catch::Contains("not logged in"));
  }

  const Result login =
      run("login --plc " + plc.address + " --email alice@princeton.edu --password-stdin",
          "s3cret-pw\n");
  INFO(login.err);
  REQUIRE(login.code == kExitOk);
  CHECK(plc.auth.last_password == "s3cret-pw");
  struct stat st {};
  REQUIRE(::stat(config.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const ConfigFile saved = ConfigFile::load(config);
  CHECK(saved.get("plc") == plc.address);
  CHECK(saved.get("token") == kToken);
  CHECK(saved.get("token_expires_at") == "4102444800");

  // The saved address and token are used without flags from here on.
  const Result whoami = run("whoami -o json");
  CHECK(whoami.code == kExitOk);
  v1::WhoAmIResponse parsed;
  REQUIRE(google::protobuf::util::JsonStringToMessage(whoami.out, &parsed).ok());
  CHECK(parsed.email() == "alice@princeton.edu");

  SECTION("lists print as tables and as JSON arrays") {
    const Result table = run("site list");
    CHECK(table.code == kExitOk);
    CHECK_THAT(table.out, Catch::StartsWith("LOGIN_BASE  NAME"));
    CHECK_THAT(table.out, Catch::Contains("2026-11-23 10:00"));

    const Result json = run("site list -o json");
    CHECK(json.code == kExitOk);
    CHECK_THAT(json.out, Catch::StartsWith("[\n  {"));
    CHECK_THAT(json.out, Catch::Contains("\"login_base\": \"mit\""));
  }

  SECTION("PLC's refusals come out as status code and message, exit 1") {
    const Result denied = run("site delete princeton");
    CHECK(denied.code == kExitFailure);
    CHECK(denied.err == "plcctl: PERMISSION_DENIED: deleting a site needs the admin role\n");

    const Result missing = run("site show nowhere");
    CHECK(missing.code == kExitFailure);
    CHECK_THAT(missing.err, Catch::Contains("NOT_FOUND: no site 'nowhere'"));

    const Result bad_token = run("whoami --token wrong");
    CHECK(bad_token.code == kExitFailure);
    CHECK_THAT(bad_token.err,
               Catch::StartsWith("plcctl: UNAUTHENTICATED: invalid or expired token"));
    CHECK_THAT(bad_token.err, Catch::Contains("hint:"));
  }

  SECTION("audit: flows to an address from every node, and who answers for the slices") {
    const Result audit =
        run("audit --dst 192.0.2.7 --since 2h --node n1.princeton.edu --slice princeton_x "
            "--limit 2");
    INFO(audit.err);
    CHECK(audit.code == kExitOk);
    const auto& request = plc.admin.last_flows_request;
    CHECK(request.dst() == "192.0.2.7");
    CHECK(std::abs(request.since() - (unixNow() - 7200)) < 60);
    CHECK(request.until() == 0);
    CHECK(request.node() == "n1.princeton.edu");
    CHECK(request.slice() == "princeton_x");
    CHECK(request.limit() == 2);
    CHECK_THAT(audit.out, Catch::StartsWith("NODE              SLICE        PROTO  FLOW"));
    CHECK_THAT(audit.out, Catch::Contains("10.0.0.1:40000 -> 192.0.2.7:80"));
    CHECK_THAT(audit.out, Catch::Contains("10.0.0.2 -> 192.0.2.7 type 8 code 0"));
    CHECK_THAT(audit.out, Catch::Contains("2026-11-23 10:00:05"));
    CHECK_THAT(audit.out, Catch::Contains("blacklist"));
    CHECK_THAT(audit.out, Catch::Contains("Who answers for these slices:"));
    CHECK_THAT(audit.out, Catch::Contains("princeton_x  Measures paths ...  "
                                          "https://x.princeton.edu/  Alice Smith "
                                          "<alice@princeton.edu> (pi)"));
    CHECK_THAT(audit.err, Catch::Contains("more flows matched than --limit 2 shows"));

    const Result json = run("audit --dst 192.0.2.0/24 -o json");
    CHECK(json.code == kExitOk);
    CHECK(plc.admin.last_flows_request.since() == 0);  // PLC's default: the last hour
    v1::GetFlowsResponse answer;
    REQUIRE(google::protobuf::util::JsonStringToMessage(json.out, &answer).ok());
    CHECK(answer.truncated());
    CHECK(answer.flows(0).contacts(0).email() == "alice@princeton.edu");

    const Result no_dst = run("audit --since 2h");
    CHECK(no_dst.code == kExitUsage);
    CHECK_THAT(no_dst.err, Catch::Contains("--dst"));
  }

  SECTION("slice list marks slices expiring within a week; JSON is the slices as sent") {
    const Result table = run("slice list");
    CHECK(table.code == kExitOk);
    CHECK_THAT(table.out, Catch::Contains("EXPIRES"));
    auto line_of = [&](const std::string& name) {
      const auto at = table.out.find(name + " ");
      REQUIRE(at != std::string::npos);
      return table.out.substr(at, table.out.find('\n', at) - at);
    };
    CHECK_THAT(line_of("princeton_soon"), Catch::Contains(" in 3d 4h (!) "));
    CHECK_THAT(line_of("princeton_later"), Catch::Contains(" in 30d 0h "));
    CHECK_THAT(line_of("princeton_later"), !Catch::Contains("(!)"));
    const Result json = run("slice list -o json");
    CHECK(json.code == kExitOk);
    CHECK_THAT(json.out, Catch::Contains("\"name\": \"princeton_soon\""));
    CHECK_THAT(json.out, !Catch::Contains("(!)"));
  }

  SECTION("renewal in days becomes unix seconds") {
    const Result renew = run("slice renew princeton_x --days 14");
    CHECK(renew.code == kExitOk);
    CHECK(std::abs(plc.slice.renewed_to - (unixNow() + 14 * 86400)) < 60);
  }

  SECTION("a ticket is saved as binary protobuf and summarised") {
    const std::string path = (dir.path() / "t.ticket").string();
    const Result ticket = run("ticket get princeton_x --node n1 --node n2 --out " + path);
    CHECK(ticket.code == kExitOk);
    CHECK_THAT(ticket.out, Catch::Contains("princeton_x"));
    CHECK_THAT(ticket.out, Catch::Contains("1234"));
    v1::SignedTicket stored;
    std::ifstream in(path, std::ios::binary);
    REQUIRE(stored.ParseFromIstream(&in));
    v1::TicketBody body;
    REQUIRE(body.ParseFromString(stored.body()));
    CHECK(body.nodes_size() == 2);
  }

  SECTION("sync watch stops after --count states, one JSON object per line") {
    const Result watch = run("sync watch --node n1 --since 40 --count 2 -o json");
    CHECK(watch.code == kExitOk);
    CHECK(watch.out ==
          "{\"version\":\"41\",\"hostname\":\"n1\",\"slivers\":[],\"plc_keys\":[],"
          "\"blacklist\":[],\"generated_at\":\"0\",\"epoch\":\"\",\"node_tags\":{}}\n"
          "{\"version\":\"42\",\"hostname\":\"n1\",\"slivers\":[],\"plc_keys\":[],"
          "\"blacklist\":[],\"generated_at\":\"0\",\"epoch\":\"\",\"node_tags\":{}}\n");
  }

  SECTION("logout revokes the token and forgets it") {
    const Result logout = run("logout");
    CHECK(logout.code == kExitOk);
    CHECK(plc.auth.logged_out);
    CHECK_FALSE(ConfigFile::load(config).get("token"));
    CHECK(ConfigFile::load(config).get("plc") == plc.address);
  }
}

TEST_CASE("site request and person register send no token, even with one saved", "[cli][grpc]") {
  FakePlc plc;
  plng::test::ScratchDir dir("plcctl_test");
  const auto env = envFrom({{"PLCCTL_CONFIG", (dir.path() / "config").string()},
                            {"PLCCTL_PLC", plc.address},
                            {"PLCCTL_TOKEN", "expired-token"}});

  const Result site = runCli(words("site request mit --name MIT --url https://www.mit.edu "
                                   "--pi-email pi@mit.edu --pi-first-name Pat --pi-last-name Smith "
                                   "--password-stdin"),
                             env, "pi-pass-word\n");
  INFO(site.err);
  REQUIRE(site.code == kExitOk);
  CHECK_FALSE(plc.admin.join_token_sent);
  const auto& request = plc.admin.last_site_request;
  CHECK(request.login_base() == "mit");
  CHECK(request.pi_email() == "pi@mit.edu");
  CHECK(request.pi_password() == "pi-pass-word");
  // The PI is the tech contact unless another is named.
  CHECK(request.tech_contact_name() == "Pat Smith");
  CHECK(request.tech_contact_email() == "pi@mit.edu");
  CHECK_THAT(site.out, Catch::Contains("Requested site mit for pi@mit.edu"));

  const Result person = runCli(words("person register bob@mit.edu --first-name Bob --last-name Lee "
                                     "--site mit --password-stdin"),
                               env, "bob-pass-word\n");
  INFO(person.err);
  REQUIRE(person.code == kExitOk);
  CHECK_FALSE(plc.admin.join_token_sent);
  CHECK(plc.admin.last_registration.login_base() == "mit");
  CHECK(plc.admin.last_registration.password() == "bob-pass-word");
  CHECK_THAT(person.out, Catch::Contains("plcctl person enable bob@mit.edu"));
}

TEST_CASE("a wrong password is refused without saving anything", "[cli][grpc]") {
  FakePlc plc;
  plng::test::ScratchDir dir("plcctl_test");
  const std::string config = (dir.path() / "config").string();
  const Result result = runCli(words("--config " + config + " --plc " + plc.address +
                                     " login --email alice@princeton.edu --password-stdin"),
                               envFrom({}), "wrong\n");
  CHECK(result.code == kExitFailure);
  CHECK(result.err ==
        "plcctl: UNAUTHENTICATED: wrong email or password\n"
        "plcctl: hint: the token (from default) was not accepted; run 'plcctl "
        "login --email EMAIL'\n");
  CHECK_FALSE(std::filesystem::exists(config));
}

TEST_CASE("an unreachable PLC exits 3 and names the address", "[cli][grpc]") {
  std::string address;
  {
    FakePlc closed;  // a port that was just free: nothing listens there any more
    address = closed.address;
  }
  const Result result = runCli(words("--plc " + address + " --token t site list"),
                               envFrom({{"HOME", "/nonexistent"}}));
  CHECK(result.code == kExitUnreachable);
  CHECK_THAT(result.err, Catch::StartsWith("plcctl: cannot reach PLC at " + address + " (--plc)"));
}

TEST_CASE("usage errors exit 2 with a pointer to --help", "[cli]") {
  const auto env = envFrom({{"HOME", "/nonexistent"}});
  Result result = runCli(words("slice renew princeton_x"), env);
  CHECK(result.code == kExitUsage);
  CHECK(result.err ==
        "plcctl: give exactly one of --expires, --days\n"
        "plcctl: run 'plcctl slice renew --help' for usage\n");
  result = runCli(words("site frob"), env);
  CHECK(result.code == kExitUsage);
  CHECK_THAT(result.err, Catch::Contains("'plcctl site --help'"));
  result = runCli(words("node add h --site s --public-key-hex 00"), env);
  CHECK(result.code == kExitUsage);
  CHECK_THAT(result.err, Catch::Contains("32 bytes"));
  result = runCli(words("slice"), env);
  CHECK(result.code == kExitUsage);
  CHECK_THAT(result.err, Catch::StartsWith("Usage: plcctl slice COMMAND"));
  result = runCli(words("slice tag --help"), env);
  CHECK(result.code == kExitOk);
  CHECK_THAT(result.out, Catch::Contains("set"));
}
