// A small rtnetlink client: enough of NETLINK_ROUTE to manage traffic control
// (qdiscs and classes) and to find the default route's device, without
// libmnl. Messages are built and parsed here; bandwidth.h knows what they say.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"

namespace plng::vnet::rtnl {

// One request under construction: a netlink header, the family's fixed header
// (tcmsg, rtmsg, ...) and attributes, each 4-byte aligned as the kernel wants.
class Message {
 public:
  Message(std::uint16_t type, std::uint16_t flags);

  // The fixed header that follows the netlink header; call once, first.
  template <typename Header>
  void header(const Header& fixed) {
    append(&fixed, sizeof(fixed));
  }
  void attribute(std::uint16_t type, const void* data, std::size_t length);
  template <typename Value>
  void attribute(std::uint16_t type, const Value& value) {
    attribute(type, &value, sizeof(value));
  }
  void attribute(std::uint16_t type, std::string_view text);  // NUL-terminated
  // A nested attribute: attributes added until endNested(start) are inside it.
  std::size_t beginNested(std::uint16_t type);
  void endNested(std::size_t start);

  // The message as sent, with its length and sequence number filled in.
  const std::vector<std::uint8_t>& finish(std::uint32_t sequence);
  const std::vector<std::uint8_t>& bytes() const { return bytes_; }

 private:
  void append(const void* data, std::size_t length);
  std::vector<std::uint8_t> bytes_;
};

// Attributes of a payload by type (the last one of a type wins); each value
// is a view into `payload`. Stops at the first malformed attribute.
std::map<std::uint16_t, std::span<const std::uint8_t>> parseAttributes(
    std::span<const std::uint8_t> payload);

// One message of a reply: its type and its payload (after the netlink header).
struct Reply {
  std::uint16_t type = 0;
  std::vector<std::uint8_t> payload;
};

// A NETLINK_ROUTE socket in the calling thread's network namespace.
class Socket {
 public:
  Socket();

  // Sends `message` asking for an acknowledgement. Throws base::SysError with
  // the kernel's errno; the message carries `what` and the kernel's extended
  // acknowledgement text when there is one.
  void request(Message& message, const std::string& what);
  // Sends a dump request (NLM_F_DUMP is added) and collects every reply.
  std::vector<Reply> dump(Message& message, const std::string& what);

 private:
  // Reads replies to `sequence` until NLMSG_DONE (dump) or the ack.
  std::vector<Reply> receive(std::uint32_t sequence, const std::string& what);

  base::UniqueFd fd_;
  std::uint32_t sequence_ = 0;
};

}  // namespace plng::vnet::rtnl
