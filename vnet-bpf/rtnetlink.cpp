#include "vnet-bpf/rtnetlink.h"

#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/eintr.h"
#include "base/error.h"

namespace plng::vnet::rtnl {

namespace {

constexpr std::size_t align4(std::size_t length) { return (length + 3) & ~std::size_t{3}; }

}  // namespace

Message::Message(std::uint16_t type, std::uint16_t flags) {
  nlmsghdr head{};
  head.nlmsg_type = type;
  head.nlmsg_flags = static_cast<std::uint16_t>(flags | NLM_F_REQUEST);
  append(&head, sizeof(head));
}

void Message::append(const void* data, std::size_t length) {
  const auto* bytes = static_cast<const std::uint8_t*>(data);
  bytes_.insert(bytes_.end(), bytes, bytes + length);
  bytes_.resize(align4(bytes_.size()), 0);
}

void Message::attribute(std::uint16_t type, const void* data, std::size_t length) {
  nlattr head{};
  head.nla_type = type;
  head.nla_len = static_cast<std::uint16_t>(NLA_HDRLEN + length);
  const std::size_t at = bytes_.size();
  bytes_.resize(at + NLA_HDRLEN + length, 0);
  std::memcpy(bytes_.data() + at, &head, sizeof(head));
  if (length != 0) std::memcpy(bytes_.data() + at + NLA_HDRLEN, data, length);
  bytes_.resize(align4(bytes_.size()), 0);
}

void Message::attribute(std::uint16_t type, std::string_view text) {
  std::string terminated(text);
  attribute(type, terminated.c_str(), terminated.size() + 1);
}

std::size_t Message::beginNested(std::uint16_t type) {
  const std::size_t start = bytes_.size();
  attribute(static_cast<std::uint16_t>(type | NLA_F_NESTED), nullptr, 0);
  return start;
}

void Message::endNested(std::size_t start) {
  const auto length = static_cast<std::uint16_t>(bytes_.size() - start);
  std::memcpy(bytes_.data() + start + offsetof(nlattr, nla_len), &length, sizeof(length));
}

const std::vector<std::uint8_t>& Message::finish(std::uint32_t sequence) {
  auto length = static_cast<std::uint32_t>(bytes_.size());
  std::memcpy(bytes_.data() + offsetof(nlmsghdr, nlmsg_len), &length, sizeof(length));
  std::memcpy(bytes_.data() + offsetof(nlmsghdr, nlmsg_seq), &sequence, sizeof(sequence));
  return bytes_;
}

std::map<std::uint16_t, std::span<const std::uint8_t>> parseAttributes(
    std::span<const std::uint8_t> payload) {
  std::map<std::uint16_t, std::span<const std::uint8_t>> out;
  std::size_t at = 0;
  while (at + NLA_HDRLEN <= payload.size()) {
    nlattr head{};
    std::memcpy(&head, payload.data() + at, sizeof(head));
    if (head.nla_len < NLA_HDRLEN || at + head.nla_len > payload.size()) break;
    out[static_cast<std::uint16_t>(head.nla_type & NLA_TYPE_MASK)] =
        payload.subspan(at + NLA_HDRLEN, head.nla_len - NLA_HDRLEN);
    at += align4(head.nla_len);
  }
  return out;
}

Socket::Socket() : fd_(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)) {
  if (!fd_) base::throwErrno("socket(NETLINK_ROUTE)");
  const int on = 1;
  // The kernel's own words on a refusal, and no copy of our request in its ack.
  ::setsockopt(fd_.get(), SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof(on));
  ::setsockopt(fd_.get(), SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof(on));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0)
    base::throwErrno("bind(NETLINK_ROUTE)");
}

void Socket::request(Message& message, const std::string& what) {
  const auto& bytes = message.finish(++sequence_);
  std::vector<std::uint8_t> copy(bytes);
  copy[offsetof(nlmsghdr, nlmsg_flags)] |= NLM_F_ACK;
  if (base::retryOnEintr([&] { return ::send(fd_.get(), copy.data(), copy.size(), 0); }) < 0)
    base::throwErrno(what + ": netlink send");
  receive(sequence_, what);
}

std::vector<Reply> Socket::dump(Message& message, const std::string& what) {
  const auto& bytes = message.finish(++sequence_);
  std::vector<std::uint8_t> copy(bytes);
  std::uint16_t flags = 0;
  std::memcpy(&flags, copy.data() + offsetof(nlmsghdr, nlmsg_flags), sizeof(flags));
  flags |= NLM_F_DUMP;
  std::memcpy(copy.data() + offsetof(nlmsghdr, nlmsg_flags), &flags, sizeof(flags));
  if (base::retryOnEintr([&] { return ::send(fd_.get(), copy.data(), copy.size(), 0); }) < 0)
    base::throwErrno(what + ": netlink send");
  return receive(sequence_, what);
}

std::vector<Reply> Socket::receive(std::uint32_t sequence, const std::string& what) {
  std::vector<Reply> replies;
  std::vector<std::uint8_t> buffer(64 * 1024);
  for (;;) {
    const ssize_t got =
        base::retryOnEintr([&] { return ::recv(fd_.get(), buffer.data(), buffer.size(), 0); });
    if (got < 0) base::throwErrno(what + ": netlink receive");
    std::size_t at = 0;
    const auto length = static_cast<std::size_t>(got);
    while (at + sizeof(nlmsghdr) <= length) {
      nlmsghdr head{};
      std::memcpy(&head, buffer.data() + at, sizeof(head));
      if (head.nlmsg_len < sizeof(head) || at + head.nlmsg_len > length) break;
      std::span<const std::uint8_t> payload(buffer.data() + at + NLMSG_HDRLEN,
                                            head.nlmsg_len - NLMSG_HDRLEN);
      const std::size_t next = at + NLMSG_ALIGN(head.nlmsg_len);
      at = next;
      if (head.nlmsg_seq != sequence) continue;  // a late reply to an earlier request
      if (head.nlmsg_type == NLMSG_DONE) return replies;
      if (head.nlmsg_type == NLMSG_ERROR) {
        nlmsgerr error{};
        if (payload.size() < sizeof(error)) throw base::SysError(EPROTO, what);
        std::memcpy(&error, payload.data(), sizeof(error));
        if (error.error == 0) return replies;  // the ack
        std::string text = what;
        if (head.nlmsg_flags & NLM_F_ACK_TLVS) {
          auto tlvs = parseAttributes(payload.subspan(sizeof(error)));
          if (auto it = tlvs.find(NLMSGERR_ATTR_MSG); it != tlvs.end() && !it->second.empty())
            text += " (" +
                    std::string(reinterpret_cast<const char*>(it->second.data()),
                                ::strnlen(reinterpret_cast<const char*>(it->second.data()),
                                          it->second.size())) +
                    ")";
        }
        throw base::SysError(-error.error, text);
      }
      replies.push_back(Reply{head.nlmsg_type, {payload.begin(), payload.end()}});
    }
  }
}

}  // namespace plng::vnet::rtnl
