// LocalApiServer: serves LocalService on a unix stream socket
// (<run_dir>/api/sliverd.sock) with Boost.Asio, in the framing of local_protocol.h.
//
// Each accepted connection is identified once, at accept, by the kernel
// (PeerIdentifier: SO_PEERCRED/SO_PEERPIDFD → cgroup → slice); every request on
// it acts for that peer. Handlers may block (stopping a sliver waits up to its
// grace period), so they run on a small thread pool, never on the event loop.
//
// The socket is created mode 0666: anyone who can reach it may connect, and what
// they may do is decided by who the kernel says they are. Slivers reach it
// through the runtime bind-mounting <run_dir>'s socket directory into each
// sliver at /run/sliverd.
//
// One caller (a slice, all its processes together; a host user) must not be
// able to lock the others out or make sliverd grow (LocalApiLimits):
//  - connections are counted per caller and in all; host root (the node
//    operator) has a reserve of its own that no other caller can take. A
//    connection over a limit is answered RESOURCE_EXHAUSTED, saying which
//    limit, and closed;
//  - a request longer than kMaxLocalRequest is refused at its length prefix;
//    a body is read into a buffer grown only by the bytes that have arrived,
//    and an idle connection holds no buffer at all;
//  - a connection with no request under way is closed after idle_timeout; a
//    request must arrive whole, and its answer be taken, within frame_timeout
//    of its first byte (slow senders and readers cannot hold a slot forever);
//  - each caller's requests run one at a time (a strand per caller), so one
//    caller occupies at most one pool thread; host root's run on a thread of
//    their own.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "sliverd/local/local_service.h"
#include "sliverd/local/peer_slice.h"

namespace plng::sliverd {

struct LocalApiLimits {
  // Connections one caller may hold open at once: a slice (all its processes
  // together) or a host user other than root.
  std::size_t per_caller = 16;
  // Connections of every caller but host root, together.
  std::size_t total = 4096;
  // Host root's own connections, on top of `total`.
  std::size_t operator_reserve = 64;
  // A connection with no request under way is closed after this.
  std::chrono::milliseconds idle_timeout{60000};
  // A request must arrive whole, and its answer be read by the caller, within
  // this of its first byte.
  std::chrono::milliseconds frame_timeout{10000};
  // Threads running the handlers of every caller but host root (which has one
  // of its own).
  std::size_t threads = 4;
};

class LocalApiServer {
 public:
  LocalApiServer(boost::asio::io_context& io, std::filesystem::path socket_path,
                 LocalService& service, const PeerIdentifier& peers, LocalApiLimits limits = {});
  ~LocalApiServer();
  LocalApiServer(const LocalApiServer&) = delete;
  LocalApiServer& operator=(const LocalApiServer&) = delete;

  // Replaces a stale socket file, binds, listens and starts accepting. Raises
  // the soft RLIMIT_NOFILE (up to the hard one) when the limits need more
  // descriptors. Throws SysError / boost::system::system_error naming the path.
  void start();
  // Stops accepting, closes open connections, removes the socket file. Like
  // every asio object, call it on the event loop's thread or after the loop
  // stopped (the destructor calls it and then waits for running handlers).
  void stop();

  const std::filesystem::path& socketPath() const { return socket_path_; }

  // What the server holds now, for tests and metrics. Thread-safe.
  struct Stats {
    std::size_t open = 0;     // connections open, host root's included
    std::size_t refused = 0;  // turned away at accept since start (limits, unidentified)
    std::map<std::string, std::size_t> by_caller;  // open connections per caller
  };
  Stats stats() const;

 private:
  class Connection;
  struct Caller;
  using Strand = boost::asio::strand<boost::asio::thread_pool::executor_type>;

  void accept();
  void admit(boost::asio::local::stream_protocol::socket socket);
  // A connection ended: forget it and give its caller's slot back.
  void release(const std::shared_ptr<Connection>& connection);

  boost::asio::io_context& io_;
  std::filesystem::path socket_path_;
  LocalService& service_;
  const PeerIdentifier& peers_;
  LocalApiLimits limits_;
  // Shared with the callers whose strands run on them (Caller::pool).
  std::shared_ptr<boost::asio::thread_pool> pool_;
  std::shared_ptr<boost::asio::thread_pool> operator_pool_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer accept_backoff_;
  mutable std::mutex mutex_;
  std::set<std::shared_ptr<Connection>> connections_;
  std::map<std::string, std::shared_ptr<Caller>> callers_;
  std::size_t shared_open_ = 0;  // connections of every caller but host root
  std::size_t refused_ = 0;
  bool warned_total_ = false;
};

}  // namespace plng::sliverd
