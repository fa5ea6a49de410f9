// RawSocketRuntime: a SliverRuntime that keeps the raw socket broker watching
// every running sliver (docs/vnet.md, "Raw sockets"). It wraps the real
// runtime, so the daemon and its reconciler need no change: after a start it
// hands the sliver's seccomp listener (a copy taken from sliver-init) and
// unified cgroup to the broker; every list() — the reconciler's first pass after
// a sliverd restart among them — re-adopts running slivers the broker does not
// watch yet (or watches with an older sliver-init) and forgets those no longer
// running; stop and destroy forget the sliver.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "node/cgroup.h"
#include "node/runtime.h"
#include "sliverd/core/raw_socket_broker.h"

namespace plng::sliverd {

class RawSocketRuntime : public plng::node::SliverRuntime {
 public:
  RawSocketRuntime(plng::node::SliverRuntime& runtime, const plng::node::CgroupDriver& cgroups,
                   RawSocketBroker& broker)
      : runtime_(runtime), cgroups_(cgroups), broker_(broker) {}

  std::vector<plng::node::SliverStatus> list() override;
  std::optional<plng::node::SliverStatus> get(std::string_view slice) override {
    return runtime_.get(slice);
  }
  void create(const plng::node::SliverConfig& config) override { runtime_.create(config); }
  void start(std::string_view slice) override;
  void stop(std::string_view slice, std::chrono::milliseconds grace) override;
  void update(const plng::node::SliverConfig& config) override { runtime_.update(config); }
  void destroy(std::string_view slice) override;

 private:
  // Hands the running sliver's listener to the broker; false (logged) when it
  // cannot be taken.
  bool adopt(const std::string& slice, pid_t init_pid);

  plng::node::SliverRuntime& runtime_;
  // Running slivers whose init holds no listener (started before the broker),
  // by init pid: warned about once, not at every list().
  std::map<std::string, pid_t> without_listener_;
  const plng::node::CgroupDriver& cgroups_;
  RawSocketBroker& broker_;
};

}  // namespace plng::sliverd
