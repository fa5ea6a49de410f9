// GCC's -Wnull-dereference flags Boost.Asio 1.74's scheduler internals once they
// are inlined here (scheduler.ipp, thread_info); the code is Boost's, not ours.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "local_server.h"

#include <sys/stat.h>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <optional>

#include "error.h"
#include "local_protocol.h"

namespace plng::sliverd {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

class LocalApiServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(LocalApiServer& server, stream::socket socket)
      : server_(server), socket_(std::move(socket)) {}

  void start() {
    try {
      peer_ = server_.peers_.identify(socket_.native_handle());
    } catch (const std::exception& e) {
      // Answered on the first request, so the caller learns why.
      refusal_ = std::string("sliverd could not identify the caller: ") + e.what();
    }
    readHeader();
  }

  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  void readHeader() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(header_),
                     [self](const boost::system::error_code& ec, std::size_t) {
                       if (ec) return self->finish();
                       self->readBody();
                     });
  }

  void readBody() {
    std::uint32_t size = 0;
    try {
      size = frameLength(header_.data());
    } catch (const std::exception&) {
      return finish();  // a client that sends garbage loses its connection
    }
    body_.assign(size, '\0');
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(body_),
                     [self](const boost::system::error_code& ec, std::size_t) {
                       if (ec) return self->finish();
                       self->handle();
                     });
  }

  void handle() {
    auto self = shared_from_this();
    asio::post(server_.pool_, [self] {
      std::string response;
      try {
        LocalRequest request = decodeLocalRequest(self->body_);
        if (!self->peer_) {
          response = encodeLocalResponse(
              grpc::Status(grpc::StatusCode::UNAUTHENTICATED, self->refusal_), nullptr);
        } else {
          response = self->server_.service_.handle(*self->peer_, request.method, request.payload);
        }
      } catch (const std::exception& e) {
        response = encodeLocalResponse(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what()),
                                       nullptr);
      }
      self->out_ = frameHeader(response.size()) + response;
      asio::post(self->socket_.get_executor(), [self] { self->write(); });
    });
  }

  void write() {
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_),
                      [self](const boost::system::error_code& ec, std::size_t) {
                        if (ec) return self->finish();
                        self->readHeader();
                      });
  }

  void finish() {
    close();
    std::lock_guard lock(server_.mutex_);
    server_.connections_.erase(shared_from_this());
  }

  LocalApiServer& server_;
  stream::socket socket_;
  std::optional<Peer> peer_;
  std::string refusal_;
  std::array<unsigned char, 4> header_{};
  std::string body_;
  std::string out_;
};

LocalApiServer::LocalApiServer(asio::io_context& io, std::filesystem::path socket_path,
                               LocalService& service, const PeerIdentifier& peers,
                               std::size_t threads)
    : io_(io),
      socket_path_(std::move(socket_path)),
      service_(service),
      peers_(peers),
      pool_(threads),
      acceptor_(io) {}

LocalApiServer::~LocalApiServer() {
  stop();
  pool_.join();
}

void LocalApiServer::start() {
  std::error_code ec;
  std::filesystem::create_directories(socket_path_.parent_path());
  std::filesystem::remove(socket_path_, ec);  // a stale socket from a previous run
  stream::endpoint endpoint(socket_path_.string());
  acceptor_.open(endpoint.protocol());
  acceptor_.bind(endpoint);
  // Access is decided per caller by the kernel's credentials, not by file mode.
  if (::chmod(socket_path_.c_str(), 0666) != 0) node::throwErrno("chmod " + socket_path_.string());
  acceptor_.listen();
  accept();
}

void LocalApiServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      {
        std::lock_guard lock(mutex_);
        if (connections_.size() >= kMaxConnections) {
          // Hoarding connections must not lock everyone else out for long: the
          // newcomer is turned away, and a caller that retries gets in once
          // others finish.
          boost::system::error_code ignored;
          socket.close(ignored);
          accept();
          return;
        }
      }
      auto connection = std::make_shared<Connection>(*this, std::move(socket));
      {
        std::lock_guard lock(mutex_);
        connections_.insert(connection);
      }
      connection->start();
    }
    accept();
  });
}

void LocalApiServer::stop() {
  if (acceptor_.is_open()) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    std::error_code ec;
    std::filesystem::remove(socket_path_, ec);
  }
  std::set<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(mutex_);
    open.swap(connections_);
  }
  for (const auto& connection : open) connection->close();
}

}  // namespace plng::sliverd
