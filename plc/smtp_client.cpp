// GCC's -Wnull-dereference flags Boost.Asio 1.74's scheduler internals once they
// are inlined here (a false positive in a system header's template), as in
// app/http_server.cpp.
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "plc/smtp_client.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <memory>

namespace plng::plc {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets, CRLF included.
constexpr std::size_t kMaxLineOctets = 998;
// A reply longer than this (all its lines) is not an SMTP server's.
constexpr std::size_t kMaxReplyBytes = 64 * 1024;
// Reply text quoted in errors; servers' texts are short, a hostile one need not be.
constexpr std::size_t kMaxQuotedReply = 512;

bool isContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

bool isPrintableAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

bool isAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// A server's reply text as it may appear in a log line: control characters
// replaced, length bounded.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxQuotedReply)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (text.size() > kMaxQuotedReply) out += "...";
  return out;
}

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // each line's text after the code and separator

  std::string describe() const {
    std::string text = std::to_string(code);
    for (const auto& line : lines) {
      if (!line.empty()) text += " " + line;
    }
    return printable(text);
  }
  bool positive() const { return code >= 200 && code < 400; }
};

// One SMTP connection with a deadline on every step. Asio's blocking calls have
// no timeout, so each step is an asynchronous operation run for at most the
// timeout; one that has not completed by then closes the socket.
class SmtpConnection {
 public:
  explicit SmtpConnection(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  void connect(const SmtpServerAddress& address, const std::string& server) {
    const std::string step = "connect to " + server;
    tcp::resolver resolver(io_);
    boost::system::error_code error;
    tcp::resolver::results_type endpoints;
    bool done = false;
    resolver.async_resolve(address.host, std::to_string(address.port),
                           [&](const boost::system::error_code& ec, tcp::resolver::results_type r) {
                             error = ec;
                             endpoints = std::move(r);
                             done = true;
                           });
    run(step, done, [&] { resolver.cancel(); });
    if (error) throw MailError(step + ": " + error.message());
    done = false;
    asio::async_connect(socket_, endpoints,
                        [&](const boost::system::error_code& ec, const tcp::endpoint&) {
                          error = ec;
                          done = true;
                        });
    run(step, done, [&] { closeSocket(); });
    if (error) throw MailError(step + ": " + error.message());
  }

  void send(const std::string& step, std::string_view data) {
    boost::system::error_code error;
    bool done = false;
    onStream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(data.data(), data.size()),
                        [&](const boost::system::error_code& ec, std::size_t) {
                          error = ec;
                          done = true;
                        });
    });
    run(step, done, [&] { closeSocket(); });
    if (error) throw MailError(step + ": " + error.message());
  }

  // A reply: lines "250-text" until one "250 text" (RFC 5321 4.2.1).
  Reply reply(const std::string& step) {
    Reply reply;
    std::size_t bytes = 0;
    for (;;) {
      std::string line = readLine(step);
      bytes += line.size();
      if (bytes > kMaxReplyBytes) throw MailError(step + ": the server's reply is too long");
      if (line.size() < 3 || !std::all_of(line.begin(), line.begin() + 3,
                                          [](char c) { return c >= '0' && c <= '9'; })) {
        throw MailError(step + ": not an SMTP reply: '" + printable(line) + "'");
      }
      const int code = std::stoi(line.substr(0, 3));
      if (reply.code != 0 && code != reply.code) {
        throw MailError(step + ": a reply's lines disagree on its code: '" + printable(line) + "'");
      }
      reply.code = code;
      reply.lines.push_back(line.size() > 4 ? line.substr(4) : "");
      if (line.size() == 3 || line[3] == ' ') return reply;
      if (line[3] != '-') throw MailError(step + ": not an SMTP reply: '" + printable(line) + "'");
    }
  }

  Reply command(const std::string& step, const std::string& line) {
    send(step, line + "\r\n");
    return reply(step);
  }

  // After the server's 220 to STARTTLS: the TLS handshake, the certificate
  // checked against the CAs (`ca_file`, or the system's) and `host`.
  void startTls(const std::string& host, const std::string& ca_file) {
    const std::string step = "STARTTLS";
    boost::system::error_code error;
    if (ca_file.empty()) {
      tls_context_.set_default_verify_paths(error);
    } else {
      tls_context_.load_verify_file(ca_file, error);
    }
    if (error) throw MailError(step + ": CA certificates " + ca_file + ": " + error.message());
    tls_context_.set_verify_mode(asio::ssl::verify_peer);
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, tls_context_);
    tls_->set_verify_callback(asio::ssl::host_name_verification(host));
    // SNI: a relay serving several names picks the certificate by it.
    // (SSL_set_tlsext_host_name spelt out: the macro's C cast would trip -Wold-style-cast.)
    SSL_ctrl(tls_->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(host.c_str()));
    bool done = false;
    tls_->async_handshake(asio::ssl::stream_base::client, [&](const boost::system::error_code& ec) {
      error = ec;
      done = true;
    });
    run(step, done, [&] { closeSocket(); });
    if (error) throw MailError(step + ": TLS handshake: " + error.message());
  }

 private:
  template <class Start>
  void onStream(Start&& start) {
    if (tls_) {
      start(*tls_);
    } else {
      start(socket_);
    }
  }

  std::string readLine(const std::string& step) {
    boost::system::error_code error;
    std::size_t length = 0;
    bool done = false;
    // Lines end in CRLF; a bare LF is taken as one too (and the CR dropped).
    onStream([&](auto& stream) {
      asio::async_read_until(stream, asio::dynamic_buffer(buffer_, kMaxReplyBytes), '\n',
                             [&](const boost::system::error_code& ec, std::size_t n) {
                               error = ec;
                               length = n;
                               done = true;
                             });
    });
    run(step, done, [&] { closeSocket(); });
    if (error == asio::error::not_found) throw MailError(step + ": the server's reply is too long");
    if (error == asio::error::eof) throw MailError(step + ": the server closed the connection");
    if (error) throw MailError(step + ": " + error.message());
    std::string line = buffer_.substr(0, length - 1);
    buffer_.erase(0, length);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }

  // Runs the pending operation until it completes (`done`) or the timeout passes;
  // then `abandon` cancels it, its handler runs, and this throws.
  template <class Abandon>
  void run(const std::string& step, const bool& done, Abandon&& abandon) {
    io_.restart();
    io_.run_for(timeout_);
    if (done) return;
    abandon();
    io_.restart();
    io_.run();
    throw MailError(step + ": no answer within " + std::to_string(timeout_.count()) + " ms");
  }

  void closeSocket() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  std::chrono::milliseconds timeout_;
  asio::io_context io_;
  tcp::socket socket_{io_};
  asio::ssl::context tls_context_{asio::ssl::context::tls_client};
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;  // after STARTTLS
  std::string buffer_;
};

// The ESMTP extensions an EHLO reply lists (the lines after the first).
bool offers(const Reply& ehlo, std::string_view extension) {
  for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
    const std::string& line = ehlo.lines[i];
    if (line.size() >= extension.size() &&
        std::equal(
            extension.begin(), extension.end(), line.begin(),
            [](char a, char b) { return a == std::toupper(static_cast<unsigned char>(b)); }) &&
        (line.size() == extension.size() || line[extension.size()] == ' ')) {
      return true;
    }
  }
  return false;
}

Reply expect(Reply reply, const std::string& step, int code) {
  if (reply.code != code) throw MailError(step + ": " + reply.describe());
  return reply;
}

}  // namespace

std::string mailDate(std::int64_t unix_seconds) {
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) throw MailError("date " + std::to_string(unix_seconds));
  std::array<char, 128> text{};
  std::snprintf(text.data(), text.size(), "%s, %02d %s %04d %02d:%02d:%02d +0000",
                kDays.at(static_cast<std::size_t>(tm.tm_wday)), tm.tm_mday,
                kMonths.at(static_cast<std::size_t>(tm.tm_mon)), tm.tm_year + 1900, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
  return text.data();
}

void checkHeaderValue(std::string_view header, std::string_view value) {
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
    throw MailError("mail header " + std::string(header) +
                    ": a value may not hold CR, LF or NUL (it would end the header and start "
                    "another)");
  }
}

void checkMailAddress(std::string_view what, std::string_view address) {
  const auto at = address.rfind('@');
  const bool plain = std::all_of(address.begin(), address.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '<' && c != '>' && c != ',';
  });
  if (address.empty() || address.size() > 254 || !plain || at == std::string_view::npos ||
      at == 0 || at + 1 == address.size()) {
    throw MailError(std::string(what) + " '" + printable(address) +
                    "' is not a mail address SMTP can carry (like alice@example.edu)");
  }
}

std::string encodeSubject(std::string_view subject) {
  if (isPrintableAscii(subject)) return std::string(subject);
  // 45 bytes are 60 base64 characters: with "=?utf-8?B?" and "?=", 72 of the 75
  // an encoded-word may have (RFC 2047 2). Chunks end at a character boundary.
  constexpr std::size_t kChunk = 45;
  std::string out;
  while (!subject.empty()) {
    std::size_t n = std::min(kChunk, subject.size());
    while (n < subject.size() && n > 0 && isContinuationByte(subject[n])) --n;
    if (n == 0) n = std::min(kChunk, subject.size());
    if (!out.empty()) out += "\n ";
    out += "=?utf-8?B?" + base64(subject.substr(0, n)) + "?=";
    subject.remove_prefix(n);
  }
  return out;
}

std::string dotStuff(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32 + 8);
  auto emit = [&](std::string_view line) {
    if (line.starts_with('.')) out += '.';
    out += line;
    out += "\r\n";
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t end = text.find_first_of("\r\n", i);
    std::string_view line = text.substr(i, end == std::string_view::npos ? end : end - i);
    for (;;) {
      const std::size_t limit = kMaxLineOctets - (line.starts_with('.') ? 1 : 0);
      if (line.size() <= limit) break;
      std::size_t cut = limit;
      while (cut > 0 && isContinuationByte(line[cut])) --cut;
      if (cut == 0) cut = limit;
      emit(line.substr(0, cut));
      line.remove_prefix(cut);
    }
    emit(line);
    if (end == std::string_view::npos) break;
    i = end + (text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n' ? 2 : 1);
  }
  return out;
}

std::string formatMail(const MailMessage& message) {
  checkMailAddress("From address", message.from);
  if (message.to.empty()) throw MailError("a mail needs at least one recipient");
  for (const auto& to : message.to) checkMailAddress("To address", to);
  checkHeaderValue("Subject", message.subject);
  checkHeaderValue("Message-ID", message.message_id);
  checkMailAddress("Message-ID", message.message_id);

  // Lines end in "\n" here; dotStuff makes them CRLF. A long To: is folded after
  // each address (RFC 5322 2.2.3).
  std::string text = "From: " + message.from + "\n";
  text += "To: ";
  for (std::size_t i = 0; i < message.to.size(); ++i) {
    text += message.to[i];
    text += i + 1 < message.to.size() ? ",\n " : "\n";
  }
  text += "Subject: " + encodeSubject(message.subject) + "\n";
  text += "Date: " + mailDate(message.date) + "\n";
  text += "Message-ID: <" + message.message_id + ">\n";
  // RFC 3834: vacation and other auto-responders do not answer it.
  text += "Auto-Submitted: auto-generated\n";
  text += "MIME-Version: 1.0\n";
  text += "Content-Type: text/plain; charset=utf-8\n";
  text +=
      std::string("Content-Transfer-Encoding: ") + (isAscii(message.body) ? "7bit" : "8bit") + "\n";
  text += "\n";
  text += message.body;
  return dotStuff(text);
}

SmtpServerAddress parseSmtpServer(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    throw std::invalid_argument("'" + std::string(text) + "' is not host:port");
  }
  std::string host(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const bool digits =
      !port_text.empty() && port_text.size() <= 5 &&
      std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) port = static_cast<unsigned>(std::stoul(std::string(port_text)));
  if (!digits || port == 0 || port > 65535) {
    throw std::invalid_argument("'" + std::string(text) + "': the port must be 1 to 65535");
  }
  if (host.empty() || !isPrintableAscii(host) || host.find(' ') != std::string::npos) {
    throw std::invalid_argument("'" + std::string(text) + "': bad host name");
  }
  return {std::move(host), static_cast<std::uint16_t>(port)};
}

SmtpResult sendMail(const SmtpOptions& options, const MailMessage& message) {
  const std::string data = formatMail(message) + ".\r\n";
  SmtpServerAddress address;
  try {
    address = parseSmtpServer(options.server);
  } catch (const std::invalid_argument& e) {
    throw MailError(std::string("smtp server ") + e.what());
  }
  if (options.helo.empty() || !isPrintableAscii(options.helo) ||
      options.helo.find(' ') != std::string::npos) {
    throw MailError("HELO name '" + printable(options.helo) + "' is not a host name");
  }

  SmtpConnection smtp(options.timeout);
  smtp.connect(address, options.server);
  expect(smtp.reply("greeting"), "greeting", 220);
  Reply ehlo = smtp.command("EHLO", "EHLO " + options.helo);
  if (ehlo.code >= 500 && !options.starttls) {
    // An RFC 821 server: no extensions.
    expect(smtp.command("HELO", "HELO " + options.helo), "HELO", 250);
  } else {
    expect(ehlo, "EHLO", 250);
  }
  if (options.starttls) {
    if (!offers(ehlo, "STARTTLS")) {
      throw MailError("STARTTLS: " + options.server +
                      " does not offer it (smtp_starttls requires it)");
    }
    expect(smtp.command("STARTTLS", "STARTTLS"), "STARTTLS", 220);
    smtp.startTls(address.host, options.ca_file);
    // RFC 3207 4.2: what the server said before TLS is forgotten.
    ehlo = expect(smtp.command("EHLO", "EHLO " + options.helo), "EHLO", 250);
  }
  const bool eight_bit_mime = ehlo.code == 250 && offers(ehlo, "8BITMIME");

  // 8-bit text is declared where the server says it takes it; a server without
  // 8BITMIME gets it undeclared, as most relays accept it anyway.
  const std::string body_type = eight_bit_mime && !isAscii(data) ? " BODY=8BITMIME" : "";
  const std::string mail_from = "MAIL FROM:<" + message.from + ">";
  expect(smtp.command("MAIL FROM", mail_from + body_type), "MAIL FROM <" + message.from + ">", 250);

  SmtpResult result;
  std::size_t accepted = 0;
  for (const auto& to : message.to) {
    const std::string step = "RCPT TO <" + to + ">";
    const Reply reply = smtp.command(step, "RCPT TO:<" + to + ">");
    if (reply.code == 250 || reply.code == 251) {
      ++accepted;
    } else if (reply.code >= 500) {
      result.refused.push_back(to + ": " + reply.describe());
    } else {
      throw MailError(step + ": " + reply.describe());
    }
  }
  if (accepted == 0) {
    std::string reasons;
    for (const auto& refused : result.refused) reasons += (reasons.empty() ? "" : "; ") + refused;
    throw MailError("RCPT TO: every recipient refused: " + reasons);
  }
  expect(smtp.command("DATA", "DATA"), "DATA", 354);
  smtp.send("message text", data);
  expect(smtp.reply("end of DATA"), "end of DATA", 250);
  // The server has taken the message: a failed QUIT must not make the caller
  // send it again.
  try {
    smtp.command("QUIT", "QUIT");
  } catch (const MailError&) {
  }
  return result;
}

}  // namespace plng::plc
