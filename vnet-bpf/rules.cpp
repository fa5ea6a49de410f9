#include "vnet-bpf/rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace plng::vnet {
namespace {

void clearHostBits(Prefix& prefix) {
  for (unsigned bit = prefix.length; bit < 128; ++bit)
    prefix.address[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
}

std::string describeOwner(std::uint32_t xid) {
  return xid == VNET_XID_NODE ? std::string("the node's own ports")
                              : "the reservation of slice xid " + std::to_string(xid);
}

}  // namespace

std::string_view protocolName(std::uint8_t protocol) {
  switch (protocol) {
    case VNET_PROTO_TCP:
      return "tcp";
    case VNET_PROTO_UDP:
      return "udp";
    case VNET_PROTO_ICMP:
      return "icmp";
    default:
      return "proto?";
  }
}

Prefix parsePrefix(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return std::invalid_argument("bad prefix \"" + std::string(text) + "\": " + std::string(why));
  };
  std::string_view address_text = text;
  std::optional<unsigned> length;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    address_text = text.substr(0, slash);
    std::string_view length_text = text.substr(slash + 1);
    unsigned value = 0;
    auto [end, ec] =
        std::from_chars(length_text.data(), length_text.data() + length_text.size(), value);
    if (ec != std::errc() || end != length_text.data() + length_text.size() || length_text.empty())
      throw bad("the length after '/' must be a number");
    length = value;
  }
  Prefix prefix;
  std::string address(address_text);
  if (inet_pton(AF_INET, address.c_str(), prefix.address.data()) == 1) {
    prefix.family = AF_INET;
    prefix.length = length.value_or(32);
    if (prefix.length > 32) throw bad("an IPv4 prefix is at most /32");
  } else if (inet_pton(AF_INET6, address.c_str(), prefix.address.data()) == 1) {
    prefix.family = AF_INET6;
    prefix.length = length.value_or(128);
    if (prefix.length > 128) throw bad("an IPv6 prefix is at most /128");
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (prefix.length >= 96 && std::memcmp(prefix.address.data(), kMapped, 12) == 0) {
      std::memmove(prefix.address.data(), prefix.address.data() + 12, 4);
      std::memset(prefix.address.data() + 4, 0, 12);
      prefix.family = AF_INET;
      prefix.length -= 96;
    }
  } else {
    throw bad("not an IPv4 or IPv6 address");
  }
  clearHostBits(prefix);
  return prefix;
}

std::string formatPrefix(const Prefix& prefix) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(prefix.family, prefix.address.data(), text, sizeof(text));
  return std::string(text) + "/" + std::to_string(prefix.length);
}

vnet_lpm4 lpmKey4(const Prefix& prefix) {
  vnet_lpm4 key{};
  key.prefixlen = prefix.length;
  std::memcpy(key.addr, prefix.address.data(), sizeof(key.addr));
  return key;
}

vnet_lpm6 lpmKey6(const Prefix& prefix) {
  vnet_lpm6 key{};
  key.prefixlen = prefix.length;
  std::memcpy(key.addr, prefix.address.data(), sizeof(key.addr));
  return key;
}

LpmKeys lpmKeys(const std::vector<Prefix>& prefixes) {
  LpmKeys keys;
  for (const Prefix& prefix : prefixes) {
    if (prefix.family == AF_INET) {
      vnet_lpm4 key = lpmKey4(prefix);
      auto* bytes = reinterpret_cast<const std::uint8_t*>(&key);
      keys.v4.emplace(bytes, bytes + sizeof(key));
    } else {
      vnet_lpm6 key = lpmKey6(prefix);
      auto* bytes = reinterpret_cast<const std::uint8_t*>(&key);
      keys.v6.emplace(bytes, bytes + sizeof(key));
    }
  }
  return keys;
}

PortKey PortKey::atIndex(std::uint32_t index) {
  static constexpr std::uint8_t kTables[] = {VNET_PROTO_ICMP, VNET_PROTO_TCP, VNET_PROTO_UDP};
  return PortKey{kTables[(index / 65536u) % 3u], static_cast<std::uint16_t>(index % 65536u)};
}

std::string formatPortKey(const PortKey& key) {
  return std::string(protocolName(key.protocol)) + ":" + std::to_string(key.port);
}

std::set<PortKey> portKeys(const std::vector<proto::PortRange>& ranges) {
  std::set<PortKey> keys;
  for (const proto::PortRange& range : ranges)
    for (unsigned port = range.first; port <= range.last; ++port)
      keys.insert(
          PortKey{static_cast<std::uint8_t>(range.transport), static_cast<std::uint16_t>(port)});
  return keys;
}

std::map<PortKey, std::uint32_t> reservedPortOwners(
    const std::vector<proto::PortRange>& node_ports,
    const std::map<std::uint32_t, std::vector<proto::PortRange>>& slice_reservations) {
  std::map<PortKey, std::uint32_t> owners;
  auto add = [&](std::uint32_t xid, const std::vector<proto::PortRange>& ranges) {
    for (const PortKey& key : portKeys(ranges)) {
      auto [it, inserted] = owners.emplace(key, xid);
      if (!inserted && it->second != xid)
        throw ReservationConflict(
            "port " + formatPortKey(key) + " reserved by " + describeOwner(xid) + " is already " +
            (it->second == VNET_XID_NODE ? "one of " : "in ") + describeOwner(it->second));
    }
  };
  add(VNET_XID_NODE, node_ports);
  for (const auto& [xid, ranges] : slice_reservations) add(xid, ranges);
  return owners;
}

std::string localReservedPortsValue(std::string_view operator_value,
                                    const std::vector<proto::PortRange>& reserved) {
  std::vector<std::pair<unsigned, unsigned>> ranges;
  for (const proto::PortRange& range : reserved) ranges.emplace_back(range.first, range.last);
  std::string_view rest = operator_value;
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front())))
      item.remove_prefix(1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back())))
      item.remove_suffix(1);
    if (item.empty()) continue;
    auto number = [&](std::string_view text) {
      unsigned value = 0;
      auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (error != std::errc{} || end != text.data() + text.size() || value > 65535)
        throw std::invalid_argument("ip_local_reserved_ports: '" + std::string(item) +
                                    "' is not a port (0-65535) or a range of ports (a-b)");
      return value;
    };
    std::size_t dash = item.find('-');
    unsigned first = number(item.substr(0, dash));
    unsigned last = dash == std::string_view::npos ? first : number(item.substr(dash + 1));
    if (last < first)
      throw std::invalid_argument("ip_local_reserved_ports: range '" + std::string(item) +
                                  "' ends before it begins");
    ranges.emplace_back(first, last);
  }
  std::sort(ranges.begin(), ranges.end());
  std::string value;
  for (std::size_t i = 0; i < ranges.size();) {
    unsigned first = ranges[i].first;
    unsigned last = ranges[i].second;
    for (++i; i < ranges.size() && ranges[i].first <= last + 1; ++i)
      last = std::max(last, ranges[i].second);
    if (!value.empty()) value += ',';
    value += std::to_string(first);
    if (last != first) value += "-" + std::to_string(last);
  }
  return value;
}

}  // namespace plng::vnet
