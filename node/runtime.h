// SliverRuntime: what sliverd asks of the node to make slivers exist.
//
// The daemon's reconciler decides *what* should change and calls this interface;
// LinuxSliverRuntime (sliver_runtime.h) does it with namespaces, cgroups,
// overlays and quotas. Tests give the reconciler a fake.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/cgroup.h"
#include "node/resources.h"

namespace plng::node {

// Everything needed to build and run one sliver, decided from the slice's
// effective tags on this node (sliverConfigFromTags).
struct SliverConfig {
  std::string slice;      // "<login_base>_<name>"; also the sliver's name
  std::uint32_t xid = 0;  // PLC's stable slice id
  Resources resources;
  std::uint64_t disk_quota_bytes = 0;  // 0 = no quota
  std::string vref;                    // reference image name
  std::string initscript;              // run by sliver-init at every start
  std::string capabilities;            // extra capabilities, "CAP_A,CAP_B" (canonical tag)
  bool operator==(const SliverConfig&) const = default;
};

// Builds a SliverConfig from effective tags (tag names as in PLC: cpu_share,
// cpu_cap, mem_limit, tasks, disk_quota, vref, initscript, capabilities). Throws
// TagError for a value that cannot be applied.
SliverConfig sliverConfigFromTags(const std::string& slice, std::uint32_t xid,
                                  const std::map<std::string, std::string>& tags);

// A reference image name (vref): a directory under the node's images,
// [A-Za-z0-9_.-], 1..200 characters, not starting with '.' or '-'. Throws
// TagError otherwise.
void validateVref(const std::string& vref);

enum class SliverPhase { kStopped, kRunning };

struct SliverStatus {
  SliverConfig config;  // as last created/updated
  SliverPhase phase = SliverPhase::kStopped;
  pid_t init_pid = 0;  // host pid of sliver-init, when running
  CgroupUsage usage;
};

class SliverRuntime {
 public:
  virtual ~SliverRuntime() = default;

  // Every sliver that exists on this node (from disk state and the kernel),
  // running or not. After a sliverd restart this re-adopts running slivers.
  virtual std::vector<SliverStatus> list() = 0;
  virtual std::optional<SliverStatus> get(std::string_view slice) = 0;

  // Creates storage, cgroups and disk state for a sliver; does not start it.
  // Idempotent for an identical config.
  virtual void create(const SliverConfig& config) = 0;
  // Starts sliver-init in fresh namespaces; no-op when already running.
  virtual void start(std::string_view slice) = 0;
  // SIGTERM to sliver-init, SIGKILL to the whole cgroup after `grace`.
  virtual void stop(std::string_view slice, std::chrono::milliseconds grace) = 0;
  // Applies a changed config in place: resources and quota immediately; a new
  // vref, initscript or capabilities take effect at the next start.
  virtual void update(const SliverConfig& config) = 0;
  // Stops if needed and deletes the sliver's storage, cgroups and disk state.
  virtual void destroy(std::string_view slice) = 0;
};

}  // namespace plng::node
