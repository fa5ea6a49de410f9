#include "sliverd/vnet/local_reserved_ports.h"

#include <utility>

#include "base/file.h"
#include "base/strings.h"
#include "node/security.h"
#include "vnet-bpf/rules.h"

namespace plng::sliverd {

LocalReservedPorts::LocalReservedPorts(std::filesystem::path saved, std::filesystem::path sysctl)
    : saved_(std::move(saved)), sysctl_(std::move(sysctl)) {
  if (auto kept = base::readFileIfExists(saved_)) {
    operator_value_ = std::string(base::trim(*kept));
    return;
  }
  operator_value_ = node::readSysctl(sysctl_);
  std::filesystem::create_directories(saved_.parent_path());
  base::writeFileAtomic(saved_, operator_value_ + "\n", 0600);
}

bool LocalReservedPorts::set(const std::vector<proto::PortRange>& reserved) {
  std::string value = vnet::localReservedPortsValue(operator_value_, reserved);
  if (written_ == value) return false;
  node::writeSysctl(sysctl_, value);
  written_ = std::move(value);
  return true;
}

void LocalReservedPorts::restore(const std::filesystem::path& saved,
                                 const std::filesystem::path& sysctl) {
  auto kept = base::readFileIfExists(saved);
  if (!kept) return;
  std::string value(base::trim(*kept));
  node::writeSysctl(sysctl, value);
  std::filesystem::remove(saved);
}

}  // namespace plng::sliverd
