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
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/thread_pool.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>

#include "local_service.h"
#include "peer_slice.h"

namespace plng::sliverd {

class LocalApiServer {
 public:
  // Open connections beyond this are closed at accept.
  static constexpr std::size_t kMaxConnections = 1024;

  LocalApiServer(boost::asio::io_context& io, std::filesystem::path socket_path,
                 LocalService& service, const PeerIdentifier& peers, std::size_t threads = 2);
  ~LocalApiServer();
  LocalApiServer(const LocalApiServer&) = delete;
  LocalApiServer& operator=(const LocalApiServer&) = delete;

  // Replaces a stale socket file, binds, listens and starts accepting. Throws
  // SysError / boost::system::system_error naming the path.
  void start();
  // Stops accepting, closes open connections, removes the socket file. Like
  // every asio object, call it on the event loop's thread or after the loop
  // stopped (the destructor calls it and then waits for running handlers).
  void stop();

  const std::filesystem::path& socketPath() const { return socket_path_; }

 private:
  class Connection;
  void accept();

  boost::asio::io_context& io_;
  std::filesystem::path socket_path_;
  LocalService& service_;
  const PeerIdentifier& peers_;
  boost::asio::thread_pool pool_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::mutex mutex_;
  std::set<std::shared_ptr<Connection>> connections_;
};

}  // namespace plng::sliverd
