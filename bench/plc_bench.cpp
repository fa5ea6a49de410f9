// plc_bench: throughput and latency of PLC's read paths (GetSlices, GetSliceTicket)
// under concurrent clients against a populated database, beside an empty RPC's
// rate measured in the same run. Starts its own PostgreSQL and plcd, populates
// through the API, runs each workload, prints a table, and cleans up (also on
// Ctrl-C).
#include <grpcpp/client_context.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/byte_buffer.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/strings.h"
#include "bench/bench_options.h"
#include "bench/bench_report.h"
#include "bench/plc_bench_populate.h"
#include "bench/plc_bench_workload.h"
#include "proto/ticket.h"
#include "tests/support/json_client.h"
#include "tests/support/pg_instance.h"
#include "tests/support/plc_client.h"
#include "tests/support/plcd_process.h"

namespace {

namespace fs = std::filesystem;
namespace pb = planetlab::v1;
using namespace plng::bench;
using namespace std::chrono_literals;

constexpr double kTargetTicketRate = 5000;  // calls/s, on 2 cores
constexpr double kTargetTicketP99Ms = 10;
constexpr const char* kAdminEmail = "admin@bench.test";
constexpr const char* kAdminPassword = "bench-admin-password";
constexpr auto kCallDeadline = 10s;

constexpr const char* kUsage = R"(Usage: plc_bench [OPTIONS]

Measures PLC's GetSlices and GetSliceTicket throughput and p50/p99 latency with
concurrent clients against a database populated through the API, beside an
empty RPC (grpc.health.v1.Health/Check) measured in the same run. Starts its own
PostgreSQL and plcd (log level warn) and removes them on exit, also on Ctrl-C.

Population:
  --sites N              sites, each with a PI and --members-per-slice users (100)
  --slices N             slices, spread over the sites (1000)
  --nodes N              nodes, spread over the sites (1000)
  --nodes-per-slice N    nodes bound to each slice, from any site (10)
  --members-per-slice N  members of each slice (2)
  --populate-threads N   concurrent API callers while populating (4)
  --seed N               seed of every random choice (1)

Load:
  --clients N            client threads per workload, each with its own connection (8)
  --seconds S            measured seconds per workload (10)
  --warmup S             unmeasured seconds before each workload (1)
  --replicas N           plcd processes on the database; clients spread over them (1)
  --workloads LIST       comma-separated subset of: empty,whoami,slice,slices-all,ticket,
                         slice-json,ticket-json
                         (default: all; empty always runs, as the baseline)
  --plcd PATH            plcd binary (default: the one built with this benchmark)
  --json                 also print the results as one JSON object (last line of stdout)
  -h, --help             this text

Workloads:
  empty       grpc.health.v1.Health/Check: gRPC's own cost, the baseline
  whoami      Auth.WhoAmI as a slice member: gRPC plus token authentication
  slice       Slice.GetSlices(names=[one random slice]) as one of its members
  slices-all  Slice.GetSlices() listing every slice, as the admin
  ticket      Slice.GetSliceTicket(random slice, all its nodes) as one of its members;
              a sample of tickets is verified against GetPlcKeys
  slice-json, ticket-json
              the same calls through plcd's JSON API (docs/portal.md): each request
              written as proto3 JSON and POSTed over a kept-alive HTTP/1.1 connection
              per client, the answer read back from JSON; the rate is reported
              against the gRPC one measured in the same run

Targets: GetSliceTicket >= 5000/s with p99 <= 10 ms on 2 cores; through the JSON
API, GetSliceTicket and GetSlices(one) at >= 0.5x their gRPC rate.
)";

struct Options {
  plng::bench::PopulationSpec population;
  int clients = 8;
  double seconds = 10;
  double warmup = 1;
  int replicas = 1;
  std::vector<std::string> workloads = {"empty",  "whoami",     "slice",      "slices-all",
                                        "ticket", "slice-json", "ticket-json"};
  fs::path plcd;
  bool json = false;
};

std::vector<std::string> splitComma(const std::string& list) {
  std::vector<std::string> items;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) items.push_back(item);
  }
  return items;
}

// nullopt when --help was asked for.
std::optional<Options> parseOptions(int argc, char** argv) {
  Options o;
#ifdef PLNG_BENCH_PLCD_PATH
  o.plcd = PLNG_BENCH_PLCD_PATH;
#endif
  OptionReader args(argc, argv);
  while (args.next()) {
    const std::string& arg = args.option();
    if (arg == "-h" || arg == "--help") return std::nullopt;
    if (arg == "--sites") {
      o.population.sites = args.integerAtLeast(1);
    } else if (arg == "--slices") {
      o.population.slices = args.integerAtLeast(1);
    } else if (arg == "--nodes") {
      o.population.nodes = args.integerAtLeast(1);
    } else if (arg == "--nodes-per-slice") {
      o.population.nodesPerSlice = args.integerAtLeast(1);
    } else if (arg == "--members-per-slice") {
      o.population.membersPerSlice = args.integerAtLeast(1);
    } else if (arg == "--populate-threads") {
      o.population.threads = args.integerAtLeast(1);
    } else if (arg == "--seed") {
      o.population.seed = static_cast<std::uint64_t>(parseIntegerAtLeast(arg, args.value(), 0));
    } else if (arg == "--clients") {
      o.clients = args.integerAtLeast(1);
    } else if (arg == "--seconds") {
      o.seconds = args.seconds(0.1);
    } else if (arg == "--warmup") {
      o.warmup = args.seconds(0);
    } else if (arg == "--replicas") {
      o.replicas = args.integerAtLeast(1);
    } else if (arg == "--workloads") {
      o.workloads = splitComma(args.value());
      for (const auto& w : o.workloads) {
        const Options defaults;
        if (std::find(defaults.workloads.begin(), defaults.workloads.end(), w) ==
            defaults.workloads.end()) {
          throw UsageError("unknown workload '" + w + "'");
        }
      }
    } else if (arg == "--plcd") {
      o.plcd = args.value();
    } else if (arg == "--json") {
      if (args.hasInlineValue()) throw UsageError("--json takes no value");
      o.json = true;
    } else {
      throw UsageError("unknown option '" + arg + "'");
    }
  }
  if (o.population.nodesPerSlice > o.population.nodes) {
    throw UsageError("--nodes-per-slice (" + std::to_string(o.population.nodesPerSlice) +
                     ") exceeds --nodes (" + std::to_string(o.population.nodes) + ")");
  }
  if (o.plcd.empty()) throw UsageError("no plcd: give --plcd PATH");
  return o;
}

// ------------------------------------------------------------------ machine

struct Machine {
  int cpus = 0;  // CPUs this process may run on (what nproc prints)
  std::string cpuModel;
  std::string kernel;
  std::string loadAverage;  // /proc/loadavg's first three fields
};

Machine describeMachine() {
  Machine m;
  m.cpus = plng::bench::usableCpus();
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.starts_with("model name")) {
      if (const auto colon = line.find(':'); colon != std::string::npos) {
        m.cpuModel = line.substr(line.find_first_not_of(" \t", colon + 1));
      }
      break;
    }
  }
  if (m.cpuModel.empty()) m.cpuModel = "unknown";
  m.kernel = plng::bench::kernelRelease();
  m.loadAverage = plng::bench::loadAverage();
  return m;
}

// ------------------------------------------------------------------ clients

std::chrono::system_clock::time_point deadline() {
  return std::chrono::system_clock::now() + kCallDeadline;
}

void authorize(grpc::ClientContext& context, const std::string& token) {
  context.AddMetadata("authorization", "Bearer " + token);
  context.set_deadline(deadline());
}

// What every client needs to pick a random slice and call as one of its members.
struct SharedData {
  const Population* population = nullptr;
  std::string adminToken;
  plng::ticket::TrustedKeys plcKeys;
};

class RandomSlicePicker {
 public:
  RandomSlicePicker(const SharedData& data, int index)
      : data_(data),
        rng_(0x5eed0000u + static_cast<unsigned>(index)),
        pick_(0, data.population->slices.size() - 1) {}

  const BenchSlice& slice() { return data_.population->slices[pick_(rng_)]; }
  const std::string& tokenOfMember(const BenchSlice& slice) {
    std::uniform_int_distribution<std::size_t> member(0, slice.members.size() - 1);
    return data_.population->tokens.at(slice.members[member(rng_)]);
  }

 private:
  const SharedData& data_;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<std::size_t> pick_;
};

// grpc.health.v1.Health/Check on raw bytes (no generated health stubs ship with
// Debian's gRPC), through the same blocking path a generated synchronous stub
// takes, so the baseline costs what a real synchronous call costs.
// HealthCheckRequest{service=""} is zero bytes; SERVING is bytes 08 01.
class EmptyRpcClient final : public WorkloadClient {
 public:
  explicit EmptyRpcClient(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)),
        method_("/grpc.health.v1.Health/Check", grpc::internal::RpcMethod::NORMAL_RPC, channel_),
        request_(&emptySlice_, 1) {}

  grpc::Status call() override {
    grpc::ClientContext context;
    context.set_deadline(deadline());
    response_.Clear();
    return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(), method_, &context, request_, &response_);
  }

  std::string checkLast() override {
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (response_.Dump(&slices).ok()) {
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    return bytes == std::string("\x08\x01", 2) ? "" : "health check did not answer SERVING";
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  grpc::internal::RpcMethod method_;
  grpc::Slice emptySlice_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class WhoAmIClient final : public WorkloadClient {
 public:
  WhoAmIClient(const std::shared_ptr<grpc::Channel>& channel, const SharedData& data, int index)
      : stub_(pb::Auth::NewStub(channel)), picker_(data, index) {}

  grpc::Status call() override {
    const BenchSlice& slice = picker_.slice();
    grpc::ClientContext context;
    authorize(context, picker_.tokenOfMember(slice));
    response_.Clear();
    return stub_->WhoAmI(&context, pb::Empty(), &response_);
  }

  std::string checkLast() override {
    return response_.kind() == "person" && !response_.email().empty()
               ? ""
               : "WhoAmI answered kind '" + response_.kind() + "' email '" + response_.email() +
                     "'";
  }

 private:
  std::unique_ptr<pb::Auth::Stub> stub_;
  RandomSlicePicker picker_;
  pb::WhoAmIResponse response_;
};

std::string describeSliceMismatch(const pb::SliceInfo& got, const BenchSlice& want) {
  if (got.name() != want.name) return "GetSlices returned slice '" + got.name() + "'";
  if (static_cast<std::size_t>(got.members_size()) != want.members.size() ||
      static_cast<std::size_t>(got.nodes_size()) != want.nodes.size()) {
    return "GetSlices " + want.name + ": " + std::to_string(got.members_size()) + " members and " +
           std::to_string(got.nodes_size()) + " nodes, expected " +
           std::to_string(want.members.size()) + " and " + std::to_string(want.nodes.size());
  }
  return {};
}

class GetSliceClient final : public WorkloadClient {
 public:
  GetSliceClient(const std::shared_ptr<grpc::Channel>& channel, const SharedData& data, int index)
      : stub_(pb::Slice::NewStub(channel)), picker_(data, index) {}

  grpc::Status call() override {
    last_ = &picker_.slice();
    grpc::ClientContext context;
    authorize(context, picker_.tokenOfMember(*last_));
    pb::GetSlicesRequest request;
    request.add_names(last_->name);
    response_.Clear();
    return stub_->GetSlices(&context, request, &response_);
  }

  std::string checkLast() override {
    if (response_.slices_size() != 1) {
      return "GetSlices(names=[" + last_->name + "]) returned " +
             std::to_string(response_.slices_size()) + " slices";
    }
    return describeSliceMismatch(response_.slices(0), *last_);
  }

 private:
  std::unique_ptr<pb::Slice::Stub> stub_;
  RandomSlicePicker picker_;
  const BenchSlice* last_ = nullptr;
  pb::GetSlicesResponse response_;
};

class ListSlicesClient final : public WorkloadClient {
 public:
  ListSlicesClient(const std::shared_ptr<grpc::Channel>& channel, const SharedData& data)
      : stub_(pb::Slice::NewStub(channel)), data_(data) {}

  grpc::Status call() override {
    grpc::ClientContext context;
    authorize(context, data_.adminToken);
    response_.Clear();
    return stub_->GetSlices(&context, pb::GetSlicesRequest(), &response_);
  }

  std::string checkLast() override {
    const auto& want = data_.population->slices;
    if (static_cast<std::size_t>(response_.slices_size()) != want.size()) {
      return "GetSlices() listed " + std::to_string(response_.slices_size()) +
             " slices, expected " + std::to_string(want.size());
    }
    return {};
  }

 private:
  std::unique_ptr<pb::Slice::Stub> stub_;
  const SharedData& data_;
  pb::GetSlicesResponse response_;
};

class TicketClient final : public WorkloadClient {
 public:
  TicketClient(const std::shared_ptr<grpc::Channel>& channel, const SharedData& data, int index)
      : stub_(pb::Slice::NewStub(channel)), data_(data), picker_(data, index) {}

  grpc::Status call() override {
    last_ = &picker_.slice();
    grpc::ClientContext context;
    authorize(context, picker_.tokenOfMember(*last_));
    pb::GetSliceTicketRequest request;
    request.set_slice(last_->name);
    ticket_.Clear();
    return stub_->GetSliceTicket(&context, request, &ticket_);
  }

  // Verified as a node would: signature against PLC's published keys, validity
  // window, and that it grants this slice all its nodes with its members' keys.
  std::string checkLast() override {
    pb::TicketBody body;
    try {
      body = plng::ticket::verifyTicket(ticket_, data_.plcKeys, std::time(nullptr));
    } catch (const plng::ticket::TicketError& e) {
      return "ticket for " + last_->name + " refused (" + plng::ticket::toString(e.code()) +
             "): " + e.what();
    }
    if (body.slice_name() != last_->name) {
      return "ticket for " + last_->name + " names slice '" + body.slice_name() + "'";
    }
    if (static_cast<std::size_t>(body.nodes_size()) != last_->nodes.size()) {
      return "ticket for " + last_->name + " grants " + std::to_string(body.nodes_size()) +
             " nodes, expected " + std::to_string(last_->nodes.size());
    }
    const auto keys =
        last_->members.size() * static_cast<std::size_t>(data_.population->keysPerPerson);
    if (static_cast<std::size_t>(body.member_keys_size()) != keys) {
      return "ticket for " + last_->name + " carries " + std::to_string(body.member_keys_size()) +
             " member keys, expected " + std::to_string(keys);
    }
    return {};
  }

 private:
  std::unique_ptr<pb::Slice::Stub> stub_;
  const SharedData& data_;
  RandomSlicePicker picker_;
  const BenchSlice* last_ = nullptr;
  pb::SignedTicket ticket_;
};

// ------------------------------------------------------------------ report

struct Report {
  Machine machine;
  Options options;
  std::string startedAt;
  int postgresVersion = 0;
  Population* population = nullptr;
  std::vector<WorkloadResult> results;
  std::string loadAfter;
};

const WorkloadResult* find(const std::vector<WorkloadResult>& results, std::string_view prefix) {
  for (const auto& r : results) {
    if (r.name.starts_with(prefix)) return &r;
  }
  return nullptr;
}

// The fraction of the machine's CPU capacity used by other processes during the
// window (builds, tests of other people): what disturbed this measurement.
double otherCpuShare(const WorkloadResult& r, int cpus) {
  const double ours = r.cpu.client + r.cpu.plcd + r.cpu.postgres;
  const double capacity = r.windowSeconds * cpus;
  return capacity > 0 ? std::max(0.0, r.cpu.machine - ours) / capacity : 0;
}

struct TargetVerdict {
  bool met = false;
  std::string text;
};

TargetVerdict judgeTarget(const WorkloadResult& ticket, int cpus) {
  TargetVerdict v;
  v.met = ticket.rate >= kTargetTicketRate && ticket.latency.p99Ms <= kTargetTicketP99Ms &&
          !ticket.flagged();
  v.text = "GetSliceTicket " + fixed(ticket.rate, 0) + "/s, p99 " + fixed(ticket.latency.p99Ms, 2) +
           " ms; target >= " + fixed(kTargetTicketRate, 0) +
           "/s and p99 <= " + fixed(kTargetTicketP99Ms, 0) +
           " ms on 2 cores: " + (v.met ? "MET" : "NOT MET");
  if (ticket.flagged()) v.text += " (the workload had errors)";
  if (cpus != 2) v.text += " [this machine has " + std::to_string(cpus) + " CPUs, not 2]";
  return v;
}

void printTable(const Report& report) {
  const auto& results = report.results;
  const WorkloadResult* empty = find(results, "empty");
  std::cout << "\n"
            << pad("workload", 34, false) << pad("calls", 9) << pad("errors", 8)
            << pad("rate/s", 10) << pad("p50 ms", 9) << pad("p99 ms", 9) << pad("rate/empty", 12)
            << "\n";
  for (const auto& r : results) {
    const std::string ratio =
        empty != nullptr && empty->rate > 0 ? fixed(r.rate / empty->rate, 3) : "-";
    std::cout << pad(r.name + (r.flagged() ? " [!]" : ""), 34, false)
              << pad(std::to_string(r.calls), 9)
              << pad(std::to_string(r.errors + r.checkFailures), 8) << pad(fixed(r.rate, 1), 10)
              << pad(fixed(r.latency.p50Ms, 3), 9) << pad(fixed(r.latency.p99Ms, 3), 9)
              << pad(ratio, 12) << "\n";
  }

  std::cout << "\nCPU per successful call (µs) and what else ran during each window:\n"
            << pad("workload", 34, false) << pad("client", 9) << pad("plcd", 9)
            << pad("postgres", 10) << pad("p90 ms", 9) << pad("max ms", 9) << pad("other CPU", 11)
            << "\n";
  for (const auto& r : results) {
    const double calls = std::max(1.0, r.rate * r.windowSeconds);
    std::cout << pad(r.name, 34, false) << pad(fixed(r.cpu.client / calls * 1e6, 0), 9)
              << pad(fixed(r.cpu.plcd / calls * 1e6, 0), 9)
              << pad(fixed(r.cpu.postgres / calls * 1e6, 0), 10)
              << pad(fixed(r.latency.p90Ms, 3), 9) << pad(fixed(r.latency.maxMs, 3), 9)
              << pad(fixed(100 * otherCpuShare(r, report.machine.cpus), 0) + "%", 11) << "\n";
  }

  bool anyFlagged = false;
  for (const auto& r : results) {
    if (r.flagged()) {
      anyFlagged = true;
      std::cout << "\n[!] " << r.name << ": " << r.errors << " errors, " << r.checkFailures
                << " wrong responses of " << r.checked << " checked; first: " << r.firstError
                << "\n";
    } else if (!r.firstError.empty()) {
      std::cout << "\nnote: " << r.name << " failed outside the measured window: " << r.firstError
                << "\n";
    }
  }
  if (!anyFlagged) {
    std::uint64_t checked = 0;
    for (const auto& r : results) checked += r.checked;
    std::cout << "\nall " << checked
              << " sampled responses were checked and correct (tickets verified against "
                 "GetPlcKeys)\n";
  }
  double maxOther = 0;
  for (const auto& r : results)
    maxOther = std::max(maxOther, otherCpuShare(r, report.machine.cpus));
  if (maxOther > 0.10) {
    std::cout << "warning: other processes used up to " << fixed(100 * maxOther, 0)
              << "% of the machine during a window: these numbers are disturbed\n";
  }
  std::cout << "load average before " << report.machine.loadAverage << ", after "
            << report.loadAfter << "\n";

  // The JSON API against gRPC, the same calls by the same clients in this run.
  bool jsonMet = true;
  std::string jsonLine;
  for (auto [grpcName, jsonName] : {std::pair{"GetSlices(one)", "JSON GetSlices(one)"},
                                    std::pair{"GetSliceTicket", "JSON GetSliceTicket"}}) {
    const WorkloadResult* viaGrpc = find(results, grpcName);
    const WorkloadResult* viaJson = find(results, jsonName);
    if (viaGrpc == nullptr || viaJson == nullptr || viaGrpc->rate <= 0) continue;
    const double ratio = viaJson->rate / viaGrpc->rate;
    jsonMet = jsonMet && ratio >= 0.5 && !viaJson->flagged();
    jsonLine += (jsonLine.empty() ? "" : ", ") + std::string(grpcName) + " " + fixed(ratio, 3) +
                "x (" + fixed(viaJson->rate, 0) + "/s vs " + fixed(viaGrpc->rate, 0) + "/s)";
  }
  if (!jsonLine.empty()) {
    std::cout << "\nJSON API / gRPC: " << jsonLine
              << "; target >= 0.5x: " << (jsonMet ? "MET" : "NOT MET") << "\n";
  }

  if (const WorkloadResult* ticket = find(results, "GetSliceTicket")) {
    std::cout << "\n" << judgeTarget(*ticket, report.machine.cpus).text << "\n";
    // The clients share the machine's CPUs with plcd and PostgreSQL here; what the
    // server side alone could sustain is bounded by its CPU per call.
    const double calls = std::max(1.0, ticket->rate * ticket->windowSeconds);
    const double serverUs = (ticket->cpu.plcd + ticket->cpu.postgres) / calls * 1e6;
    if (serverUs > 0) {
      std::cout << "server CPU per ticket (plcd + PostgreSQL): " << fixed(serverUs, 0)
                << " µs, so at most " << fixed(2e6 / serverUs, 0)
                << "/s on 2 cores with the clients elsewhere (the clients here used "
                << fixed(ticket->cpu.client / calls * 1e6, 0) << " µs per call of the same CPUs)\n";
    }
  }
}

std::string jsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

void printJson(const Report& report) {
  const Options& o = report.options;
  std::ostringstream j;
  j << "{\"started_at\":" << plng::base::jsonQuoted(report.startedAt)
    << ",\"build_type\":" << plng::base::jsonQuoted(PLNG_BENCH_BUILD_TYPE)
    << ",\"machine\":{\"cpus\":" << report.machine.cpus
    << ",\"cpu_model\":" << plng::base::jsonQuoted(report.machine.cpuModel)
    << ",\"kernel\":" << plng::base::jsonQuoted(report.machine.kernel)
    << ",\"load_before\":" << plng::base::jsonQuoted(report.machine.loadAverage)
    << ",\"load_after\":" << plng::base::jsonQuoted(report.loadAfter)
    << ",\"postgres_major\":" << report.postgresVersion << "}"
    << ",\"config\":{\"sites\":" << o.population.sites << ",\"slices\":" << o.population.slices
    << ",\"nodes\":" << o.population.nodes << ",\"nodes_per_slice\":" << o.population.nodesPerSlice
    << ",\"members_per_slice\":" << o.population.membersPerSlice << ",\"clients\":" << o.clients
    << ",\"replicas\":" << o.replicas << ",\"seconds\":" << jsonNumber(o.seconds)
    << ",\"warmup\":" << jsonNumber(o.warmup) << "}"
    << ",\"populate\":{\"seconds\":" << jsonNumber(report.population->seconds)
    << ",\"api_calls\":" << report.population->apiCalls
    << ",\"persons\":" << report.population->persons << "}"
    << ",\"workloads\":[";
  const WorkloadResult* empty = find(report.results, "empty");
  for (std::size_t i = 0; i < report.results.size(); ++i) {
    const auto& r = report.results[i];
    const double calls = std::max(1.0, r.rate * r.windowSeconds);
    j << (i ? "," : "") << "{\"name\":" << plng::base::jsonQuoted(r.name)
      << ",\"clients\":" << r.clients << ",\"calls\":" << r.calls << ",\"errors\":" << r.errors
      << ",\"checked\":" << r.checked << ",\"check_failures\":" << r.checkFailures
      << ",\"first_error\":" << plng::base::jsonQuoted(r.firstError)
      << ",\"rate\":" << jsonNumber(r.rate) << ",\"rate_vs_empty\":"
      << (empty != nullptr && empty->rate > 0 ? jsonNumber(r.rate / empty->rate) : "null")
      << ",\"p50_ms\":" << jsonNumber(r.latency.p50Ms)
      << ",\"p90_ms\":" << jsonNumber(r.latency.p90Ms)
      << ",\"p99_ms\":" << jsonNumber(r.latency.p99Ms)
      << ",\"max_ms\":" << jsonNumber(r.latency.maxMs)
      << ",\"mean_ms\":" << jsonNumber(r.latency.meanMs)
      << ",\"cpu_us_per_call\":{\"client\":" << jsonNumber(r.cpu.client / calls * 1e6)
      << ",\"plcd\":" << jsonNumber(r.cpu.plcd / calls * 1e6)
      << ",\"postgres\":" << jsonNumber(r.cpu.postgres / calls * 1e6) << "}"
      << ",\"other_cpu_share\":" << jsonNumber(otherCpuShare(r, report.machine.cpus))
      << ",\"flagged\":" << (r.flagged() ? "true" : "false") << "}";
  }
  j << "]";
  if (const WorkloadResult* ticket = find(report.results, "GetSliceTicket")) {
    const TargetVerdict v = judgeTarget(*ticket, report.machine.cpus);
    j << ",\"target\":{\"rate\":" << jsonNumber(kTargetTicketRate)
      << ",\"p99_ms\":" << jsonNumber(kTargetTicketP99Ms)
      << ",\"met\":" << (v.met ? "true" : "false") << "}";
  }
  j << "}";
  std::cout << j.str() << std::endl;
}

// ------------------------------------------------------------------ main

bool wanted(const Options& o, std::string_view name) {
  if (name == "empty") return true;
  return std::find(o.workloads.begin(), o.workloads.end(), name) != o.workloads.end();
}

int run(const Options& options) {
  Report report;
  report.options = options;
  report.machine = describeMachine();
  report.startedAt = nowUtc();
  const auto& spec = options.population;
  std::cout << "plc_bench " << report.startedAt << " (" << PLNG_BENCH_BUILD_TYPE << " build)\n"
            << "machine: " << report.machine.cpus << " CPUs, " << report.machine.cpuModel << ", "
            << report.machine.kernel << ", load average " << report.machine.loadAverage << "\n"
            << "config: " << spec.sites << " sites, " << spec.slices << " slices, " << spec.nodes
            << " nodes, " << spec.nodesPerSlice << " nodes and " << spec.membersPerSlice
            << " members per slice; " << options.clients << " clients, " << options.replicas
            << " plcd replica(s), " << options.warmup << " s warm-up + " << options.seconds
            << " s per workload\n"
            << "plcd: " << options.plcd.string() << "\n"
            << std::flush;

  if (auto why = plng::test::postgresUnavailableReason()) {
    std::cerr << "plc_bench: cannot start PostgreSQL: " << *why << "\n";
    return 1;
  }
  std::cerr << "starting PostgreSQL and " << options.replicas << " plcd...\n";
  plng::test::PgInstance pg;
  if (auto bins = plng::test::findPostgresBinaries()) report.postgresVersion = bins->majorVersion;
  const std::string database = pg.connectionString();
  throwIfStopRequested();

  // Declared after pg so they are stopped before it.
  const bool json = wanted(options, "slice-json") || wanted(options, "ticket-json");
  PlcdReplicas replicas(options.replicas, options.plcd, database, {}, /*portal=*/json);
  std::vector<plng::test::PlcdProcess>& plcds = replicas.all();
  plng::test::createAdmin(options.plcd, database, kAdminEmail, kAdminPassword);
  plng::test::PlcClient admin(plcds.front().channel());
  if (const auto status = admin.login(kAdminEmail, kAdminPassword); !status.ok()) {
    throw std::runtime_error("admin login failed: " + plng::test::describeStatus(status));
  }

  std::vector<std::shared_ptr<grpc::Channel>> shared;
  for (const auto& p : plcds) shared.push_back(p.channel());
  Population population = populate(spec, shared, admin.token());
  report.population = &population;
  std::cout << "populated through the API in " << fixed(population.seconds, 1) << " s ("
            << population.apiCalls << " calls: " << spec.sites << " sites, " << population.persons
            << " persons, " << spec.nodes << " nodes, " << spec.slices << " slices)\n"
            << std::flush;

  SharedData data;
  data.population = &population;
  data.adminToken = admin.token();
  data.plcKeys.replace(population.plcKeys);

  std::vector<pid_t> plcdPids;
  for (const auto& p : plcds) plcdPids.push_back(p.pid());
  const CpuSampler sampler(plcdPids, readPostmasterPid(pg.dataDir().string()));

  // Thread i talks to replica i % replicas over a connection of its own.
  auto channelFor = [&](int index) {
    return plcds[static_cast<std::size_t>(index) % plcds.size()].newChannel();
  };
  std::vector<Workload> workloads;
  auto add = [&](std::string_view key, std::string name,
                 std::function<std::unique_ptr<WorkloadClient>(int)> make) {
    if (!wanted(options, key)) return;
    Workload w;
    w.name = std::move(name);
    w.makeClient = std::move(make);
    w.clients = options.clients;
    w.warmup = std::chrono::milliseconds(std::llround(options.warmup * 1000));
    w.measure = std::chrono::milliseconds(std::llround(options.seconds * 1000));
    workloads.push_back(std::move(w));
  };
  add("empty", "empty (Health/Check)",
      [&](int i) { return std::make_unique<EmptyRpcClient>(channelFor(i)); });
  add("whoami", "WhoAmI (member)",
      [&](int i) { return std::make_unique<WhoAmIClient>(channelFor(i), data, i); });
  add("slice", "GetSlices(one) (member)",
      [&](int i) { return std::make_unique<GetSliceClient>(channelFor(i), data, i); });
  add("slices-all", "GetSlices(all " + std::to_string(spec.slices) + ") (admin)",
      [&](int i) { return std::make_unique<ListSlicesClient>(channelFor(i), data); });
  add("ticket", "GetSliceTicket (member)",
      [&](int i) { return std::make_unique<TicketClient>(channelFor(i), data, i); });
  // The same clients on a channel that makes each call as JSON over HTTP.
  auto jsonChannelFor = [&](int index) {
    const auto& p = plcds[static_cast<std::size_t>(index) % plcds.size()];
    return plng::test::jsonBridgeChannel(p.portalAddress(), p.address());
  };
  add("slice-json", "JSON GetSlices(one) (member)",
      [&](int i) { return std::make_unique<GetSliceClient>(jsonChannelFor(i), data, i); });
  add("ticket-json", "JSON GetSliceTicket (member)",
      [&](int i) { return std::make_unique<TicketClient>(jsonChannelFor(i), data, i); });

  for (const auto& w : workloads) {
    std::cerr << "running " << w.name << ": " << w.clients << " clients, " << options.warmup
              << " s warm-up + " << options.seconds << " s...\n";
    report.results.push_back(runWorkload(w, sampler));
    const auto& r = report.results.back();
    std::cerr << "  " << fixed(r.rate, 1) << " calls/s, p50 " << fixed(r.latency.p50Ms, 3)
              << " ms, p99 " << fixed(r.latency.p99Ms, 3) << " ms"
              << (r.flagged() ? ", ERRORS: " + r.firstError : "") << "\n";
  }
  report.loadAfter = plng::bench::loadAverage();

  printTable(report);
  if (options.json) printJson(report);

  for (auto& p : plcds) {
    if (!p.running()) {
      std::cerr << "plc_bench: a plcd died during the run; log tail:\n" << p.logTail() << "\n";
      return 1;
    }
  }
  bool anyFlagged = false;
  for (const auto& r : report.results) anyFlagged = anyFlagged || r.flagged();
  return anyFlagged ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> options;
  return benchMain(
      "plc_bench", kUsage,
      [&] {
        options = parseOptions(argc, argv);
        return options.has_value();
      },
      [&] { return run(*options); });
}
