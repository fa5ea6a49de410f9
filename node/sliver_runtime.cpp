#include "node/sliver_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/proc.h"
#include "node/idrange.h"
#include "node/kvfile.h"
#include "node/launch.h"
#include "node/rootfs.h"
#include "node/rootfs_release.h"
#include "node/security.h"
#include "node/sliver_name.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node {
namespace {

constexpr const char* kInitscriptPath = "etc/plng/initscript";
// How long stop() waits for the cgroup to empty after SIGKILL.
constexpr std::chrono::milliseconds kKillTimeout{5000};

int pidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

std::optional<KvMap> readKvFileIfExists(const std::filesystem::path& file) {
  try {
    return readKvFile(file);
  } catch (const SysError& e) {
    if (e.err() == ENOENT) return std::nullopt;
    throw;
  }
}

std::string u64(std::uint64_t v) { return std::to_string(v); }

std::uint64_t parseU64(const KvMap& kv, const std::string& key, const std::string& file) {
  auto it = kv.find(key);
  if (it == kv.end()) return 0;
  try {
    std::size_t used = 0;
    std::uint64_t v = std::stoull(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument(key);
    return v;
  } catch (const std::exception&) {
    throw SysError(EINVAL, file + ": bad " + key + " '" + it->second + "'");
  }
}

std::string valueOf(const KvMap& kv, const std::string& key) {
  auto it = kv.find(key);
  return it == kv.end() ? "" : it->second;
}

// The listening socket sliver-init starts the sliver's ssh logins on
// (sliverd/init/login_request.h), bound at `path`, mode 0600: only host root
// may connect (sliver-enter is setuid root). Bound under a temporary name and
// renamed, so that no other mode is ever seen at `path`.
UniqueFd bindLoginSocket(const std::filesystem::path& path) {
  const std::filesystem::path staged = path.string() + ".new";
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (staged.string().size() >= sizeof address.sun_path) {
    throw SysError(ENAMETOOLONG, "login socket " + staged.string());
  }
  std::memcpy(address.sun_path, staged.c_str(), staged.string().size() + 1);
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock) throwErrno("socket for logins");
  ::unlink(staged.c_str());
  if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    throwErrno("bind " + staged.string());
  }
  if (::chmod(staged.c_str(), 0600) != 0 || ::listen(sock.get(), 16) != 0 ||
      ::rename(staged.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(staged.c_str());
    throw SysError(err, "login socket " + path.string());
  }
  return sock;
}

// Reaps `pidfd`'s process if it is our child and has exited; true if it has.
bool reapIfExited(int pidfd, bool wait) {
  siginfo_t info{};
  int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info,
                    WEXITED | (wait ? 0 : WNOHANG));
  if (rc != 0) return errno == ECHILD;  // not ours (any more): someone else reaps
  return info.si_pid != 0;
}

}  // namespace

LinuxSliverRuntime::LinuxSliverRuntime(NodePaths paths, CgroupDriver& cgroups,
                                       SliverStorage& storage, SliverRuntimeOptions options)
    : paths_(std::move(paths)), cgroups_(cgroups), storage_(storage), options_(std::move(options)) {
  std::filesystem::create_directories(paths_.state_dir / "slivers");
  std::filesystem::create_directories(paths_.run_dir / "slivers");
}

std::optional<SliverConfig> LinuxSliverRuntime::readConfig(const std::string& slice) const {
  std::filesystem::path file = paths_.sliverConfig(slice);
  std::optional<KvMap> found = readKvFileIfExists(file);
  if (!found) return std::nullopt;
  const KvMap& kv = *found;
  // Without its "slice" line (an empty file, what a machine crash may leave of
  // an unsynced write) the sliver counts as never created: sliverd creates it
  // again from its desired state.
  if (!kv.count("slice")) return std::nullopt;
  const std::string f = file.string();
  SliverConfig c;
  c.slice = slice;
  c.xid = static_cast<std::uint32_t>(parseU64(kv, "xid", f));
  c.resources.cpu_share = static_cast<std::uint32_t>(parseU64(kv, "cpu_share", f));
  c.resources.cpu_cap_pct = static_cast<std::uint32_t>(parseU64(kv, "cpu_cap_pct", f));
  c.resources.mem_limit_bytes = parseU64(kv, "mem_limit_bytes", f);
  c.resources.tasks = static_cast<std::uint32_t>(parseU64(kv, "tasks", f));
  c.resources.io_weight = static_cast<std::uint32_t>(parseU64(kv, "io_weight", f));
  c.disk_quota_bytes = parseU64(kv, "disk_quota_bytes", f);
  c.vref = valueOf(kv, "vref");
  c.initscript = valueOf(kv, "initscript");
  c.capabilities = valueOf(kv, "capabilities");
  return c;
}

void LinuxSliverRuntime::writeConfig(const SliverConfig& c) const {
  // No fsync (one disk flush less per create and update): the config is
  // derived from sliverd's desired state (PLC's and redeemed tickets', kept on
  // disk by the daemon), and one lost to a machine crash reads as absent (see
  // readConfig), so the reconciler creates or updates the sliver again.
  writeKvFileAtomic(paths_.sliverConfig(c.slice),
                    {{"slice", c.slice},
                     {"xid", u64(c.xid)},
                     {"cpu_share", u64(c.resources.cpu_share)},
                     {"cpu_cap_pct", u64(c.resources.cpu_cap_pct)},
                     {"mem_limit_bytes", u64(c.resources.mem_limit_bytes)},
                     {"tasks", u64(c.resources.tasks)},
                     {"io_weight", u64(c.resources.io_weight)},
                     {"disk_quota_bytes", u64(c.disk_quota_bytes)},
                     {"vref", c.vref},
                     {"initscript", c.initscript},
                     {"capabilities", c.capabilities}},
                    base::Durability::kNoSync);
}

std::filesystem::path LinuxSliverRuntime::imageOf(const SliverConfig& config) const {
  return paths_.image(config.vref.empty() ? options_.default_vref : config.vref);
}

std::optional<LinuxSliverRuntime::InitRecord> LinuxSliverRuntime::runningInit(
    const std::string& slice) {
  auto child = children_.find(slice);
  if (child != children_.end() && reapIfExited(child->second.get(), /*wait=*/false)) {
    children_.erase(child);
  }
  std::filesystem::path file = paths_.sliverInit(slice);
  std::optional<KvMap> found = readKvFileIfExists(file);
  if (!found) return std::nullopt;
  const KvMap& kv = *found;
  InitRecord rec;
  rec.pid = static_cast<pid_t>(parseU64(kv, "pid", file.string()));
  rec.start_time = parseU64(kv, "start_time", file.string());
  auto st = base::readProcStat(rec.pid);
  bool alive =
      rec.pid > 0 && st && st->state != 'Z' && st->state != 'X' && st->start_time == rec.start_time;
  if (alive) {
    try {
      auto pids = cgroups_.pids(slice);
      alive = std::find(pids.begin(), pids.end(), rec.pid) != pids.end();
    } catch (const SysError&) {
      alive = false;  // no cgroup: not our sliver's init, whatever runs there
    }
  }
  if (!alive) {
    std::error_code ec;
    std::filesystem::remove(file, ec);
    std::filesystem::remove(paths_.sliverLogins(slice), ec);
    return std::nullopt;
  }
  return rec;
}

UniqueFd LinuxSliverRuntime::openInit(std::string_view slice_view) {
  std::lock_guard lock(mutex_);
  std::string slice(slice_view);
  auto rec = runningInit(slice);
  if (!rec) return UniqueFd();
  UniqueFd fd(pidfdOpen(rec->pid));
  // The pid may have been reused between the check and pidfd_open: check again
  // now that the pidfd pins the process.
  auto st = base::readProcStat(rec->pid);
  if (!fd || !st || st->start_time != rec->start_time) return UniqueFd();
  return fd;
}

SliverStatus LinuxSliverRuntime::statusOf(const SliverConfig& config) {
  SliverStatus status;
  status.config = config;
  if (auto rec = runningInit(config.slice)) {
    status.phase = SliverPhase::kRunning;
    status.init_pid = rec->pid;
  }
  try {
    status.usage = cgroups_.usage(config.slice);
  } catch (const SysError&) {
    // No cgroup (yet, or after a reboot): nothing used.
  }
  return status;
}

std::vector<SliverStatus> LinuxSliverRuntime::list() {
  std::lock_guard lock(mutex_);
  std::vector<SliverStatus> out;
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(paths_.state_dir / "slivers", ec)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    if (auto config = readConfig(name)) out.push_back(statusOf(*config));
  }
  return out;
}

std::optional<SliverStatus> LinuxSliverRuntime::get(std::string_view slice_view) {
  std::lock_guard lock(mutex_);
  std::string slice(slice_view);
  checkSliverName(slice);
  auto config = readConfig(slice);
  if (!config) return std::nullopt;
  return statusOf(*config);
}

void LinuxSliverRuntime::create(const SliverConfig& config) {
  checkSliverName(config.slice);
  if (!config.vref.empty()) validateVref(config.vref);
  capabilityPlanFromTag(config.capabilities);  // a bad tag fails here, not at start
  std::lock_guard lock(mutex_);
  const std::string& slice = config.slice;
  IdRangeAllocator& ids = idRanges();
  // A first create that fails takes back what it made; a repeated one leaves an
  // existing sliver as it was (its files are the slice's).
  const bool had_range = ids.find(slice).has_value();
  const bool fresh = !readConfig(slice) && !had_range;
  try {
    IdRange range = ids.acquire(slice);
    idRangesWritten();
    std::filesystem::create_directories(paths_.rootfs(slice));
    ::chmod(paths_.sliverDir(slice).c_str(), 0755);
    // Storage without an id range is an earlier sliver's leftover (destroy()
    // releases the range last; the btrfs driver does not wait for a deletion to
    // be committed, so a machine crash can bring a destroyed subvolume back):
    // a new sliver never inherits its files.
    if (!had_range) storage_.destroy(slice);
    storage_.prepare(slice, range, config.disk_quota_bytes);
    bool cgroup_existed = true;
    try {
      cgroups_.openUnifiedDir(slice);
    } catch (const SysError& e) {
      if (e.err() != ENOENT) throw;
      cgroup_existed = false;
    }
    cgroups_.create(slice);
    cgroups_.apply(slice, config.resources);
    writeConfig(config);
    // Made just now, so no process has been in it (nor cgroup.kill written):
    // the first start() can use it as it is.
    if (!cgroup_existed) unused_cgroups_.insert(slice);
  } catch (...) {
    if (fresh) {
      try {
        cgroups_.remove(slice);
      } catch (...) {
      }
      try {
        storage_.destroy(slice);
      } catch (...) {
      }
      std::error_code ec;
      std::filesystem::remove_all(paths_.sliverDir(slice), ec);
      try {
        ids.release(slice);
        idRangesWritten();
      } catch (...) {
      }
    }
    throw;
  }
}

void LinuxSliverRuntime::update(const SliverConfig& config) {
  checkSliverName(config.slice);
  if (!config.vref.empty()) validateVref(config.vref);
  capabilityPlanFromTag(config.capabilities);
  std::lock_guard lock(mutex_);
  auto old = readConfig(config.slice);
  if (!old) throw SysError(ENOENT, "sliver " + config.slice + ": update of a sliver never created");
  cgroups_.apply(config.slice, config.resources);
  if (old->disk_quota_bytes != config.disk_quota_bytes) {
    storage_.setQuota(config.slice, config.disk_quota_bytes);
  }
  writeConfig(config);
}

void LinuxSliverRuntime::start(std::string_view slice_view) {
  std::string slice(slice_view);
  checkSliverName(slice);
  std::lock_guard lock(mutex_);
  const std::string who = "sliver " + slice;
  auto config = readConfig(slice);
  if (!config) throw SysError(ENOENT, who + ": start of a sliver never created");
  if (runningInit(slice)) return;

  auto range = idRanges().find(slice);
  if (!range) throw SysError(ENOENT, who + ": no id range recorded (create it again)");
  std::filesystem::path image = imageOf(*config);
  if (!std::filesystem::is_directory(image)) {
    throw SysError(ENOENT, who + ": reference image " + image.string() + " is missing");
  }
  CapabilityPlan capabilities = capabilityPlanFromTag(config->capabilities);

  // The last run's overlay is gone before another is mounted over its upper layer.
  releaser_.waitFor(slice);
  SliverDirs dirs = storage_.prepare(slice, *range, config->disk_quota_bytes);
  chownUpperRoot(dirs.upper, image, *range);
  if (config->initscript.empty()) {
    removeUpperFile(dirs.upper, kInitscriptPath);
  } else {
    writeUpperFile(dirs.upper, image, *range, kInitscriptPath, config->initscript, 0755);
  }
  // A fresh cgroup at every start. Besides clearing out leftovers of a sliver
  // whose init died, this works around a kernel bug seen on 6.18: once
  // cgroup.kill was written in a cgroup (killAll does, on stop), every process
  // later cloned into it with CLONE_INTO_CGROUP is SIGKILLed at birth (its
  // kill_seq is taken from the parent's cgroup, not the target's). The one
  // create() just made has neither leftovers nor a kill behind it: the first
  // start uses it (saves removing and making it again in every hierarchy).
  if (!unused_cgroups_.erase(slice)) {
    try {
      cgroups_.killAll(slice, kKillTimeout);
      cgroups_.remove(slice);
    } catch (const SysError& e) {
      if (e.err() != ENOENT) throw;
    }
    cgroups_.create(slice);
    cgroups_.apply(slice, config->resources);
  }
  std::filesystem::create_directories(paths_.rootfs(slice));

  if (options_.before_launch) options_.before_launch(*config, cgroups_.unifiedDir(slice));
  UniqueFd cgroup_fd = cgroups_.openUnifiedDir(slice);

  LaunchSpec spec;
  spec.name = slice;
  spec.ids = *range;
  spec.image = image;
  spec.dirs = dirs;
  spec.mountpoint = paths_.rootfs(slice);
  // sliverctl inside reaches sliverd through its socket's directory (made here
  // if sliverd's local API has not made it yet).
  std::filesystem::create_directories(paths_.localApiDir());
  spec.local_api_dir = paths_.localApiDir();
  spec.cgroup_fd = cgroup_fd.get();
  spec.attach = [&](pid_t pid) { cgroups_.attach(slice, pid); };
  spec.cgroup_views = cgroups_.sliverViews();
  spec.nofile = rlimit{options_.nofile_soft, options_.nofile_hard};
  spec.init_path = options_.sliver_init;
  // sliver-init keeps the only copy of the login socket (ours is closed when
  // this returns): once it is gone, connecting fails with ECONNREFUSED.
  UniqueFd logins = bindLoginSocket(paths_.sliverLogins(slice));
  spec.inherit_fds = {logins.get()};
  spec.init_args = {"--stop-grace-ms", std::to_string(options_.init_stop_grace.count()),
                    "--logins-fd", std::to_string(logins.get())};
  // start() returns once sliver-init is exec'd, before it has installed its
  // signal handlers; a stop() then would send a SIGTERM PID 1 drops. Blocked
  // across exec, the signals it handles wait for it instead.
  spec.blocked_signals = {SIGTERM, SIGINT, SIGHUP, SIGPWR, SIGCHLD};
  // stdio stays the sliver's /dev/null: sliver-init logs inside the sliver
  // (/var/log/sliver-init.log, under its quota), never into a host file.
  spec.capabilities = capabilities;
  LaunchedSliver launched = launchSliver(spec);

  try {
    auto st = base::readProcStat(launched.pid);
    if (!st) {
      throw SysError(ESRCH,
                     who + ": sliver-init exited at once (see /var/log/sliver-init.log in it)");
    }
    // No fsync: the record is only true while this boot's process runs; an
    // empty one (what a machine crash may leave) reads as pid 0, not running.
    writeKvFileAtomic(paths_.sliverInit(slice),
                      {{"pid", std::to_string(launched.pid)},
                       {"start_time", u64(st->start_time)},
                       {"cgroup", cgroups_.unifiedDir(slice).string()}},
                      base::Durability::kNoSync);
  } catch (...) {
    ::syscall(SYS_pidfd_send_signal, launched.pidfd.get(), SIGKILL, nullptr, 0);
    reapIfExited(launched.pidfd.get(), /*wait=*/true);
    throw;
  }
  children_[slice] = std::move(launched.pidfd);
}

void LinuxSliverRuntime::stopLocked(const std::string& slice, std::chrono::milliseconds grace) {
  unused_cgroups_.erase(slice);  // processes ran in it; killAll may write cgroup.kill
  UniqueFd root_pin;
  if (auto rec = runningInit(slice)) {
    UniqueFd adopted;
    int pidfd = -1;
    if (auto child = children_.find(slice); child != children_.end()) {
      pidfd = child->second.get();
    } else {
      adopted.reset(pidfdOpen(rec->pid));
      auto st = base::readProcStat(rec->pid);
      if (adopted && st && st->start_time == rec->start_time) pidfd = adopted.get();
    }
    // Our reference to the root keeps the overlay's unmount, and the sync of the
    // storage volume it does, off sliver-init's exit (node/rootfs_release.h).
    if (pidfd >= 0) root_pin = pinRootOf(rec->pid, pidfd);
    if (pidfd >= 0 && ::syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0) == 0) {
      pollfd pfd{pidfd, POLLIN, 0};
      auto deadline = std::chrono::steady_clock::now() + grace;
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (rc > 0 || (rc < 0 && errno != EINTR)) break;
      }
    }
  }
  // Whatever is left in the cgroup (all of it if init ignored SIGTERM); the pid
  // namespace, its mount namespace and so the overlay go with the last process.
  try {
    cgroups_.killAll(slice, kKillTimeout);
  } catch (const SysError& e) {
    if (e.err() != ENOENT) throw;
  }
  if (auto child = children_.find(slice); child != children_.end()) {
    reapIfExited(child->second.get(), /*wait=*/true);
    children_.erase(child);
  }
  std::error_code ec;
  std::filesystem::remove(paths_.sliverInit(slice), ec);
  std::filesystem::remove(paths_.sliverLogins(slice), ec);
  releaser_.release(slice, std::move(root_pin));
}

void LinuxSliverRuntime::stop(std::string_view slice_view, std::chrono::milliseconds grace) {
  std::string slice(slice_view);
  checkSliverName(slice);
  std::lock_guard lock(mutex_);
  stopLocked(slice, grace);
}

void LinuxSliverRuntime::destroy(std::string_view slice_view) {
  std::string slice(slice_view);
  checkSliverName(slice);
  std::lock_guard lock(mutex_);
  stopLocked(slice, options_.destroy_grace);
  storage_.destroy(slice);
  cgroups_.remove(slice);
  std::filesystem::remove_all(paths_.sliverDir(slice));
  // The range is released last: until the files are gone it still owns them.
  idRanges().release(slice);
  idRangesWritten();
}

namespace {

// Which version of the id range file is there: every write replaces it by
// rename (a new inode, whose number a later write may reuse, hence the change
// time and size too), so another writer shows as a change.
std::optional<FileVersion> fileVersion(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  return FileVersion{st.st_dev, st.st_ino, st.st_ctim.tv_sec, st.st_ctim.tv_nsec, st.st_size};
}

}  // namespace

IdRangeAllocator& LinuxSliverRuntime::idRanges() {
  // One stat instead of reading every range; reloaded when someone else (a
  // `sliverd decommission`, another runtime over the same paths) wrote it.
  if (!ids_ || fileVersion(paths_.idRanges()) != ids_version_) {
    ids_.reset();
    ids_.emplace(paths_.idRanges());
    ids_version_ = fileVersion(paths_.idRanges());
  }
  return *ids_;
}

void LinuxSliverRuntime::idRangesWritten() { ids_version_ = fileVersion(paths_.idRanges()); }

}  // namespace plng::node
