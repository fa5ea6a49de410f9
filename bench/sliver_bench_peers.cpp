#include "bench/sliver_bench_peers.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "base/eintr.h"
#include "base/error.h"
#include "base/file.h"
#include "base/proc.h"

namespace plng::bench {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Runs argv with stdout/stderr to /dev/null (stderr kept on failure is not
// worth the plumbing: the exit status says enough for a bench); returns the
// exit status (-1 when killed by a signal).
int run(const std::vector<std::string>& argv, const fs::path& cwd = {}) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) base::throwErrno("fork " + argv[0]);
  if (pid == 0) {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    if (!std::getenv("PLNG_BENCH_VERBOSE")) ::dup2(null, 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  if (base::retryOnEintr([&] { return ::waitpid(pid, &status, 0); }) < 0) {
    base::throwErrno("waitpid " + argv[0]);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Replaces the value of the first `"key": <value>` (a JSON string, bool, or
// array on one line) in runc's generated config.json. runc spec's layout is
// stable; a missing key is an error, not a silent no-op.
void replaceJsonValue(std::string& json, const std::string& key, const std::string& value) {
  std::string needle = "\"" + key + "\":";
  std::size_t at = json.find(needle);
  if (at == std::string::npos) throw std::runtime_error("runc spec: no " + key);
  std::size_t start = at + needle.size();
  while (json[start] == ' ') ++start;
  std::size_t end = start;
  if (json[start] == '[') {
    end = json.find(']', start) + 1;
  } else if (json[start] == '"') {
    end = json.find('"', start + 1) + 1;
  } else {
    end = json.find_first_of(",\n}", start);
  }
  json.replace(start, end - start, value);
}

void removeCgroupTree(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory()) removeCgroupTree(entry.path());
  }
  ::rmdir(dir.c_str());
}

}  // namespace

bool haveTool(const std::string& tool) {
  return run({"sh", "-c", "command -v " + tool + " >/dev/null"}) == 0;
}

OciBundle::OciBundle(const fs::path& dir, const fs::path& rootfs, bool userns) : dir_(dir) {
  fs::create_directories(dir_);
  if (run({"runc", "spec", "--bundle", dir_.string()}) != 0) {
    throw std::runtime_error("runc spec failed in " + dir_.string());
  }
  std::string json = base::readFile(dir_ / "config.json");
  replaceJsonValue(json, "terminal", "false");
  replaceJsonValue(json, "args", "[\"/bin/true\"]");
  replaceJsonValue(json, "path", "\"" + rootfs.string() + "\"");
  replaceJsonValue(json, "readonly", "true");
  cgroup_parent_ = "plng-bench-" + std::to_string(::getpid()) + (userns ? "-userns" : "");
  // Relative: beneath runc's own cgroup in each hierarchy.
  std::size_t linux_at = json.find("\"linux\": {");
  if (linux_at == std::string::npos) throw std::runtime_error("runc spec: no linux section");
  json.insert(linux_at + std::strlen("\"linux\": {"),
              "\n\t\t\"cgroupsPath\": \"" + cgroup_parent_ + "/run\",");
  if (userns) {
    // Root inside is an unprivileged host uid, as in a sliver; runc 1.1 cannot
    // idmap the root filesystem, so the image shows as nobody's (read-only and
    // world-readable, which is enough for /bin/true).
    const std::string map = "[{\"containerID\": 0, \"hostID\": 1600000000, \"size\": 65536}]";
    json.insert(linux_at + std::strlen("\"linux\": {"),
                "\n\t\t\"uidMappings\": " + map + ",\n\t\t\"gidMappings\": " + map + ",");
    std::size_t ns_at = json.find("\"namespaces\": [");
    if (ns_at == std::string::npos) throw std::runtime_error("runc spec: no namespaces");
    json.insert(ns_at + std::strlen("\"namespaces\": ["), "\n\t\t\t{\"type\": \"user\"},");
  }
  std::ofstream out(dir_ / "config.json", std::ios::trunc);
  out << json;
  if (!out.flush()) throw std::runtime_error("write " + (dir_ / "config.json").string());
}

// Every cgroup hierarchy this process is in, as directories: runc creates its
// cgroups in all of them, named ones (name=systemd) included, which
// CgroupRoots leaves out.
std::vector<fs::path> ownCgroupDirs() {
  const auto own = base::readProcCgroup(::getpid());
  std::vector<fs::path> dirs;
  for (const auto& mount : base::readMountInfo()) {
    if (mount.fstype != "cgroup" && mount.fstype != "cgroup2") continue;
    const std::string options = "," + mount.super_options + ",";
    for (const auto& entry : own) {
      bool match =
          mount.fstype == "cgroup2" ? entry.controllers.empty() : !entry.controllers.empty();
      for (const auto& name : entry.controllers) {
        match = match && options.find("," + name + ",") != std::string::npos;
      }
      if (match) dirs.push_back(fs::path(mount.mount_point) / fs::path(entry.path).relative_path());
    }
  }
  return dirs;
}

OciBundle::~OciBundle() {
  try {
    for (const fs::path& dir : ownCgroupDirs()) removeCgroupTree(dir / cgroup_parent_);
  } catch (const std::exception&) {
    // Best effort: a bench must not throw from a destructor.
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

double timeRuncRun(const OciBundle& bundle, int n) {
  std::string id = "plng-bench-" + std::to_string(::getpid()) + "-" + std::to_string(n);
  auto start = Clock::now();
  int rc = run({"runc", "run", "--bundle", bundle.dir().string(), id});
  auto took = Clock::now() - start;
  if (rc != 0) throw std::runtime_error("runc run " + id + " exited " + std::to_string(rc));
  return seconds(took);
}

CrunRunner::CrunRunner(const OciBundle& bundle) {
  int request[2], reply[2];
  if (::pipe2(request, O_CLOEXEC) != 0 || ::pipe2(reply, O_CLOEXEC) != 0) {
    base::throwErrno("pipe2");
  }
  pid_ = ::fork();
  if (pid_ < 0) base::throwErrno("fork");
  if (pid_ == 0) {
    ::close(request[1]);
    ::close(reply[0]);
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, nullptr) != 0) {
      ::_exit(2);
    }
    char byte;
    for (int n = 0; ::read(request[0], &byte, 1) == 1; ++n) {
      std::string id = "plng-bench-crun-" + std::to_string(::getpid()) + "-" + std::to_string(n);
      auto start = Clock::now();
      int rc =
          run({"crun", "--cgroup-manager=disabled", "run", "--bundle", bundle.dir().string(), id});
      double took = rc == 0 ? seconds(Clock::now() - start) : -1;
      if (::write(reply[1], &took, sizeof took) != sizeof took) ::_exit(4);
    }
    ::_exit(0);
  }
  ::close(request[0]);
  ::close(reply[1]);
  request_ = request[1];
  reply_ = reply[0];
}

CrunRunner::~CrunRunner() {
  ::close(request_);
  ::close(reply_);
  if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
}

double CrunRunner::timeRun() {
  double took = -1;
  if (::write(request_, "r", 1) != 1 || ::read(reply_, &took, sizeof took) != sizeof took ||
      took < 0) {
    throw std::runtime_error("crun run failed (PLNG_BENCH_VERBOSE=1 shows crun's errors)");
  }
  return took;
}

}  // namespace plng::bench
