// The local API's wire format on <run_dir>/api/sliverd.sock, and a blocking client.
//
// Why not gRPC on the unix socket: the local API must know which process is
// calling (SO_PEERCRED → cgroup → slice), and gRPC C++ hides the socket. Its
// auth context carries no peer credentials on unix sockets, ServerContext::peer()
// is only "unix:<path>", and the one way to hand it our own accepted fds
// (AddInsecureChannelFromFd) names the peer "fd:<n>" — a number the kernel reuses
// as soon as gRPC closes it, so mapping it back to credentials is racy and
// depends on gRPC internals. A tiny framing of our own over a stream socket
// keeps the kernel's answer attached to the connection it belongs to, and keeps
// the message types of proto/node.proto (service LocalNode).
//
// Every frame is a 4-byte big-endian length followed by that many bytes
// (at most kMaxFrame). A connection carries any number of request/response
// pairs, one at a time.
//   request:  u8 name length, method name ("ListSlivers", "GetSliver",
//             "StartSliver", "StopSliver", "RestartSliver", "GetPorts",
//             "Capture", "GetNetUsage"), serialised request
//   response: u32 gRPC status code, u32 message length, message, serialised
//             response (present only when the code is OK)
// After an OK answer to Capture the connection carries nothing but the pcap
// stream of the capture (sliverd/local/capture_stream.h), then closes.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/fd.h"
#include "proto/node.pb.h"

namespace plng::sliverd {

// A request is a method name (at most 255 bytes) and a message naming at most
// one slice (slice names are at most 63 characters): well under 512 bytes. The
// limit leaves room for a few more fields, and bounds what a caller can make
// sliverd hold for one request; sliverd refuses a larger length at the header,
// before reading or allocating anything for the body.
inline constexpr std::uint32_t kMaxLocalRequest = 4096;
// Responses come from sliverd: ListSlivers of ~1,000 slivers is ~0.5 MB. The
// client, too, grows its buffer only as bytes arrive.
inline constexpr std::uint32_t kMaxLocalResponse = 16u << 20;

struct LocalRequest {
  std::string method;
  std::string payload;
};

struct LocalResponse {
  grpc::Status status;
  std::string payload;
};

// Frame bodies (without the 4-byte length); decoders throw std::runtime_error
// for malformed input.
std::string encodeLocalRequest(std::string_view method, const google::protobuf::Message& request);
LocalRequest decodeLocalRequest(std::string_view body);
std::string encodeLocalResponse(const grpc::Status& status, const google::protobuf::Message* reply);
LocalResponse decodeLocalResponse(std::string_view body);
// The 4-byte length prefix of a frame body.
std::string frameHeader(std::size_t body_size);
// Reads a length prefix; throws std::runtime_error when it exceeds `max`.
std::uint32_t frameLength(const unsigned char header[4], std::uint32_t max);

// How long a client waits for sliverd to take its connection (a full backlog),
// and for the whole of each call (a start or restart may take a stop grace).
inline constexpr std::chrono::milliseconds kLocalConnectTimeout{5000};
inline constexpr std::chrono::milliseconds kLocalCallTimeout{60000};

// A blocking client of the local API (sliverctl, tests). It never waits
// without bound: a socket whose listener no longer answers (a hung sliverd, or
// a process left holding the socket of a dead one) gives DEADLINE_EXCEEDED.
class LocalApiClient {
 public:
  // Connects within `connect_timeout`; throws SysError naming the socket when
  // that fails (ETIMEDOUT when it took too long).
  explicit LocalApiClient(const std::filesystem::path& socket_path,
                          std::chrono::milliseconds call_timeout = kLocalCallTimeout,
                          std::chrono::milliseconds connect_timeout = kLocalConnectTimeout);

  grpc::Status listSlivers(planetlab::v1::ListSliversResponse* reply);
  grpc::Status getSliver(const std::string& slice, planetlab::v1::SliverInfo* reply);
  grpc::Status startSliver(const std::string& slice, planetlab::v1::SliverInfo* reply);
  grpc::Status stopSliver(const std::string& slice, planetlab::v1::SliverInfo* reply);
  grpc::Status restartSliver(const std::string& slice, planetlab::v1::SliverInfo* reply);
  // slice "" = the caller's own; "*" = every owner (the node's root).
  grpc::Status getPorts(const std::string& slice, planetlab::v1::GetPortsResponse* reply);
  // Starts a capture of the caller's own packets; when OK, the connection
  // carries the pcap stream from then on: read it from connection().
  grpc::Status capture(const planetlab::v1::CaptureRequest& request,
                       planetlab::v1::CaptureResponse* reply);
  int connection() const { return fd_.get(); }
  // slice "" = the caller's own.
  grpc::Status getNetUsage(const std::string& slice, planetlab::v1::NetUsage* reply);

  // One round trip; UNAVAILABLE when the connection breaks, DEADLINE_EXCEEDED
  // when the answer has not come within the call timeout. When sliverd turned
  // the connection away (too many connections, an oversized request) it said
  // why before closing: that answer is returned.
  grpc::Status call(std::string_view method, const google::protobuf::Message& request,
                    google::protobuf::Message* reply);

 private:
  base::UniqueFd fd_;
  std::filesystem::path path_;
  std::chrono::milliseconds call_timeout_;
};

}  // namespace plng::sliverd
