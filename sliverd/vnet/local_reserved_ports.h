// net.ipv4.ip_local_reserved_ports of the node's network namespace: the ports
// the kernel never picks for a connect or a sendto from an unbound socket
// (binds that name them are unaffected). sliverd keeps every slice's reserved
// ports and the node's own there, so the kernel never hands a port reserved
// for one slice to another as its ephemeral port — vnet-bpf would drop that
// socket's packets, and its connect would time out. The value the node had
// before the first sliverd (the operator's) is kept in a file of the instance's
// state, always included, and put back by `sliverd decommission`.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "proto/port_spec.h"

namespace plng::sliverd {

class LocalReservedPorts {
 public:
  static constexpr const char* kSysctl = "/proc/sys/net/ipv4/ip_local_reserved_ports";

  // Reads the operator's value from `saved`, or, the first time, from the
  // sysctl, and saves it there. Throws base::SysError.
  explicit LocalReservedPorts(std::filesystem::path saved, std::filesystem::path sysctl = kSysctl);

  // Makes the sysctl hold the operator's ports and every port of `reserved`
  // (TCP and UDP alike); written only when that differs from what this object
  // wrote last. Returns whether it wrote. Throws base::SysError, or
  // std::invalid_argument when the operator's value does not parse.
  bool set(const std::vector<proto::PortRange>& reserved);

  // Writes the saved value back and removes the file; nothing saved, nothing
  // done. Throws base::SysError.
  static void restore(const std::filesystem::path& saved,
                      const std::filesystem::path& sysctl = kSysctl);

 private:
  std::filesystem::path saved_;
  std::filesystem::path sysctl_;
  std::string operator_value_;
  std::optional<std::string> written_;
};

}  // namespace plng::sliverd
