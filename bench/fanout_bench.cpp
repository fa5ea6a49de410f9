// fanout_bench: how fast a change made through PLC's API reaches every node it
// affects over NodeSync.WatchSlivers, and what holding the streams costs plcd.
// Starts its own PostgreSQL and plcd replicas, populates through the API, logs
// thousands of simulated nodes in (tests/support/nodesim.h: one process, gRPC's callback
// API, no thread per stream), then makes three kinds of change a number of times
// each and times, per affected node, the arrival of a state showing the change.
// Cleans up on exit, also on Ctrl-C.
#include <grpcpp/client_context.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/proc.h"
#include "bench/bench_options.h"
#include "bench/bench_report.h"
#include "bench/plc_bench_populate.h"
#include "bench/plc_bench_workload.h"
#include "proto/ticket.h"
#include "tests/support/nodesim.h"
#include "tests/support/pg_instance.h"
#include "tests/support/plc_client.h"
#include "tests/support/plcd_process.h"
#include "tests/support/scratch_dir.h"

namespace {

namespace fs = std::filesystem;
namespace pb = planetlab::v1;
using plng::bench::callOrThrow;
using plng::bench::digitsFor;
using plng::bench::fixed;
using plng::bench::kernelRelease;
using plng::bench::loadAverage;
using plng::bench::nowUtc;
using plng::bench::pad;
using plng::bench::parallelFor;
using plng::bench::parseInteger;
using plng::bench::PlcdReplicas;
using plng::bench::stopRequested;
using plng::bench::throwIfStopRequested;
using plng::bench::usableCpus;
using plng::bench::UsageError;
using plng::bench::zeroPadded;
using plng::test::NodeSim;
using plng::test::PlcClient;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr double kTargetP99Seconds = 1.0;  // for 1,000 nodes on 2 cores
constexpr double kTargetRssMb = 300;       // per plcd replica
// Opening every stream may add a tenth as many threads as the replica holds
// streams, at least this many, and still count as "no thread per stream": gRPC's
// pollers and executors grow a little with load.
constexpr long kThreadGrowthFloor = 8;
constexpr const char* kAdminEmail = "admin@fanout.test";
constexpr const char* kAdminPassword = "fanout-admin-password";
constexpr const char* kGroupName = "fanout";
constexpr const char* kGroupTag = "deployment";
constexpr const char* kGroupSliceTag = "cpu_share";

constexpr const char* kUsage = R"(Usage: fanout_bench [OPTIONS]

Measures how long a change made through PLC's API takes to reach every node it
affects over NodeSync.WatchSlivers, with thousands of simulated nodes each
holding a stream, and what the streams cost plcd (CPU, RSS, threads) and
PostgreSQL (CPU). Starts its own PostgreSQL and plcd replicas (log level warn)
and removes them on exit, also on Ctrl-C.

Population (through the API):
  --nodes N              nodes, each with its own Ed25519 key (1000)
  --sites N              sites the nodes and slices are spread over (10)
  --slices N             slices (100)
  --nodes-per-slice N    nodes bound to each slice, chosen at random (10)
  --group-size N         nodes in the node group "fanout" (min(300, nodes))
  --change-nodes N       nodes a new slice is added to in change (a) (min(100, nodes))
  --populate-threads N   concurrent API callers while populating (4)
  --seed N               seed of every random choice (1)

Simulated nodes:
  --replicas N           plcd processes on the one database; node i talks to i mod N (2)
  --streams-per-channel N  streams sharing one channel (one TCP connection) (200)
  --logins-in-flight N   node logins outstanding at once (64)

Changes, each made --rounds times, one at a time:
  (a) slice    AddSliceNodes: a new slice onto --change-nodes nodes
  (b) group    SetSliceTag cpu_share of a slice bound to the group's nodes, scoped
               to the node group (the value differs every round)
  (c) blacklist AddBlacklistEntry: a new destination prefix (every node)
  --rounds K             times each change is made (5)
  --timeout S            longest wait for a change to reach its nodes (60)
  --pause S              time after each change reached its nodes before the next
                         is made; then also until plcd and PostgreSQL are quiet
                         (their CPU over 0.3 s below their idle use + 25% of a CPU;
                         10 s at most) (1)
  --idle-seconds S       window with every stream open and nothing changing,
                         for the idle cost of the streams (5, at least 1)

Other:
  --plcd PATH            plcd binary (default: the one built with this benchmark)
  --plcd-set KEY=VALUE   a plcd configuration key (repeatable), e.g. db_pool_size=32
  -h, --help             this text

The bench's plcd configuration lifts PLC's per-address limit on node logins
(login_source_burst, login_source_refill_s = 0): every simulated node logs in
from 127.0.0.1.

A change's delay to a node runs from just before its RPC is issued to when that
node received a state showing it (the new sliver, the new tag value, the new
prefix); "commit" is when the RPC returned.

Targets: p99 <= 1 s for 1,000 nodes on 2 cores; plcd RSS <= 300 MB per replica;
plcd's thread count independent of the number of streams.
)";

struct Options {
  int nodes = 1000;
  int sites = 10;
  int slices = 100;
  int nodesPerSlice = 10;
  int groupSize = -1;    // -1: min(300, nodes)
  int changeNodes = -1;  // -1: min(100, nodes)
  int populateThreads = 4;
  std::uint64_t seed = 1;
  int replicas = 2;
  int streamsPerChannel = 200;
  int loginsInFlight = 64;
  int rounds = 5;
  double timeout = 60;
  double pause = 1;
  double idleSeconds = 5;
  fs::path plcd;
  std::vector<std::pair<std::string, std::string>> plcdSettings;
};

// nullopt when --help was asked for.
std::optional<Options> parseOptions(int argc, char** argv) {
  Options o;
#ifdef PLNG_BENCH_PLCD_PATH
  o.plcd = PLNG_BENCH_PLCD_PATH;
#endif
  plng::bench::OptionReader args(argc, argv);
  while (args.next()) {
    const std::string& arg = args.option();
    auto integer = [&](long min, long max = 1'000'000) { return args.integer(min, max); };
    if (arg == "-h" || arg == "--help") return std::nullopt;
    if (arg == "--nodes") {
      o.nodes = integer(1);
    } else if (arg == "--sites") {
      o.sites = integer(1, 1000);
    } else if (arg == "--slices") {
      o.slices = integer(0, 100'000);
    } else if (arg == "--nodes-per-slice") {
      o.nodesPerSlice = integer(1);
    } else if (arg == "--group-size") {
      o.groupSize = integer(1);
    } else if (arg == "--change-nodes") {
      o.changeNodes = integer(1);
    } else if (arg == "--populate-threads") {
      o.populateThreads = integer(1, 64);
    } else if (arg == "--seed") {
      o.seed = static_cast<std::uint64_t>(parseInteger(arg, args.value(), 0, LONG_MAX));
    } else if (arg == "--replicas") {
      o.replicas = integer(1, 16);
    } else if (arg == "--streams-per-channel") {
      o.streamsPerChannel = integer(1);
    } else if (arg == "--logins-in-flight") {
      o.loginsInFlight = integer(1, 10'000);
    } else if (arg == "--rounds") {
      o.rounds = integer(1, 10'000);
    } else if (arg == "--timeout") {
      o.timeout = args.seconds(1);
    } else if (arg == "--pause") {
      o.pause = args.seconds(0);
    } else if (arg == "--idle-seconds") {
      o.idleSeconds = args.seconds(1);
    } else if (arg == "--plcd") {
      o.plcd = args.value();
    } else if (arg == "--plcd-set") {
      const std::string setting = args.value();
      const auto eq = setting.find('=');
      if (eq == std::string::npos || eq == 0 || setting.find('\n') != std::string::npos) {
        throw UsageError("--plcd-set needs KEY=VALUE, not '" + setting + "'");
      }
      o.plcdSettings.emplace_back(setting.substr(0, eq), setting.substr(eq + 1));
    } else {
      throw UsageError("unknown option '" + arg + "'");
    }
  }
  if (o.groupSize < 0) o.groupSize = std::min(300, o.nodes);
  if (o.changeNodes < 0) o.changeNodes = std::min(100, o.nodes);
  auto notAbove = [&](const char* what, int value) {
    if (value > o.nodes) {
      throw UsageError(std::string(what) + " (" + std::to_string(value) + ") exceeds --nodes (" +
                       std::to_string(o.nodes) + ")");
    }
  };
  notAbove("--nodes-per-slice", o.nodesPerSlice);
  notAbove("--group-size", o.groupSize);
  notAbove("--change-nodes", o.changeNodes);
  if (o.plcd.empty()) throw UsageError("no plcd: give --plcd PATH");
  return o;
}

// ------------------------------------------------------------------ machine and processes

// Every stream is a socket only in aggregate (a channel is one connection), but
// plcd's replicas inherit this limit, and a thread-per-stream server with many
// connections may need more than the usual 1024.
rlim_t raiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

double ticksToSeconds(std::uint64_t ticks) {
  static const long kTicksPerSecond = ::sysconf(_SC_CLK_TCK);
  return static_cast<double>(ticks) / static_cast<double>(kTicksPerSecond);
}

// A process's CPU (utime + stime), resident memory and threads, from procfs.
struct ProcessUsage {
  double cpuSeconds = 0;
  double rssMb = 0;
  long threads = 0;
};

ProcessUsage readUsage(pid_t pid) {
  ProcessUsage u;
  if (auto stat = plng::base::readProcStat(pid)) {
    u.cpuSeconds = ticksToSeconds(stat->utime + stat->stime);
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    std::istringstream fields(line);
    std::string key;
    long value = 0;
    fields >> key >> value;
    if (key == "VmRSS:") u.rssMb = static_cast<double>(value) / 1024.0;  // kB
    if (key == "Threads:") u.threads = value;
  }
  return u;
}

// PostgreSQL's CPU: the postmaster, its live children and those it reaped.
double postgresCpuSeconds(pid_t postmaster) {
  return plng::bench::CpuSampler({}, postmaster).sample().postgres;
}

// ------------------------------------------------------------------ statistics

// Nearest rank: the smallest value that at least a share p of the values do not exceed.
double percentile(std::vector<double> values, double p) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  const auto rank = static_cast<std::size_t>(std::max(1.0, std::ceil(p * n)));
  return values[std::min(rank, values.size()) - 1];
}

std::string ms(double seconds) { return std::isnan(seconds) ? "-" : fixed(seconds * 1000, 1); }

// ------------------------------------------------------------------ population

struct Population {
  std::vector<std::string> sites;
  std::vector<plng::test::SimulatedNode> nodes;
  std::vector<std::size_t> group;  // indexes of the node group's nodes
  std::string groupSlice;          // bound to every node of the group
  // Change (a)'s slices, one per round, made without nodes before any stream
  // opens: making one is a change too (every stream recomputes its state), which
  // would delay the timed change behind it.
  std::vector<std::string> changeSlices;
  double seconds = 0;
};

Population populate(const Options& o, const std::vector<PlcClient>& admins) {
  const auto start = Clock::now();
  Population p;
  std::mt19937_64 rng(o.seed);
  const int siteDigits = digitsFor(o.sites);
  for (int s = 0; s < o.sites; ++s) p.sites.push_back("site" + zeroPadded(s, siteDigits));
  const int nodeDigits = digitsFor(o.nodes);
  for (int n = 0; n < o.nodes; ++n) {
    const std::string& site = p.sites[static_cast<std::size_t>(n % o.sites)];
    p.nodes.push_back({"n" + zeroPadded(n, nodeDigits) + "." + site + ".fanout.test", {}});
  }
  // The group's nodes are spread evenly over the node list (and so over the sites).
  for (int k = 0; k < o.groupSize; ++k) {
    p.group.push_back(static_cast<std::size_t>(static_cast<long>(k) * o.nodes / o.groupSize));
  }
  std::vector<bool> inGroup(p.nodes.size(), false);
  for (std::size_t n : p.group) inGroup[n] = true;

  const int maxSlices = o.slices + o.rounds + 1;
  const long slivers = static_cast<long>(o.nodes) * (maxSlices + 1);
  const int maxSlivers = static_cast<int>(std::min<long>(slivers, INT_MAX));
  std::cerr << "populating: " << o.sites << " sites, " << o.nodes << " nodes, " << o.slices
            << " slices...\n";
  parallelFor(p.sites.size(), o.populateThreads, admins, [&](std::size_t i, const PlcClient& a) {
    pb::AddSiteRequest request;
    request.set_login_base(p.sites[i]);
    request.set_name("Fan-out site " + std::to_string(i));
    request.set_url("https://" + p.sites[i] + ".fanout.test/");
    request.set_max_slices(maxSlices);
    request.set_max_slivers(maxSlivers);
    callOrThrow(a, &pb::Admin::Stub::AddSite, request, "AddSite " + p.sites[i]);
  });

  parallelFor(p.nodes.size(), o.populateThreads, admins, [&](std::size_t i, const PlcClient& a) {
    const auto pair = plng::ticket::generateKeyPair();
    p.nodes[i].key = pair.private_key;
    pb::AddNodeRequest request;
    request.set_hostname(p.nodes[i].hostname);
    request.set_login_base(p.sites[i % p.sites.size()]);
    request.set_public_key(
        std::string(reinterpret_cast<const char*>(pair.public_key.data()), pair.public_key.size()));
    request.set_boot_state("boot");
    callOrThrow(a, &pb::Admin::Stub::AddNode, request, "AddNode " + p.nodes[i].hostname);
    if (inGroup[i]) {
      pb::SetNodeTagRequest tag;
      tag.set_hostname(p.nodes[i].hostname);
      tag.set_tag(kGroupTag);
      tag.set_value(kGroupName);
      callOrThrow(a, &pb::Admin::Stub::SetNodeTag, tag, "SetNodeTag " + p.nodes[i].hostname);
    }
  });
  pb::AddNodeGroupRequest group;
  group.set_name(kGroupName);
  group.set_tag(kGroupTag);
  group.set_value(kGroupName);
  callOrThrow(admins.front(), &pb::Admin::Stub::AddNodeGroup, group, "AddNodeGroup");

  // Slices: site j % sites, on nodesPerSlice random nodes, with a slice-wide tag.
  std::vector<std::vector<std::string>> sliceNodes;
  std::vector<std::size_t> indexes(p.nodes.size());
  std::iota(indexes.begin(), indexes.end(), std::size_t{0});
  const int sliceDigits = digitsFor(o.slices);
  std::vector<std::string> sliceNames;
  for (int j = 0; j < o.slices; ++j) {
    sliceNames.push_back(p.sites[static_cast<std::size_t>(j % o.sites)] + "_s" +
                         zeroPadded(j, sliceDigits));
    std::vector<std::size_t> chosen;
    std::sample(indexes.begin(), indexes.end(), std::back_inserter(chosen), o.nodesPerSlice, rng);
    std::vector<std::string> hostnames;
    for (std::size_t n : chosen) hostnames.push_back(p.nodes[n].hostname);
    sliceNodes.push_back(std::move(hostnames));
  }
  parallelFor(sliceNames.size(), o.populateThreads, admins, [&](std::size_t i, const PlcClient& a) {
    pb::AddSliceRequest add;
    add.set_name(sliceNames[i]);
    add.set_description("fanout_bench slice " + std::to_string(i));
    add.set_url("https://fanout.test/" + sliceNames[i]);
    add.set_max_nodes(o.nodesPerSlice);
    callOrThrow(a, &pb::Slice::Stub::AddSlice, add, "AddSlice " + sliceNames[i]);
    pb::SliceNodesRequest nodes;
    nodes.set_name(sliceNames[i]);
    for (const auto& h : sliceNodes[i]) nodes.add_hostnames(h);
    callOrThrow(a, &pb::Slice::Stub::AddSliceNodes, nodes, "AddSliceNodes " + sliceNames[i]);
    pb::SetSliceTagRequest tag;
    tag.set_slice(sliceNames[i]);
    tag.set_tag("vref");
    tag.set_value("debian12");
    callOrThrow(a, &pb::Slice::Stub::SetSliceTag, tag, "SetSliceTag " + sliceNames[i] + " vref");
  });

  // The slice change (b) retags: on every node of the group, the tag scoped to it.
  p.groupSlice = p.sites.front() + "_group";
  pb::AddSliceRequest add;
  add.set_name(p.groupSlice);
  add.set_description("fanout_bench: a slice on every node of the node group");
  add.set_url("https://fanout.test/" + p.groupSlice);
  add.set_max_nodes(o.groupSize);
  callOrThrow(admins.front(), &pb::Slice::Stub::AddSlice, add, "AddSlice " + p.groupSlice);
  pb::SliceNodesRequest bind;
  bind.set_name(p.groupSlice);
  for (std::size_t n : p.group) bind.add_hostnames(p.nodes[n].hostname);
  callOrThrow(admins.front(), &pb::Slice::Stub::AddSliceNodes, bind,
              "AddSliceNodes " + p.groupSlice);
  pb::SetSliceTagRequest tag;
  tag.set_slice(p.groupSlice);
  tag.set_tag(kGroupSliceTag);
  tag.set_value("32");
  tag.set_nodegroup(kGroupName);
  callOrThrow(admins.front(), &pb::Slice::Stub::SetSliceTag, tag, "SetSliceTag " + p.groupSlice);

  for (int r = 1; r <= o.rounds; ++r) {
    p.changeSlices.push_back(p.sites.front() + "_add" + std::to_string(r));
  }
  parallelFor(p.changeSlices.size(), o.populateThreads, admins,
              [&](std::size_t i, const PlcClient& a) {
                pb::AddSliceRequest empty;
                empty.set_name(p.changeSlices[i]);
                empty.set_description("fanout_bench change (a)");
                empty.set_url("https://fanout.test/" + p.changeSlices[i]);
                empty.set_max_nodes(o.changeNodes);
                callOrThrow(a, &pb::Slice::Stub::AddSlice, empty, "AddSlice " + p.changeSlices[i]);
              });

  p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return p;
}

// ------------------------------------------------------------------ changes

const pb::SliverSpec* findSliver(const pb::NodeState& state, const std::string& slice) {
  for (const auto& s : state.slivers()) {
    if (s.slice_name() == slice) return &s;
  }
  return nullptr;
}

// One change: the RPC to time, who it affects and how a node's state shows it.
struct Change {
  std::string kind;
  std::string description;
  std::vector<std::size_t> affected;
  std::function<void(const PlcClient&)> apply;
  NodeSim::Predicate shows;
};

struct ChangeResult {
  std::string kind;
  int round = 0;
  std::size_t replica = 0;  // whose API took the change
  double commitSeconds = 0;
  std::vector<double> delays;  // per affected node that got it, seconds after the RPC was issued
  std::size_t missing = 0;     // affected nodes that had not got it by the timeout
  double lastSeconds = 0;      // the last affected node's delay (or the timeout)
};

struct KindSummary {
  std::string kind;
  std::string description;
  std::size_t affected = 0;
  std::vector<double> commits;
  std::vector<double> delays;  // pooled over rounds
  std::vector<double> lasts;   // one per round
  std::size_t missing = 0;
};

struct Usage {
  std::vector<ProcessUsage> plcd;  // per replica
  double postgresCpu = 0;
  ProcessUsage sim;
  double machineCpu = 0;  // every CPU's busy time
};

// The share of the machine's CPU capacity that other processes (builds, other
// people's tests) used between `a` and `b`: what disturbed the measurement.
double otherCpuShare(const Usage& a, const Usage& b, double seconds, int cpus) {
  double ours = (b.postgresCpu - a.postgresCpu) + (b.sim.cpuSeconds - a.sim.cpuSeconds);
  for (std::size_t r = 0; r < a.plcd.size(); ++r) {
    ours += b.plcd[r].cpuSeconds - a.plcd[r].cpuSeconds;
  }
  const double capacity = seconds * cpus;
  return capacity > 0 ? std::max(0.0, (b.machineCpu - a.machineCpu) - ours) / capacity : 0;
}

// Waits until plcd and PostgreSQL together use less than `idleShare` (of one
// CPU: what they use with every stream open and nothing changing) plus
// kQuietCpuShare over kQuietWindow, i.e. the streams a change woke are done
// recomputing, or `deadline` passes. False if the deadline came first.
constexpr double kQuietCpuShare = 0.25;
constexpr auto kQuietLongest = std::chrono::seconds(10);
constexpr auto kQuietWindow = std::chrono::milliseconds(300);

double serverCpuSeconds(const std::vector<plng::test::PlcdProcess>& plcds, pid_t postmaster) {
  double total = postgresCpuSeconds(postmaster);
  for (const auto& p : plcds) total += readUsage(p.pid()).cpuSeconds;
  return total;
}

bool waitForQuiet(const std::vector<plng::test::PlcdProcess>& plcds, pid_t postmaster,
                  double idleShare, Clock::time_point deadline) {
  double before = serverCpuSeconds(plcds, postmaster);
  while (Clock::now() < deadline) {
    if (!plng::bench::sleepUntil(Clock::now() + kQuietWindow)) return false;
    const double now = serverCpuSeconds(plcds, postmaster);
    const double window = std::chrono::duration<double>(kQuietWindow).count();
    if (now - before < (idleShare + kQuietCpuShare) * window) return true;
    before = now;
  }
  return false;
}

Usage sampleUsage(const std::vector<plng::test::PlcdProcess>& plcds, pid_t postmaster) {
  Usage u;
  for (const auto& p : plcds) u.plcd.push_back(readUsage(p.pid()));
  const auto times = plng::bench::CpuSampler({}, postmaster).sample();
  u.postgresCpu = times.postgres;
  u.machineCpu = times.machine;
  u.sim = readUsage(::getpid());
  return u;
}

// ------------------------------------------------------------------ main

int run(const Options& o) {
  const int cpus = usableCpus();
  const rlim_t openFiles = raiseOpenFileLimit();
  std::cout << "fanout_bench " << nowUtc() << " (" << PLNG_BENCH_BUILD_TYPE << " build)\n"
            << "machine: " << cpus << " CPUs, " << kernelRelease() << ", load average "
            << loadAverage() << ", open-file limit " << openFiles << "\n"
            << "config: " << o.nodes << " nodes at " << o.sites << " sites, " << o.slices
            << " slices of " << o.nodesPerSlice << " nodes, node group of " << o.groupSize << ", "
            << o.replicas << " plcd replica(s), " << o.streamsPerChannel << " streams per channel, "
            << o.rounds << " rounds\n"
            << "plcd: " << o.plcd.string() << "\n"
            << std::flush;

  if (auto why = plng::test::postgresUnavailableReason()) {
    std::cerr << "fanout_bench: cannot start PostgreSQL: " << *why << "\n";
    return 1;
  }
  plng::test::ScratchDir scratch("fanout-bench");
  const fs::path config = scratch / "plcd.conf";
  {
    std::ofstream out(config);
    // Every simulated node logs in from 127.0.0.1: lift the per-address limit.
    out << "login_source_burst = 1000000\nlogin_source_refill_s = 0\n";
    for (const auto& [key, value] : o.plcdSettings) out << key << " = " << value << "\n";
    if (!out) throw std::runtime_error("cannot write " + config.string());
  }

  std::cerr << "starting PostgreSQL and " << o.replicas << " plcd...\n";
  plng::test::PgInstance pg;
  const std::string database = pg.connectionString();
  throwIfStopRequested();
  PlcdReplicas replicas(o.replicas, o.plcd, database, {"--config", config.string()});
  std::vector<plng::test::PlcdProcess>& plcds = replicas.all();
  const pid_t postmaster = pg.postmasterPid();
  plng::test::createAdmin(o.plcd, database, kAdminEmail, kAdminPassword);
  PlcClient login(plcds.front().channel());
  if (const auto status = login.login(kAdminEmail, kAdminPassword); !status.ok()) {
    throw std::runtime_error("admin login failed: " + plng::test::describeStatus(status));
  }
  std::vector<PlcClient> admins;
  for (const auto& p : plcds) admins.emplace_back(p.channel(), login.token());

  Population population = populate(o, admins);
  std::cout << "populated through the API in " << fixed(population.seconds, 1) << " s\n"
            << std::flush;

  plng::test::NodeSimOptions simOptions;
  for (const auto& p : plcds) simOptions.addresses.push_back(p.address());
  simOptions.streamsPerChannel = o.streamsPerChannel;
  simOptions.loginsInFlight = o.loginsInFlight;
  simOptions.stopRequested = [] { return stopRequested(); };
  NodeSim sim(population.nodes, simOptions);
  std::vector<std::size_t> everyNode(sim.size());
  std::iota(everyNode.begin(), everyNode.end(), std::size_t{0});

  std::cerr << "logging " << sim.size() << " nodes in...\n";
  const auto logins = sim.loginAll();
  throwIfStopRequested();
  std::cout << "node logins: " << logins.succeeded << " in " << fixed(logins.seconds, 2) << " s ("
            << fixed(static_cast<double>(logins.succeeded) / std::max(logins.seconds, 1e-9), 0)
            << "/s, " << o.loginsInFlight << " in flight)";
  if (logins.failed > 0) {
    std::cout << ", " << logins.failed << " FAILED, first: " << logins.firstFailure;
  }
  std::cout << "\n" << std::flush;

  const Usage beforeStreams = sampleUsage(plcds, postmaster);
  std::cerr << "opening " << logins.succeeded << " streams over " << sim.channelCount()
            << " channels...\n";
  auto firstStates = sim.watch(everyNode, [](const pb::NodeState&) { return true; });
  const auto openedAt = Clock::now();
  sim.openStreams();
  const auto opened = Clock::now();
  const auto timeout = std::chrono::milliseconds(std::llround(o.timeout * 1000));
  // Nodes whose stream ended (plcd refused it) will not get a state: stop waiting
  // once every other node has one.
  bool allFirst = false;
  while (!allFirst && Clock::now() < openedAt + timeout) {
    allFirst = firstStates->waitUntil(std::min(openedAt + timeout, Clock::now() + 200ms));
    throwIfStopRequested();
    const auto counts = sim.streamCounts();
    if (firstStates->remaining() <= counts.ended + (sim.size() - counts.opened)) break;
  }
  {
    std::vector<double> delays;
    for (const auto& at : firstStates->satisfiedAt()) {
      if (at) delays.push_back(std::chrono::duration<double>(*at - openedAt).count());
    }
    const auto counts = sim.streamCounts();
    std::cout << "streams: " << counts.opened << " opened over " << sim.channelCount()
              << " channels in "
              << fixed(std::chrono::duration<double>(opened - openedAt).count(), 3)
              << " s; first state at p50 " << ms(percentile(delays, 0.5)) << " ms, p99 "
              << ms(percentile(delays, 0.99)) << " ms, last " << ms(percentile(delays, 1.0))
              << " ms after opening; " << delays.size() << "/" << sim.size()
              << " nodes have a state";
    if (counts.ended > 0) {
      std::cout << "; " << counts.ended << " streams ENDED, first: " << counts.firstEnd;
    }
    std::cout << "\n" << std::flush;
  }
  firstStates.reset();
  if (!allFirst) {
    std::cout << "not every node got its first state; changes are still made and timed over "
                 "the nodes that did\n";
  }

  // Idle: every stream open, nothing changing.
  const Usage idleStart = sampleUsage(plcds, postmaster);
  const auto idleStartTime = Clock::now();
  plng::bench::sleepUntil(idleStartTime +
                          std::chrono::milliseconds(std::llround(o.idleSeconds * 1000)));
  throwIfStopRequested();
  const Usage idleEnd = sampleUsage(plcds, postmaster);
  const double idleSeconds = std::chrono::duration<double>(Clock::now() - idleStartTime).count();
  double idleServerShare = idleEnd.postgresCpu - idleStart.postgresCpu;
  for (std::size_t r = 0; r < plcds.size(); ++r) {
    idleServerShare += idleEnd.plcd[r].cpuSeconds - idleStart.plcd[r].cpuSeconds;
  }
  idleServerShare = idleSeconds > 0 ? idleServerShare / idleSeconds : 0;

  // Only nodes with a live stream can see a change.
  std::vector<bool> watching(sim.size(), false);
  for (std::size_t n = 0; n < sim.size(); ++n) watching[n] = sim.latest(n).has_value();
  auto live = [&](std::vector<std::size_t> nodes) {
    nodes.erase(
        std::remove_if(nodes.begin(), nodes.end(), [&](std::size_t n) { return !watching[n]; }),
        nodes.end());
    return nodes;
  };

  std::mt19937_64 rng(o.seed + 1);
  std::vector<Change> changes;
  for (int r = 1; r <= o.rounds; ++r) {
    {
      Change c;
      c.kind = "slice";
      c.description = "AddSliceNodes: a new slice onto " + std::to_string(o.changeNodes) + " nodes";
      std::sample(everyNode.begin(), everyNode.end(), std::back_inserter(c.affected), o.changeNodes,
                  rng);
      const std::string slice = population.changeSlices[static_cast<std::size_t>(r - 1)];
      std::vector<std::string> hostnames;
      for (std::size_t n : c.affected) hostnames.push_back(sim.hostname(n));
      c.apply = [slice, hostnames](const PlcClient& admin) {
        pb::SliceNodesRequest nodes;
        nodes.set_name(slice);
        for (const auto& h : hostnames) nodes.add_hostnames(h);
        callOrThrow(admin, &pb::Slice::Stub::AddSliceNodes, nodes, "AddSliceNodes " + slice);
      };
      c.shows = [slice](const pb::NodeState& s) { return findSliver(s, slice) != nullptr; };
      changes.push_back(std::move(c));
    }
    {
      Change c;
      c.kind = "group";
      c.description = "SetSliceTag " + std::string(kGroupSliceTag) + " scoped to node group " +
                      kGroupName + " (" + std::to_string(o.groupSize) + " nodes)";
      c.affected = population.group;
      const std::string value = std::to_string(100 + r);
      const std::string slice = population.groupSlice;
      c.apply = [slice, value](const PlcClient& admin) {
        pb::SetSliceTagRequest tag;
        tag.set_slice(slice);
        tag.set_tag(kGroupSliceTag);
        tag.set_value(value);
        tag.set_nodegroup(kGroupName);
        callOrThrow(admin, &pb::Slice::Stub::SetSliceTag, tag, "SetSliceTag " + slice);
      };
      c.shows = [slice, value](const pb::NodeState& s) {
        const pb::SliverSpec* sliver = findSliver(s, slice);
        if (sliver == nullptr) return false;
        const auto it = sliver->tags().find(kGroupSliceTag);
        return it != sliver->tags().end() && it->second == value;
      };
      changes.push_back(std::move(c));
    }
    {
      Change c;
      c.kind = "blacklist";
      c.description = "AddBlacklistEntry: a new prefix (every node)";
      c.affected = everyNode;
      // Within 198.18.0.0/15 (RFC 2544, benchmarking): never anyone's address.
      const std::string prefix = "198." + std::to_string(18 + r / 65536) + "." +
                                 std::to_string((r / 256) % 256) + "." + std::to_string(r % 256) +
                                 "/32";
      c.apply = [prefix](const PlcClient& admin) {
        pb::AddBlacklistEntryRequest add;
        add.set_prefix(prefix);
        add.set_reason("fanout_bench change (c)");
        callOrThrow(admin, &pb::Admin::Stub::AddBlacklistEntry, add, "AddBlacklistEntry " + prefix);
      };
      c.shows = [prefix](const pb::NodeState& s) {
        return std::any_of(s.blacklist().begin(), s.blacklist().end(),
                           [&](const pb::BlacklistEntry& e) { return e.prefix() == prefix; });
      };
      changes.push_back(std::move(c));
    }
  }

  std::cerr << "making " << changes.size() << " changes...\n";
  const auto statesBefore = sim.streamCounts().statesReceived;
  const Usage changeStart = sampleUsage(plcds, postmaster);
  const auto changeStartTime = Clock::now();
  std::vector<ChangeResult> results;
  int notQuiet = 0;
  const auto pause = std::chrono::milliseconds(std::llround(o.pause * 1000));
  for (std::size_t i = 0; i < changes.size(); ++i) {
    Change& c = changes[i];
    ChangeResult result;
    result.kind = c.kind;
    result.round = static_cast<int>(i / 3) + 1;
    // Changes go through every replica in turn: most nodes hear of one through
    // another plcd's NOTIFY.
    result.replica = i % admins.size();
    const PlcClient& admin = admins[result.replica];
    const std::vector<std::size_t> affected = live(c.affected);
    auto watch = sim.watch(affected, c.shows);
    const auto issued = Clock::now();
    c.apply(admin);
    const auto committed = Clock::now();
    watch->waitUntil(issued + timeout);
    throwIfStopRequested();
    result.commitSeconds = std::chrono::duration<double>(committed - issued).count();
    for (const auto& at : watch->satisfiedAt()) {
      if (at) {
        result.delays.push_back(std::chrono::duration<double>(*at - issued).count());
      } else {
        ++result.missing;
      }
    }
    result.missing += c.affected.size() - affected.size();
    result.lastSeconds = result.missing > 0 ? o.timeout : percentile(result.delays, 1.0);
    std::cerr << "  round " << result.round << " " << pad(c.kind, 9, false) << " via plcd "
              << result.replica << ": commit " << ms(result.commitSeconds) << " ms, last of "
              << c.affected.size() << " nodes " << ms(result.lastSeconds) << " ms"
              << (result.missing > 0 ? ", " + std::to_string(result.missing) + " MISSING" : "")
              << "\n";
    results.push_back(std::move(result));
    plng::bench::sleepUntil(Clock::now() + pause);
    if (!waitForQuiet(plcds, postmaster, idleServerShare, Clock::now() + kQuietLongest)) {
      throwIfStopRequested();
      ++notQuiet;
      std::cerr << "  plcd and PostgreSQL still busy " << kQuietLongest.count()
                << " s after the change; going on\n";
    }
  }
  const Usage changeEnd = sampleUsage(plcds, postmaster);
  const double changeSeconds =
      std::chrono::duration<double>(Clock::now() - changeStartTime).count();
  const auto countsAfter = sim.streamCounts();

  // ---------------------------------------------------------------- report
  std::vector<KindSummary> kinds;
  for (std::size_t k = 0; k < 3 && k < changes.size(); ++k) {
    KindSummary s;
    s.kind = changes[k].kind;
    s.description = changes[k].description;
    s.affected = changes[k].affected.size();
    kinds.push_back(std::move(s));
  }
  for (const auto& r : results) {
    for (auto& s : kinds) {
      if (s.kind != r.kind) continue;
      s.commits.push_back(r.commitSeconds);
      s.delays.insert(s.delays.end(), r.delays.begin(), r.delays.end());
      s.lasts.push_back(r.lastSeconds);
      s.missing += r.missing;
    }
  }
  std::cout << "\nDelay from issuing the RPC to a node holding a state that shows the change, "
               "over every affected node of every round (ms):\n"
            << pad("change", 10, false) << pad("nodes", 7) << pad("commit p50", 12) << pad("p50", 9)
            << pad("p99", 9) << pad("max", 9) << pad("last p50", 10) << pad("missing", 9) << "\n";
  bool targetDelayMet = true;
  for (const auto& s : kinds) {
    std::cout << pad(s.kind, 10, false) << pad(std::to_string(s.affected), 7)
              << pad(ms(percentile(s.commits, 0.5)), 12) << pad(ms(percentile(s.delays, 0.5)), 9)
              << pad(ms(percentile(s.delays, 0.99)), 9) << pad(ms(percentile(s.delays, 1.0)), 9)
              << pad(ms(percentile(s.lasts, 0.5)), 10) << pad(std::to_string(s.missing), 9) << "\n";
    const double p99 = percentile(s.delays, 0.99);
    targetDelayMet =
        targetDelayMet && s.missing == 0 && !std::isnan(p99) && p99 <= kTargetP99Seconds;
  }
  for (const auto& s : kinds) std::cout << "  " << s.kind << ": " << s.description << "\n";
  std::cout << "  (" << o.rounds << " rounds; 'last p50' is the median over rounds of the last "
            << "affected node's delay; a change is made only after the previous one reached "
               "all its nodes, "
            << o.pause << " s passed and plcd and PostgreSQL went quiet, or "
            << kQuietLongest.count() << " s more passed (" << notQuiet << " times))\n";
  std::cout << "states received during the changes: " << countsAfter.statesReceived - statesBefore
            << " (a change sends one state to each "
            << "node it affects at best)\n";
  if (countsAfter.ended > 0) {
    std::cout << "streams ended during the run: " << countsAfter.ended
              << ", first: " << countsAfter.firstEnd << "\n";
  }

  std::cout << "\nCost (CPU in seconds; idle: " << fixed(idleSeconds, 1)
            << " s with every stream open and nothing changing; changes: "
            << fixed(changeSeconds, 1) << " s):\n"
            << pad("process", 14, false) << pad("threads", 11) << pad("threads", 11)
            << pad("RSS MB", 11) << pad("RSS MB", 11) << pad("CPU", 11) << pad("CPU", 11) << "\n"
            << pad("", 14, false) << pad("no stream", 11) << pad("streams", 11)
            << pad("no stream", 11) << pad("end", 11) << pad("idle", 11) << pad("changes", 11)
            << "\n";
  auto row = [&](const std::string& name, const std::string& threadsBefore,
                 const std::string& threadsWith, const std::string& rssBefore,
                 const std::string& rssEnd, double cpuIdle, double cpuChanges) {
    std::cout << pad(name, 14, false) << pad(threadsBefore, 11) << pad(threadsWith, 11)
              << pad(rssBefore, 11) << pad(rssEnd, 11) << pad(fixed(cpuIdle, 2), 11)
              << pad(fixed(cpuChanges, 2), 11) << "\n";
  };
  double maxRss = 0;
  long maxThreadGrowth = 0;
  for (std::size_t r = 0; r < plcds.size(); ++r) {
    const auto& before = beforeStreams.plcd[r];
    const auto& end = changeEnd.plcd[r];
    maxRss = std::max({maxRss, end.rssMb, idleEnd.plcd[r].rssMb});
    maxThreadGrowth = std::max(maxThreadGrowth, idleStart.plcd[r].threads - before.threads);
    row("plcd " + std::to_string(r), std::to_string(before.threads),
        std::to_string(idleStart.plcd[r].threads), fixed(before.rssMb, 0), fixed(end.rssMb, 0),
        idleEnd.plcd[r].cpuSeconds - idleStart.plcd[r].cpuSeconds,
        end.cpuSeconds - changeStart.plcd[r].cpuSeconds);
  }
  row("PostgreSQL", "-", "-", "-", "-", idleEnd.postgresCpu - idleStart.postgresCpu,
      changeEnd.postgresCpu - changeStart.postgresCpu);
  row("fanout_bench", std::to_string(beforeStreams.sim.threads),
      std::to_string(idleStart.sim.threads), fixed(beforeStreams.sim.rssMb, 0),
      fixed(changeEnd.sim.rssMb, 0), idleEnd.sim.cpuSeconds - idleStart.sim.cpuSeconds,
      changeEnd.sim.cpuSeconds - changeStart.sim.cpuSeconds);
  std::cout << "  (plcd's 'no stream' columns: after every node logged in, before any stream; "
               "fanout_bench holds the simulated nodes)\n";
  std::cout << "other processes used "
            << fixed(100 * otherCpuShare(changeStart, changeEnd, changeSeconds, cpus), 0)
            << "% of the machine's CPU during the changes; load average at the end "
            << loadAverage() << "\n";

  const long streamsPerReplica =
      static_cast<long>(countsAfter.opened + plcds.size() - 1) / static_cast<long>(plcds.size());
  const long allowedGrowth = std::max(kThreadGrowthFloor, streamsPerReplica / 10);
  std::cout << "\nTargets:\n"
            << "  change delay p99 <= " << fixed(kTargetP99Seconds * 1000, 0)
            << " ms for 1,000 nodes on 2 cores, every change kind: "
            << (targetDelayMet ? "MET" : "NOT MET");
  if (o.nodes != 1000 || cpus != 2) {
    std::cout << " [this run: " << o.nodes << " nodes, " << cpus << " CPUs]";
  }
  std::cout << "\n  plcd RSS <= " << fixed(kTargetRssMb, 0) << " MB per replica: largest "
            << fixed(maxRss, 0) << " MB, " << (maxRss <= kTargetRssMb ? "MET" : "NOT MET") << "\n"
            << "  plcd threads independent of the number of streams: opening " << countsAfter.opened
            << " streams (" << streamsPerReplica << " per replica) added up to " << maxThreadGrowth
            << " threads to a replica, " << (maxThreadGrowth <= allowedGrowth ? "MET" : "NOT MET")
            << " (at most " << allowedGrowth << " allowed: a tenth of the streams, at least "
            << kThreadGrowthFloor << ")\n";

  for (auto& p : plcds) {
    if (!p.running()) {
      std::cerr << "fanout_bench: a plcd died during the run; log tail:\n" << p.logTail() << "\n";
      return 1;
    }
  }
  bool complete = logins.failed == 0 && countsAfter.ended == 0;
  for (const auto& s : kinds) complete = complete && s.missing == 0;
  return complete ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> options;
  return plng::bench::benchMain(
      "fanout_bench", kUsage,
      [&] {
        options = parseOptions(argc, argv);
        return options.has_value();
      },
      [&] { return run(*options); });
}
