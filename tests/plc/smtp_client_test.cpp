// plcd's SMTP client and reminder mail without a mail server of record: message
// text (dot-stuffing, headers, header injection refused), the reminder rule and
// its config, and the SMTP exchange against a scripted server on loopback (every
// reply checked, errors naming the step and the server's reply, timeouts).
// The real thing, plcd mailing Debian's aiosmtpd: plc_reminders_test.
#include "plc/smtp_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "plc/config.h"
#include "plc/expiry_reminders.h"

using namespace plng::plc;

namespace {

MailMessage message() {
  return MailMessage{.from = "plc@planet.test",
                     .to = {"alice@princeton.edu", "bob@princeton.edu"},
                     .subject = "PlanetLab slice princeton_x expires in 6 days",
                     .message_id = "slice-reminder.1.2.7d@planet.test",
                     .date = 1796386394,  // 2026-12-04 12:13:14 UTC, a Friday
                     .body = "line one\n.starts with a dot\n\nlast\n"};
}

// A server that answers one connection from a script: for each line the client
// sends, the next reply (the greeting first). It records what it received.
class ScriptedSmtpServer {
 public:
  // `replies[0]` is the greeting; then one reply per command line the client
  // sends, and one after the message's terminating ".". An empty reply: say
  // nothing and keep reading (a silent server).
  explicit ScriptedSmtpServer(std::vector<std::string> replies) : replies_(std::move(replies)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(listener_, 1) == 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedSmtpServer() {
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Everything the client sent, once it has hung up.
  std::string received() {
    thread_.join();
    thread_ = std::thread([] {});
    return received_;
  }

 private:
  void serve() {
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    std::size_t next = 0;
    auto say = [&] {
      if (next >= replies_.size()) return;
      const std::string reply = replies_[next++];
      if (!reply.empty()) (void)!::write(fd, reply.data(), reply.size());
    };
    say();
    bool in_data = false;
    std::string pending;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      received_.append(buf, static_cast<std::size_t>(n));
      pending.append(buf, static_cast<std::size_t>(n));
      for (auto eol = pending.find("\r\n"); eol != std::string::npos; eol = pending.find("\r\n")) {
        const std::string line = pending.substr(0, eol);
        pending.erase(0, eol + 2);
        if (in_data) {
          if (line == ".") {
            in_data = false;
            say();
          }
          continue;
        }
        if (line == "DATA") in_data = true;
        say();
      }
    }
    ::close(fd);
  }

  std::vector<std::string> replies_;
  std::string received_;
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

SmtpOptions options(const std::string& server) {
  return SmtpOptions{.server = server,
                     .helo = "plc.planet.test",
                     .timeout = std::chrono::milliseconds(2000),
                     .starttls = false,
                     .ca_file = ""};
}

std::string errorOf(const SmtpOptions& o, const MailMessage& m) {
  try {
    sendMail(o, m);
  } catch (const MailError& e) {
    return e.what();
  }
  return "(sent)";
}

}  // namespace

TEST_CASE("dot-stuffing: CRLF lines, leading dots doubled, long lines broken", "[plc][mail]") {
  CHECK(dotStuff("") == "");
  CHECK(dotStuff("a") == "a\r\n");
  CHECK(dotStuff("a\n") == "a\r\n");
  CHECK(dotStuff("a\r\nb\rc\n\nd") == "a\r\nb\r\nc\r\n\r\nd\r\n");
  // A line of one "." would end DATA; ".." and ".x" would lose their dot.
  CHECK(dotStuff(".\n..\n.x\nx.\n") == "..\r\n...\r\n..x\r\nx.\r\n");
  const std::string long_line(2500, 'a');
  CHECK(dotStuff(long_line) == std::string(998, 'a') + "\r\n" + std::string(998, 'a') + "\r\n" +
                                   std::string(504, 'a') + "\r\n");
  // Broken at a character boundary: "é" is two octets and never split.
  const std::string accents = std::string(997, 'a') + "\xc3\xa9" + "b";
  CHECK(dotStuff(accents) == std::string(997, 'a') + "\r\n\xc3\xa9" + "b\r\n");
}

TEST_CASE("a mail's text: headers, date, encoded subject", "[plc][mail]") {
  CHECK(mailDate(1796386394) == "Fri, 04 Dec 2026 12:13:14 +0000");
  CHECK(mailDate(0) == "Thu, 01 Jan 1970 00:00:00 +0000");
  CHECK(encodeSubject("plain ascii") == "plain ascii");
  CHECK(encodeSubject("caf\xc3\xa9") == "=?utf-8?B?Y2Fmw6k=?=");

  const std::string text = formatMail(message());
  CHECK(text ==
        "From: plc@planet.test\r\n"
        "To: alice@princeton.edu,\r\n bob@princeton.edu\r\n"
        "Subject: PlanetLab slice princeton_x expires in 6 days\r\n"
        "Date: Fri, 04 Dec 2026 12:13:14 +0000\r\n"
        "Message-ID: <slice-reminder.1.2.7d@planet.test>\r\n"
        "Auto-Submitted: auto-generated\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n"
        "\r\n"
        "line one\r\n..starts with a dot\r\n\r\nlast\r\n");
  auto utf8 = message();
  utf8.body = "d\xc3\xa9j\xc3\xa0\n";
  CHECK_THAT(formatMail(utf8), Catch::Contains("Content-Transfer-Encoding: 8bit\r\n"));
}

TEST_CASE("header injection and bad addresses are refused before anything is sent", "[plc][mail]") {
  auto m = message();
  m.subject = "expires\r\nBcc: everyone@example.com";
  CHECK_THROWS_WITH(formatMail(m), Catch::Contains("Subject") && Catch::Contains("CR, LF"));
  m.subject = "only a LF\nX-Evil: 1";
  CHECK_THROWS_AS(formatMail(m), MailError);
  m = message();
  m.to.push_back("carol@x.edu\r\nBcc: eve@example.com");
  CHECK_THROWS_WITH(formatMail(m), Catch::Contains("To address"));
  m = message();
  m.from = "plc@planet.test> BODY=8BITMIME";
  CHECK_THROWS_WITH(formatMail(m), Catch::Contains("From address"));
  m = message();
  m.to = {"alice@x.edu>\r\nRCPT TO:<eve@example.com"};
  CHECK_THROWS_AS(formatMail(m), MailError);
  m = message();
  m.to.clear();
  CHECK_THROWS_WITH(formatMail(m), Catch::Contains("at least one recipient"));
  m = message();
  m.message_id = "x@y\r\nBcc: eve@example.com";
  CHECK_THROWS_WITH(formatMail(m), Catch::Contains("Message-ID"));
}

TEST_CASE("the SMTP exchange: every command, the text dot-stuffed, then QUIT", "[plc][mail]") {
  ScriptedSmtpServer server({"220 sink ESMTP\r\n", "250-sink\r\n250-8BITMIME\r\n250 SIZE 1000\r\n",
                             "250 ok\r\n", "250 ok\r\n", "250 ok\r\n", "354 go ahead\r\n",
                             "250 queued as 1\r\n", "221 bye\r\n"});
  const auto result = sendMail(options(server.address()), message());
  CHECK(result.refused.empty());
  CHECK(server.received() ==
        "EHLO plc.planet.test\r\n"
        "MAIL FROM:<plc@planet.test>\r\n"
        "RCPT TO:<alice@princeton.edu>\r\n"
        "RCPT TO:<bob@princeton.edu>\r\n"
        "DATA\r\n" +
            formatMail(message()) + ".\r\nQUIT\r\n");
}

TEST_CASE("an 8-bit message is declared to a server that takes 8BITMIME", "[plc][mail]") {
  ScriptedSmtpServer server({"220 sink\r\n", "250-sink\r\n250 8BITMIME\r\n", "250 ok\r\n",
                             "250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 ok\r\n",
                             "221 bye\r\n"});
  auto m = message();
  m.body = "d\xc3\xa9j\xc3\xa0\n";
  sendMail(options(server.address()), m);
  CHECK_THAT(server.received(), Catch::Contains("MAIL FROM:<plc@planet.test> BODY=8BITMIME\r\n"));
}

TEST_CASE("an RFC 821 server refusing EHLO is greeted with HELO", "[plc][mail]") {
  ScriptedSmtpServer server({"220 old\r\n", "500 what?\r\n", "250 hello\r\n", "250 ok\r\n",
                             "250 ok\r\n", "250 ok\r\n", "354 go\r\n", "250 ok\r\n",
                             "221 bye\r\n"});
  sendMail(options(server.address()), message());
  CHECK_THAT(server.received(), Catch::StartsWith("EHLO plc.planet.test\r\nHELO plc.planet.test\r\n"
                                                  "MAIL FROM:"));
}

TEST_CASE("with starttls, a server that does not offer it is told nothing", "[plc][mail]") {
  ScriptedSmtpServer server({"220 s\r\n", "250-s\r\n250 8BITMIME\r\n", "250 ok\r\n"});
  auto o = options(server.address());
  o.starttls = true;
  CHECK(errorOf(o, message()) ==
        "STARTTLS: " + server.address() + " does not offer it (smtp_starttls requires it)");
  CHECK(server.received() == "EHLO plc.planet.test\r\n");
}

TEST_CASE("each failed step is an error naming the step and the server's reply", "[plc][mail]") {
  SECTION("the greeting") {
    ScriptedSmtpServer server({"554 go away\r\n"});
    CHECK(errorOf(options(server.address()), message()) == "greeting: 554 go away");
  }
  SECTION("the sender") {
    ScriptedSmtpServer server({"220 s\r\n", "250 s\r\n", "553 5.1.8 bad sender\r\n"});
    CHECK(errorOf(options(server.address()), message()) ==
          "MAIL FROM <plc@planet.test>: 553 5.1.8 bad sender");
  }
  SECTION("a recipient refused for now: the whole mail is retried later") {
    ScriptedSmtpServer server(
        {"220 s\r\n", "250 s\r\n", "250 ok\r\n", "250 ok\r\n", "451 4.3.0 try later\r\n"});
    CHECK(errorOf(options(server.address()), message()) ==
          "RCPT TO <bob@princeton.edu>: 451 4.3.0 try later");
  }
  SECTION("a recipient refused for good: the others get it") {
    ScriptedSmtpServer server({"220 s\r\n", "250 s\r\n", "250 ok\r\n", "550 5.1.1 no such user\r\n",
                               "250 ok\r\n", "354 go\r\n", "250 ok\r\n", "221 bye\r\n"});
    const auto result = sendMail(options(server.address()), message());
    CHECK(result.refused ==
          std::vector<std::string>{"alice@princeton.edu: 550 5.1.1 no such user"});
  }
  SECTION("every recipient refused") {
    ScriptedSmtpServer server({"220 s\r\n", "250 s\r\n", "250 ok\r\n", "550 no\r\n", "550 no\r\n"});
    CHECK_THAT(errorOf(options(server.address()), message()),
               Catch::StartsWith("RCPT TO: every recipient refused: alice@princeton.edu: 550 no"));
  }
  SECTION("the text, after DATA") {
    ScriptedSmtpServer server({"220 s\r\n", "250 s\r\n", "250 ok\r\n", "250 ok\r\n", "250 ok\r\n",
                               "354 go\r\n", "552-5.3.4 too big\r\n552 5.3.4 really\r\n"});
    CHECK(errorOf(options(server.address()), message()) ==
          "end of DATA: 552 5.3.4 too big 5.3.4 really");
  }
  SECTION("a server that does not answer: a timeout, not a hang") {
    ScriptedSmtpServer server({"220 s\r\n", ""});
    auto o = options(server.address());
    o.timeout = std::chrono::milliseconds(300);
    const auto started = std::chrono::steady_clock::now();
    CHECK(errorOf(o, message()) == "EHLO: no answer within 300 ms");
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  }
  SECTION("what is not an SMTP reply") {
    ScriptedSmtpServer server({"HTTP/1.1 400 Bad Request\r\n"});
    CHECK_THAT(errorOf(options(server.address()), message()),
               Catch::StartsWith("greeting: not an SMTP reply: 'HTTP/1.1"));
  }
}

TEST_CASE("no server listening: the error names the server", "[plc][mail]") {
  // A port that was free a moment ago: nothing listens on it.
  int port = 0;
  {
    ScriptedSmtpServer gone({});
    port = std::stoi(gone.address().substr(gone.address().rfind(':') + 1));
    // Connect once so the server thread ends.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::close(fd);
  }
  CHECK_THAT(errorOf(options("127.0.0.1:" + std::to_string(port)), message()),
             Catch::StartsWith("connect to 127.0.0.1:" + std::to_string(port) + ": ") &&
                 Catch::Contains("refused"));
}

TEST_CASE("reminder thresholds: the nearest one due", "[plc][mail]") {
  CHECK(parseReminderDays("7,1") == std::vector<int>{1, 7});
  CHECK(parseReminderDays(" 14 , 3,1") == std::vector<int>{1, 3, 14});
  CHECK_THROWS_WITH(parseReminderDays("7,0"), Catch::Contains("'0' is not a number of days"));
  CHECK_THROWS_WITH(parseReminderDays("7,x"), Catch::Contains("'x'"));
  CHECK_THROWS_WITH(parseReminderDays("7,7"), "7 is listed twice");
  CHECK_THROWS_AS(parseReminderDays(""), std::invalid_argument);

  const std::vector<int> days{1, 7};
  constexpr std::int64_t kDay = 86400;
  CHECK(dueReminderDays(days, 8 * kDay) == 0);
  CHECK(dueReminderDays(days, 7 * kDay) == 7);
  CHECK(dueReminderDays(days, 2 * kDay) == 7);
  // Within both: only the nearest.
  CHECK(dueReminderDays(days, kDay) == 1);
  CHECK(dueReminderDays(days, 3600) == 1);
  CHECK(dueReminderDays(days, 0) == 0);  // expired: too late
}

TEST_CASE("the reminder mail names the slice, its expiry and how to renew", "[plc][mail]") {
  const SliceReminder reminder{.slice_id = 3,
                               .slice = "princeton_x",
                               .description = "measuring things",
                               .url = "https://example.edu/x",
                               .expires_at = 1796386394 + 23 * 3600,
                               .expires_at_key = "",
                               .days_before = 1,
                               .recipients = {"alice@princeton.edu", "bob@princeton.edu"}};
  ReminderSettings settings{.days = {1, 7},
                            .from = "plc@planet.test",
                            .portal_url = "https://plc.planet.test/",
                            .max_renewal = 8 * 7 * 86400};
  const auto mail = reminderMail(reminder, settings, 1796386394);
  CHECK(mail.from == "plc@planet.test");
  CHECK(mail.to == reminder.recipients);
  CHECK(mail.subject ==
        "PlanetLab slice princeton_x expires in 23 hours (2026-12-05 11:13:14 UTC)");
  CHECK(mail.message_id == "slice-reminder.3.1796469194.1d@planet.test");
  CHECK_THAT(mail.body, Catch::Contains("expires on 2026-12-05 11:13:14 UTC, in 23 hours"));
  CHECK_THAT(mail.body, Catch::Contains("plcctl slice renew princeton_x --expires 2027-01-01"));
  CHECK_THAT(mail.body, Catch::Contains("web portal: https://plc.planet.test/"));
  CHECK_THAT(mail.body, Catch::Contains("URL:         https://example.edu/x"));
  CHECK_THAT(mail.body, Catch::Contains("Description: measuring things"));
  CHECK_THAT(mail.body, Catch::Contains("7 and 1 days before it expires"));
  CHECK_THAT(mail.body, !Catch::Contains("needs a description"));

  auto bare = reminder;
  bare.url.clear();
  CHECK_THAT(reminderMail(bare, settings, 1796386394).body,
             Catch::Contains("needs a description and a URL before its members can renew it"));
}

TEST_CASE("plcd's mail settings: off by default, a From address required", "[plc][config]") {
  const auto defaults = plcdConfigTable().parse("", "t");
  CHECK(defaults.smtp_server.empty());
  CHECK(defaults.slice_reminder_days == "7,1");
  CHECK(defaults.slice_reminder_interval_s == 300);
  CHECK(defaults.smtp_timeout_s == 30);

  CHECK_THROWS_WITH(plcdConfigTable().parse("smtp_server = localhost:25\n", "t"),
                    "t:1: smtp_from must be set when smtp_server is: the From address of slice "
                    "expiry reminders (e.g. smtp_from = plc@planet.example.org)");
  const auto on =
      plcdConfigTable().parse("smtp_server = localhost:25\nsmtp_from = plc@planet.test\n", "t");
  CHECK(on.smtp_server == "localhost:25");
  CHECK_THROWS_WITH(plcdConfigTable().parse("smtp_server = localhost\n", "t"),
                    Catch::StartsWith("t:1: smtp_server: 'localhost' is not host:port"));
  CHECK_THROWS_WITH(plcdConfigTable().parse("smtp_server = localhost:0\n", "t"),
                    Catch::Contains("port must be 1 to 65535"));
  CHECK_THROWS_WITH(plcdConfigTable().parse("smtp_from = not-an-address\n", "t"),
                    Catch::StartsWith("t:1: smtp_from:"));
  CHECK_THROWS_WITH(plcdConfigTable().parse("slice_reminder_days = 7,,1\n", "t"),
                    Catch::StartsWith("t:1: slice_reminder_days:"));
}
