#include "sliverd/core/rcaps.h"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <sstream>

#include "base/eintr.h"
#include "base/error.h"
#include "base/strings.h"
#include "node/kvfile.h"

namespace plng::sliverd {
namespace {

std::string randomRcap() {
  std::array<unsigned char, 16> bytes{};
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = base::retryOnEintr(
        [&] { return ::getrandom(bytes.data() + done, bytes.size() - done, 0); });
    if (n < 0) base::throwErrno("getrandom for a new rcap");
    done += static_cast<std::size_t>(n);
  }
  return base::toHex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

template <typename T>
T parseNumber(const std::string& text, const std::string& what) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw std::runtime_error("malformed " + what + " '" + text + "'");
  }
  return value;
}

// One rcap per line of the state file: key = rcap id, value =
// "<owner> <bound_to or -> <expires_at> <cpu_share> <cpu_cap_pct> <mem_limit_bytes>
//  <tasks> <disk_quota_bytes> <net_min_rate> <net_max_rate>".
std::string encode(const Rcap& rcap) {
  const ResourceSpec& s = rcap.spec;
  std::ostringstream out;
  out << rcap.owner_slice << ' ' << (rcap.bound_to.empty() ? "-" : rcap.bound_to) << ' '
      << rcap.expires_at << ' ' << s.cpu_share << ' ' << s.cpu_cap_pct << ' ' << s.mem_limit_bytes
      << ' ' << s.tasks << ' ' << s.disk_quota_bytes << ' ' << s.net_min_rate << ' '
      << s.net_max_rate;
  return out.str();
}

Rcap decode(const std::string& id, const std::string& value, const std::string& file) {
  std::istringstream in(value);
  std::vector<std::string> f;
  for (std::string word; in >> word;) f.push_back(word);
  const std::string what = file + ": rcap " + id.substr(0, 8) + "…";
  if (f.size() != 10)
    throw std::runtime_error(what + ": want 10 fields, found " + std::to_string(f.size()));
  Rcap r;
  r.id = id;
  r.owner_slice = f[0];
  r.bound_to = f[1] == "-" ? "" : f[1];
  r.expires_at = parseNumber<std::int64_t>(f[2], what + " expires_at");
  r.spec.cpu_share = parseNumber<std::uint32_t>(f[3], what + " cpu_share");
  r.spec.cpu_cap_pct = parseNumber<std::uint32_t>(f[4], what + " cpu_cap_pct");
  r.spec.mem_limit_bytes = parseNumber<std::uint64_t>(f[5], what + " mem_limit_bytes");
  r.spec.tasks = parseNumber<std::uint32_t>(f[6], what + " tasks");
  r.spec.disk_quota_bytes = parseNumber<std::uint64_t>(f[7], what + " disk_quota_bytes");
  r.spec.net_min_rate = parseNumber<std::uint64_t>(f[8], what + " net_min_rate");
  r.spec.net_max_rate = parseNumber<std::uint64_t>(f[9], what + " net_max_rate");
  return r;
}

// A granted limit of 0 means "no limit" and stays so; an rcap's 0 holds nothing.
template <typename T>
T combineLimit(T granted, T bound) {
  if (granted == 0) return 0;
  return std::max(granted, bound);
}

}  // namespace

bool ResourceSpec::holds(const ResourceSpec& part) const {
  return part.cpu_share <= cpu_share && part.cpu_cap_pct <= cpu_cap_pct &&
         part.mem_limit_bytes <= mem_limit_bytes && part.tasks <= tasks &&
         part.disk_quota_bytes <= disk_quota_bytes && part.net_min_rate <= net_min_rate &&
         part.net_max_rate <= net_max_rate;
}

std::string describe(const ResourceSpec& s) {
  std::string out;
  auto add = [&out](const char* name, std::uint64_t value) {
    if (value == 0) return;
    if (!out.empty()) out += ' ';
    out += name;
    out += '=';
    out += std::to_string(value);
  };
  add("cpu_share", s.cpu_share);
  add("cpu_cap_pct", s.cpu_cap_pct);
  add("mem_limit_bytes", s.mem_limit_bytes);
  add("tasks", s.tasks);
  add("disk_quota_bytes", s.disk_quota_bytes);
  add("net_min_rate", s.net_min_rate);
  add("net_max_rate", s.net_max_rate);
  return out.empty() ? "nothing" : out;
}

RcapTable::RcapTable(std::filesystem::path state_file, ResourceSpec capacity,
                     GrantedGuarantees granted)
    : state_file_(std::move(state_file)), capacity_(capacity), granted_(std::move(granted)) {
  if (capacity_.cpu_share == 0 || capacity_.cpu_share > kMaxCpuShares) {
    capacity_.cpu_share = kMaxCpuShares;
  }
  load();
}

void RcapTable::checkFormat(const std::string& rcap) {
  bool ok = rcap.size() == 32 && std::all_of(rcap.begin(), rcap.end(), [](char c) {
              return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
            });
  if (!ok) {
    throw RcapError(RcapErrorCode::kMalformed, "an rcap is 32 lowercase hex digits (got " +
                                                   std::to_string(rcap.size()) + " characters)");
  }
}

void RcapTable::checkLimitsLocked(const ResourceSpec& s) const {
  auto check = [](const char* name, std::uint64_t asked, std::uint64_t node) {
    if (node != 0 && asked > node) {
      throw RcapError(RcapErrorCode::kExhausted, std::string(name) + "=" + std::to_string(asked) +
                                                     " exceeds this node's " + name + "=" +
                                                     std::to_string(node));
    }
  };
  check("cpu_cap_pct", s.cpu_cap_pct, capacity_.cpu_cap_pct);
  check("mem_limit_bytes", s.mem_limit_bytes, capacity_.mem_limit_bytes);
  check("tasks", s.tasks, capacity_.tasks);
  check("disk_quota_bytes", s.disk_quota_bytes, capacity_.disk_quota_bytes);
  check("net_max_rate", s.net_max_rate, capacity_.net_max_rate);
}

std::string RcapTable::acquire(const std::string& owner_slice, const ResourceSpec& spec,
                               std::int64_t expires_at, std::int64_t now) {
  if (spec.empty()) {
    throw RcapError(RcapErrorCode::kMalformed, "the rspec asks for nothing");
  }
  // Asked before taking our lock: the daemon's desired state has a lock of its
  // own and may call boundTo() while holding it.
  const ResourceSpec granted = granted_ ? granted_() : ResourceSpec{};
  std::lock_guard lock(mutex_);
  dropExpiredLocked(now);
  checkLimitsLocked(spec);
  ResourceSpec held;
  for (const auto& [id, r] : rcaps_) {
    held.cpu_share += r.spec.cpu_share;
    held.net_min_rate += r.spec.net_min_rate;
  }
  // 64-bit sums: a hostile spec must not wrap around the check.
  const std::uint64_t cpu_used = std::uint64_t{granted.cpu_share} + held.cpu_share;
  const std::uint64_t cpu_left =
      cpu_used >= capacity_.cpu_share ? 0 : capacity_.cpu_share - cpu_used;
  if (spec.cpu_share > cpu_left) {
    throw RcapError(RcapErrorCode::kExhausted,
                    "cpu_share=" + std::to_string(spec.cpu_share) +
                        " does not fit: " + std::to_string(cpu_left) + " of " +
                        std::to_string(capacity_.cpu_share) + " shares left (" +
                        std::to_string(granted.cpu_share) + " granted to slivers, " +
                        std::to_string(held.cpu_share) + " held by rcaps)");
  }
  if (capacity_.net_min_rate != 0) {
    const std::uint64_t used = granted.net_min_rate + held.net_min_rate;
    const std::uint64_t left = used >= capacity_.net_min_rate ? 0 : capacity_.net_min_rate - used;
    if (spec.net_min_rate > left) {
      throw RcapError(RcapErrorCode::kExhausted,
                      "net_min_rate=" + std::to_string(spec.net_min_rate) +
                          " does not fit: " + std::to_string(left) + " bit/s of " +
                          std::to_string(capacity_.net_min_rate) + " left");
    }
  }
  Rcap r;
  r.id = randomRcap();
  r.owner_slice = owner_slice;
  r.spec = spec;
  r.expires_at = expires_at;
  rcaps_[r.id] = r;
  try {
    saveLocked();
  } catch (...) {
    rcaps_.erase(r.id);
    throw;
  }
  return r.id;
}

Rcap& RcapTable::unboundLocked(const std::string& rcap, std::int64_t now) {
  checkFormat(rcap);
  dropExpiredLocked(now);
  auto it = rcaps_.find(rcap);
  if (it == rcaps_.end()) {
    throw RcapError(RcapErrorCode::kUnknown, "rcap " + rcap.substr(0, 8) +
                                                 "… is unknown on this node (never issued, "
                                                 "expired, or released)");
  }
  if (!it->second.bound_to.empty()) {
    throw RcapError(
        RcapErrorCode::kConsumed,
        "rcap " + rcap.substr(0, 8) + "… is already bound to slice " + it->second.bound_to);
  }
  return it->second;
}

SplitResult RcapTable::split(const std::string& rcap, const ResourceSpec& part,
                             const std::string& owner_slice, std::int64_t now) {
  if (part.empty()) throw RcapError(RcapErrorCode::kMalformed, "the rspec to split off is empty");
  std::lock_guard lock(mutex_);
  Rcap& original = unboundLocked(rcap, now);
  if (!original.spec.holds(part)) {
    throw RcapError(
        RcapErrorCode::kTooLarge,
        "cannot split " + describe(part) + " out of an rcap holding " + describe(original.spec));
  }
  const Rcap before = original;
  Rcap carved;
  carved.id = randomRcap();
  carved.owner_slice = owner_slice;
  carved.spec = part;
  carved.expires_at = original.expires_at;
  ResourceSpec& s = original.spec;
  s.cpu_share -= part.cpu_share;
  s.cpu_cap_pct -= part.cpu_cap_pct;
  s.mem_limit_bytes -= part.mem_limit_bytes;
  s.tasks -= part.tasks;
  s.disk_quota_bytes -= part.disk_quota_bytes;
  s.net_min_rate -= part.net_min_rate;
  s.net_max_rate -= part.net_max_rate;
  rcaps_[carved.id] = carved;
  try {
    saveLocked();
  } catch (...) {
    rcaps_.erase(carved.id);
    rcaps_[rcap] = before;
    throw;
  }
  return {carved.id, rcaps_[rcap].spec};
}

void RcapTable::bind(const std::string& rcap, const std::string& slice, std::int64_t now) {
  std::lock_guard lock(mutex_);
  checkFormat(rcap);
  auto it = rcaps_.find(rcap);
  if (it != rcaps_.end() && it->second.bound_to == slice) return;
  Rcap& r = unboundLocked(rcap, now);
  r.bound_to = slice;
  try {
    saveLocked();
  } catch (...) {
    r.bound_to.clear();
    throw;
  }
}

std::size_t RcapTable::releaseSlice(const std::string& slice) {
  std::lock_guard lock(mutex_);
  std::size_t n =
      std::erase_if(rcaps_, [&](const auto& kv) { return kv.second.bound_to == slice; });
  if (n > 0) saveLocked();
  return n;
}

ResourceSpec RcapTable::boundTo(const std::string& slice) const {
  std::lock_guard lock(mutex_);
  ResourceSpec out;
  for (const auto& [id, r] : rcaps_) {
    if (r.bound_to != slice) continue;
    out.cpu_share += r.spec.cpu_share;
    out.net_min_rate += r.spec.net_min_rate;
    out.cpu_cap_pct = std::max(out.cpu_cap_pct, r.spec.cpu_cap_pct);
    out.mem_limit_bytes = std::max(out.mem_limit_bytes, r.spec.mem_limit_bytes);
    out.tasks = std::max(out.tasks, r.spec.tasks);
    out.disk_quota_bytes = std::max(out.disk_quota_bytes, r.spec.disk_quota_bytes);
    out.net_max_rate = std::max(out.net_max_rate, r.spec.net_max_rate);
  }
  return out;
}

std::optional<Rcap> RcapTable::find(const std::string& rcap) const {
  std::lock_guard lock(mutex_);
  auto it = rcaps_.find(rcap);
  if (it == rcaps_.end()) return std::nullopt;
  return it->second;
}

std::vector<Rcap> RcapTable::list() const {
  std::lock_guard lock(mutex_);
  std::vector<Rcap> out;
  for (const auto& [id, r] : rcaps_) out.push_back(r);
  return out;
}

ResourceSpec RcapTable::reserved() const {
  std::lock_guard lock(mutex_);
  ResourceSpec out;
  for (const auto& [id, r] : rcaps_) {
    out.cpu_share += r.spec.cpu_share;
    out.net_min_rate += r.spec.net_min_rate;
  }
  return out;
}

void RcapTable::dropExpiredLocked(std::int64_t now) {
  if (now <= 0) return;
  std::size_t n = std::erase_if(rcaps_, [now](const auto& kv) {
    return kv.second.bound_to.empty() && kv.second.expires_at != 0 && kv.second.expires_at <= now;
  });
  if (n > 0) saveLocked();
}

void RcapTable::saveLocked() const {
  node::KvMap values;
  for (const auto& [id, r] : rcaps_) values[id] = encode(r);
  std::filesystem::create_directories(state_file_.parent_path());
  node::writeKvFileAtomic(state_file_, values);
}

void RcapTable::load() {
  std::error_code ec;
  if (!std::filesystem::exists(state_file_, ec)) return;
  for (const auto& [id, value] : node::readKvFile(state_file_)) {
    checkFormat(id);
    rcaps_[id] = decode(id, value, state_file_.string());
  }
}

node::Resources withBound(node::Resources granted, const ResourceSpec& bound) {
  granted.cpu_share += bound.cpu_share;
  granted.cpu_cap_pct = combineLimit(granted.cpu_cap_pct, bound.cpu_cap_pct);
  granted.mem_limit_bytes = combineLimit(granted.mem_limit_bytes, bound.mem_limit_bytes);
  granted.tasks = combineLimit(granted.tasks, bound.tasks);
  return granted;
}

node::SliverConfig withBound(node::SliverConfig granted, const ResourceSpec& bound) {
  granted.resources = withBound(granted.resources, bound);
  granted.disk_quota_bytes = combineLimit(granted.disk_quota_bytes, bound.disk_quota_bytes);
  return granted;
}

ResourceSpec withBound(ResourceSpec granted, const ResourceSpec& bound) {
  granted.cpu_share += bound.cpu_share;
  granted.net_min_rate += bound.net_min_rate;
  granted.cpu_cap_pct = combineLimit(granted.cpu_cap_pct, bound.cpu_cap_pct);
  granted.mem_limit_bytes = combineLimit(granted.mem_limit_bytes, bound.mem_limit_bytes);
  granted.tasks = combineLimit(granted.tasks, bound.tasks);
  granted.disk_quota_bytes = combineLimit(granted.disk_quota_bytes, bound.disk_quota_bytes);
  granted.net_max_rate = combineLimit(granted.net_max_rate, bound.net_max_rate);
  return granted;
}

}  // namespace plng::sliverd
