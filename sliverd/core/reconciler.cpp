#include "sliverd/core/reconciler.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <set>

#include "node/kvfile.h"

namespace plng::sliverd {

using plng::node::SliverConfig;
using plng::node::SliverPhase;
using plng::node::SliverStatus;

namespace {

constexpr const char* kUnwantedFile = "unwanted";
constexpr const char* kFailuresFile = "failures";

// Cut to kMaxReportBytes on a UTF-8 character boundary (SliverInfo.message is a
// proto3 string), saying how long it was.
std::string bounded(const std::string& message) {
  if (message.size() <= kMaxReportBytes) return message;
  std::size_t cut = kMaxReportBytes;
  while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
  return message.substr(0, cut) + "... (" + std::to_string(message.size()) + " bytes)";
}

}  // namespace

std::string humanBytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return buf;
}

std::optional<std::string> clampDiskQuota(SliverConfig& config, std::uint64_t ceiling,
                                          const std::string& why) {
  const std::uint64_t asked = config.disk_quota_bytes;
  if (ceiling == 0 || (asked != 0 && asked <= ceiling)) return std::nullopt;
  config.disk_quota_bytes = ceiling;
  return (asked == 0 ? std::string("no disk_quota granted") : "disk_quota " + humanBytes(asked)) +
         ": this node gives one sliver at most " + humanBytes(ceiling) + " (" + why +
         "); that is enforced";
}

const char* toString(ActionKind kind) {
  switch (kind) {
    case ActionKind::kCreate:
      return "create";
    case ActionKind::kUpdate:
      return "update";
    case ActionKind::kStart:
      return "start";
    case ActionKind::kStop:
      return "stop";
    case ActionKind::kMarkUnwanted:
      return "mark-unwanted";
    case ActionKind::kDestroy:
      return "destroy";
    case ActionKind::kReportInvalid:
      return "report-invalid";
  }
  return "?";
}

std::vector<Action> plan(const DesiredMap& desired, const std::vector<SliverStatus>& actual,
                         const std::map<std::string, std::int64_t>& unwanted_since,
                         std::int64_t now, std::int64_t delete_grace_s,
                         const std::map<std::string, std::string>& held) {
  std::map<std::string, const SliverStatus*> existing;
  for (const auto& status : actual) existing[status.config.slice] = &status;

  std::vector<Action> actions;
  for (const auto& [slice, want] : desired) {
    auto it = existing.find(slice);
    const SliverStatus* have = it == existing.end() ? nullptr : it->second;
    if (want.expired(now)) {
      if (have != nullptr) {
        actions.push_back({ActionKind::kDestroy, slice, {}, "expired"});
      }
      continue;
    }
    if (!want.invalid.empty()) {
      // An existing sliver keeps its last good config rather than lose its files.
      actions.push_back({ActionKind::kReportInvalid, slice, {}, want.invalid});
      continue;
    }
    if (have == nullptr) {
      actions.push_back({ActionKind::kCreate, slice, want.config, "wanted (" + want.source + ")"});
      actions.push_back({ActionKind::kStart, slice, {}, "new"});
      continue;
    }
    if (!(have->config == want.config)) {
      actions.push_back({ActionKind::kUpdate, slice, want.config, "config changed"});
    }
    if (have->phase != SliverPhase::kRunning && !held.contains(slice)) {
      actions.push_back({ActionKind::kStart, slice, {}, "wanted but stopped"});
    }
  }
  for (const auto& [slice, have] : existing) {
    if (desired.contains(slice)) continue;
    if (have->phase == SliverPhase::kRunning) {
      actions.push_back({ActionKind::kStop, slice, {}, "no longer wanted"});
      continue;
    }
    auto since = unwanted_since.find(slice);
    if (since == unwanted_since.end()) {
      actions.push_back({ActionKind::kMarkUnwanted, slice, {}, "no longer wanted"});
    } else if (now >= since->second + delete_grace_s) {
      actions.push_back({ActionKind::kDestroy, slice, {}, "unwanted for longer than delete_grace"});
    }
  }
  return actions;
}

void holdSliver(const plng::node::NodePaths& paths, const std::string& slice,
                const std::string& by) {
  std::filesystem::create_directories(paths.sliverDir(slice));
  plng::node::writeKvFileAtomic(paths.sliverHeld(slice), {{"by", by}});
}

void releaseSliver(const plng::node::NodePaths& paths, const std::string& slice) {
  std::error_code ec;
  std::filesystem::remove(paths.sliverHeld(slice), ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw std::filesystem::filesystem_error("cannot clear the held mark", paths.sliverHeld(slice),
                                            ec);
  }
}

std::optional<std::string> heldBy(const plng::node::NodePaths& paths, const std::string& slice) {
  try {
    auto kv = plng::node::readKvFile(paths.sliverHeld(slice));
    auto it = kv.find("by");
    return it == kv.end() ? std::string("someone") : it->second;
  } catch (const plng::base::SysError& e) {
    if (e.err() == ENOENT || e.err() == ENOTDIR) return std::nullopt;
    throw;
  }
}

std::map<std::string, std::string> heldSlivers(const plng::node::NodePaths& paths,
                                               const std::vector<SliverStatus>& actual) {
  std::map<std::string, std::string> out;
  for (const auto& status : actual) {
    if (auto by = heldBy(paths, status.config.slice)) out[status.config.slice] = *by;
  }
  return out;
}

std::string heldMessage(const std::string& by) {
  return "stopped by " + by + "; start it with sliverctl start";
}

Reconciler::Reconciler(plng::node::SliverRuntime& runtime, DesiredState& desired, Options options)
    : runtime_(runtime), desired_(desired), options_(std::move(options)) {
  if (!options_.clock) {
    options_.clock = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
  }
  // The last run's failures, until a pass says otherwise: "failed" and why, not
  // a bare "stopped", right after a restart.
  try {
    for (const auto& [slice, message] :
         plng::node::readKvFile(options_.paths.state_dir / kFailuresFile)) {
      failures_[slice] = bounded(message);
    }
  } catch (const std::exception&) {
    // Missing or damaged: the next pass finds the failures again.
  }
}

std::map<std::string, std::int64_t> Reconciler::unwantedSince() const {
  std::map<std::string, std::int64_t> out;
  try {
    for (const auto& [slice, value] :
         plng::node::readKvFile(options_.paths.state_dir / kUnwantedFile)) {
      try {
        out[slice] = std::stoll(value);
      } catch (const std::exception&) {
        // A damaged entry restarts that sliver's grace period.
      }
    }
  } catch (const plng::base::SysError& e) {
    if (e.err() != ENOENT) throw;
  }
  return out;
}

void Reconciler::saveUnwanted(const std::map<std::string, std::int64_t>& unwanted) {
  plng::node::KvMap kv;
  for (const auto& [slice, since] : unwanted) kv[slice] = std::to_string(since);
  std::filesystem::create_directories(options_.paths.state_dir);
  plng::node::writeKvFileAtomic(options_.paths.state_dir / kUnwantedFile, kv);
}

void Reconciler::recordFailure(const std::string& slice, const std::string& full) {
  const std::string message = bounded(full);
  std::lock_guard lock(failures_mutex_);
  auto& slot = failures_[slice];
  // Logged once: a sliver failing the same way at every pass says it only once.
  if (slot == message) return;
  spdlog::error("sliver {}: {}", slice, message);
  slot = message;
  saveFailures();
}

void Reconciler::clearFailure(const std::string& slice) {
  std::lock_guard lock(failures_mutex_);
  if (failures_.erase(slice) == 0) return;
  spdlog::info("sliver {}: recovered", slice);
  saveFailures();
}

void Reconciler::setDiskCeiling(std::uint64_t bytes, std::string why) {
  std::lock_guard run_lock(run_mutex_);
  disk_ceiling_bytes_ = bytes;
  disk_ceiling_why_ = std::move(why);
}

void Reconciler::saveFailures() {
  try {
    std::filesystem::create_directories(options_.paths.state_dir);
    // Rederivable: the next pass finds every failure again.
    plng::node::writeKvFileAtomic(options_.paths.state_dir / kFailuresFile, failures_,
                                  plng::base::Durability::kNoSync);
  } catch (const std::exception& e) {
    spdlog::error("cannot record sliver failures: {}", e.what());
  }
}

void Reconciler::setNotices(std::map<std::string, std::string> notices) {
  std::lock_guard lock(failures_mutex_);
  for (const auto& [slice, notice] : notices) {
    auto it = notices_.find(slice);
    if (it == notices_.end() || it->second != notice) spdlog::warn("sliver {}: {}", slice, notice);
  }
  notices_ = std::move(notices);
}

std::optional<std::string> Reconciler::notice(const std::string& slice) const {
  std::lock_guard lock(failures_mutex_);
  auto it = notices_.find(slice);
  if (it == notices_.end()) return std::nullopt;
  return it->second;
}

SliverReport Reconciler::report(const std::string& slice) const {
  return SliverReport{failure(slice), notice(slice)};
}

std::optional<std::string> Reconciler::failure(const std::string& slice) const {
  std::lock_guard lock(failures_mutex_);
  auto it = failures_.find(slice);
  if (it == failures_.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, std::string> Reconciler::failures() const {
  std::lock_guard lock(failures_mutex_);
  return failures_;
}

void Reconciler::apply(const Action& action, std::int64_t now,
                       std::map<std::string, std::int64_t>& unwanted) {
  switch (action.kind) {
    case ActionKind::kCreate:
      runtime_.create(action.config);
      break;
    case ActionKind::kUpdate:
      runtime_.update(action.config);
      break;
    case ActionKind::kStart:
      runtime_.start(action.slice);
      break;
    case ActionKind::kStop:
      runtime_.stop(action.slice, options_.stop_grace);
      unwanted.try_emplace(action.slice, now);
      break;
    case ActionKind::kMarkUnwanted:
      unwanted.try_emplace(action.slice, now);
      break;
    case ActionKind::kDestroy:
      runtime_.destroy(action.slice);
      releaseSliver(options_.paths, action.slice);
      unwanted.erase(action.slice);
      present_.erase(action.slice);
      if (options_.on_destroyed) options_.on_destroyed(action.slice);
      break;
    case ActionKind::kReportInvalid:
      throw std::invalid_argument("cannot apply the slice's tags: " + action.reason);
  }
}

Reconciler::Result Reconciler::reconcileOnce() {
  std::lock_guard run_lock(run_mutex_);
  const std::int64_t now = options_.clock();
  desired_.pruneTickets(now);
  DesiredMap desired = desired_.desired(now);
  std::map<std::string, std::string> notices;
  for (auto& [slice, want] : desired) {
    if (!want.invalid.empty() || want.expired(now)) continue;
    if (options_.effective_config) want.config = options_.effective_config(want.config);
    if (auto note = clampDiskQuota(want.config, disk_ceiling_bytes_, disk_ceiling_why_)) {
      notices[slice] = bounded(*note);
    }
  }
  setNotices(std::move(notices));
  const std::vector<SliverStatus> actual = runtime_.list();
  std::map<std::string, std::int64_t> unwanted = unwantedSince();
  const auto before = unwanted;
  std::map<std::string, std::string> held;
  try {
    held = heldSlivers(options_.paths, actual);
  } catch (const std::exception& e) {
    // Unreadable marks would restart slivers stopped on purpose: skip starting this pass.
    spdlog::error("cannot read which slivers are held: {}", e.what());
    for (const auto& status : actual) held.try_emplace(status.config.slice);
  }

  Result result;
  std::set<std::string> failed_slices;
  for (const Action& action : plan(desired, actual, unwanted, now, options_.delete_grace_s, held)) {
    // A sliver whose earlier step failed this pass skips its later ones.
    if (failed_slices.contains(action.slice)) continue;
    try {
      apply(action, now, unwanted);
      if (action.kind != ActionKind::kMarkUnwanted) {
        spdlog::info("sliver {}: {} ({})", action.slice, toString(action.kind), action.reason);
      }
      result.applied.push_back(action);
    } catch (const std::exception& e) {
      failed_slices.insert(action.slice);
      recordFailure(action.slice, std::string(toString(action.kind)) + " failed: " + e.what());
      result.failed.push_back(action);
    }
  }

  // Keys for sshd, for every wanted sliver that exists now.
  std::set<std::string> exists;
  for (const auto& status : actual) exists.insert(status.config.slice);
  for (const auto& action : result.applied) {
    if (action.kind == ActionKind::kCreate) exists.insert(action.slice);
    if (action.kind == ActionKind::kDestroy) exists.erase(action.slice);
  }
  for (const auto& [slice, want] : desired) {
    if (want.expired(now) || !want.invalid.empty() || !exists.contains(slice)) continue;
    if (failed_slices.contains(slice)) continue;
    try {
      writeAuthorizedKeys(options_.paths, slice, want.keys);
      if (options_.on_present && !present_.contains(slice)) {
        options_.on_present(slice);
        present_.insert(slice);
      }
    } catch (const std::exception& e) {
      failed_slices.insert(slice);
      recordFailure(slice, std::string("ssh access: ") + e.what());
    }
  }

  // Slivers that got through this pass cleanly are no longer failed; records of
  // wanted or vanished slivers are dropped.
  std::set<std::string> known;
  for (const auto& [slice, message] : failures()) known.insert(slice);
  for (const auto& slice : known) {
    if (!failed_slices.contains(slice)) clearFailure(slice);
  }
  std::erase_if(unwanted, [&](const auto& entry) {
    return desired.contains(entry.first) ||
           (!exists.contains(entry.first) && !failed_slices.contains(entry.first));
  });
  if (unwanted != before) {
    try {
      saveUnwanted(unwanted);
    } catch (const std::exception& e) {
      spdlog::error("cannot record unwanted slivers: {}", e.what());
    }
  }
  return result;
}

planetlab::v1::RSpec rspecOf(const SliverConfig& config) {
  planetlab::v1::RSpec r;
  r.set_cpu_share(config.resources.cpu_share);
  r.set_cpu_cap_pct(config.resources.cpu_cap_pct);
  r.set_mem_limit_bytes(config.resources.mem_limit_bytes);
  r.set_tasks(config.resources.tasks);
  r.set_disk_quota_bytes(config.disk_quota_bytes);
  return r;
}

planetlab::v1::SliverInfo describeSliver(const std::string& slice,
                                         const std::optional<DesiredSliver>& desired,
                                         const std::optional<SliverStatus>& actual,
                                         const std::optional<std::string>& failure,
                                         const std::optional<std::string>& held_by,
                                         const std::optional<std::string>& notice) {
  planetlab::v1::SliverInfo info;
  info.set_slice_name(slice);
  if (desired) {
    info.set_xid(desired->config.xid);
    info.set_source(desired->source);
    info.set_expires_at(desired->expires_at);
    if (desired->invalid.empty()) *info.mutable_rspec() = rspecOf(desired->config);
  }
  if (actual) {
    info.set_xid(actual->config.xid);
    *info.mutable_effective() = rspecOf(actual->config);
    info.set_state(actual->phase == SliverPhase::kRunning ? "running" : "stopped");
    info.set_init_pid(static_cast<std::uint32_t>(actual->init_pid));
    info.set_memory_bytes(actual->usage.memory_bytes);
    info.set_cpu_usage_ns(actual->usage.cpu_usage_ns);
    info.set_tasks(actual->usage.tasks);
    if (desired && held_by && actual->phase != SliverPhase::kRunning) {
      info.set_message(heldMessage(*held_by));
    }
    if (!desired) {
      info.set_state(actual->phase == SliverPhase::kRunning ? "running" : "deleting");
      info.set_message("no longer wanted; deleted after the grace period");
    }
  } else {
    info.set_state("creating");
  }
  if (notice && info.message().empty()) info.set_message(*notice);
  if (failure) {
    info.set_state("failed");
    info.set_message(*failure);
  } else if (desired && !desired->invalid.empty()) {
    info.set_state("failed");
    info.set_message(desired->invalid);
  }
  return info;
}

}  // namespace plng::sliverd
