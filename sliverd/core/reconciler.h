// The reconciler: makes the slivers that exist match the desired state.
//
// plan() is a pure decision function (tested without root against fake state);
// Reconciler applies a plan through SliverRuntime, one sliver at a time, so one
// sliver's failure never stops the others. Running it twice with nothing changed
// does nothing the second time.
//
//   <state_dir>/unwanted   kvfile: slice = unix time it was first found unwanted
//                          (stopped); its files are deleted delete_grace later,
//                          also across sliverd restarts
//   <state_dir>/failures   kvfile: slice = why its last pass failed, so a
//                          restarted sliverd shows "failed" and the reason at
//                          once (the next pass retries, and clears it on success)
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "node/paths.h"
#include "node/runtime.h"
#include "proto/node.pb.h"
#include "sliverd/core/desired_state.h"

namespace plng::sliverd {

enum class ActionKind {
  kCreate,         // create (then start) a missing sliver
  kUpdate,         // apply a changed config in place
  kStart,          // start a stopped sliver that is wanted
  kStop,           // stop a running sliver that is no longer wanted
  kMarkUnwanted,   // record when a stopped sliver became unwanted (starts its grace)
  kDestroy,        // delete: expired, or unwanted for longer than delete_grace
  kReportInvalid,  // the slice's tags cannot be applied; surface why
};

const char* toString(ActionKind kind);

struct Action {
  ActionKind kind;
  std::string slice;
  plng::node::SliverConfig config;  // kCreate, kUpdate
  std::string reason;               // for logs and failure messages
  bool operator==(const Action&) const = default;
};

// Decides what to do. `unwanted_since` holds the recorded stop times of slivers
// no longer wanted; `held` the slivers stopped on purpose (slice -> who), which
// stay stopped: only a sliver that stopped on its own (its init died) is started
// again. Actions come out grouped per slice, in the order to apply.
std::vector<Action> plan(const DesiredMap& desired,
                         const std::vector<plng::node::SliverStatus>& actual,
                         const std::map<std::string, std::int64_t>& unwanted_since,
                         std::int64_t now, std::int64_t delete_grace_s,
                         const std::map<std::string, std::string>& held = {});

// The "held" mark (NodePaths::sliverHeld): set when a sliver's users or the node
// operator stop it (local API), cleared when they start it again and when the
// sliver is destroyed. It lives on disk so that a sliverd restart keeps it.
void holdSliver(const plng::node::NodePaths& paths, const std::string& slice,
                const std::string& by);
void releaseSliver(const plng::node::NodePaths& paths, const std::string& slice);
// Who stopped the sliver, when it is held.
std::optional<std::string> heldBy(const plng::node::NodePaths& paths, const std::string& slice);
// The held ones among `actual`.
std::map<std::string, std::string> heldSlivers(const plng::node::NodePaths& paths,
                                               const std::vector<plng::node::SliverStatus>& actual);
// The message the API shows for a held sliver.
std::string heldMessage(const std::string& by);

// What the reconciler knows of a sliver beyond what the runtime says.
struct SliverReport {
  std::optional<std::string> failure;  // why its last pass failed: the sliver is "failed"
  std::optional<std::string> notice;   // what was applied other than granted (a clamped quota)
};

// Messages kept and shown are cut to this many bytes (an error can quote a
// program's output): what a caller can read back stays small.
inline constexpr std::size_t kMaxReportBytes = 1024;

class Reconciler {
 public:
  struct Options {
    plng::node::NodePaths paths;
    std::chrono::milliseconds stop_grace{10000};
    std::int64_t delete_grace_s = 7 * 24 * 3600;
    // The config to enforce for a slice's desired config: with its bound rcaps
    // applied (withBound). Empty = as desired.
    std::function<plng::node::SliverConfig(const plng::node::SliverConfig&)> effective_config;
    // Told after a sliver was destroyed (its rcaps are released, its host
    // account removed).
    std::function<void(const std::string&)> on_destroyed;
    // Told once per daemon run for each wanted sliver that exists (its host
    // account for ssh is ensured); an exception fails that sliver.
    std::function<void(const std::string&)> on_present;
    // Unix seconds; tests move time.
    std::function<std::int64_t()> clock;
  };

  struct Result {
    std::vector<Action> applied;  // succeeded
    std::vector<Action> failed;
  };

  Reconciler(plng::node::SliverRuntime& runtime, DesiredState& desired, Options options);

  // The most disk one sliver may be given (SliverStorage::maxSliverQuota: the
  // storage less a reserve no single sliver can take); a larger disk_quota, or
  // none, is clamped to it, logged and reported as the sliver's notice. 0 = no
  // ceiling (the default). `why` says where it comes from. Before the first pass.
  void setDiskCeiling(std::uint64_t bytes, std::string why);

  // One pass: plan against runtime.list() and apply. Throws only when the
  // runtime cannot list slivers at all; per-sliver errors end up in failure().
  Result reconcileOnce();

  // Why a sliver is failed (its last action's error), if it is. Thread-safe.
  std::optional<std::string> failure(const std::string& slice) const;
  std::map<std::string, std::string> failures() const;
  // What was applied to a sliver other than granted, if anything. Thread-safe.
  std::optional<std::string> notice(const std::string& slice) const;
  SliverReport report(const std::string& slice) const;

  // The unwanted records (as on disk).
  std::map<std::string, std::int64_t> unwantedSince() const;

 private:
  void apply(const Action& action, std::int64_t now, std::map<std::string, std::int64_t>& unwanted);
  void recordFailure(const std::string& slice, const std::string& message);
  void clearFailure(const std::string& slice);
  void saveFailures();  // with failures_mutex_ held
  void setNotices(std::map<std::string, std::string> notices);
  void saveUnwanted(const std::map<std::string, std::int64_t>& unwanted);

  plng::node::SliverRuntime& runtime_;
  DesiredState& desired_;
  Options options_;
  std::mutex run_mutex_;           // one pass at a time
  std::set<std::string> present_;  // slivers on_present was told about
  mutable std::mutex failures_mutex_;
  std::map<std::string, std::string> failures_;
  std::map<std::string, std::string> notices_;
  std::uint64_t disk_ceiling_bytes_ = 0;
  std::string disk_ceiling_why_;
};

// The disk quota a sliver gets on a node whose ceiling is `ceiling` (0 = none):
// `config`'s, or the ceiling when that is larger or unlimited, with the notice
// that says so. `why` names where the ceiling comes from.
std::optional<std::string> clampDiskQuota(plng::node::SliverConfig& config, std::uint64_t ceiling,
                                          const std::string& why);
// "4.0 GiB", "512 MiB", "1000 B".
std::string humanBytes(std::uint64_t bytes);

// The API's view of a sliver from what is wanted, what exists and what failed.
planetlab::v1::SliverInfo describeSliver(const std::string& slice,
                                         const std::optional<DesiredSliver>& desired,
                                         const std::optional<plng::node::SliverStatus>& actual,
                                         const std::optional<std::string>& failure,
                                         const std::optional<std::string>& held_by = std::nullopt,
                                         const std::optional<std::string>& notice = std::nullopt);
planetlab::v1::RSpec rspecOf(const plng::node::SliverConfig& config);

}  // namespace plng::sliverd
