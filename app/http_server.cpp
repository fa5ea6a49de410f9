// GCC's -Wnull-dereference flags Boost.Asio 1.74's scheduler internals once they
// are inlined here (a false positive in a system header's template).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include "app/http_server.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <stdexcept>
#include <thread>

namespace plng::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::State {
  State(Handler serve, Options chosen) : handler(std::move(serve)), options(std::move(chosen)) {}
  Handler handler;
  Options options;
  // Before the io_context: sessions count down as it destroys them.
  std::atomic<std::size_t> connections{0};
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
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

// One connection: one request, one response, then the connection closes.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::State* state)
      : stream_(std::move(socket)), state_(state), buffer_(state->options.max_request_bytes) {
    ++state_->connections;
  }
  ~Session() { --state_->connections; }

  void start() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(state_->options.max_request_bytes));
    parser_->body_limit(0);
    stream_.expires_after(state_->options.timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->onRead(ec); });
  }

 private:
  void onRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout) return close();
    if (ec)
      return respond(http::status::bad_request, "text/plain; charset=utf-8",
                     "bad request: " + ec.message() + "\n", false);
    const auto& request = parser_->get();
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response_.set(http::field::allow, "GET, HEAD");
      return respond(http::status::method_not_allowed, "text/plain; charset=utf-8",
                     "only GET and HEAD\n", false);
    }
    HttpResponse page;
    try {
      page = state_->handler(std::string_view(request.target().data(), request.target().size()));
    } catch (const std::exception& e) {
      page = {500, "text/plain; charset=utf-8", std::string(e.what()) + "\n"};
    }
    respond(static_cast<http::status>(page.status), page.content_type, std::move(page.body),
            request.method() == http::verb::head);
  }

  void respond(http::status status, std::string_view type, std::string body, bool head) {
    response_.version(11);
    response_.result(status);
    response_.set(http::field::server, state_->options.server_name);
    response_.set(http::field::content_type, beast::string_view(type.data(), type.size()));
    response_.set("Content-Security-Policy", HttpServer::kContentSecurityPolicy);
    response_.set("X-Content-Type-Options", "nosniff");
    response_.set("Referrer-Policy", "no-referrer");
    response_.set(http::field::cache_control, "no-store");
    response_.keep_alive(false);
    response_.body() = std::move(body);
    response_.prepare_payload();
    if (head) response_.body().clear();  // Content-Length stays the GET's
    stream_.expires_after(state_->options.timeout);
    http::async_write(
        stream_, response_,
        [self = shared_from_this()](beast::error_code, std::size_t) { self->close(); });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  beast::tcp_stream stream_;
  HttpServer::State* state_;  // outlives every session (they live in its io_context)
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> response_;
};

void accept(HttpServer::State* state) {
  state->acceptor.async_accept([state](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (state->connections.load() < state->options.max_connections)
        std::make_shared<Session>(std::move(socket), state)->start();
      // Past the limit the connection is closed unanswered (socket's destructor).
    }
    accept(state);
  });
}

}  // namespace

HttpServer::HttpServer(Handler handler, Options options)
    : state_(std::make_unique<State>(std::move(handler), std::move(options))) {
  tcp::endpoint endpoint = parseListen(state_->options.listen, state_->options.config_key);
  boost::system::error_code ec;
  state_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) state_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) state_->acceptor.bind(endpoint, ec);
  if (!ec) state_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + state_->options.listen + " (config key " +
                             state_->options.config_key + "): " + ec.message());
  accept(state_.get());
  state_->thread = std::thread([state = state_.get()] { state->io.run(); });
}

HttpServer::~HttpServer() {
  state_->io.stop();
  if (state_->thread.joinable()) state_->thread.join();
}

std::uint16_t HttpServer::port() const { return state_->acceptor.local_endpoint().port(); }

}  // namespace plng::app
