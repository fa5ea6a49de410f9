#include "bench/plc_bench_workload.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <optional>
#include <sstream>
#include <thread>

#include "base/proc.h"
#include "tests/support/plc_client.h"

namespace plng::bench {

namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_stopSignal = 0;

void onStopSignal(int sig) { g_stopSignal = sig; }

double ticksToSeconds(unsigned long long ticks) {
  static const long kTicksPerSecond = ::sysconf(_SC_CLK_TCK);
  return static_cast<double>(ticks) / static_cast<double>(kTicksPerSecond);
}

double machineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;  // "cpu": the sum over all CPUs
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  unsigned long long v[8] = {};
  for (auto& x : v) in >> x;
  return ticksToSeconds(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
}

double percentile(const std::vector<std::int64_t>& sortedNs, double p) {
  if (sortedNs.empty()) return 0;
  // Nearest rank: the smallest latency that at least p of the calls do not exceed.
  const double n = static_cast<double>(sortedNs.size());
  const auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p * n)));
  return static_cast<double>(sortedNs[std::min(rank, sortedNs.size()) - 1]) / 1e6;
}

struct ThreadTally {
  std::vector<std::int64_t> latenciesNs;
  std::uint64_t errors = 0;
  std::uint64_t checked = 0;
  std::uint64_t checkFailures = 0;
};

}  // namespace

void installStopSignals() {
  struct sigaction action = {};
  action.sa_handler = onStopSignal;
  sigemptyset(&action.sa_mask);
  // SA_RESETHAND: a second Ctrl-C gets the default action, for when cleanup hangs.
  action.sa_flags = SA_RESTART | SA_RESETHAND;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

bool stopRequested() { return g_stopSignal != 0; }

void throwIfStopRequested() {
  if (stopRequested()) throw Interrupted();
}

bool sleepUntil(Clock::time_point until) {
  while (!stopRequested()) {
    const auto now = Clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
  return false;
}

PlcdReplicas::PlcdReplicas(int count, const std::string& plcd, const std::string& database,
                           const std::vector<std::string>& extra_args, bool portal) {
  try {
    for (int r = 0; r < count; ++r) {
      plng::test::PlcdProcess::Options options;
      options.plcdPath = plcd;
      options.database = database;
      options.logLevel = "warn";
      options.extraArgs = extra_args;
      options.portal = portal;
      plcds_.emplace_back(std::move(options));
      throwIfStopRequested();
    }
  } catch (...) {
    stopAll();
    throw;
  }
}

PlcdReplicas::~PlcdReplicas() { stopAll(); }

void PlcdReplicas::stopAll() {
  // After Ctrl-C plcd got SIGINT from the terminal too: kill quietly.
  for (auto& p : plcds_) stopRequested() ? p.kill() : static_cast<void>(p.stop());
}

CpuTimes operator-(const CpuTimes& a, const CpuTimes& b) {
  return {a.client - b.client, a.plcd - b.plcd, a.postgres - b.postgres, a.machine - b.machine};
}

CpuTimes CpuSampler::sample() const {
  CpuTimes t;
  // utime + stime: a process's own CPU time; cutime + cstime: its reaped children's.
  auto own = [](const plng::base::ProcStat& s) { return s.utime + s.stime; };
  if (auto self = plng::base::readProcStat(::getpid())) t.client = ticksToSeconds(own(*self));
  for (pid_t pid : plcdPids_) {
    if (auto s = plng::base::readProcStat(pid)) t.plcd += ticksToSeconds(own(*s));
  }
  if (auto pm = plng::base::readProcStat(postmasterPid_)) {
    unsigned long long ticks = own(*pm) + pm->cutime + pm->cstime;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      const bool isPid = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      });
      if (!isPid) continue;
      auto s = plng::base::readProcStat(static_cast<pid_t>(std::stol(name)));
      if (s && s->ppid == postmasterPid_) ticks += own(*s);
    }
    t.postgres = ticksToSeconds(ticks);
  }
  t.machine = machineBusySeconds();
  return t;
}

pid_t readPostmasterPid(const std::string& dataDir) {
  std::ifstream in(dataDir + "/postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) {
    throw std::runtime_error("cannot read the postmaster's PID from " + dataDir +
                             "/postmaster.pid");
  }
  return static_cast<pid_t>(pid);
}

WorkloadResult runWorkload(const Workload& workload, const CpuSampler& cpu) {
  std::vector<std::unique_ptr<WorkloadClient>> clients;
  for (int i = 0; i < workload.clients; ++i) clients.push_back(workload.makeClient(i));

  std::vector<ThreadTally> tallies(clients.size());
  std::mutex firstErrorMutex;
  std::string firstError;
  auto noteFirstError = [&](const std::string& message) {
    std::lock_guard lock(firstErrorMutex);
    if (firstError.empty()) firstError = message;
  };

  const auto windowStart = Clock::now() + workload.warmup;
  const auto windowEnd = windowStart + workload.measure;
  const int checkEvery = std::max(1, workload.checkEvery);

  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    threads.emplace_back([&, i] {
      WorkloadClient& client = *clients[i];
      ThreadTally& tally = tallies[i];
      std::uint64_t succeeded = 0;
      while (!stopRequested()) {
        const auto t0 = Clock::now();
        if (t0 >= windowEnd) break;
        const grpc::Status status = client.call();
        const auto t1 = Clock::now();
        const bool inWindow = t0 >= windowStart && t1 <= windowEnd;
        if (!status.ok()) {
          if (inWindow) ++tally.errors;
          noteFirstError(plng::test::describeStatus(status));
          continue;
        }
        if (inWindow) tally.latenciesNs.push_back((t1 - t0).count());
        if (succeeded++ % static_cast<std::uint64_t>(checkEvery) == 0) {
          ++tally.checked;
          if (std::string problem = client.checkLast(); !problem.empty()) {
            ++tally.checkFailures;
            noteFirstError(problem);
          }
        }
      }
    });
  }

  CpuTimes before;
  CpuTimes after;
  if (sleepUntil(windowStart)) before = cpu.sample();
  if (sleepUntil(windowEnd)) after = cpu.sample();
  for (auto& t : threads) t.join();
  throwIfStopRequested();

  WorkloadResult result;
  result.name = workload.name;
  result.clients = workload.clients;
  result.windowSeconds = std::chrono::duration<double>(workload.measure).count();
  result.firstError = firstError;
  result.cpu = after - before;
  std::vector<std::int64_t> all;
  for (const auto& t : tallies) {
    all.insert(all.end(), t.latenciesNs.begin(), t.latenciesNs.end());
    result.errors += t.errors;
    result.checked += t.checked;
    result.checkFailures += t.checkFailures;
  }
  result.calls = all.size() + result.errors;
  result.rate = static_cast<double>(all.size()) / result.windowSeconds;
  std::sort(all.begin(), all.end());
  result.latency.p50Ms = percentile(all, 0.50);
  result.latency.p90Ms = percentile(all, 0.90);
  result.latency.p99Ms = percentile(all, 0.99);
  result.latency.maxMs = all.empty() ? 0 : static_cast<double>(all.back()) / 1e6;
  result.latency.meanMs =
      all.empty() ? 0
                  : static_cast<double>(std::accumulate(all.begin(), all.end(), std::int64_t{0})) /
                        static_cast<double>(all.size()) / 1e6;
  return result;
}

}  // namespace plng::bench
