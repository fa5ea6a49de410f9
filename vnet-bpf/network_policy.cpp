#include "vnet-bpf/network_policy.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <tuple>

#include "base/error.h"
#include "base/fd.h"
#include "vnet-bpf/policy.skel.h"

namespace plng::vnet {
namespace {

namespace fs = std::filesystem;
using base::SysError;
using base::UniqueFd;

// --- libbpf's messages ------------------------------------------------------------
// libbpf prints through one process-wide callback: it goes to the sink of the
// NetworkPolicy call running on this thread, and is kept while a load runs so a
// verifier failure can carry the log.
thread_local const LogSink* tl_sink = nullptr;
thread_local std::string* tl_capture = nullptr;

int printLibbpf(enum libbpf_print_level level, const char* format, va_list args) {
  char buffer[8192];
  int n = vsnprintf(buffer, sizeof(buffer), format, args);
  if (n < 0) return 0;
  std::string text(buffer, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof(buffer) - 1));
  if (tl_capture) tl_capture->append(text);
  if (tl_sink && *tl_sink) {
    while (!text.empty() && text.back() == '\n') text.pop_back();
    LogLevel ours = level == LIBBPF_WARN   ? LogLevel::kWarn
                    : level == LIBBPF_INFO ? LogLevel::kInfo
                                           : LogLevel::kDebug;
    (*tl_sink)(ours, "libbpf: " + text);
  }
  return n;
}

void installPrint() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(printLibbpf); });
}

struct SinkScope {
  explicit SinkScope(const LogSink& sink) : previous(tl_sink) {
    installPrint();
    tl_sink = &sink;
  }
  ~SinkScope() { tl_sink = previous; }
  const LogSink* previous;
};

// The verifier's log in libbpf's warning, between its markers.
std::string verifierLogOf(const std::string& captured) {
  static constexpr std::string_view kBegin = "-- BEGIN PROG LOAD LOG --";
  static constexpr std::string_view kEnd = "-- END PROG LOAD LOG --";
  auto begin = captured.find(kBegin);
  if (begin == std::string::npos) return captured;
  auto end = captured.find(kEnd, begin);
  return captured.substr(begin + kBegin.size() + 1, end == std::string::npos
                                                        ? std::string::npos
                                                        : end - begin - kBegin.size() - 1);
}

// Loads `object`; a refusal becomes BpfLoadError with the verifier's log.
void loadObject(bpf_object* object, const std::string& what) {
  std::string captured;
  tl_capture = &captured;
  int err = bpf_object__load(object);
  tl_capture = nullptr;
  if (err) {
    std::string log = verifierLogOf(captured);
    throw BpfLoadError("loading " + what + " failed (" + std::strerror(-err) +
                           "); the kernel's verifier said:\n" + log,
                       log);
  }
}

// --- bpffs and cgroups ---------------------------------------------------------------

bool isFilesystem(const fs::path& path, long magic) {
  struct statfs info {};
  return statfs(path.c_str(), &info) == 0 && static_cast<long>(info.f_type) == magic;
}

void ensureBpffs(const fs::path& pin_dir) {
  static const fs::path kBpffsMount = "/sys/fs/bpf";
  if (!pin_dir.is_absolute())
    throw SysError(EINVAL, "pin directory " + pin_dir.string() + " is not an absolute path");
  fs::path existing = pin_dir;
  while (!fs::exists(existing)) existing = existing.parent_path();
  if (!isFilesystem(existing, BPF_FS_MAGIC)) {
    auto relative = pin_dir.lexically_relative(kBpffsMount);
    if (relative.empty() || *relative.begin() == "..")
      throw SysError(EINVAL, pin_dir.string() + " is not on a bpf file system");
    if (mount("bpf", kBpffsMount.c_str(), "bpf", 0, "mode=0700") != 0)
      base::throwErrno("mount bpffs at " + kBpffsMount.string());
  }
  fs::create_directories(pin_dir);
}

// The depth of a cgroup2 directory below its mount's root (the root is 0).
std::uint32_t cgroupLevel(const fs::path& dir) {
  if (!isFilesystem(dir, CGROUP2_SUPER_MAGIC))
    throw SysError(EINVAL, dir.string() + " is not a directory of the cgroup2 hierarchy");
  std::uint32_t level = 0;
  fs::path current = fs::canonical(dir);
  while (current.has_parent_path() && current != current.parent_path() &&
         isFilesystem(current.parent_path(), CGROUP2_SUPER_MAGIC)) {
    current = current.parent_path();
    ++level;
  }
  return level;
}

std::uint64_t monotonicNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1000000000ull +
         static_cast<std::uint64_t>(now.tv_nsec);
}

// --- map access --------------------------------------------------------------------------

template <typename Key>
std::vector<Key> keysOf(int map_fd) {
  std::vector<Key> keys;
  Key key{};
  Key next{};
  const void* previous = nullptr;
  while (bpf_map_get_next_key(map_fd, previous, &next) == 0) {
    keys.push_back(next);
    key = next;
    previous = &key;
  }
  return keys;
}

template <typename Key, typename Value>
void updateElem(int map_fd, const Key& key, const Value& value, const char* map_name) {
  if (bpf_map_update_elem(map_fd, &key, &value, BPF_ANY) != 0)
    base::throwErrno(std::string("update of BPF map ") + map_name);
}

template <typename Key>
void deleteElem(int map_fd, const Key& key) {
  bpf_map_delete_elem(map_fd, &key);  // ENOENT: gone already
}

// Writes the difference between the LPM keys a trie holds and `desired`;
// whether there was any.
bool applyLpmDiff(int map_fd, std::size_t key_size,
                  const std::set<std::vector<std::uint8_t>>& desired, const char* map_name) {
  std::set<std::vector<std::uint8_t>> current;
  std::vector<std::uint8_t> key(key_size);
  std::vector<std::uint8_t> next(key_size);
  const void* previous = nullptr;
  while (bpf_map_get_next_key(map_fd, previous, next.data()) == 0) {
    current.insert(next);
    key = next;
    previous = key.data();
  }
  auto diff = diffKeys(current, desired);
  const std::uint8_t present = 1;
  for (const auto& removed : diff.remove) bpf_map_delete_elem(map_fd, removed.data());
  for (const auto& added : diff.add)
    if (bpf_map_update_elem(map_fd, added.data(), &present, BPF_ANY) != 0)
      base::throwErrno(std::string("update of BPF map ") + map_name);
  return !diff.remove.empty() || !diff.add.empty();
}

// libbpf refuses to reuse a pinned map whose size differs from the object's:
// a map pinned with another size (the config changed) is unpinned, so that a
// new one is created and pinned.
void replaceResizedPin(bpf_map* map, std::uint32_t entries, const fs::path& pin_dir,
                       const LogSink& log) {
  fs::path path = pin_dir / bpf_map__name(map);
  UniqueFd pinned(bpf_obj_get(path.c_str()));
  if (!pinned) return;
  bpf_map_info info{};
  std::uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(pinned.get(), &info, &length) != 0 || info.max_entries == entries)
    return;
  if (log)
    log(LogLevel::kWarn, "BPF map " + path.string() + " has " + std::to_string(info.max_entries) +
                             " entries, the config asks for " + std::to_string(entries) +
                             ": replaced, and the records it held are lost");
  if (unlink(path.c_str()) != 0) base::throwErrno("unpin " + path.string());
}

}  // namespace

// --- the skeleton and its links -------------------------------------------------------------

// The `ports` array, mapped into this process: the loader reads it whole and
// writes the fields that are its own (reserved_for, service) one at a time,
// while the programs change owners with compare-and-swap.
class PortTable {
 public:
  static constexpr std::size_t kBytes = VNET_PORT_TABLE_SIZE * sizeof(vnet_port);

  void map(int map_fd) {
    void* address = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
    if (address == MAP_FAILED) base::throwErrno("mmap of the BPF port table");
    entries_ = static_cast<vnet_port*>(address);
  }
  ~PortTable() {
    if (entries_) munmap(entries_, kBytes);
  }

  vnet_port& operator[](const PortKey& key) const { return entries_[key.index()]; }
  // Each entry with its key. Fields are read and written one at a time (the
  // programs may change an owner meanwhile): load() and store() below.
  template <typename Visit>
  void forEach(Visit&& visit) const {
    for (std::uint32_t index = 0; index < VNET_PORT_TABLE_SIZE; ++index)
      visit(PortKey::atIndex(index), entries_[index]);
  }

  template <typename Field>
  static Field load(const Field& field) {
    return std::atomic_ref<Field>(const_cast<Field&>(field)).load(std::memory_order_relaxed);
  }
  template <typename Field>
  static void store(Field& field, Field value) {
    std::atomic_ref<Field>(field).store(value, std::memory_order_relaxed);
  }
  // The programs' compare-and-swap, from this side.
  static bool exchange(std::uint32_t& field, std::uint32_t expected, std::uint32_t desired) {
    return std::atomic_ref<std::uint32_t>(field).compare_exchange_strong(expected, desired);
  }

 private:
  vnet_port* entries_ = nullptr;
};

struct NetworkPolicy::Skeleton {
  vnet_policy* skel = nullptr;
  std::vector<UniqueFd> links;
  PortTable ports;
  ~Skeleton() {
    if (skel) vnet_policy__destroy(skel);
  }
  int fd(bpf_map* map) const { return bpf_map__fd(map); }
};

std::string_view portHoldName(PortHold hold) {
  switch (hold) {
    case PortHold::kBound:
      return "bound";
    case PortHold::kReserved:
      return "reserved";
    case PortHold::kLazy:
      return "lazy";
  }
  return "?";
}

std::string_view reasonName(std::uint32_t reason) {
  switch (reason) {
    case VNET_R_PORT_OWNED:
      return "port_owned";
    case VNET_R_PORT_RESERVED:
      return "port_reserved";
    case VNET_R_PORT_NODE:
      return "port_node";
    case VNET_R_PORT_CAP:
      return "port_cap";
    case VNET_R_NODE_SERVICE:
      return "node_service";
    case VNET_R_BLACKLIST:
      return "blacklist";
    case VNET_R_RAW_DENIED:
      return "raw_denied";
    case VNET_R_RAW_MALFORMED:
      return "raw_malformed";
    case VNET_R_RAW_PROTOCOL:
      return "raw_protocol";
    case VNET_R_RAW_ICMP_ERROR:
      return "raw_icmp_error";
    case VNET_R_RAW_FRAGMENT:
      return "raw_fragment";
    case VNET_R_RAW_SPOOFED:
      return "raw_spoofed";
    case VNET_R_INGRESS_FOREIGN:
      return "ingress_foreign";
    case VNET_R_UNIX_ABSTRACT:
      return "unix_abstract";
    case VNET_R_SOCKET_CAP:
      return "socket_cap";
    case VNET_R_PACKET_SEND:
      return "packet_send";
    default:
      return "unknown";
  }
}

NetworkPolicy::NetworkPolicy(PolicyOptions options)
    : skeleton_(std::make_unique<Skeleton>()), options_(std::move(options)) {
  SinkScope sink(options_.log);
  const Features& features = probeFeatures();
  ensureBpffs(options_.pin_dir);
  std::uint32_t slivers_level = cgroupLevel(options_.slivers_cgroup);

  vnet_policy* skel = vnet_policy__open();
  if (!skel) base::throwErrno("open of the vnet policy BPF object");
  skeleton_->skel = skel;
  sliver_cgroup_level_ = slivers_level + 1;
  skel->rodata->sliver_cgroup_level = sliver_cgroup_level_;
  skel->rodata->grant_reserved_ports = features.has(kBindGrantsLowPort) ? 1 : 0;
  skel->rodata->default_max_ports = options_.default_max_ports;
  skel->rodata->lazy_idle_ns = options_.lazy_idle_seconds * 1000000000ull;
  skel->rodata->max_bound_sockets = options_.max_bound_sockets;

  // Every map of ours is pinned by name: libbpf reuses a pinned map whose
  // definition matches and pins a new one otherwise.
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, skel->obj) {
    if (bpf_map__is_internal(map)) continue;
    std::string path = (options_.pin_dir / bpf_map__name(map)).string();
    if (bpf_map__set_pin_path(map, path.c_str()) != 0) throw SysError(EINVAL, "pin path " + path);
  }
  replaceResizedPin(skel->maps.flows, options_.flow_entries, options_.pin_dir, options_.log);
  if (bpf_map__set_max_entries(skel->maps.flows, options_.flow_entries) != 0)
    throw SysError(EINVAL, "flow map size " + std::to_string(options_.flow_entries));
  const bool unix_hook = options_.connect_unix && features.has(kConnectUnix);
  if (unix_hook)
    bpf_program__set_expected_attach_type(skel->progs.vnet_connect_unix,
                                          static_cast<bpf_attach_type>(kAttachCgroupUnixConnect));
  else
    bpf_program__set_autoload(skel->progs.vnet_connect_unix, false);

  loadObject(skel->obj, "the vnet policy programs");

  struct Hook {
    bpf_program* program;
    int attach_type;
  };
  std::vector<Hook> hooks = {
      {skel->progs.vnet_bind4, BPF_CGROUP_INET4_BIND},
      {skel->progs.vnet_bind6, BPF_CGROUP_INET6_BIND},
      {skel->progs.vnet_post_bind4, BPF_CGROUP_INET4_POST_BIND},
      {skel->progs.vnet_post_bind6, BPF_CGROUP_INET6_POST_BIND},
      {skel->progs.vnet_sock_release, BPF_CGROUP_INET_SOCK_RELEASE},
      {skel->progs.vnet_connect4, BPF_CGROUP_INET4_CONNECT},
      {skel->progs.vnet_connect6, BPF_CGROUP_INET6_CONNECT},
      {skel->progs.vnet_sendmsg4, BPF_CGROUP_UDP4_SENDMSG},
      {skel->progs.vnet_sendmsg6, BPF_CGROUP_UDP6_SENDMSG},
      {skel->progs.vnet_egress, BPF_CGROUP_INET_EGRESS},
      {skel->progs.vnet_ingress, BPF_CGROUP_INET_INGRESS},
  };
  if (unix_hook) {
    hooks.push_back({skel->progs.vnet_connect_unix, kAttachCgroupUnixConnect});
  } else {
    // Unpinning a link detaches its program once no descriptor holds it.
    std::error_code ignored;
    std::filesystem::remove(
        options_.pin_dir /
            ("link_" + std::string(bpf_program__name(skel->progs.vnet_connect_unix))),
        ignored);
  }

  UniqueFd cgroup(open(options_.slivers_cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup) base::throwErrno("open cgroup " + options_.slivers_cgroup.string());
  for (const Hook& hook : hooks) {
    std::string path =
        (options_.pin_dir / ("link_" + std::string(bpf_program__name(hook.program)))).string();
    int program_fd = bpf_program__fd(hook.program);
    UniqueFd link(bpf_obj_get(path.c_str()));
    if (link) {
      // Atomic: the old program runs until the new one is in.
      if (bpf_link_update(link.get(), program_fd, nullptr) != 0)
        base::throwErrno("bpf_link_update of " + path);
      reused_links_ = true;
    } else {
      link = UniqueFd(bpf_link_create(program_fd, cgroup.get(),
                                      static_cast<bpf_attach_type>(hook.attach_type), nullptr));
      if (!link)
        base::throwErrno(std::string("attach ") + bpf_program__name(hook.program) + " to " +
                         options_.slivers_cgroup.string());
      if (bpf_obj_pin(link.get(), path.c_str()) != 0) base::throwErrno("pin " + path);
    }
    skeleton_->links.push_back(std::move(link));
  }

  skeleton_->ports.map(skeleton_->fd(skel->maps.ports));

  // The node's own ports and the services slices may reach.
  std::set<PortKey> node_keys = portKeys(options_.node_ports);
  std::set<PortKey> service_keys = portKeys(options_.service_allowlist);
  skeleton_->ports.forEach([&](const PortKey& key, vnet_port& entry) {
    std::uint32_t reserved = PortTable::load(entry.reserved_for);
    if (node_keys.contains(key)) {
      if (reserved != 0 && reserved != VNET_XID_NODE && options_.log)
        options_.log(LogLevel::kWarn, "node port " + formatPortKey(key) +
                                          " was reserved by slice xid " + std::to_string(reserved) +
                                          ": the node keeps it");
      PortTable::store<std::uint32_t>(entry.reserved_for, VNET_XID_NODE);
    } else if (reserved == VNET_XID_NODE) {
      PortTable::store<std::uint32_t>(entry.reserved_for, 0);
    }
    PortTable::store<std::uint8_t>(entry.service, service_keys.contains(key) ? 1 : 0);
  });

  refreshNodeAddresses();
  // What sockets remembered under programs loaded before (the map is pinned)
  // is not this load's to trust.
  advanceEpoch();
}

NetworkPolicy::~NetworkPolicy() = default;

void NetworkPolicy::advanceEpoch() {
  const int map_fd = skeleton_->fd(skeleton_->skel->maps.policy_epoch);
  const std::uint32_t zero = 0;
  std::uint64_t epoch = 0;
  if (bpf_map_lookup_elem(map_fd, &zero, &epoch) != 0) base::throwErrno("lookup of policy_epoch");
  ++epoch;
  if (bpf_map_update_elem(map_fd, &zero, &epoch, BPF_ANY) != 0)
    base::throwErrno("update of policy_epoch");
}

void NetworkPolicy::setSlice(std::uint32_t xid, const SlicePolicy& policy) {
  vnet_policy* skel = skeleton_->skel;
  const PortTable& table = skeleton_->ports;
  std::set<PortKey> desired = portKeys(policy.reserved);
  std::set<PortKey> current;
  table.forEach([&](const PortKey& key, const vnet_port& entry) {
    if (PortTable::load(entry.reserved_for) == xid) current.insert(key);
  });
  for (const PortKey& key : desired) {
    std::uint32_t owner = PortTable::load(table[key].reserved_for);
    if (owner == 0 || owner == xid) continue;
    throw ReservationConflict(
        "slice xid " + std::to_string(xid) + " reserves " + formatPortKey(key) + ", which is " +
        (owner == VNET_XID_NODE ? std::string("one of the node's own ports")
                                : "reserved by slice xid " + std::to_string(owner)));
  }
  auto diff = diffKeys(current, desired);
  for (const PortKey& key : diff.remove)
    PortTable::store<std::uint32_t>(table[key].reserved_for, 0);
  for (const PortKey& key : diff.add) PortTable::store(table[key].reserved_for, xid);
  const int slices = skeleton_->fd(skel->maps.slices);
  vnet_slice slice{};
  bpf_map_lookup_elem(slices, &xid, &slice);  // keeps its HTB classes
  slice.flags = policy.raw_sockets ? VNET_SLICE_RAW : 0;
  slice.max_ports = policy.max_ports;
  updateElem(slices, xid, slice, "slices");
  // No epoch: the raw right, the cap and reservations decide new claims and
  // raw packets, never what a socket remembered (a port it already holds).
}

void NetworkPolicy::setSliceClasses(std::uint32_t xid, const SliceClassIds& classes) {
  const int slices = skeleton_->fd(skeleton_->skel->maps.slices);
  vnet_slice slice{};
  if (bpf_map_lookup_elem(slices, &xid, &slice) != 0) {
    slice = vnet_slice{};
    slice.max_ports = options_.default_max_ports;
  }
  slice.htb_class = classes.bulk;
  slice.htb_icmp_class = classes.icmp;
  updateElem(slices, xid, slice, "slices");
  advanceEpoch();
}

void NetworkPolicy::removeSlice(std::uint32_t xid) {
  vnet_policy* skel = skeleton_->skel;
  deleteElem(skeleton_->fd(skel->maps.slices), xid);
  skeleton_->ports.forEach([xid](const PortKey&, vnet_port& entry) {
    if (PortTable::load(entry.reserved_for) == xid)
      PortTable::store<std::uint32_t>(entry.reserved_for, 0);
    if (PortTable::load(entry.owner) != xid) return;
    PortTable::store<std::uint8_t>(entry.kind, 0);
    PortTable::store<std::uint32_t>(entry.sockets, 0);
    PortTable::exchange(entry.owner, xid, 0);
  });
  deleteElem(skeleton_->fd(skel->maps.slice_usage), xid);
  int cgroups = skeleton_->fd(skel->maps.sliver_cgroups);
  for (std::uint64_t id : keysOf<std::uint64_t>(cgroups)) {
    std::uint32_t owner = 0;
    if (bpf_map_lookup_elem(cgroups, &id, &owner) == 0 && owner == xid) deleteElem(cgroups, id);
  }
  advanceEpoch();
}

void NetworkPolicy::setSliverCgroup(std::uint64_t cgroup_id, std::uint32_t xid) {
  const int cgroups = skeleton_->fd(skeleton_->skel->maps.sliver_cgroups);
  std::uint32_t held = 0;
  const bool mapped = bpf_map_lookup_elem(cgroups, &cgroup_id, &held) == 0;
  if (mapped && held == xid) return;  // sliverd writes every live cgroup at every pass
  updateElem(cgroups, cgroup_id, xid, "sliver_cgroups");
  // Sockets of a cgroup no slice had were never remembered; of one that
  // changes hands, they were.
  if (mapped) advanceEpoch();
}

void NetworkPolicy::removeSliverCgroup(std::uint64_t cgroup_id) {
  deleteElem(skeleton_->fd(skeleton_->skel->maps.sliver_cgroups), cgroup_id);
  advanceEpoch();
}

std::vector<std::uint32_t> NetworkPolicy::slices() const {
  return keysOf<std::uint32_t>(skeleton_->fd(skeleton_->skel->maps.slices));
}

std::map<std::uint32_t, SliceClassIds> NetworkPolicy::sliceClasses() const {
  const int slices = skeleton_->fd(skeleton_->skel->maps.slices);
  std::map<std::uint32_t, SliceClassIds> out;
  for (std::uint32_t xid : keysOf<std::uint32_t>(slices)) {
    vnet_slice slice{};
    if (bpf_map_lookup_elem(slices, &xid, &slice) == 0 && slice.htb_class != 0)
      out[xid] = SliceClassIds{slice.htb_class, slice.htb_icmp_class};
  }
  return out;
}

std::map<std::uint64_t, std::uint32_t> NetworkPolicy::sliverCgroups() const {
  const int cgroups = skeleton_->fd(skeleton_->skel->maps.sliver_cgroups);
  std::map<std::uint64_t, std::uint32_t> mapped;
  for (std::uint64_t id : keysOf<std::uint64_t>(cgroups)) {
    std::uint32_t xid = 0;
    if (bpf_map_lookup_elem(cgroups, &id, &xid) == 0) mapped[id] = xid;
  }
  return mapped;
}

void NetworkPolicy::setBlacklist(const std::vector<Prefix>& prefixes) {
  LpmKeys keys = lpmKeys(prefixes);
  bool changed = applyLpmDiff(skeleton_->fd(skeleton_->skel->maps.blacklist4), sizeof(vnet_lpm4),
                              keys.v4, "blacklist4");
  changed |= applyLpmDiff(skeleton_->fd(skeleton_->skel->maps.blacklist6), sizeof(vnet_lpm6),
                          keys.v6, "blacklist6");
  if (changed) advanceEpoch();
}

void NetworkPolicy::refreshNodeAddresses() {
  std::vector<Prefix> prefixes = {parsePrefix("127.0.0.0/8"), parsePrefix("::1/128")};
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) base::throwErrno("getifaddrs");
  for (ifaddrs* entry = list; entry; entry = entry->ifa_next) {
    if (!entry->ifa_addr) continue;
    Prefix prefix;
    if (entry->ifa_addr->sa_family == AF_INET) {
      auto* address = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
      std::memcpy(prefix.address.data(), &address->sin_addr, 4);
      prefix.length = 32;
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      auto* address = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
      prefix.family = AF_INET6;
      std::memcpy(prefix.address.data(), &address->sin6_addr, 16);
      prefix.length = 128;
    } else {
      continue;
    }
    prefixes.push_back(prefix);
  }
  freeifaddrs(list);
  LpmKeys keys = lpmKeys(prefixes);
  bool changed = applyLpmDiff(skeleton_->fd(skeleton_->skel->maps.node_addrs4), sizeof(vnet_lpm4),
                              keys.v4, "node_addrs4");
  changed |= applyLpmDiff(skeleton_->fd(skeleton_->skel->maps.node_addrs6), sizeof(vnet_lpm6),
                          keys.v6, "node_addrs6");
  if (changed) advanceEpoch();
}

void NetworkPolicy::setAbstractUnixNames(std::uint32_t xid, const std::vector<std::string>& names) {
  int map_fd = skeleton_->fd(skeleton_->skel->maps.unix_names);
  for (const vnet_unix_name& key : keysOf<vnet_unix_name>(map_fd)) {
    std::uint32_t owner = 0;
    if (bpf_map_lookup_elem(map_fd, &key, &owner) == 0 && owner == xid) deleteElem(map_fd, key);
  }
  for (const std::string& name : names) {
    if (name.empty() || name.size() > VNET_UNIX_NAME_MAX)
      throw std::invalid_argument("abstract unix socket name of 1 to 107 bytes expected, got " +
                                  std::to_string(name.size()));
    vnet_unix_name key{};
    std::memcpy(key.name, name.data(), name.size());
    updateElem(map_fd, key, xid, "unix_names");
  }
}

std::vector<PortOwner> NetworkPolicy::ports(std::optional<std::uint32_t> xid) const {
  std::vector<PortOwner> result;
  skeleton_->ports.forEach([&](const PortKey& key, const vnet_port& entry) {
    std::uint32_t owner = PortTable::load(entry.owner);
    if (owner != 0 && (!xid || owner == *xid))
      result.push_back(
          {key, owner,
           PortTable::load(entry.kind) == VNET_PORT_LAZY ? PortHold::kLazy : PortHold::kBound,
           PortTable::load(entry.sockets)});
    std::uint32_t reserved = PortTable::load(entry.reserved_for);
    if (reserved != 0 && (!xid || reserved == *xid))
      result.push_back({key, reserved, PortHold::kReserved, 0});
  });
  std::sort(result.begin(), result.end(), [](const PortOwner& a, const PortOwner& b) {
    return std::tie(a.port, a.hold) < std::tie(b.port, b.hold);
  });
  return result;
}

std::map<std::string, std::uint64_t> NetworkPolicy::counters(std::uint32_t xid) const {
  std::map<std::string, std::uint64_t> result;
  int map_fd = skeleton_->fd(skeleton_->skel->maps.counters);
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) throw SysError(-cpus, "number of possible CPUs");
  std::vector<std::uint64_t> values(static_cast<std::size_t>(cpus));
  for (const vnet_counter_key& key : keysOf<vnet_counter_key>(map_fd)) {
    if (key.xid != xid || bpf_map_lookup_elem(map_fd, &key, values.data()) != 0) continue;
    std::uint64_t total = 0;
    for (std::uint64_t value : values) total += value;
    result[std::string(reasonName(key.reason))] += total;
  }
  return result;
}

std::map<std::uint32_t, SliceTraffic> NetworkPolicy::traffic() const {
  std::map<std::uint32_t, SliceTraffic> result;
  int map_fd = skeleton_->fd(skeleton_->skel->maps.slice_traffic);
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) throw SysError(-cpus, "number of possible CPUs");
  std::vector<vnet_slice_traffic> values(static_cast<std::size_t>(cpus));
  for (std::uint32_t xid : keysOf<std::uint32_t>(map_fd)) {
    if (bpf_map_lookup_elem(map_fd, &xid, values.data()) != 0) continue;
    SliceTraffic& total = result[xid];
    for (const vnet_slice_traffic& value : values) {
      total.egress_bytes += value.egress_bytes;
      total.egress_packets += value.egress_packets;
      total.ingress_bytes += value.ingress_bytes;
      total.ingress_packets += value.ingress_packets;
    }
  }
  return result;
}

void NetworkPolicy::forgetTraffic(std::uint32_t xid) {
  deleteElem(skeleton_->fd(skeleton_->skel->maps.slice_traffic), xid);
}

std::size_t NetworkPolicy::expireIdleClaims() {
  int usage_fd = skeleton_->fd(skeleton_->skel->maps.slice_usage);
  std::uint64_t now = monotonicNs();
  std::uint64_t idle = options_.lazy_idle_seconds * 1000000000ull;
  std::size_t expired = 0;
  skeleton_->ports.forEach([&](const PortKey&, vnet_port& entry) {
    std::uint32_t owner = PortTable::load(entry.owner);
    if (owner == 0 || PortTable::load(entry.kind) != VNET_PORT_LAZY) return;
    std::uint64_t last_seen = PortTable::load(entry.last_seen_ns);
    if (now - last_seen <= idle || !PortTable::exchange(entry.owner, owner, 0)) return;
    ++expired;
    // Not atomic with the programs' own updates of the count: a claim racing
    // with this sweep can leave it off by one until the slice is removed.
    vnet_slice_usage usage{};
    if (bpf_map_lookup_elem(usage_fd, &owner, &usage) == 0 && usage.ports_held > 0) {
      --usage.ports_held;
      bpf_map_update_elem(usage_fd, &owner, &usage, BPF_EXIST);
    }
  });
  return expired;
}

std::vector<FlowEntry> NetworkPolicy::flows() const {
  int map_fd = skeleton_->fd(skeleton_->skel->maps.flows);
  std::vector<FlowEntry> result;
  // Batches: one system call for thousands of records.
  constexpr std::uint32_t kBatch = 4096;
  std::vector<vnet_flow_key> keys(kBatch);
  std::vector<vnet_flow> values(kBatch);
  vnet_flow_key out_batch{};
  bool first = true;
  for (;;) {
    std::uint32_t count = kBatch;
    int err = bpf_map_lookup_batch(map_fd, first ? nullptr : &out_batch, &out_batch, keys.data(),
                                   values.data(), &count, nullptr);
    int saved = errno;
    for (std::uint32_t i = 0; i < count; ++i) result.push_back({keys[i], values[i]});
    if (err != 0) {
      if (saved == ENOENT) break;  // the last batch
      throw SysError(saved, "batch lookup of BPF map flows");
    }
    first = false;
  }
  return result;
}

std::optional<vnet_flow> NetworkPolicy::takeFlow(const vnet_flow_key& key) {
  int map_fd = skeleton_->fd(skeleton_->skel->maps.flows);
  vnet_flow value{};
  if (bpf_map_lookup_and_delete_elem(map_fd, &key, &value) != 0) {
    if (errno == ENOENT) return std::nullopt;
    base::throwErrno("lookup and delete in BPF map flows");
  }
  return value;
}

std::uint64_t NetworkPolicy::flowDrops() const {
  int map_fd = skeleton_->fd(skeleton_->skel->maps.flow_drops);
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) throw SysError(-cpus, "number of possible CPUs");
  std::vector<std::uint64_t> values(static_cast<std::size_t>(cpus));
  std::uint32_t zero = 0;
  if (bpf_map_lookup_elem(map_fd, &zero, values.data()) != 0)
    base::throwErrno("lookup in BPF map flow_drops");
  std::uint64_t total = 0;
  for (std::uint64_t value : values) total += value;
  return total;
}

void NetworkPolicy::removePinned(const fs::path& pin_dir) {
  std::error_code ec;
  if (!fs::exists(pin_dir, ec)) return;
  // Links first: the programs detach as their last reference goes.
  std::vector<fs::path> links;
  std::vector<fs::path> maps;
  for (const auto& entry : fs::directory_iterator(pin_dir)) {
    (entry.path().filename().string().starts_with("link_") ? links : maps).push_back(entry.path());
  }
  for (const auto& path : links)
    if (unlink(path.c_str()) != 0) base::throwErrno("unpin " + path.string());
  for (const auto& path : maps)
    if (unlink(path.c_str()) != 0) base::throwErrno("unpin " + path.string());
  if (rmdir(pin_dir.c_str()) != 0) base::throwErrno("remove " + pin_dir.string());
}

std::uint64_t NetworkPolicy::cgroupId(const fs::path& dir) {
  // On cgroup2 a directory's inode number is the cgroup's id (kernfs, 64-bit).
  struct stat info {};
  if (stat(dir.c_str(), &info) != 0) base::throwErrno("stat " + dir.string());
  return info.st_ino;
}

void loadObjectForTest(const fs::path& object, const LogSink& log) {
  SinkScope sink(log);
  bpf_object* opened = bpf_object__open_file(object.c_str(), nullptr);
  if (!opened) base::throwErrno("open BPF object " + object.string());
  struct Closer {
    bpf_object* object;
    ~Closer() { bpf_object__close(object); }
  } closer{opened};
  loadObject(opened, object.filename().string());
}

}  // namespace plng::vnet
