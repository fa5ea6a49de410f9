// The HTTP server of the node's "who sent this?" pages (AuditPages; docs/vnet.md,
// "Flow auditing"): Boost.Beast on a thread of its own, GET and HEAD only,
// requests bounded in size and time, one request per connection, a bounded
// number of connections, and headers that keep a browser strict (a
// Content-Security-Policy that allows no script, style or frame).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "sliverd/vnet/audit_page.h"

namespace plng::sliverd {

class AuditServer {
 public:
  struct Options {
    std::string listen;  // "address:port" or "[v6address]:port"; port 0: any free port
    std::chrono::milliseconds timeout = std::chrono::seconds(10);  // a whole request
    std::size_t max_connections = 64;
    std::size_t max_request_bytes = 8192;  // request line and headers; no body is taken
  };

  // Listens at once (throws std::runtime_error naming the address when it
  // cannot) and serves on its own thread until destroyed.
  AuditServer(const AuditPages& pages, Options options);
  ~AuditServer();
  AuditServer(const AuditServer&) = delete;
  AuditServer& operator=(const AuditServer&) = delete;

  std::uint16_t port() const;

  struct State;  // the io_context, its thread and the sessions'

  // The headers every response carries.
  static constexpr const char* kContentSecurityPolicy =
      "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

 private:
  std::unique_ptr<State> state_;
};

}  // namespace plng::sliverd
