// GCC's -Wnull-dereference flags Boost.Asio 1.74's scheduler internals once they
// are inlined here (scheduler.ipp, thread_info); the code is Boost's, not ours.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "sliverd/local/local_server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <thread>

#include "base/error.h"
#include "base/fd.h"
#include "sliverd/local/local_protocol.h"

namespace plng::sliverd {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

namespace {

void setCloseOnExec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
    plng::base::throwErrno("FD_CLOEXEC on a local API socket");
  }
}

std::string callerName(const Peer& peer) {
  switch (peer.kind) {
    case Peer::Kind::kSliver:
      return "slice " + peer.slice;
    case Peer::Kind::kHostRoot:
      return "host root";
    case Peer::Kind::kHostUser:
      break;
  }
  return "host user " + std::to_string(peer.uid);
}

std::string refusalFrame(grpc::StatusCode code, const std::string& message) {
  const std::string body = encodeLocalResponse(grpc::Status(code, message), nullptr);
  return frameHeader(body.size()) + body;
}

}  // namespace

struct LocalApiServer::Caller {
  Caller(std::string n, bool root, std::shared_ptr<asio::thread_pool> p)
      : name(std::move(n)), host_root(root), pool(std::move(p)), strand(asio::make_strand(*pool)) {}
  std::string name;
  bool host_root;
  // The pool outlives the strand on it: a connection's handler still queued in the
  // io_context when the server is destroyed holds its caller, and so the strand.
  std::shared_ptr<asio::thread_pool> pool;
  Strand strand;         // this caller's requests run one at a time
  std::size_t open = 0;  // its open connections
  bool warned = false;   // its limit was logged (until it holds none)
};

class LocalApiServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(LocalApiServer& server, stream::socket socket, Peer peer,
             std::shared_ptr<Caller> caller)
      : server_(server),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        peer_(std::move(peer)),
        caller_(std::move(caller)) {}

  void start() {
    boost::system::error_code ignored;
    // Reads are done by hand once the socket is readable, so that a read never
    // blocks the loop and takes only what has arrived.
    socket_.non_blocking(true, ignored);
    awaitFrame();
  }

  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
    disarm();
  }

  const std::string& caller() const { return caller_->name; }

 private:
  // --- deadlines: one timer, re-armed per phase; a stale expiry is ignored ---
  void arm(std::chrono::milliseconds after) {
    const std::uint64_t generation = ++deadline_generation_;
    timer_.expires_after(after);
    std::weak_ptr<Connection> weak = shared_from_this();
    timer_.async_wait([weak, generation](const boost::system::error_code& ec) {
      auto self = weak.lock();
      // Re-armed or cancelled meanwhile (an expiry may already have been queued).
      if (ec || !self || generation != self->deadline_generation_) return;
      self->finish();
    });
  }
  void disarm() {
    ++deadline_generation_;
    timer_.cancel();
  }

  // --- reading a request ---
  void awaitFrame() {
    header_got_ = 0;
    expected_ = 0;
    body_ = std::string();  // an idle connection holds no buffer
    arm(server_.limits_.idle_timeout);
    waitReadable(&Connection::readHeader);
  }

  void waitReadable(void (Connection::*next)()) {
    auto self = shared_from_this();
    socket_.async_wait(stream::socket::wait_read,
                       [self, next](const boost::system::error_code& ec) {
                         if (ec) return self->finish();
                         ((*self).*next)();
                       });
  }

  void readHeader() {
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(
        asio::buffer(header_.data() + header_got_, header_.size() - header_got_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      return waitReadable(&Connection::readHeader);
    }
    if (ec) return finish();  // end of file included
    // The frame's first byte: from now on the whole request has frame_timeout.
    if (header_got_ == 0) arm(server_.limits_.frame_timeout);
    header_got_ += n;
    if (header_got_ < header_.size()) return waitReadable(&Connection::readHeader);
    try {
      expected_ = frameLength(header_.data(), kMaxLocalRequest);
    } catch (const std::exception&) {
      // Refused before anything is read or allocated for the body; the stream
      // cannot be resynchronised, so the connection ends after the answer.
      const std::uint32_t announced = frameLength(header_.data(), UINT32_MAX);
      return answer(
          encodeLocalResponse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                           "a local API request of " + std::to_string(announced) +
                                               " bytes exceeds the limit of " +
                                               std::to_string(kMaxLocalRequest) + " bytes"),
                              nullptr),
          /*close_after=*/true);
    }
    readBody();
  }

  void readBody() {
    while (body_.size() < expected_) {
      boost::system::error_code ec;
      const std::size_t ready = socket_.available(ec);
      if (ec) return finish();
      // Grown by what the kernel holds for us now, never by what was announced.
      const std::size_t want =
          std::min<std::size_t>(std::max<std::size_t>(ready, 1), expected_ - body_.size());
      const std::size_t had = body_.size();
      body_.resize(had + want);
      const std::size_t n = socket_.read_some(asio::buffer(body_.data() + had, want), ec);
      body_.resize(had + n);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        return waitReadable(&Connection::readBody);
      }
      if (ec) return finish();
    }
    disarm();  // the handler's time is sliverd's, not the caller's
    handle();
  }

  void handle() {
    auto self = shared_from_this();
    asio::post(caller_->strand, [self] {
      std::string response;
      LocalService::Stream handover;
      try {
        LocalRequest request = decodeLocalRequest(self->body_);
        response =
            self->server_.service_.handle(self->peer_, request.method, request.payload, &handover);
      } catch (const std::exception& e) {
        response = encodeLocalResponse(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what()),
                                       nullptr);
      }
      if (response.size() > kMaxLocalResponse) {
        response =
            encodeLocalResponse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                             "the answer of " + std::to_string(response.size()) +
                                                 " bytes exceeds the local API's limit of " +
                                                 std::to_string(kMaxLocalResponse)),
                                nullptr);
      }
      asio::post(self->socket_.get_executor(),
                 [self, response = std::move(response), handover = std::move(handover)]() mutable {
                   self->answer(std::move(response), /*close_after=*/false, std::move(handover));
                 });
    });
  }

  // --- writing the answer ---
  // `handover`: the connection goes to it once the answer is written (a
  // capture), on a thread of its own; this connection then ends here.
  void answer(std::string response, bool close_after, LocalService::Stream handover = {}) {
    if (!socket_.is_open()) return finish();
    out_ = frameHeader(response.size()) + response;
    body_ = std::string();
    arm(server_.limits_.frame_timeout);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_),
                      [self, close_after, handover = std::move(handover)](
                          const boost::system::error_code& ec, std::size_t) mutable {
                        self->out_ = std::string();
                        const bool streaming = static_cast<bool>(handover);
                        if (!ec && streaming) self->handOver(std::move(handover));
                        if (ec || close_after || streaming) return self->finish();
                        self->awaitFrame();
                      });
  }

  void handOver(LocalService::Stream handover) {
    base::UniqueFd connection(::fcntl(socket_.native_handle(), F_DUPFD_CLOEXEC, 0));
    if (!connection) return;
    std::thread([handover = std::move(handover), connection = std::move(connection)]() mutable {
      try {
        handover(std::move(connection));
      } catch (const std::exception& e) {
        spdlog::warn("local API: a stream ended: {}", e.what());
      }
    }).detach();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    close();
    server_.release(shared_from_this());
  }

  LocalApiServer& server_;
  stream::socket socket_;
  asio::steady_timer timer_;
  Peer peer_;
  std::shared_ptr<Caller> caller_;
  std::uint64_t deadline_generation_ = 0;
  std::array<unsigned char, 4> header_{};
  std::size_t header_got_ = 0;
  std::uint32_t expected_ = 0;
  std::string body_;
  std::string out_;
  bool finished_ = false;
};

LocalApiServer::LocalApiServer(asio::io_context& io, std::filesystem::path socket_path,
                               LocalService& service, const PeerIdentifier& peers,
                               LocalApiLimits limits)
    : io_(io),
      socket_path_(std::move(socket_path)),
      service_(service),
      peers_(peers),
      limits_(limits),
      pool_(std::make_shared<asio::thread_pool>(std::max<std::size_t>(limits.threads, 1))),
      operator_pool_(std::make_shared<asio::thread_pool>(1)),
      acceptor_(io),
      accept_backoff_(io) {}

LocalApiServer::~LocalApiServer() {
  stop();
  pool_->join();
  operator_pool_->join();
}

void LocalApiServer::start() {
  // Every open connection is a descriptor: make sure the limits can be reached
  // before the process runs out (an operator shell's soft limit is often 1024).
  const rlim_t wanted = limits_.total + limits_.operator_reserve + 1024;
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < wanted) {
    files.rlim_cur = std::min(wanted, files.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_cur < wanted) {
      spdlog::warn(
          "local API: RLIMIT_NOFILE {} is below the {} descriptors its connection limits may "
          "take; connections beyond it wait for one to close",
          files.rlim_cur, wanted);
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(socket_path_.parent_path());
  std::filesystem::remove(socket_path_, ec);  // a stale socket from a previous run
  stream::endpoint endpoint(socket_path_.string());
  acceptor_.open(endpoint.protocol());
  // Asio opens sockets and accepts without close-on-exec; nothing sliverd starts
  // may inherit the local API (helpers and sliver launches close what they do
  // not need as well, but that should not be the only line).
  setCloseOnExec(acceptor_.native_handle());
  acceptor_.bind(endpoint);
  // Access is decided per caller by the kernel's credentials, not by file mode.
  if (::chmod(socket_path_.c_str(), 0666) != 0) base::throwErrno("chmod " + socket_path_.string());
  acceptor_.listen();
  accept();
}

void LocalApiServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors or memory: the connection stays queued, and accepting
      // again at once would spin on the same error. Retry shortly.
      accept_backoff_.expires_after(std::chrono::milliseconds(100));
      accept_backoff_.async_wait([this](const boost::system::error_code& wait_ec) {
        if (!wait_ec && acceptor_.is_open()) accept();
      });
      return;
    }
    setCloseOnExec(socket.native_handle());
    admit(std::move(socket));
    accept();
  });
}

void LocalApiServer::admit(stream::socket socket) {
  std::optional<Peer> peer;
  grpc::StatusCode code = grpc::StatusCode::RESOURCE_EXHAUSTED;
  std::string refusal;
  try {
    peer = peers_.identify(socket.native_handle());
  } catch (const std::exception& e) {
    code = grpc::StatusCode::UNAUTHENTICATED;
    refusal = std::string("sliverd could not identify the caller: ") + e.what();
  }
  std::shared_ptr<Caller> caller;
  if (peer) {
    std::lock_guard lock(mutex_);
    const bool root = peer->kind == Peer::Kind::kHostRoot;
    const std::string name = callerName(*peer);
    auto& slot = callers_[name];
    if (!slot) {
      slot = std::make_shared<Caller>(name, root, root ? operator_pool_ : pool_);
    }
    std::string limit;
    if (root && slot->open >= limits_.operator_reserve) {
      refusal = "host root already holds " + std::to_string(slot->open) +
                " connections to sliverd's local API, its limit (local_api_operator_connections)";
      limit = refusal;
    } else if (!root && slot->open >= limits_.per_caller) {
      refusal = name + " already holds " + std::to_string(slot->open) +
                " connections to sliverd's local API, the limit per caller "
                "(local_api_connections_per_caller); close one and retry";
      limit = refusal;
    } else if (!root && shared_open_ >= limits_.total) {
      refusal = "sliverd's local API holds " + std::to_string(shared_open_) +
                " connections, its limit for all callers together "
                "(local_api_max_connections); try again shortly";
      if (!warned_total_) spdlog::warn("local API: {}", refusal);
      warned_total_ = true;
    }
    if (refusal.empty()) {
      ++slot->open;
      if (!root) ++shared_open_;
      caller = slot;
    } else {
      // Said once per episode: a caller hammering its limit must not fill the log.
      if (!limit.empty() && !slot->warned) spdlog::warn("local API: {}", limit);
      if (!limit.empty()) slot->warned = true;
      if (slot->open == 0) callers_.erase(name);
    }
  }
  if (!caller) {
    {
      std::lock_guard lock(mutex_);
      ++refused_;
    }
    // The answer is small and the socket's buffer empty: a non-blocking send
    // either fits or is dropped, never waits. The caller reads it as the answer
    // to its request.
    const std::string frame = refusalFrame(code, refusal);
    (void)::send(socket.native_handle(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  auto connection =
      std::make_shared<Connection>(*this, std::move(socket), std::move(*peer), caller);
  {
    std::lock_guard lock(mutex_);
    connections_.insert(connection);
  }
  connection->start();
}

void LocalApiServer::release(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mutex_);
  connections_.erase(connection);
  auto it = callers_.find(connection->caller());
  if (it == callers_.end()) return;
  Caller& caller = *it->second;
  if (caller.open > 0) --caller.open;
  if (!caller.host_root && shared_open_ > 0) --shared_open_;
  if (shared_open_ < limits_.total) warned_total_ = false;
  if (caller.open == 0) callers_.erase(it);
}

LocalApiServer::Stats LocalApiServer::stats() const {
  std::lock_guard lock(mutex_);
  Stats out;
  out.refused = refused_;
  for (const auto& [name, caller] : callers_) {
    out.open += caller->open;
    out.by_caller[name] = caller->open;
  }
  return out;
}

void LocalApiServer::stop() {
  boost::system::error_code ignored;
  accept_backoff_.cancel();
  if (acceptor_.is_open()) {
    acceptor_.close(ignored);
    std::error_code ec;
    std::filesystem::remove(socket_path_, ec);
  }
  std::set<std::shared_ptr<Connection>> open;
  {
    std::lock_guard lock(mutex_);
    open = connections_;
  }
  for (const auto& connection : open) connection->close();
}

}  // namespace plng::sliverd
