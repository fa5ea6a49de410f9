// A small HTTP/1.1 server for what the daemons serve to people and scrapers
// (the node's "who sent this?" page, its sensors, /metrics): Boost.Beast on a
// thread of its own, GET and HEAD only, requests bounded in size and time, one
// request per connection, a bounded number of connections, and headers that
// keep a browser strict (a Content-Security-Policy that allows no script,
// style or frame). What is served is the caller's Handler: a pure function of
// the request target, called on the server's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace plng::app {

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};

class HttpServer {
 public:
  // `target` is the request's path and query as sent ("/load", "/?dst=1.2.3.4").
  // A handler that throws answers 500 with its message.
  using Handler = std::function<HttpResponse(std::string_view target)>;

  struct Options {
    std::string listen;      // "address:port" or "[v6address]:port"; port 0: any free port
    std::string config_key;  // names the setting in errors ("audit_listen")
    std::string server_name = "plng";                              // the Server header
    std::chrono::milliseconds timeout = std::chrono::seconds(10);  // a whole request
    std::size_t max_connections = 64;
    std::size_t max_request_bytes = 8192;  // request line and headers; no body is taken
  };

  // Listens at once (throws std::runtime_error naming the address and the
  // config key when it cannot) and serves on its own thread until destroyed.
  HttpServer(Handler handler, Options options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;

  struct State;  // the io_context, its thread and the sessions'

  // The headers every response carries.
  static constexpr const char* kContentSecurityPolicy =
      "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

 private:
  std::unique_ptr<State> state_;
};

}  // namespace plng::app
