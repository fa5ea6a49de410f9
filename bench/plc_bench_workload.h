// Closed-loop load generation for plc_bench: N client threads, each with its own
// gRPC channel, call as fast as they can for a warm-up period and then for a
// measured window; every call's latency in the window is recorded. Also the CPU
// time the client, plcd and PostgreSQL spent in the window, so a result says not
// only how fast but where the time went.
#pragma once

#include <grpcpp/support/status.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/plcd_process.h"

namespace plng::bench {

// The first SIGINT or SIGTERM asks every loop of the benchmark to stop so that
// plcd, PostgreSQL and their directories are cleaned up; a second one kills the
// benchmark at once (children still die with it: they get a parent-death signal).
void installStopSignals();
bool stopRequested();

class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};
void throwIfStopRequested();

// Sleeps until `until`; returns false early when a stop was requested.
bool sleepUntil(std::chrono::steady_clock::time_point until);

// `count` plcd processes on `database` (log level warn, `extra_args` each),
// started one after the other, stopped when this goes: killed when a stop was
// requested (plcd had the terminal's SIGINT too), as when starting fails.
class PlcdReplicas {
 public:
  // `portal`: each also serves its JSON API (PlcdProcess::portalAddress()).
  PlcdReplicas(int count, const std::string& plcd, const std::string& database,
               const std::vector<std::string>& extra_args = {}, bool portal = false);
  ~PlcdReplicas();
  PlcdReplicas(const PlcdReplicas&) = delete;
  PlcdReplicas& operator=(const PlcdReplicas&) = delete;

  std::vector<plng::test::PlcdProcess>& all() { return plcds_; }

 private:
  void stopAll();
  std::vector<plng::test::PlcdProcess> plcds_;
};

// One client thread's side of a workload. Not shared between threads.
class WorkloadClient {
 public:
  virtual ~WorkloadClient() = default;
  // One request; this is what is timed.
  virtual grpc::Status call() = 0;
  // Checks the response of the last successful call, outside the timed section:
  // "" when it is what it should be, else what is wrong with it.
  virtual std::string checkLast() { return {}; }
};

struct Workload {
  std::string name;
  // Client for thread `index` (0 .. clients-1), with a connection of its own.
  std::function<std::unique_ptr<WorkloadClient>(int index)> makeClient;
  int clients = 1;
  std::chrono::milliseconds warmup{1000};
  std::chrono::milliseconds measure{10000};
  // Every thread checks its first response and then every checkEvery-th one.
  int checkEvery = 64;
};

// CPU seconds consumed so far, cumulative.
struct CpuTimes {
  double client = 0;    // this process (all threads)
  double plcd = 0;      // every plcd replica
  double postgres = 0;  // postmaster, its live children and the children it reaped
  double machine = 0;   // every CPU of the machine, busy time (from /proc/stat)
};

CpuTimes operator-(const CpuTimes& a, const CpuTimes& b);

class CpuSampler {
 public:
  CpuSampler(std::vector<pid_t> plcdPids, pid_t postmasterPid)
      : plcdPids_(std::move(plcdPids)), postmasterPid_(postmasterPid) {}
  CpuTimes sample() const;

 private:
  std::vector<pid_t> plcdPids_;
  pid_t postmasterPid_;
};

// The PID in the first line of <dataDir>/postmaster.pid; throws if unreadable.
pid_t readPostmasterPid(const std::string& dataDir);

struct LatencySummary {
  double p50Ms = 0;
  double p90Ms = 0;
  double p99Ms = 0;
  double maxMs = 0;
  double meanMs = 0;
};

struct WorkloadResult {
  std::string name;
  int clients = 0;
  double windowSeconds = 0;
  std::uint64_t calls = 0;   // completed in the window: successful + errors
  std::uint64_t errors = 0;  // non-OK statuses in the window
  std::uint64_t checked = 0;
  std::uint64_t checkFailures = 0;  // responses that were OK but wrong
  std::string firstError;           // first non-OK status or wrong response, any time
  double rate = 0;                  // successful calls per second
  LatencySummary latency;           // successful calls in the window
  CpuTimes cpu;                     // consumed during the window
  bool flagged() const { return errors > 0 || checkFailures > 0; }
};

// Runs the workload (warm-up, then the measured window). Throws Interrupted if a
// stop was requested meanwhile.
WorkloadResult runWorkload(const Workload& workload, const CpuSampler& cpu);

}  // namespace plng::bench
