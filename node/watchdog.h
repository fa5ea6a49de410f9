// The node's watchdogs.
//
// Memory: when the node nears memory exhaustion, kill the sliver using the
// most memory, before the kernel's OOM killer picks a victim that may be
// sliverd, sshd or a small innocent sliver (PlanetLab's swapmon).
//
// Disk: when the sliver storage nears full, stop the sliver using the most of
// it among those still writing, before every sliver's writes fail.
//
// sliverd calls check() periodically (every few seconds) and logs and records
// what it returns; the watchdogs themselves never log.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "node/cgroup.h"
#include "node/storage.h"

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

// A sliver a watchdog killed, and why (for the daemon's log and records).
struct Victim {
  std::string slice;
  std::uint64_t bytes = 0;  // its memory (disk, for DiskWatchdog) use when chosen
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

struct DiskThresholds {
  // Act when the storage's available space falls below this percentage of its
  // size, or below min_free_bytes, whichever is larger. Below the storage's
  // reserve (StorageOptions::reserve_pct), so one sliver at its quota ceiling
  // never trips it.
  std::uint32_t min_free_pct = 5;
  std::uint64_t min_free_bytes = 64ull << 20;
  // How long killAll may wait for the victim's cgroup to empty.
  std::chrono::milliseconds kill_timeout{5000};
};

class DiskWatchdog {
 public:
  DiskWatchdog(CgroupDriver& cgroups, SliverStorage& storage, DiskThresholds thresholds = {});

  // Why the storage is nearly full now, or nullopt when it is not.
  std::optional<std::string> pressure(const StorageSpace& space) const;

  // Reads the storage's free space; under pressure, commits it (sync) so the
  // figures are current, and reads what every sliver with processes uses. The
  // victim is the one using the most among those whose use grew since the
  // previous check under pressure: killing a sliver frees no disk, so only
  // stopping the slivers that are still filling the storage helps, and one
  // stop is not followed by another while nobody writes (nor after a restart of
  // a sliver that then leaves its files alone). The first check under pressure
  // therefore only takes that sample. `before_kill` is told the victim first
  // (sliverd marks it held, so it is not started again at once), then every
  // process of the victim is SIGKILLed. nullopt when there is no pressure or
  // no sliver is growing. Throws SysError from the storage or from killAll.
  std::optional<Victim> check(const std::function<void(const Victim&)>& before_kill = {});

 private:
  CgroupDriver& cgroups_;
  SliverStorage& storage_;
  DiskThresholds thresholds_;
  // Disk use of the slivers with processes at the previous check under
  // pressure; empty once the pressure is gone.
  std::optional<std::map<std::string, std::uint64_t>> sample_;
};

}  // namespace plng::node
