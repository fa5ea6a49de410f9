// Slice expiry reminders end to end (docs/plc.md, "Expiry reminders"): real plcd
// processes on a real PostgreSQL mail slices' members through Debian's aiosmtpd,
// an SMTP server on loopback storing what it receives in a maildir. One mail per
// slice, threshold and expiry date, however many plcd serve the database; only the
// nearest threshold when several are due at once; nothing now after a renewal
// weeks ahead, the new date's reminder after one to days ahead;
// nothing at all without smtp_server; a mail the server could not take is
// released and delivered by a later pass once the server is back; a claim left
// by a plcd that died mid-mail is taken over after an hour; and with
// smtp_starttls, mail goes only over TLS to a certificate the plcd trusts.
//
// Skips (77) when /usr/bin/python3 has no aiosmtpd (Debian: python3-aiosmtpd).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "plc/validate.h"
#include "tests/support/child_process.h"
#include "tests/support/plc_seed.h"
#include "tests/support/scratch_dir.h"

using namespace plng::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPython = "/usr/bin/python3";

void requireAiosmtpd() {
  if (std::system("/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1") != 0) {
    skipTest(
        "/usr/bin/python3 has no aiosmtpd module, the SMTP server this test mails through "
        "(Debian: apt-get install python3-aiosmtpd; deploy/install-deps.sh)");
  }
}

bool accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string readAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// aiosmtpd's Mailbox handler on 127.0.0.1:<port>: each message it accepts is a
// file in <maildir>/new, with the envelope added as X-MailFrom and X-RcptTo.
class SmtpSink {
 public:
  SmtpSink(std::filesystem::path maildir, int port)
      : maildir_(std::move(maildir)),
        port_(port),
        argv_({kPython, "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:" + std::to_string(port), "-c",
               "aiosmtpd.handlers.Mailbox", maildir_.string()}) {}
  // Another command line serving the same maildir on the same port.
  SmtpSink(std::filesystem::path maildir, int port, std::vector<std::string> argv)
      : maildir_(std::move(maildir)), port_(port), argv_(std::move(argv)) {}

  void start() {
    // Not made here: Python's Maildir makes tmp/, new/ and cur/ only when it
    // makes the directory itself.
    log_ = plng::base::UniqueFd(::open((maildir_.parent_path() / "aiosmtpd.log").c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    SpawnOptions options;
    options.argv = argv_;
    options.outputFd = log_.get();
    options.parentDeathSignal = SIGKILL;
    child_ = ChildProcess::spawn(options);
    for (auto deadline = std::chrono::steady_clock::now() + 15s; !accepts(port_);) {
      if (!child_.running() || std::chrono::steady_clock::now() > deadline) {
        FAIL("aiosmtpd did not start: " << readAll(maildir_.parent_path() / "aiosmtpd.log"));
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  void stop() { child_.terminate(SIGTERM, 5000ms); }

  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

  // Each message received, by file name (maildir names sort by arrival).
  std::vector<std::string> messages() const {
    std::vector<std::filesystem::path> files;
    if (std::filesystem::exists(maildir_ / "new")) {
      for (const auto& entry : std::filesystem::directory_iterator(maildir_ / "new"))
        files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    std::vector<std::string> out;
    for (const auto& file : files) out.push_back(readAll(file));
    return out;
  }

  // Waits until at least `n` messages arrived; returns them.
  std::vector<std::string> awaitMessages(std::size_t n, std::chrono::seconds timeout = 30s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (messages().size() < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(100ms);
    return messages();
  }

 private:
  std::filesystem::path maildir_;
  int port_;
  std::vector<std::string> argv_;
  plng::base::UniqueFd log_;
  ChildProcess child_;
};

// A plcd on the fixture's database with `config` (key = value lines).
PlcdProcess configuredPlcd(PlcFixture& fix, const std::filesystem::path& path,
                           const std::string& config) {
  std::ofstream(path) << config;
  return PlcdProcess(fix.plcdPath(), fix.connectionString(), {"--config", path.string()});
}

std::string mailConfig(const SmtpSink& sink) {
  return "smtp_server = " + sink.server() +
         "\n"
         "smtp_from = plc@planet.test\n"
         "smtp_helo = plc.planet.test\n"
         "smtp_timeout_s = 5\n"
         "slice_reminder_interval_s = 1\n"
         "portal_url = https://plc.planet.test/\n";
}

// The value of header `name` in a stored message (unfolded), or "".
std::string header(const std::string& message, const std::string& name) {
  std::istringstream in(message);
  std::string line, value;
  bool in_header = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;
    if (in_header && (line[0] == ' ' || line[0] == '\t')) {
      value += line;
      continue;
    }
    if (in_header) return value;
    if (line.rfind(name + ": ", 0) == 0) {
      in_header = true;
      value = line.substr(name.size() + 2);
    }
  }
  return value;
}

std::string utc(std::int64_t t) { return plng::plc::utcTime(t); }

// A site, its PI, two members and an outsider; slices made as admin.
struct Planet {
  explicit Planet(PlcFixture& f) : fix(f), seed(f) {
    seed.site("princeton");
    seed.person("pi@princeton.edu", "princeton", {"pi"});
    seed.person("alice@princeton.edu", "princeton", {"user"});
    seed.person("bob@princeton.edu", "princeton", {"user"});
    seed.person("carol@princeton.edu", "princeton", {"user"});
  }

  // A slice with `members`, expiring `expires_in` seconds from now.
  std::int64_t slice(const std::string& name, const std::vector<std::string>& members,
                     std::int64_t expires_in) {
    pb::AddSliceRequest add;
    add.set_name(name);
    add.set_description("measuring " + name);
    add.set_url("https://example.edu/" + name);
    REQUIRE_OK(fix.admin().call(&pb::Slice::Stub::AddSlice, add).first);
    if (!members.empty()) {
      pb::SliceMembersRequest req;
      req.set_name(name);
      for (const auto& m : members) req.add_emails(m);
      REQUIRE_OK(fix.admin().call(&pb::Slice::Stub::AddSliceMembers, req).first);
    }
    return renew(name, expires_in);
  }
  std::int64_t renew(const std::string& name, std::int64_t expires_in) {
    const std::int64_t at = unixNow() + expires_in;
    pb::RenewSliceRequest req;
    req.set_name(name);
    req.set_expires_at(at);
    REQUIRE_OK(fix.admin().call(&pb::Slice::Stub::RenewSlice, req).first);
    return at;
  }
  // slice_reminders rows of `slice`: "<days_before> sent|claimed", by expiry.
  std::vector<std::string> claims(const std::string& slice) {
    std::vector<std::string> out;
    for (const auto& r :
         seed.sql("SELECT r.days_before, r.sent_at IS NOT NULL FROM slice_reminders r"
                  " JOIN slices s USING (slice_id) WHERE s.name = $1 ORDER BY r.expires_at, 1",
                  slice)) {
      out.push_back(std::to_string(r[0].as<int>()) + (r[1].as<bool>() ? " sent" : " claimed"));
    }
    return out;
  }

  PlcFixture& fix;
  Seeder seed;
};

constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 24 * kHour;

}  // namespace

TEST_CASE("members are mailed once per slice and expiry: the nearest threshold only",
          "[plc][pg][mail]") {
  requireAiosmtpd();
  PlcFixture fix;
  Planet planet(fix);
  ScratchDir dir("plc-reminders");
  SmtpSink sink(dir.path() / "maildir", plng::test::pickFreePort());
  sink.start();

  // Within both thresholds (7 and 1 days): the 1-day reminder only. (Expiries
  // are 10 minutes short of whole hours and days, so the subject's time left,
  // rounded down, does not depend on when the pass runs.)
  const auto soon = planet.slice("princeton_soon", {"alice@princeton.edu", "bob@princeton.edu"},
                                 20 * kHour - 600);
  // Within 7 days only.
  const auto week = planet.slice("princeton_week", {"carol@princeton.edu"}, 3 * kDay - 600);
  // Far from expiry, and a due slice nobody is a member of: nothing.
  planet.slice("princeton_far", {"alice@princeton.edu"}, 30 * kDay);
  planet.slice("princeton_empty", {}, 5 * kHour);

  // Two plcd on the database, both mailing every second: each reminder once.
  auto a = configuredPlcd(fix, dir.path() / "a.conf", mailConfig(sink));
  auto b = configuredPlcd(fix, dir.path() / "b.conf", mailConfig(sink));
  auto mails = sink.awaitMessages(2);
  std::this_thread::sleep_for(4s);  // several more passes of each
  mails = sink.messages();
  REQUIRE(mails.size() == 2);

  std::map<std::string, std::string> by_slice;
  for (const auto& m : mails) {
    const auto subject = header(m, "Subject");
    if (subject.find("princeton_soon") != std::string::npos) by_slice["soon"] = m;
    if (subject.find("princeton_week") != std::string::npos) by_slice["week"] = m;
  }
  REQUIRE(by_slice.size() == 2);

  const std::string& s = by_slice["soon"];
  CHECK(header(s, "X-RcptTo") == "alice@princeton.edu, bob@princeton.edu");
  CHECK(header(s, "X-MailFrom") == "plc@planet.test");
  CHECK(header(s, "From") == "plc@planet.test");
  CHECK(header(s, "To") == "alice@princeton.edu, bob@princeton.edu");
  CHECK(header(s, "Subject") ==
        "PlanetLab slice princeton_soon expires in 19 hours (" + utc(soon) + ")");
  CHECK(header(s, "Content-Type") == "text/plain; charset=utf-8");
  CHECK_THAT(header(s, "Message-ID"), Catch::EndsWith(".1d@planet.test>"));
  CHECK_THAT(header(s, "Date"), Catch::EndsWith(" +0000"));
  CHECK_THAT(s, Catch::Contains("expires on " + utc(soon)));
  CHECK_THAT(s, Catch::Contains("plcctl slice renew princeton_soon --expires "));
  CHECK_THAT(s, Catch::Contains("web portal: https://plc.planet.test/"));
  CHECK_THAT(s, Catch::Contains("URL:         https://example.edu/princeton_soon"));
  CHECK_THAT(s, Catch::Contains("Description: measuring princeton_soon"));

  const std::string& w = by_slice["week"];
  CHECK(header(w, "X-RcptTo") == "carol@princeton.edu");
  CHECK_THAT(header(w, "Subject"), Catch::Contains("expires in 2 days (" + utc(week) + ")"));
  CHECK_THAT(header(w, "Message-ID"), Catch::EndsWith(".7d@planet.test>"));

  CHECK(planet.claims("princeton_soon") == std::vector<std::string>{"1 sent"});
  CHECK(planet.claims("princeton_week") == std::vector<std::string>{"7 sent"});
  CHECK(planet.claims("princeton_far").empty());
  CHECK(planet.claims("princeton_empty").empty());

  // Renewed: the new expiry's reminders are due later, not now.
  planet.renew("princeton_soon", 40 * kDay);
  planet.renew("princeton_week", 40 * kDay);
  std::this_thread::sleep_for(3s);
  CHECK(sink.messages().size() == 2);

  // Renewed to 3 days: a new expiry date, within 7 days: its 7-day reminder.
  const auto again = planet.renew("princeton_soon", 3 * kDay - 600);
  mails = sink.awaitMessages(3);
  std::this_thread::sleep_for(2s);
  mails = sink.messages();
  REQUIRE(mails.size() == 3);
  CHECK_THAT(header(mails.back(), "Subject"),
             Catch::Contains("princeton_soon expires in 2 days (" + utc(again) + ")"));
  CHECK(planet.claims("princeton_soon") == std::vector<std::string>{"1 sent", "7 sent"});
  sink.stop();
}

TEST_CASE("with the mail server down the claim is released and a later pass delivers",
          "[plc][pg][mail]") {
  requireAiosmtpd();
  PlcFixture fix;
  Planet planet(fix);
  ScratchDir dir("plc-reminders");
  SmtpSink sink(dir.path() / "maildir", plng::test::pickFreePort());  // not started yet

  planet.slice("princeton_late", {"alice@princeton.edu"}, 10 * kHour);
  auto plcd = configuredPlcd(fix, dir.path() / "plcd.conf", mailConfig(sink));
  for (auto deadline = std::chrono::steady_clock::now() + 20s;
       plcd.log().find("was not mailed") == std::string::npos;) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(100ms);
  }
  // Warned with the reason, naming the step and the server.
  CHECK_THAT(plcd.log(), Catch::Contains("slice princeton_late: the 1-day expiry reminder") &&
                             Catch::Contains("connect to " + sink.server()));
  // Released: no claim stays behind to block later passes.
  std::this_thread::sleep_for(1500ms);
  const auto claims = planet.claims("princeton_late");
  CHECK((claims.empty() || claims == std::vector<std::string>{"1 claimed"}));

  sink.start();
  auto mails = sink.awaitMessages(1);
  std::this_thread::sleep_for(3s);
  mails = sink.messages();
  REQUIRE(mails.size() == 1);
  CHECK(header(mails[0], "X-RcptTo") == "alice@princeton.edu");
  CHECK_THAT(header(mails[0], "Subject"), Catch::Contains("princeton_late"));
  CHECK(planet.claims("princeton_late") == std::vector<std::string>{"1 sent"});
  sink.stop();
}

TEST_CASE("a claim left unsent for an hour is taken over; a fresh one is another plcd's",
          "[plc][pg][mail]") {
  requireAiosmtpd();
  PlcFixture fix;
  Planet planet(fix);
  ScratchDir dir("plc-reminders");
  SmtpSink sink(dir.path() / "maildir", plng::test::pickFreePort());
  sink.start();
  planet.slice("princeton_stale", {"alice@princeton.edu"}, 10 * kHour);
  planet.slice("princeton_busy", {"bob@princeton.edu"}, 10 * kHour);
  // As a plcd leaves them that died mid-mail two hours ago, and one mailing now.
  planet.seed.sql(
      "INSERT INTO slice_reminders (slice_id, expires_at, days_before, claimed_at)"
      " SELECT slice_id, expires_at, 1, now() - interval '2 hours' FROM slices"
      " WHERE name = 'princeton_stale'");
  planet.seed.sql(
      "INSERT INTO slice_reminders (slice_id, expires_at, days_before)"
      " SELECT slice_id, expires_at, 1 FROM slices WHERE name = 'princeton_busy'");

  auto plcd = configuredPlcd(fix, dir.path() / "plcd.conf", mailConfig(sink));
  auto mails = sink.awaitMessages(1);
  std::this_thread::sleep_for(3s);
  mails = sink.messages();
  REQUIRE(mails.size() == 1);
  CHECK_THAT(header(mails[0], "Subject"), Catch::Contains("princeton_stale"));
  CHECK(planet.claims("princeton_stale") == std::vector<std::string>{"1 sent"});
  CHECK(planet.claims("princeton_busy") == std::vector<std::string>{"1 claimed"});
  sink.stop();
}

TEST_CASE("without smtp_server nothing is mailed; smtp_server without smtp_from does not start",
          "[plc][pg][mail]") {
  requireAiosmtpd();
  PlcFixture fix;
  Planet planet(fix);
  ScratchDir dir("plc-reminders");
  SmtpSink sink(dir.path() / "maildir", plng::test::pickFreePort());
  sink.start();
  planet.slice("princeton_quiet", {"alice@princeton.edu"}, 2 * kHour);

  // Reminders off (the default): the pass interval alone changes nothing.
  auto plcd = configuredPlcd(fix, dir.path() / "off.conf", "slice_reminder_interval_s = 1\n");
  std::this_thread::sleep_for(3s);
  CHECK(sink.messages().empty());
  CHECK(planet.claims("princeton_quiet").empty());

  std::ofstream(dir.path() / "nofrom.conf") << "smtp_server = " << sink.server() << "\n";
  const auto refused = runPlcd(fix.plcdPath(), {"--config", (dir.path() / "nofrom.conf").string(),
                                                "--database", fix.connectionString(), "serve"});
  CHECK_FALSE(refused.succeeded());
  CHECK_THAT(refused.output, Catch::Contains("smtp_from must be set when smtp_server is"));
  CHECK(sink.messages().empty());
  sink.stop();
}

// aiosmtpd's Controller with TLS: STARTTLS offered and required before MAIL
// (530 otherwise), so a mail stored went over TLS.
constexpr const char* kTlsSink = R"PY(
import signal, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
port, maildir, cert, key = sys.argv[1:5]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port),
                        tls_context=context, require_starttls=True)
controller.start()
signal.sigwait([signal.SIGTERM, signal.SIGINT])
controller.stop()
)PY";

TEST_CASE("with smtp_starttls mail goes only over TLS to a certificate valid for the host",
          "[plc][pg][mail]") {
  requireAiosmtpd();
  PlcFixture fix;
  Planet planet(fix);
  ScratchDir dir("plc-reminders");
  const auto cert = dir.path() / "cert.pem";
  const auto key = dir.path() / "key.pem";
  REQUIRE(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
                       " -addext subjectAltName=DNS:localhost -keyout " +
                       key.string() + " -out " + cert.string() + " >/dev/null 2>&1")
                          .c_str()) == 0);
  std::ofstream(dir.path() / "tls_sink.py") << kTlsSink;
  const int port = plng::test::pickFreePort();
  SmtpSink sink(dir.path() / "maildir", port,
                {kPython, (dir.path() / "tls_sink.py").string(), std::to_string(port),
                 (dir.path() / "maildir").string(), cert.string(), key.string()});
  sink.start();
  planet.slice("princeton_tls", {"alice@princeton.edu"}, 10 * kHour);
  const std::string tls_config = "smtp_server = localhost:" + std::to_string(port) +
                                 "\n"
                                 "smtp_from = plc@planet.test\n"
                                 "smtp_timeout_s = 5\n"
                                 "smtp_starttls = true\n"
                                 "slice_reminder_interval_s = 1\n";

  SECTION("a certificate no trusted CA signed: nothing sent, the reason logged") {
    auto plcd = configuredPlcd(fix, dir.path() / "untrusted.conf", tls_config);
    for (auto deadline = std::chrono::steady_clock::now() + 20s;
         plcd.log().find("was not mailed") == std::string::npos;) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(100ms);
    }
    CHECK_THAT(plcd.log(), Catch::Contains("STARTTLS: TLS handshake: certificate verify failed"));
    std::this_thread::sleep_for(2s);
    CHECK(sink.messages().empty());
  }
  SECTION("the relay's CA trusted: delivered") {
    auto plcd = configuredPlcd(fix, dir.path() / "trusted.conf",
                               tls_config + "smtp_ca_file = " + cert.string() + "\n");
    const auto mails = sink.awaitMessages(1);
    REQUIRE(mails.size() == 1);
    CHECK(header(mails[0], "X-RcptTo") == "alice@princeton.edu");
    CHECK_THAT(header(mails[0], "Subject"), Catch::Contains("princeton_tls"));
    CHECK(planet.claims("princeton_tls") == std::vector<std::string>{"1 sent"});
  }
  sink.stop();
}
