#include "tests/support/planet_net.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "base/error.h"
#include "base/file.h"
#include "node/kvfile.h"
#include "tests/support/child_process.h"
#include "tests/support/skip.h"

namespace plng::test {
namespace fs = std::filesystem;

namespace {

const fs::path kScript = PLNG_PLANET_NET_SCRIPT;

// Runs argv (argv[0] looked up in PATH, by env) with stdout and stderr in a fresh
// file under the process's scratch directory; SIGKILL after `timeout`.
CommandResult runCaptured(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  static std::atomic<int> counter{0};
  fs::path log = processScratchDir() / ("planet-net-cmd-" + std::to_string(++counter) + ".log");
  base::UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) base::throwErrno("create " + log.string());
  SpawnOptions spawn;
  spawn.argv = {"/usr/bin/env"};
  spawn.argv.insert(spawn.argv.end(), argv.begin(), argv.end());
  spawn.outputFd = out.get();
  spawn.parentDeathSignal = SIGKILL;
  ChildProcess child = ChildProcess::spawn(spawn);
  CommandResult result;
  if (auto status = child.waitFor(timeout)) {
    result.status = *status;
  } else {
    result.status = child.terminate(SIGKILL, std::chrono::milliseconds(0));
  }
  result.output = base::readFile(log);
  fs::remove(log);
  return result;
}

bool onPath(const std::string& tool) {
  return runCaptured({"sh", "-c", "command -v " + tool}, std::chrono::seconds(5)).ok();
}

}  // namespace

void PlanetNet::requireUsable() {
  requireRoot();
  for (const char* tool : {"ip", "nsenter", "python3", "iperf3"}) {
    if (!onPath(tool)) skipTest(std::string(tool) + " is not installed (deploy/install-deps.sh)");
  }
}

PlanetNet::PlanetNet(Options options) : prefix_(std::move(options.prefix)) {
  if (prefix_.empty()) {
    static std::atomic<int> planets{0};
    prefix_ = "pnt" + std::to_string(::getpid()) + "x" + std::to_string(planets++);
  }
  std::vector<std::string> argv = {"bash",
                                   kScript.string(),
                                   "up",
                                   "--prefix",
                                   prefix_,
                                   "--nodes",
                                   std::to_string(options.nodes)};
  if (options.host_link) argv.push_back("--host-link");
  CommandResult up = runCaptured(argv, std::chrono::seconds(60));
  if (!up.ok()) {
    runCaptured({"bash", kScript.string(), "down", "--prefix", prefix_}, std::chrono::seconds(60));
    throw std::runtime_error("planet-net.sh up --prefix " + prefix_ + " " +
                             describeWaitStatus(up.status) + ":\n" + up.output);
  }
  auto plan = node::readKvFile(fs::path("/run/plng-net") / prefix_ / "topology");
  auto value = [&](const std::string& key) {
    auto it = plan.find(key);
    return it == plan.end() ? std::string() : it->second;
  };
  for (int k = 1; k <= options.nodes; ++k) {
    std::string name = "node" + std::to_string(k);
    nodes_.push_back({name, value("netns_" + name), value(name + "_ipv4"), value(name + "_ipv6")});
  }
  remote_ = {"remote", value("netns_remote"), value("remote_ipv4"), value("remote_ipv6")};
  router_ = {"router", value("netns_inet"), value("router_ipv4"), value("router_ipv6")};
  host_ = {"host", "/proc/self/ns/net", value("host_ipv4"), value("host_ipv6")};
  echo_port_ = std::atoi(value("remote_echo_port").c_str());
  iperf3_port_ = std::atoi(value("remote_iperf3_port").c_str());
}

PlanetNet::~PlanetNet() {
  try {
    runCaptured({"bash", kScript.string(), "down", "--prefix", prefix_}, std::chrono::seconds(60));
  } catch (const std::exception&) {
    // A destructor cannot report it; the next `down` of this prefix finishes the job.
  }
}

const PlanetHost& PlanetNet::node(int k) const {
  if (k < 1 || k > static_cast<int>(nodes_.size())) {
    throw std::out_of_range("planet " + prefix_ + " has no node" + std::to_string(k));
  }
  return nodes_[k - 1];
}

CommandResult PlanetNet::runIn(const PlanetHost& where, const std::vector<std::string>& argv,
                               std::chrono::milliseconds timeout) const {
  std::vector<std::string> full = {"nsenter", "--net=" + where.netns.string(), "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  return runCaptured(full, timeout);
}

ScopedNetns::ScopedNetns(const PlanetHost& where)
    : previous_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
  if (!previous_) base::throwErrno("open this thread's network namespace");
  base::UniqueFd target(::open(where.netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target) base::throwErrno("open " + where.netns.string());
  if (::setns(target.get(), CLONE_NEWNET) != 0) base::throwErrno("setns " + where.netns.string());
}

ScopedNetns::~ScopedNetns() { ::setns(previous_.get(), CLONE_NEWNET); }

}  // namespace plng::test
