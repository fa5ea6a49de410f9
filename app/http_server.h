// A small HTTP/1.1 server for what the daemons serve to people, browsers and
// scrapers (the node's "who sent this?" page, its sensors, /metrics, PLC's
// portal and JSON API): Boost.Beast, requests bounded in size and time, a
// bounded number of connections, optional TLS, and headers that keep a browser
// strict (a Content-Security-Policy that by default allows no script, style or
// frame). What is served is the caller's handler, called on one of the
// server's threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace plng::app {

struct HttpRequest {
  std::string method;  // "GET", "HEAD", "POST", ...
  std::string target;  // path and query as sent: "/load", "/?dst=1.2.3.4"
  std::vector<std::pair<std::string, std::string>> headers;  // names in lower case
  std::string body;                                          // at most Options::max_body_bytes
  std::string peer;  // the client: "192.0.2.1:5555" or "[2001:db8::1]:5555"

  // The value of header `name` (lower case), "" when absent.
  std::string header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  // Sent as well, after the standard ones; a Content-Security-Policy or
  // Cache-Control here replaces the server's default.
  std::vector<std::pair<std::string, std::string>> headers = {};
};

class HttpServer {
 public:
  // GET and HEAD only (405 otherwise): `target` is the request's path and query.
  // A handler that throws answers 500 with its message.
  using Handler = std::function<HttpResponse(std::string_view target)>;
  // Every method; requests with a body up to Options::max_body_bytes. For HEAD
  // the server sends the headers of the handler's response without its body.
  using RequestHandler = std::function<HttpResponse(const HttpRequest&)>;
  // How the server itself answers a request it refuses before any handler runs
  // (malformed: 400, too large: 413, not allowed: 405): status and reason.
  using ErrorPage = std::function<HttpResponse(int status, std::string_view reason)>;

  struct Options {
    std::string listen = {};      // "address:port" or "[v6address]:port"; port 0: any free port
    std::string config_key = {};  // names the setting in errors ("audit_listen")
    std::string server_name = "plng";                              // the Server header
    std::chrono::milliseconds timeout = std::chrono::seconds(10);  // a whole request
    std::size_t max_connections = 64;
    std::size_t max_request_bytes = 8192;  // request line and headers
    std::size_t max_body_bytes = 0;        // 0: requests with a body are refused (413)
    // Keep a connection open for further requests (HTTP/1.1 keep-alive, up to
    // `timeout` idle); false: one request per connection.
    bool keep_alive = false;
    // Threads running handlers: a handler that blocks holds one.
    unsigned threads = 1;
    // PEM files: both set serves HTTPS only, both empty plain HTTP.
    std::string tls_cert = {};
    std::string tls_key = {};
    ErrorPage error_page = nullptr;  // null: a line of text/plain
  };

  // Listens at once (throws std::runtime_error naming the address and the
  // config key when it cannot, or the file when a TLS file cannot be used) and
  // serves on its own threads until destroyed.
  HttpServer(Handler handler, Options options);
  HttpServer(RequestHandler handler, Options options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;

  struct State;  // the io_context, its threads and the sessions'

  // The policy of every response that does not set its own.
  static constexpr const char* kContentSecurityPolicy =
      "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

 private:
  std::unique_ptr<State> state_;
};

}  // namespace plng::app
