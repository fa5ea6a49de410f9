// Resource capabilities (rcaps): reservations of node resources that can be
// acquired, split and handed on, and finally bound to a sliver.
//
// An rcap is a bearer capability: 128 random bits written as 32 lowercase hex
// digits. Whoever holds the string may split or bind it (that is how resources
// are delegated); RcapService decides who may call at all.
//
// Life of an rcap:
//   acquire  reserves a ResourceSpec under admission control and returns a new
//            rcap (owner = the acquiring slice, kept for the record);
//   split    carves part of an unbound rcap into a new rcap; the two together
//            hold exactly what the original held;
//   bind     attaches an unbound rcap to a slice. The rcap is then *consumed*:
//            it stays in the table, marked bound, so that its reservation keeps
//            counting against capacity and a second bind or split is refused,
//            until the slice's sliver is gone (releaseSlice).
//
// Admission control: guarantees (cpu_share, net_min_rate) of every sliver's
// granted resources plus every rcap (bound or not) never exceed the node's
// capacity, and CPU guarantees never exceed kMaxCpuShares in total. Limits
// (cpu_cap_pct, mem_limit_bytes, tasks, disk_quota_bytes, net_max_rate) are
// not summed: each rcap's limit must only fit the node's (when configured).
//
// How bound rcaps combine with a sliver's tag-derived resources (withBound):
// guarantees add; limits take the larger, where a granted 0 ("no limit")
// stays unlimited and an rcap's 0 ("holds none") contributes nothing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "node/resources.h"
#include "node/runtime.h"

namespace plng::sliverd {

// The resource dimensions of an RSpec (proto/node.proto), without the proto.
struct ResourceSpec {
  std::uint32_t cpu_share = 0;         // guarantee
  std::uint32_t cpu_cap_pct = 0;       // limit
  std::uint64_t mem_limit_bytes = 0;   // limit
  std::uint32_t tasks = 0;             // limit
  std::uint64_t disk_quota_bytes = 0;  // limit
  std::uint64_t net_min_rate = 0;      // guarantee, bit/s
  std::uint64_t net_max_rate = 0;      // limit, bit/s
  bool operator==(const ResourceSpec&) const = default;

  bool empty() const { return *this == ResourceSpec{}; }
  // True when every dimension of `part` is <= this one's.
  bool holds(const ResourceSpec& part) const;
};

// "cpu_share=10 mem_limit_bytes=1048576" (non-zero dimensions only; "nothing").
std::string describe(const ResourceSpec& spec);

// Total CPU guarantees a node hands out, as in PlanetLab.
inline constexpr std::uint32_t kMaxCpuShares = 1000;

// What an rcap error is about; RcapService maps each to a gRPC status.
enum class RcapErrorCode {
  kMalformed,  // not 32 hex digits, empty or impossible spec
  kUnknown,    // no such rcap (never issued, or released)
  kConsumed,   // already bound
  kExhausted,  // admission control refused
  kTooLarge,   // split asks for more than the rcap holds
};

class RcapError : public std::runtime_error {
 public:
  RcapError(RcapErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  RcapErrorCode code() const { return code_; }

 private:
  RcapErrorCode code_;
};

struct Rcap {
  std::string id;           // 32 hex digits
  std::string owner_slice;  // the slice that acquired (or split) it
  ResourceSpec spec;
  std::string bound_to;         // "" while unbound
  std::int64_t expires_at = 0;  // unix seconds; 0 = never. Unbound rcaps past it
                                // are dropped (their reservation returns).
};

struct SplitResult {
  std::string rcap;        // the new rcap holding the carved part
  ResourceSpec remaining;  // what the original still holds
};

class RcapTable {
 public:
  // The guarantees currently granted to slivers by their tags/tickets (not
  // counting rcaps), summed over all slivers; called at every acquire, without
  // the table's lock held (so it may take locks of its own).
  using GrantedGuarantees = std::function<ResourceSpec()>;

  // Loads <state_file> when it exists (throws SysError / std::runtime_error for
  // an unreadable or malformed file). `capacity`: guarantees are summed against
  // cpu_share (clamped to kMaxCpuShares; 0 = kMaxCpuShares) and net_min_rate
  // (0 = not admission controlled); non-zero limits bound each rcap's limits.
  RcapTable(std::filesystem::path state_file, ResourceSpec capacity, GrantedGuarantees granted);

  // Reserves `spec` for `owner_slice`. Throws RcapError kMalformed for an empty
  // spec, kExhausted (naming what is left) when it does not fit.
  std::string acquire(const std::string& owner_slice, const ResourceSpec& spec,
                      std::int64_t expires_at = 0, std::int64_t now = 0);
  // Carves `part` out of an unbound rcap into a new one owned by `owner_slice`.
  SplitResult split(const std::string& rcap, const ResourceSpec& part,
                    const std::string& owner_slice, std::int64_t now = 0);
  // Binds an unbound rcap to `slice` (consumed). Binding it again to the same
  // slice is a no-op; to another slice throws kConsumed.
  void bind(const std::string& rcap, const std::string& slice, std::int64_t now = 0);
  // Drops the rcaps bound to `slice` (its sliver was destroyed); returns how many.
  std::size_t releaseSlice(const std::string& slice);

  // Sum of guarantees and largest limits of the rcaps bound to `slice`.
  ResourceSpec boundTo(const std::string& slice) const;
  std::optional<Rcap> find(const std::string& rcap) const;
  std::vector<Rcap> list() const;
  // Guarantees held by rcaps (bound or not), and the node's capacity.
  ResourceSpec reserved() const;
  const ResourceSpec& capacity() const { return capacity_; }

  // Throws RcapError kMalformed unless `rcap` is 32 lowercase hex digits.
  static void checkFormat(const std::string& rcap);

 private:
  void dropExpiredLocked(std::int64_t now);
  Rcap& unboundLocked(const std::string& rcap, std::int64_t now);
  void checkLimitsLocked(const ResourceSpec& spec) const;
  void saveLocked() const;
  void load();

  const std::filesystem::path state_file_;
  ResourceSpec capacity_;
  GrantedGuarantees granted_;
  mutable std::mutex mutex_;
  std::map<std::string, Rcap> rcaps_;
};

// A sliver's resources with bound rcaps applied (see the file comment).
node::Resources withBound(node::Resources granted, const ResourceSpec& bound);
node::SliverConfig withBound(node::SliverConfig granted, const ResourceSpec& bound);
ResourceSpec withBound(ResourceSpec granted, const ResourceSpec& bound);

}  // namespace plng::sliverd
