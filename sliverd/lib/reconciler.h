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

#include "desired_state.h"
#include "node.pb.h"
#include "paths.h"
#include "runtime.h"

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

  // One pass: plan against runtime.list() and apply. Throws only when the
  // runtime cannot list slivers at all; per-sliver errors end up in failure().
  Result reconcileOnce();

  // Why a sliver is failed (its last action's error), if it is. Thread-safe.
  std::optional<std::string> failure(const std::string& slice) const;
  std::map<std::string, std::string> failures() const;

  // The unwanted records (as on disk).
  std::map<std::string, std::int64_t> unwantedSince() const;

 private:
  void apply(const Action& action, std::int64_t now, std::map<std::string, std::int64_t>& unwanted);
  void recordFailure(const std::string& slice, const std::string& message);
  void clearFailure(const std::string& slice);
  void saveUnwanted(const std::map<std::string, std::int64_t>& unwanted);

  plng::node::SliverRuntime& runtime_;
  DesiredState& desired_;
  Options options_;
  std::mutex run_mutex_;           // one pass at a time
  std::set<std::string> present_;  // slivers on_present was told about
  mutable std::mutex failures_mutex_;
  std::map<std::string, std::string> failures_;
};

// The API's view of a sliver from what is wanted, what exists and what failed.
planetlab::v1::SliverInfo describeSliver(const std::string& slice,
                                         const std::optional<DesiredSliver>& desired,
                                         const std::optional<plng::node::SliverStatus>& actual,
                                         const std::optional<std::string>& failure,
                                         const std::optional<std::string>& held_by = std::nullopt);
planetlab::v1::RSpec rspecOf(const plng::node::SliverConfig& config);

}  // namespace plng::sliverd
