// The node memory watchdog: when the node nears memory exhaustion, kill the
// sliver using the most memory, before the kernel's OOM killer picks a victim
// that may be sliverd, sshd or a small innocent sliver (PlanetLab's swapmon).
//
// sliverd calls check() periodically (every few seconds) and logs and records
// what it returns; the watchdog itself never logs.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "cgroup.h"

namespace plng::node {

// The node's memory as /proc/meminfo reports it, in bytes.
struct NodeMemory {
  std::uint64_t mem_total = 0;
  std::uint64_t mem_available = 0;
  std::uint64_t swap_total = 0;
  std::uint64_t swap_free = 0;
  bool operator==(const NodeMemory&) const = default;
};

// Where the watchdog learns how much memory the node has left (tests inject fakes).
class MemoryProbe {
 public:
  virtual ~MemoryProbe() = default;
  virtual NodeMemory read() = 0;
};

// Parses the text of /proc/meminfo (MemTotal, MemAvailable, SwapTotal, SwapFree;
// kB). Throws SysError(EINVAL) naming a missing or malformed field.
NodeMemory parseMeminfo(std::string_view text);

// Reads /proc/meminfo (or another file with its format, for tests).
class ProcMeminfoProbe : public MemoryProbe {
 public:
  explicit ProcMeminfoProbe(std::filesystem::path path = "/proc/meminfo")
      : path_(std::move(path)) {}
  NodeMemory read() override;

 private:
  std::filesystem::path path_;
};

struct WatchdogThresholds {
  // Kill when MemAvailable falls below this fraction of MemTotal.
  double min_available_fraction = 0.10;
  // Kill when more than this fraction of swap is in use (PlanetLab's swapmon
  // threshold); ignored on a node without swap.
  double max_swap_used_fraction = 0.85;
  // How long killAll may wait for the victim's cgroup to empty.
  std::chrono::milliseconds kill_timeout{5000};
};

// A sliver the watchdog killed, and why (for the daemon's log and records).
struct Victim {
  std::string slice;
  std::uint64_t bytes = 0;  // its memory use when chosen
  std::string reason;       // "node memory low: ...; <slice> used the most (...)"
};

class MemoryWatchdog {
 public:
  MemoryWatchdog(CgroupDriver& cgroups, MemoryProbe& probe, WatchdogThresholds thresholds = {});

  // Why the node is short of memory now, or nullopt when it is not.
  std::optional<std::string> pressure(const NodeMemory& memory) const;

  // Reads the probe; under pressure, kills every process of the running sliver
  // with the highest memory use (cgroup memory, page cache included) and returns
  // it. Slivers without processes are never chosen: killing them frees nothing
  // (what they still have charged is page cache the kernel reclaims itself).
  // nullopt when there is no pressure or no running sliver. Throws SysError
  // from the probe or from killAll.
  std::optional<Victim> check();

 private:
  CgroupDriver& cgroups_;
  MemoryProbe& probe_;
  WatchdogThresholds thresholds_;
};

}  // namespace plng::node
