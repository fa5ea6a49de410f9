// A thousand node streams on one plcd, against a real PostgreSQL (issue 11,
// docs/plc.md "Node state and its stream"): plcd's thread count does not grow
// with its open streams; a change reaches exactly the nodes it affects, each of
// them once; a blacklist change reaches every node once, however many come in a
// burst; and every stream's versions only increase. The nodes are simulated
// (tests/support/nodesim.h): real Ed25519 node logins and WatchSlivers streams
// from one process, through gRPC's callback API.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "proto/ticket.h"
#include "tests/support/nodesim.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/plcd_process.h"
#include "tests/support/scratch_dir.h"

namespace {

namespace pb = planetlab::v1;
using plng::test::NodeSim;
using plng::test::PlcClient;
using plng::test::PlcFixture;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 1000;
constexpr int kSliceNodes = 100;

int threadCount(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("Threads:")) return std::stoi(line.substr(8));
  }
  FAIL("no Threads: line in /proc/" << pid << "/status");
  return -1;
}

template <class Stub, class Request, class Response>
Response ok(const PlcClient& client,
            grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
            const std::type_identity_t<Request>& request) {
  auto [status, response] = client.call(method, request);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return response;
}

// Adds the nodes on `threads` callers at once; returns their keys.
std::vector<plng::test::SimulatedNode> addNodes(PlcFixture& plc, int count) {
  std::vector<plng::test::SimulatedNode> nodes(static_cast<std::size_t>(count));
  std::vector<std::string> failures;
  std::mutex mutex;
  std::vector<std::thread> callers;
  constexpr int kCallers = 4;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      for (int i = t; i < count; i += kCallers) {
        auto pair = plng::ticket::generateKeyPair();
        auto& node = nodes[static_cast<std::size_t>(i)];
        node.hostname = "n" + std::to_string(1000 + i) + ".fanout.test";
        node.key = pair.private_key;
        pb::AddNodeRequest request;
        request.set_hostname(node.hostname);
        request.set_login_base("fan");
        request.set_public_key(std::string(reinterpret_cast<const char*>(pair.public_key.data()),
                                           pair.public_key.size()));
        request.set_boot_state("boot");
        pb::Node added;
        grpc::Status status = plc.admin().call(&pb::Admin::Stub::AddNode, request, &added);
        if (!status.ok()) {
          std::lock_guard lock(mutex);
          failures.push_back(node.hostname + ": " + status.error_message());
        }
      }
    });
  }
  for (auto& caller : callers) caller.join();
  INFO((failures.empty() ? std::string() : failures.front()));
  REQUIRE(failures.empty());
  return nodes;
}

bool hasSlice(const pb::NodeState& state, const std::string& slice) {
  return std::any_of(state.slivers().begin(), state.slivers().end(),
                     [&](const pb::SliverSpec& s) { return s.slice_name() == slice; });
}

bool hasPrefix(const pb::NodeState& state, const std::string& prefix) {
  return std::any_of(state.blacklist().begin(), state.blacklist().end(),
                     [&](const pb::BlacklistEntry& e) { return e.prefix() == prefix; });
}

std::vector<std::size_t> statesPerNode(const NodeSim& sim) {
  std::vector<std::size_t> counts;
  for (std::size_t n = 0; n < sim.size(); ++n) counts.push_back(sim.history(n).size());
  return counts;
}

}  // namespace

TEST_CASE("a thousand streams on one plcd: flat threads, exactly the affected nodes, once each") {
  PlcFixture plc;
  pb::AddSiteRequest site;
  site.set_login_base("fan");
  site.set_name("Fan-out site");
  site.set_url("https://fan.test/");
  site.set_max_slices(10);
  site.set_max_slivers(10 * kNodes);
  ok(plc.admin(), &pb::Admin::Stub::AddSite, site);
  auto nodes = addNodes(plc, kNodes);
  pb::AddSliceRequest slice;
  slice.set_name("fan_wide");
  slice.set_description("plc_fanout_test: a slice added to a hundred nodes");
  slice.set_url("https://fan.test/wide");
  slice.set_max_nodes(kSliceNodes);
  ok(plc.admin(), &pb::Slice::Stub::AddSlice, slice);

  // The streams' replica: every simulated node logs in from 127.0.0.1, so the
  // per-address login limit is lifted there. Changes are made through the
  // fixture's replica and reach this one over the change bus.
  plng::test::ScratchDir scratch("fanout");
  {
    std::ofstream config(scratch / "plcd.conf");
    config << "login_source_burst = 1000000\nlogin_source_refill_s = 0\n";
  }
  plng::test::PlcdProcess::Options streamsOptions;
  streamsOptions.plcdPath = plc.plcdPath();
  streamsOptions.database = plc.connectionString();
  streamsOptions.extraArgs = {"--config", (scratch / "plcd.conf").string()};
  plng::test::PlcdProcess streams(std::move(streamsOptions));
  plng::test::NodeSimOptions options;
  options.addresses = {streams.address()};
  NodeSim sim(nodes, options);
  auto logins = sim.loginAll();
  INFO(logins.firstFailure);
  REQUIRE(logins.succeeded == static_cast<std::size_t>(kNodes));

  // Threads with the first streams open, then with all of them.
  std::vector<std::size_t> everyone(sim.size());
  for (std::size_t n = 0; n < sim.size(); ++n) everyone[n] = n;
  auto any = [](const pb::NodeState&) { return true; };
  sim.openStreams();
  auto first = sim.watch(everyone, any);
  REQUIRE(first->waitUntil(Clock::now() + std::chrono::seconds(60)));
  const int threads = threadCount(streams.pid());
  INFO("plcd threads with " << kNodes << " streams open: " << threads);
  // gRPC's executor and plcd's own (stream workers, bus, sweeper, pool): a few
  // dozen, against one per stream before the callback API.
  CHECK(threads < 100);
  // (One flow rather than Catch sections: each section would set up the
  // thousand nodes again.)
  {
    // A slice added to a hundred nodes reaches those hundred, once each, and no other.
    const auto before = statesPerNode(sim);
    std::vector<std::size_t> chosen;
    for (int k = 0; k < kSliceNodes; ++k) chosen.push_back(static_cast<std::size_t>(k * 10 + 3));
    auto watch = sim.watch(chosen, [](const pb::NodeState& s) { return hasSlice(s, "fan_wide"); });
    pb::SliceNodesRequest add;
    add.set_name("fan_wide");
    for (std::size_t n : chosen) add.add_hostnames(sim.hostname(n));
    ok(plc.admin(), &pb::Slice::Stub::AddSliceNodes, add);
    REQUIRE(watch->waitUntil(Clock::now() + std::chrono::seconds(30)));
    // Give a wrongly woken stream time to be sent.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const auto after = statesPerNode(sim);
    std::size_t touched = 0, extra = 0;
    for (std::size_t n = 0; n < sim.size(); ++n) {
      const bool affected = std::find(chosen.begin(), chosen.end(), n) != chosen.end();
      const std::size_t got = after[n] - before[n];
      if (!affected && got != 0) ++touched;
      if (affected && got != 1) ++extra;
    }
    CHECK(touched == 0);  // unaffected nodes got nothing
    CHECK(extra == 0);    // affected ones got the one new state
  }

  {
    // A burst of blacklist changes reaches every node, at most once per change.
    const auto before = statesPerNode(sim);
    auto watch = sim.watch(everyone, [](const pb::NodeState& s) {
      return hasPrefix(s, "198.51.100.0/24") && hasPrefix(s, "203.0.113.0/24") &&
             hasPrefix(s, "192.0.2.0/24");
    });
    for (const char* prefix : {"198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24"}) {
      pb::AddBlacklistEntryRequest entry;
      entry.set_prefix(prefix);
      entry.set_reason("plc_fanout_test");
      ok(plc.admin(), &pb::Admin::Stub::AddBlacklistEntry, entry);
    }
    REQUIRE(watch->waitUntil(Clock::now() + std::chrono::seconds(30)));
    std::this_thread::sleep_for(std::chrono::seconds(2));
    const auto after = statesPerNode(sim);
    std::size_t tooMany = 0;
    for (std::size_t n = 0; n < sim.size(); ++n) {
      const std::size_t got = after[n] - before[n];
      if (got < 1 || got > 3) ++tooMany;
    }
    CHECK(tooMany == 0);
    CHECK(threadCount(streams.pid()) < 100);
  }

  // Every stream: the same epoch throughout, versions strictly increasing, none ended.
  auto counts = sim.streamCounts();
  INFO(counts.firstEnd);
  CHECK(counts.ended == 0);
  std::size_t disordered = 0;
  for (std::size_t n = 0; n < sim.size(); ++n) {
    auto history = sim.history(n);
    for (std::size_t i = 1; i < history.size(); ++i) {
      if (history[i].epoch != history[0].epoch || history[i].version <= history[i - 1].version)
        ++disordered;
    }
  }
  CHECK(disordered == 0);
}
