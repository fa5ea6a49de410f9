// Fuzz target: the local API's framing (sliverd/local/local_protocol.h), what a
// process in a sliver can write to /run/sliverd's socket and what sliverctl
// reads back. Only the public functions: the server's reading loop is not
// part of this target.
//
// Input: a byte stream of frames (4-byte length, body) as a connection carries
// them. Properties:
//  - frameLength refuses exactly the lengths above its limit (a request's,
//    kMaxLocalRequest: what a sliver may send), and reads
//    back what frameHeader wrote;
//  - decoders refuse with std::runtime_error and nothing else; what they accept
//    holds together (the method name's length byte, the status message's
//    length), and a decoded response encodes back to the same bytes;
//  - a request payload is offered to the message type its method names, as
//    the server does (protobuf must refuse or accept, never crash).
#include <google/protobuf/stubs/logging.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "proto/node.pb.h"
#include "sliverd/local/local_protocol.h"
#include "tests/fuzz/fuzz_harness.h"

namespace {

namespace v1 = planetlab::v1;
using plng::fuzz::fail;

// The server's limit: what a process in a sliver may send in one frame.
constexpr std::uint32_t kMaxFrame = plng::sliverd::kMaxLocalRequest;

// Protobuf logs every string that is not UTF-8; the fuzzer makes many.
[[maybe_unused]] const bool kQuiet = (google::protobuf::SetLogHandler(nullptr), true);

std::uint32_t bigEndian(std::string_view four) {
  std::uint32_t n = 0;
  for (unsigned char c : four.substr(0, 4)) n = n << 8 | c;
  return n;
}

void checkRequest(std::string_view body) {
  plng::sliverd::LocalRequest request;
  try {
    request = plng::sliverd::decodeLocalRequest(body);
  } catch (const std::runtime_error&) {
    return;
  }
  const auto name_len = static_cast<unsigned char>(body[0]);
  if (request.method.empty() || request.method.size() != name_len ||
      request.method != body.substr(1, name_len) || request.payload != body.substr(1 + name_len)) {
    fail("decodeLocalRequest split the frame wrongly");
  }
  if (request.method == "ListSlivers") {
    v1::ListSliversRequest r;
    (void)r.ParseFromString(request.payload);
  } else if (request.method == "GetSliver") {
    v1::GetSliverRequest r;
    (void)r.ParseFromString(request.payload);
  } else {
    v1::SliverActionRequest r;
    (void)r.ParseFromString(request.payload);
  }
}

void checkResponse(std::string_view body) {
  plng::sliverd::LocalResponse response;
  try {
    response = plng::sliverd::decodeLocalResponse(body);
  } catch (const std::runtime_error&) {
    return;
  }
  const std::size_t message_len = response.status.error_message().size();
  if (bigEndian(body.substr(4)) != message_len ||
      body.size() != 8 + message_len + response.payload.size()) {
    fail("decodeLocalResponse split the frame wrongly");
  }
  // Re-encode the status part (the payload is opaque here).
  if (plng::sliverd::encodeLocalResponse(response.status, nullptr) !=
      body.substr(0, 8 + message_len)) {
    fail("a decoded response does not encode back to its bytes");
  }
  if (response.status.ok()) {
    v1::SliverInfo info;
    (void)info.ParseFromString(response.payload);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view stream = plng::fuzz::asText(data, size);
  while (stream.size() >= 4) {
    unsigned char header[4];
    std::memcpy(header, stream.data(), 4);
    const std::uint32_t announced = bigEndian(stream);
    std::uint32_t length = 0;
    try {
      length = plng::sliverd::frameLength(header, kMaxFrame);
    } catch (const std::runtime_error&) {
      if (announced <= kMaxFrame) fail("frameLength refused a frame within the limit");
      // The connection ends here; what follows is checked as a frame body.
      stream.remove_prefix(4);
      checkRequest(stream);
      checkResponse(stream);
      return 0;
    }
    if (length != announced || announced > kMaxFrame) {
      fail("frameLength misread the header");
    }
    std::string_view body = stream.substr(4, length);  // shorter when the stream is cut
    checkRequest(body);
    checkResponse(body);
    stream.remove_prefix(std::min<std::size_t>(stream.size(), 4 + std::size_t{length}));
  }
  // frameHeader and frameLength agree on every length the limit allows.
  const std::uint32_t n = static_cast<std::uint32_t>(size * 2654435761u) % (kMaxFrame + 1);
  const std::string header = plng::sliverd::frameHeader(n);
  if (header.size() != 4 ||
      plng::sliverd::frameLength(reinterpret_cast<const unsigned char*>(header.data()),
                                 kMaxFrame) != n) {
    fail("frameLength does not read back frameHeader");
  }
  return 0;
}

std::vector<plng::fuzz::Seed> plng::fuzz::generatedSeeds() {
  auto frame = [](const std::string& body) {
    return plng::sliverd::frameHeader(body.size()) + body;
  };
  v1::GetSliverRequest get;
  get.set_slice_name("princeton_codeen");
  v1::SliverActionRequest act;
  act.set_slice_name("princeton_codeen");
  v1::SliverInfo info;
  info.set_slice_name("princeton_codeen");
  info.set_state("running");
  std::vector<Seed> seeds;
  seeds.push_back(
      {"list", frame(plng::sliverd::encodeLocalRequest("ListSlivers", v1::ListSliversRequest()))});
  seeds.push_back({"get", frame(plng::sliverd::encodeLocalRequest("GetSliver", get))});
  seeds.push_back(
      {"two-requests", frame(plng::sliverd::encodeLocalRequest("StopSliver", act)) +
                           frame(plng::sliverd::encodeLocalRequest("StartSliver", act))});
  seeds.push_back({"reply-ok", frame(plng::sliverd::encodeLocalResponse(grpc::Status::OK, &info))});
  seeds.push_back(
      {"reply-denied",
       frame(plng::sliverd::encodeLocalResponse(
           grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not your sliver"), nullptr))});
  seeds.push_back({"oversized", plng::sliverd::frameHeader(kMaxFrame) + "\xff\xff\xff\xff"});
  return seeds;
}
