#include "node/watchdog.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <vector>

#include "base/error.h"
#include "base/file.h"

using plng::base::SysError;

namespace plng::node {
namespace {

// Finds "<field>:   <n> kB" at the start of a line.
std::optional<std::uint64_t> meminfoField(std::string_view text, std::string_view field) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() <= field.size() || line.substr(0, field.size()) != field ||
        line[field.size()] != ':') {
      continue;
    }
    std::string_view rest = line.substr(field.size() + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    std::uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc() || ptr == rest.data()) return std::nullopt;
    std::string_view unit(ptr, static_cast<std::size_t>(rest.data() + rest.size() - ptr));
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    if (unit == "kB") return value * 1024;
    if (unit.empty()) return value;
    return std::nullopt;
  }
  return std::nullopt;
}

std::string mib(std::uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", fraction * 100.0);
  return buf;
}

}  // namespace

NodeMemory parseMeminfo(std::string_view text) {
  auto need = [&](std::string_view field) {
    std::optional<std::uint64_t> value = meminfoField(text, field);
    if (!value) {
      throw SysError(EINVAL, "meminfo: missing or malformed " + std::string(field));
    }
    return *value;
  };
  NodeMemory memory;
  memory.mem_total = need("MemTotal");
  memory.mem_available = need("MemAvailable");
  memory.swap_total = need("SwapTotal");
  memory.swap_free = need("SwapFree");
  return memory;
}

NodeMemory ProcMeminfoProbe::read() { return parseMeminfo(base::readFile(path_)); }

MemoryWatchdog::MemoryWatchdog(CgroupDriver& cgroups, MemoryProbe& probe,
                               WatchdogThresholds thresholds)
    : cgroups_(cgroups), probe_(probe), thresholds_(thresholds) {}

std::optional<std::string> MemoryWatchdog::pressure(const NodeMemory& memory) const {
  if (memory.mem_total > 0) {
    double available =
        static_cast<double>(memory.mem_available) / static_cast<double>(memory.mem_total);
    if (available < thresholds_.min_available_fraction) {
      return "node memory low: " + mib(memory.mem_available) + " of " + mib(memory.mem_total) +
             " available (" + percent(available) + " < " +
             percent(thresholds_.min_available_fraction) + ")";
    }
  }
  if (memory.swap_total > 0) {
    std::uint64_t used = memory.swap_total - std::min(memory.swap_free, memory.swap_total);
    double fraction = static_cast<double>(used) / static_cast<double>(memory.swap_total);
    if (fraction > thresholds_.max_swap_used_fraction) {
      return "node swap nearly full: " + mib(used) + " of " + mib(memory.swap_total) + " used (" +
             percent(fraction) + " > " + percent(thresholds_.max_swap_used_fraction) + ")";
    }
  }
  return std::nullopt;
}

std::optional<Victim> MemoryWatchdog::check() {
  std::optional<std::string> why = pressure(probe_.read());
  if (!why) return std::nullopt;

  std::optional<Victim> victim;
  for (const std::string& sliver : cgroups_.list()) {
    CgroupUsage usage;
    try {
      usage = cgroups_.usage(sliver);
    } catch (const SysError& e) {
      // Destroyed between list() and usage(): nothing to kill there.
      if (e.err() == ENOENT) continue;
      throw;
    }
    if (usage.tasks == 0) continue;
    if (!victim || usage.memory_bytes > victim->bytes) {
      victim = Victim{sliver, usage.memory_bytes, {}};
    }
  }
  if (!victim) return std::nullopt;
  cgroups_.killAll(victim->slice, thresholds_.kill_timeout);
  victim->reason = *why + "; killed " + victim->slice + ", the sliver using the most memory (" +
                   mib(victim->bytes) + ")";
  return victim;
}

DiskWatchdog::DiskWatchdog(CgroupDriver& cgroups, SliverStorage& storage, DiskThresholds thresholds)
    : cgroups_(cgroups), storage_(storage), thresholds_(thresholds) {}

std::optional<std::string> DiskWatchdog::pressure(const StorageSpace& space) const {
  const std::uint64_t floor =
      std::max(space.total_bytes / 100 * thresholds_.min_free_pct, thresholds_.min_free_bytes);
  if (space.total_bytes == 0 || space.available_bytes >= floor) return std::nullopt;
  const double available =
      static_cast<double>(space.available_bytes) / static_cast<double>(space.total_bytes);
  return "sliver storage nearly full: " + mib(space.available_bytes) + " of " +
         mib(space.total_bytes) + " available (" + percent(available) + ", below " + mib(floor) +
         ")";
}

std::optional<Victim> DiskWatchdog::check(const std::function<void(const Victim&)>& before_kill) {
  if (!pressure(storage_.space())) {
    sample_.reset();
    return std::nullopt;
  }
  // Committed figures: btrfs updates free space and qgroups at commits.
  storage_.sync();
  std::optional<std::string> why = pressure(storage_.space());
  if (!why) {
    sample_.reset();
    return std::nullopt;
  }

  std::map<std::string, std::uint64_t> used;
  for (const std::string& sliver : cgroups_.list()) {
    try {
      if (cgroups_.usage(sliver).tasks == 0) continue;
      used[sliver] = storage_.usedBytes(sliver);
    } catch (const SysError& e) {
      // Destroyed meanwhile, or a sliver without storage: nothing to stop there.
      if (e.err() == ENOENT) continue;
      throw;
    }
  }
  std::optional<Victim> victim;
  if (sample_) {
    for (const auto& [sliver, bytes] : used) {
      auto before = sample_->find(sliver);
      // A sliver not sampled last time (just started) has no growth to judge yet.
      if (before == sample_->end() || bytes <= before->second) continue;
      if (!victim || bytes > victim->bytes) victim = Victim{sliver, bytes, {}};
    }
  }
  sample_ = std::move(used);
  if (!victim) return std::nullopt;
  victim->reason = *why + "; stopped " + victim->slice +
                   ", the sliver using the most of it among those still writing (" +
                   mib(victim->bytes) + ")";
  if (before_kill) before_kill(*victim);
  cgroups_.killAll(victim->slice, thresholds_.kill_timeout);
  sample_->erase(victim->slice);
  return victim;
}

}  // namespace plng::node
