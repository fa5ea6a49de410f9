// A small SMTP client for plcd's mail (slice expiry reminders): SMTP (RFC 5321)
// without authentication, meant for a relay on the PLC host or its network (an
// MTA such as Postfix or Exim listening on loopback), which queues, retries and
// delivers. Plain by default; with `starttls` the connection must turn to TLS
// (RFC 3207) with a certificate valid for the server's host name before
// anything is sent. One connection per message: EHLO (HELO if the server does
// not know EHLO), [STARTTLS, EHLO,] MAIL FROM, RCPT TO for each recipient,
// DATA, QUIT; every reply is checked, and each blocking step has a timeout.
//
// The message text (RFC 5322) is built by formatMail; its pieces are functions of
// their own so tests can check them without a server.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace plng::plc {

// A message refused before anything is sent (a header value with CR or LF, an
// address that cannot be written in a command), or an SMTP exchange that failed:
// the message names the step and the server's reply ("RCPT TO <a@b.c>: 550 5.1.1
// no such user"), or the connection's error.
class MailError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct MailMessage {
  std::string from;             // an address: alice@example.edu
  std::vector<std::string> to;  // addresses, each also a recipient of the envelope
  std::string subject;          // UTF-8; no CR or LF
  std::string message_id;       // without angle brackets: id@domain
  std::int64_t date = 0;        // unix seconds
  std::string body;             // UTF-8 text, lines ending in "\n"
};

// "Fri, 04 Dec 2026 13:33:14 +0000" (RFC 5322 date-time, in UTC), whatever the locale.
std::string mailDate(std::int64_t unix_seconds);

// Throws MailError naming `header` if `value` holds a CR, LF or NUL: a header
// value must never end its header and start another (header injection).
void checkHeaderValue(std::string_view header, std::string_view value);

// Throws MailError unless `address` can be written in MAIL FROM and RCPT TO: a
// local part and a domain, no blanks, control characters, '<' or '>'.
void checkMailAddress(std::string_view what, std::string_view address);

// A subject made of printable ASCII is kept as is; any other is encoded as
// RFC 2047 encoded-words ("=?utf-8?B?...?="), at most 75 characters each.
std::string encodeSubject(std::string_view subject);

// `text` as SMTP's DATA carries it: every line ending in CRLF (a bare "\n" or
// "\r" becomes CRLF), lines longer than 998 octets broken (at a UTF-8 character
// boundary), and a '.' at the start of a line doubled (RFC 5321 4.5.2). The
// terminating ".\r\n" is not included.
std::string dotStuff(std::string_view text);

// The whole message, headers and body, as DATA sends it (dot-stuffed, lines in
// CRLF, without the final ".\r\n"): From, To, Subject, Date, Message-ID,
// MIME-Version, Content-Type text/plain; charset=utf-8, Content-Transfer-Encoding.
// Throws MailError for a header value with CR or LF or a bad address.
std::string formatMail(const MailMessage& message);

// "host:port" (or "[v6]:port") split; throws std::invalid_argument saying why.
struct SmtpServerAddress {
  std::string host;
  std::uint16_t port = 0;
};
SmtpServerAddress parseSmtpServer(std::string_view text);

struct SmtpOptions {
  std::string server;                        // host:port
  std::string helo;                          // the name this client gives in EHLO/HELO
  std::chrono::milliseconds timeout{30000};  // for connecting and for each reply
  // Require STARTTLS: a server that does not offer it, or whose certificate is
  // not valid for `server`'s host, gets nothing.
  bool starttls = false;
  std::string ca_file;  // PEM CA certificates trusted for it; empty: the system's
};

struct SmtpResult {
  // Recipients the server refused for good (a 5xx reply to RCPT TO), each with
  // the reply; the message went to the others.
  std::vector<std::string> refused;
};

// Sends `message` to every address of message.to. Throws MailError when it was
// not accepted: no connection, a timeout, a refusal of the sender or of DATA, a
// temporary (4xx) refusal of a recipient, or every recipient refused.
SmtpResult sendMail(const SmtpOptions& options, const MailMessage& message);

}  // namespace plng::plc
