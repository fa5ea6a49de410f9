#include "node/cgroup_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "base/eintr.h"
#include "base/file.h"

using plng::base::SysError;
using plng::base::throwErrno;
using plng::base::UniqueFd;

namespace plng::node::cgroupfs {

namespace {

std::string joined(const Dir& dir, std::string_view name) {
  return (dir.path / std::string(name)).string();
}

bool parseU64(std::string_view text, std::uint64_t& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Dir openDir(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throwErrno("open cgroup directory " + path.string());
  return Dir{UniqueFd(fd), path};
}

std::optional<Dir> openChild(const Dir& parent, std::string_view name) {
  std::string n(name);
  int fd = ::openat(parent.fd.get(), n.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throwErrno("open cgroup directory " + joined(parent, name));
  }
  return Dir{UniqueFd(fd), parent.path / n};
}

void makeChild(const Dir& parent, std::string_view name) {
  std::string n(name);
  if (::mkdirat(parent.fd.get(), n.c_str(), 0755) < 0 && errno != EEXIST)
    throwErrno("create cgroup " + joined(parent, name));
}

bool removeChild(const Dir& parent, std::string_view name) {
  std::string n(name);
  if (::unlinkat(parent.fd.get(), n.c_str(), AT_REMOVEDIR) == 0) return true;
  if (errno == ENOENT) return false;
  throwErrno("remove cgroup " + joined(parent, name) +
             (errno == EBUSY ? " (it still has processes or child cgroups)" : ""));
}

bool hasFile(const Dir& dir, std::string_view name) {
  std::string n(name);
  struct stat st;
  return ::fstatat(dir.fd.get(), n.c_str(), &st, 0) == 0;
}

void writeKnob(const Dir& dir, std::string_view name, std::string_view value) {
  std::string n(name);
  auto context = [&] { return "write \"" + std::string(value) + "\" to " + joined(dir, name); };
  // O_TRUNC is ignored by cgroupfs but keeps a plain file (tests) exact.
  UniqueFd fd(::openat(dir.fd.get(), n.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) throwErrno(context());
  // cgroupfs takes a knob's value in one write().
  ssize_t written = ::write(fd.get(), value.data(), value.size());
  if (written < 0) throwErrno(context());
  if (static_cast<size_t>(written) != value.size())
    throw SysError(EIO, context() + ": short write");
}

std::string readKnob(const Dir& dir, std::string_view name) {
  std::string n(name);
  UniqueFd fd(::openat(dir.fd.get(), n.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throwErrno("read " + joined(dir, name));
  std::string out = base::readAll(fd.get(), joined(dir, name));
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::uint64_t readKnobU64(const Dir& dir, std::string_view name) {
  std::string text = readKnob(dir, name);
  std::uint64_t value = 0;
  if (!parseU64(text, value))
    throw SysError(EINVAL, "unexpected content \"" + text + "\" in " + joined(dir, name));
  return value;
}

std::optional<std::uint64_t> readKeyedU64(const Dir& dir, std::string_view name,
                                          std::string_view key) {
  std::string text = readKnob(dir, name);
  std::string_view rest(text);
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || line.substr(0, sp) != key) continue;
    std::uint64_t value = 0;
    if (!parseU64(line.substr(sp + 1), value))
      throw SysError(EINVAL,
                     "unexpected line \"" + std::string(line) + "\" in " + joined(dir, name));
    return value;
  }
  return std::nullopt;
}

std::vector<pid_t> procs(const Dir& dir) {
  std::vector<pid_t> out;
  for (const auto& word : words(readKnob(dir, "cgroup.procs"))) {
    std::uint64_t pid = 0;
    if (parseU64(word, pid)) out.push_back(static_cast<pid_t>(pid));
  }
  return out;
}

std::vector<std::string> subdirs(const Dir& dir) {
  int fd = ::openat(dir.fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throwErrno("list " + dir.path.string());
  DIR* stream = ::fdopendir(fd);
  if (stream == nullptr) {
    int err = errno;
    ::close(fd);
    throw SysError(err, "list " + dir.path.string());
  }
  std::vector<std::string> out;
  while (struct dirent* entry = ::readdir(stream)) {
    std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    bool is_dir = entry->d_type == DT_DIR;
    if (entry->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = ::fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) out.emplace_back(name);
  }
  ::closedir(stream);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

void killUntilEmpty(const std::vector<const Dir*>& dirs, const Dir* kill_dir,
                    std::chrono::milliseconds timeout) {
  // A cgroup2 directory's cgroup.events ("populated 0|1") wakes poll() with
  // POLLPRI when it changes: the wait ends as the last process leaves, not at
  // the next tick of a sleep. Every process of a sliver is in its unified
  // cgroup, so that one emptying means all are empty. Without it (v1 only),
  // poll() just sleeps for the tick.
  UniqueFd events;
  if (kill_dir != nullptr)
    events.reset(::openat(kill_dir->fd.get(), "cgroup.events", O_RDONLY | O_CLOEXEC));
  // Already empty (the usual case after a stop whose init exited): nothing to
  // kill, in any hierarchy.
  if (events) {
    char buf[256];
    const ssize_t n =
        base::retryOnEintr([&] { return ::pread(events.get(), buf, sizeof buf - 1, 0); });
    if (n > 0) {
      buf[n] = '\0';
      if (std::strstr(buf, "populated 0") != nullptr) return;
    }
  }
  if (kill_dir != nullptr && hasFile(*kill_dir, "cgroup.kill"))
    writeKnob(*kill_dir, "cgroup.kill", "1");
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Reading the file (re)arms the notification; a change from here on
    // wakes the poll below at once.
    if (events) {
      char buf[256];
      base::retryOnEintr([&] { return ::pread(events.get(), buf, sizeof buf, 0); });
    }
    const Dir* populated = nullptr;
    for (const Dir* dir : dirs) {
      auto pids = procs(*dir);
      if (pids.empty()) continue;
      populated = dir;
      for (pid_t pid : pids) ::kill(pid, SIGKILL);  // ESRCH: it exited meanwhile
    }
    if (populated == nullptr) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw SysError(EBUSY, "processes left in " + populated->path.string() + " after " +
                                std::to_string(timeout.count()) + " ms of SIGKILL");
    pollfd pfd{events ? events.get() : -1, POLLPRI, 0};
    // The tick bounds the wait where cgroup.events is missing or a v1
    // hierarchy lags; with it, the usual wake-up is the event.
    ::poll(&pfd, 1, events ? 50 : 5);
  }
}

}  // namespace plng::node::cgroupfs
