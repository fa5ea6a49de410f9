#include "sliverd/local/local_protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace plng::sliverd {
namespace {

void putU32(std::string& out, std::uint32_t v) {
  out += static_cast<char>((v >> 24) & 0xff);
  out += static_cast<char>((v >> 16) & 0xff);
  out += static_cast<char>((v >> 8) & 0xff);
  out += static_cast<char>(v & 0xff);
}

std::uint32_t getU32(std::string_view in, std::size_t at) {
  auto b = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(in[at + i]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

using Clock = std::chrono::steady_clock;

// Waits until `fd` is ready for `events` or `deadline` passes: 1 ready, 0 timed
// out, -1 error.
int waitReady(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    // Rounded up: a wait cut short by truncation would report a timeout early.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return 0;
    pollfd pfd{fd, events, 0};
    int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 60'000)));
    if (rc > 0) return 1;
    if (rc < 0 && errno != EINTR) return -1;
  }
}

enum class Io { kDone, kClosed, kTimedOut };

Io writeAll(int fd, const std::string& data, Clock::time_point deadline) {
  std::size_t done = 0;
  while (done < data.size()) {
    int ready = waitReady(fd, POLLOUT, deadline);
    if (ready == 0) return Io::kTimedOut;
    if (ready < 0) return Io::kClosed;
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Io::kClosed;
    }
    done += static_cast<std::size_t>(n);
  }
  return Io::kDone;
}

Io readAll(int fd, char* data, std::size_t size, Clock::time_point deadline) {
  std::size_t done = 0;
  while (done < size) {
    int ready = waitReady(fd, POLLIN, deadline);
    if (ready == 0) return Io::kTimedOut;
    if (ready < 0) return Io::kClosed;
    ssize_t n = ::recv(fd, data + done, size - done, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return Io::kClosed;
    done += static_cast<std::size_t>(n);
  }
  return Io::kDone;
}

std::string seconds(std::chrono::milliseconds t) {
  return t.count() % 1000 == 0 ? std::to_string(t.count() / 1000) + " s"
                               : std::to_string(t.count()) + " ms";
}

}  // namespace

std::string frameHeader(std::size_t body_size) {
  std::string out;
  putU32(out, static_cast<std::uint32_t>(body_size));
  return out;
}

std::uint32_t frameLength(const unsigned char header[4], std::uint32_t max) {
  std::uint32_t n = (std::uint32_t{header[0]} << 24) | (std::uint32_t{header[1]} << 16) |
                    (std::uint32_t{header[2]} << 8) | header[3];
  if (n > max) {
    throw std::runtime_error("local API frame of " + std::to_string(n) +
                             " bytes exceeds the limit of " + std::to_string(max));
  }
  return n;
}

std::string encodeLocalRequest(std::string_view method, const google::protobuf::Message& request) {
  if (method.empty() || method.size() > 255) throw std::invalid_argument("bad method name");
  std::string out;
  out += static_cast<char>(method.size());
  out += method;
  out += request.SerializeAsString();
  return out;
}

LocalRequest decodeLocalRequest(std::string_view body) {
  if (body.empty()) throw std::runtime_error("empty local API request");
  std::size_t name_len = static_cast<unsigned char>(body[0]);
  if (name_len == 0 || body.size() < 1 + name_len) {
    throw std::runtime_error("local API request with a truncated method name");
  }
  return {std::string(body.substr(1, name_len)), std::string(body.substr(1 + name_len))};
}

std::string encodeLocalResponse(const grpc::Status& status,
                                const google::protobuf::Message* reply) {
  std::string out;
  putU32(out, static_cast<std::uint32_t>(status.error_code()));
  putU32(out, static_cast<std::uint32_t>(status.error_message().size()));
  out += status.error_message();
  if (status.ok() && reply != nullptr) out += reply->SerializeAsString();
  return out;
}

LocalResponse decodeLocalResponse(std::string_view body) {
  if (body.size() < 8) throw std::runtime_error("truncated local API response");
  std::uint32_t code = getU32(body, 0);
  std::uint32_t msg_len = getU32(body, 4);
  if (code > 16 || body.size() - 8 < msg_len) {
    throw std::runtime_error("malformed local API response");
  }
  LocalResponse out;
  out.status =
      grpc::Status(static_cast<grpc::StatusCode>(code), std::string(body.substr(8, msg_len)));
  out.payload = std::string(body.substr(8 + msg_len));
  return out;
}

LocalApiClient::LocalApiClient(const std::filesystem::path& socket_path,
                               std::chrono::milliseconds call_timeout,
                               std::chrono::milliseconds connect_timeout)
    : path_(socket_path), call_timeout_(call_timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string p = socket_path.string();
  if (p.size() >= sizeof(addr.sun_path)) {
    throw base::SysError(ENAMETOOLONG, "connect to " + p);
  }
  std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
  fd_ = base::UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd_) base::throwErrno("socket for the local API");
  // A unix socket's connect waits while the listener's backlog is full, for at
  // most the send timeout.
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(connect_timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((connect_timeout.count() % 1000) * 1000);
  if (::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    base::throwErrno("SO_SNDTIMEO on the local API socket");
  }
  if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == EAGAIN || errno == EINPROGRESS) {
      throw base::SysError(ETIMEDOUT, "connect to sliverd's local API at " + p +
                                          ": it took no connection within " +
                                          seconds(connect_timeout) + " (sliverd busy or hung)");
    }
    base::throwErrno("connect to sliverd's local API at " + p);
  }
}

grpc::Status LocalApiClient::call(std::string_view method, const google::protobuf::Message& request,
                                  google::protobuf::Message* reply) {
  const auto deadline = Clock::now() + call_timeout_;
  const std::string late = "no answer from sliverd at " + path_.string() + " to " +
                           std::string(method) + " within " + seconds(call_timeout_) +
                           " (sliverd hung or stopped while something else still holds its "
                           "socket; the call may still take effect)";
  const std::string body = encodeLocalRequest(method, request);
  // A failed write is not the end: sliverd may have answered (a refusal) and
  // closed, and that answer is still waiting to be read.
  const Io wrote = writeAll(fd_.get(), frameHeader(body.size()) + body, deadline);
  if (wrote == Io::kTimedOut) return {grpc::StatusCode::DEADLINE_EXCEEDED, late};
  const bool sent = wrote == Io::kDone;
  unsigned char header[4];
  switch (readAll(fd_.get(), reinterpret_cast<char*>(header), sizeof(header), deadline)) {
    case Io::kDone:
      break;
    case Io::kTimedOut:
      return {grpc::StatusCode::DEADLINE_EXCEEDED, late};
    case Io::kClosed:
      if (!sent) {
        return {grpc::StatusCode::UNAVAILABLE,
                "lost the connection to sliverd at " + path_.string()};
      }
      return {grpc::StatusCode::UNAVAILABLE,
              "sliverd closed the connection at " + path_.string() + " without answering"};
  }
  try {
    const std::uint32_t size = frameLength(header, kMaxLocalResponse);
    // Grown as bytes arrive, never to the announced size at once.
    std::string response;
    char chunk[16384];
    while (response.size() < size) {
      const std::size_t want = std::min<std::size_t>(sizeof(chunk), size - response.size());
      switch (readAll(fd_.get(), chunk, want, deadline)) {
        case Io::kDone:
          break;
        case Io::kTimedOut:
          return {grpc::StatusCode::DEADLINE_EXCEEDED, late};
        case Io::kClosed:
          return {grpc::StatusCode::UNAVAILABLE, "truncated answer from sliverd"};
      }
      response.append(chunk, want);
    }
    LocalResponse decoded = decodeLocalResponse(response);
    if (decoded.status.ok() && !sent) {
      return {grpc::StatusCode::UNAVAILABLE, "lost the connection to sliverd at " + path_.string()};
    }
    if (decoded.status.ok() && reply != nullptr && !reply->ParseFromString(decoded.payload)) {
      return {grpc::StatusCode::INTERNAL,
              "sliverd's answer to " + std::string(method) + " does not parse"};
    }
    return decoded.status;
  } catch (const std::runtime_error& e) {
    return {grpc::StatusCode::INTERNAL, e.what()};
  }
}

grpc::Status LocalApiClient::listSlivers(planetlab::v1::ListSliversResponse* reply) {
  return call("ListSlivers", planetlab::v1::ListSliversRequest{}, reply);
}

grpc::Status LocalApiClient::getSliver(const std::string& slice, planetlab::v1::SliverInfo* reply) {
  planetlab::v1::GetSliverRequest req;
  req.set_slice_name(slice);
  return call("GetSliver", req, reply);
}

namespace {
grpc::Status action(LocalApiClient& client, const char* method, const std::string& slice,
                    planetlab::v1::SliverInfo* reply) {
  planetlab::v1::SliverActionRequest req;
  req.set_slice_name(slice);
  return client.call(method, req, reply);
}
}  // namespace

grpc::Status LocalApiClient::startSliver(const std::string& slice,
                                         planetlab::v1::SliverInfo* reply) {
  return action(*this, "StartSliver", slice, reply);
}
grpc::Status LocalApiClient::stopSliver(const std::string& slice,
                                        planetlab::v1::SliverInfo* reply) {
  return action(*this, "StopSliver", slice, reply);
}
grpc::Status LocalApiClient::restartSliver(const std::string& slice,
                                           planetlab::v1::SliverInfo* reply) {
  return action(*this, "RestartSliver", slice, reply);
}
grpc::Status LocalApiClient::getPorts(const std::string& slice,
                                      planetlab::v1::GetPortsResponse* reply) {
  planetlab::v1::GetPortsRequest req;
  req.set_slice_name(slice);
  return call("GetPorts", req, reply);
}

grpc::Status LocalApiClient::capture(const planetlab::v1::CaptureRequest& request,
                                     planetlab::v1::CaptureResponse* reply) {
  return call("Capture", request, reply);
}

grpc::Status LocalApiClient::getNetUsage(const std::string& slice, planetlab::v1::NetUsage* reply) {
  planetlab::v1::GetNetUsageRequest req;
  req.set_slice_name(slice);
  return call("GetNetUsage", req, reply);
}

}  // namespace plng::sliverd
