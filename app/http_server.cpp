// GCC's -Wnull-dereference flags Boost.Asio 1.74's scheduler internals once they
// are inlined here (a false positive in a system header's template).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "app/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>

namespace plng::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

struct HttpServer::State {
  State(RequestHandler serve, bool only_get_and_head, Options chosen)
      : handler(std::move(serve)), get_only(only_get_and_head), options(std::move(chosen)) {}
  RequestHandler handler;
  bool get_only;
  Options options;
  // Before the io_context: sessions count down as it destroys them.
  std::atomic<std::size_t> connections{0};
  asio::io_context io;
  std::optional<ssl::context> tls;
  tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
};

namespace {

// "address:port" or "[v6address]:port".
tcp::endpoint parseListen(const std::string& listen, const std::string& key) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw std::runtime_error(key + " " + listen + ": expected address:port");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error(key + " " + listen + ": " + host + " is not an address");
  unsigned long port = 0;
  try {
    std::size_t used = 0;
    port = std::stoul(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || port > 65535) throw std::invalid_argument("port");
  } catch (const std::exception&) {
    throw std::runtime_error(key + " " + listen + ": bad port");
  }
  return tcp::endpoint(address, static_cast<unsigned short>(port));
}

std::string describePeer(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "";
  auto address = endpoint.address().to_string();
  if (endpoint.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(endpoint.port());
}

HttpResponse plainErrorPage(int status, std::string_view reason) {
  return {status, "text/plain; charset=utf-8", std::string(reason) + "\n"};
}

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One connection: requests read and answered in turn (one, or more with
// keep-alive). Its socket's executor is a strand, so that the stream's timer and
// its operations never run at once on two of the server's threads.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Session(Stream stream, HttpServer::State* state)
      : stream_(std::move(stream)),
        state_(state),
        buffer_(state->options.max_request_bytes + state->options.max_body_bytes) {
    ++state_->connections;
  }
  ~Session() { --state_->connections; }

  void start() {
    peer_ = describePeer(beast::get_lowest_layer(stream_).socket());
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(state_->options.timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->read();
                              });
    } else {
      read();
    }
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(state_->options.max_request_bytes));
    parser_->body_limit(state_->options.max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(state_->options.timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == ssl::error::stream_truncated)
      return close();
    if (ec == http::error::body_limit) {
      return refuse(413, "request body larger than " +
                             std::to_string(state_->options.max_body_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return refuse(431, "request line and headers larger than " +
                             std::to_string(state_->options.max_request_bytes) + " bytes");
    }
    if (ec) return refuse(400, "bad request: " + ec.message());
    auto& message = parser_->get();
    const bool head = message.method() == http::verb::head;
    if (state_->get_only && message.method() != http::verb::get && !head) {
      auto page = errorPage(405, "only GET and HEAD");
      page.headers.emplace_back("Allow", "GET, HEAD");
      return respond(std::move(page), false, false);
    }
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.peer = peer_;
    for (const auto& field : message) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      request.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    request.body = std::move(message.body());
    HttpResponse page;
    try {
      page = state_->handler(request);
    } catch (const std::exception& e) {
      page = {500, "text/plain; charset=utf-8", std::string(e.what()) + "\n"};
    }
    respond(std::move(page), head, state_->options.keep_alive && message.keep_alive());
  }

  HttpResponse errorPage(int status, std::string_view reason) const {
    return state_->options.error_page ? state_->options.error_page(status, reason)
                                      : plainErrorPage(status, reason);
  }

  // Answers a request the server will not hand to the handler, then closes. The
  // client may still be sending (a body over the limit): closing a socket with
  // unread data resets the connection, which can destroy the answer before the
  // client reads it, so the connection stops sending and reads the rest away
  // first (bounded in bytes and time).
  void refuse(int status, std::string_view reason) {
    lingering_ = true;
    respond(errorPage(status, reason), false, false);
  }

  void respond(HttpResponse page, bool head, bool keep_alive) {
    response_.emplace();
    auto& response = *response_;
    response.version(11);
    response.result(static_cast<http::status>(page.status));
    response.set(http::field::server, state_->options.server_name);
    response.set(http::field::content_type, page.content_type);
    response.set("Content-Security-Policy", HttpServer::kContentSecurityPolicy);
    response.set("X-Content-Type-Options", "nosniff");
    response.set("Referrer-Policy", "no-referrer");
    response.set(http::field::cache_control, "no-store");
    for (auto& [name, value] : page.headers) response.set(name, value);
    response.keep_alive(keep_alive);
    response.body() = std::move(page.body);
    response.prepare_payload();
    if (head) response.body().clear();  // Content-Length stays the GET's
    beast::get_lowest_layer(stream_).expires_after(state_->options.timeout);
    http::async_write(
        stream_, response,
        [self = this->shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
          if (!ec && keep_alive) return self->read();
          self->close();
        });
  }

  void close() {
    if (lingering_) {
      lingering_ = false;
      if constexpr (!kTls) {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.expires_after(std::chrono::seconds(2));
        return drain(0);
      }
    }
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(1));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {
        beast::error_code ignored;
        beast::get_lowest_layer(self->stream_)
            .socket()
            .shutdown(tcp::socket::shutdown_both, ignored);
      });
    } else {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
  }

  // Reads and drops what the client still sends, up to kDrainBytes (lingering close).
  void drain(std::size_t drained) {
    static constexpr std::size_t kDrainBytes = 8 << 20;
    stream_.async_read_some(asio::buffer(discard_), [self = this->shared_from_this(), drained](
                                                        beast::error_code ec, std::size_t n) {
      if (!ec && drained + n < kDrainBytes) self->drain(drained + n);
    });
  }

  Stream stream_;
  bool lingering_ = false;
  std::array<char, 16384> discard_{};
  HttpServer::State* state_;  // outlives every session (they live in its io_context)
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
};

void accept(HttpServer::State* state) {
  state->acceptor.async_accept(asio::make_strand(state->io), [state](beast::error_code ec,
                                                                     tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    // Past the limit the connection is closed unanswered (socket's destructor).
    if (!ec && state->connections.load() < state->options.max_connections) {
      if (state->tls) {
        std::make_shared<Session<TlsStream>>(
            TlsStream(beast::tcp_stream(std::move(socket)), *state->tls), state)
            ->start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), state)
            ->start();
      }
    }
    accept(state);
  });
}

void loadTls(HttpServer::State& state) {
  const auto& options = state.options;
  if (options.tls_cert.empty() && options.tls_key.empty()) return;
  if (options.tls_cert.empty() || options.tls_key.empty())
    throw std::runtime_error("HTTPS on " + options.listen +
                             " needs both a certificate and a key file");
  state.tls.emplace(ssl::context::tls_server);
  state.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  state.tls->use_certificate_chain_file(options.tls_cert, ec);
  if (ec)
    throw std::runtime_error("cannot use TLS certificate " + options.tls_cert + ": " +
                             ec.message());
  state.tls->use_private_key_file(options.tls_key, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("cannot use TLS key " + options.tls_key + ": " + ec.message());
}

void startServing(HttpServer::State& state) {
  loadTls(state);
  tcp::endpoint endpoint = parseListen(state.options.listen, state.options.config_key);
  boost::system::error_code ec;
  state.acceptor.open(endpoint.protocol(), ec);
  if (!ec) state.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) state.acceptor.bind(endpoint, ec);
  if (!ec) state.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + state.options.listen + " (config key " +
                             state.options.config_key + "): " + ec.message());
  accept(&state);
  for (unsigned i = 0; i < std::max(1u, state.options.threads); ++i)
    state.threads.emplace_back([&state] { state.io.run(); });
}

}  // namespace

HttpServer::HttpServer(Handler handler, Options options)
    : state_(std::make_unique<State>(
          [serve = std::move(handler)](const HttpRequest& request) {
            return serve(request.target);
          },
          /*only_get_and_head=*/true, std::move(options))) {
  startServing(*state_);
}

HttpServer::HttpServer(RequestHandler handler, Options options)
    : state_(std::make_unique<State>(std::move(handler), /*only_get_and_head=*/false,
                                     std::move(options))) {
  startServing(*state_);
}

HttpServer::~HttpServer() {
  state_->io.stop();
  for (auto& thread : state_->threads) thread.join();
}

std::uint16_t HttpServer::port() const { return state_->acceptor.local_endpoint().port(); }

}  // namespace plng::app
