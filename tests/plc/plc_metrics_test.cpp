// plcd's GET /metrics scraped by a real Prometheus server (docs/metrics.md,
// "## plcd"): after known calls, Prometheus reads back the RPC counts by method
// and code, the latency histogram, the open node streams, the fan-out lag and
// the database pool, as an operator's dashboards would.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <regex>
#include <thread>

#include "tests/support/plc_seed.h"
#include "tests/support/prometheus_server.h"

using namespace plng::test;
using namespace std::chrono_literals;
using grpc::StatusCode;

namespace {

constexpr const char* kGetNodeStatus = "/planetlab.v1.Admin/GetNodeStatus";

// A WatchSlivers stream that has received its first state, read on its own
// thread until cancelled.
class OpenStream {
 public:
  explicit OpenStream(const PlcClient& node) : ctx_(node.context(120s)) {
    reader_ = node.nodeSync().WatchSlivers(ctx_.get(), pb::WatchSliversRequest());
    pb::NodeState first;
    REQUIRE(reader_->Read(&first));
    thread_ = std::thread([this] {
      pb::NodeState state;
      while (reader_->Read(&state)) ++states_;
      reader_->Finish();
    });
  }
  ~OpenStream() {
    ctx_->TryCancel();
    thread_.join();
  }
  int states() const { return states_; }

 private:
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReader<pb::NodeState>> reader_;
  std::atomic<int> states_{0};
  std::thread thread_;
};

// The port plcd bound for /metrics ("metrics_listen = 127.0.0.1:0"), from its log.
int metricsPort(const PlcdProcess& plcd) {
  std::smatch m;
  const std::string log = plcd.log();
  REQUIRE(std::regex_search(log, m, std::regex(R"(plcd metrics on \S+ \(port (\d+)\))")));
  return std::stoi(m[1]);
}

}  // namespace

TEST_CASE("plcd's /metrics, scraped by Prometheus, counts RPCs, streams and fan-out",
          "[plc][pg][metrics]") {
  PlcFixture fix;
  PlcdProcess::Options options;
  options.plcdPath = fix.plcdPath();
  options.database = fix.connectionString();
  options.logLevel = "info";
  options.extraArgs = {"--metrics-listen", "127.0.0.1:0"};
  PlcdProcess plcd(options);
  Seeder seed(fix);
  seed.site("princeton");
  auto pi = seed.person("pi@princeton.edu", "princeton", {"pi"});
  const PlcClient user(plcd.channel(), pi.token());
  const auto n1 = seed.node("n1.princeton.edu", "princeton");
  const auto n2 = seed.node("n2.princeton.edu", "princeton");

  // Known calls through this plcd: three answered, one refused.
  pb::GetNodeStatusRequest all;
  for (int i = 0; i < 3; ++i) REQUIRE_OK(user.call(&pb::Admin::Stub::GetNodeStatus, all).first);
  pb::GetNodeStatusRequest unknown;
  unknown.add_hostnames("nowhere.princeton.edu");
  CHECK_STATUS(user.call(&pb::Admin::Stub::GetNodeStatus, unknown).first, StatusCode::NOT_FOUND,
               "nowhere");
  // Two node streams, then a change that reaches one of them.
  auto node1 = Seeder::nodeClient(plcd.channel(), n1);
  auto node2 = Seeder::nodeClient(plcd.channel(), n2);
  auto s1 = std::make_unique<OpenStream>(node1);
  auto s2 = std::make_unique<OpenStream>(node2);
  pb::AddSliceRequest slice;
  slice.set_name("princeton_watch");
  slice.set_description("metrics test");
  slice.set_url("https://example.edu/");
  REQUIRE_OK(user.call(&pb::Slice::Stub::AddSlice, slice).first);
  REQUIRE_OK(sliceNodes(user, "princeton_watch", {"n1.princeton.edu"}));
  for (int i = 0; i < 100 && s1->states() == 0; ++i) std::this_thread::sleep_for(50ms);
  REQUIRE(s1->states() >= 1);

  PrometheusServer prometheus(
      {{.job = "plcd", .address = "127.0.0.1:" + std::to_string(metricsPort(plcd))}});
  prometheus.waitForScrapes();
  CHECK(prometheus.value("plng_plcd_rpcs_total", {{"method", kGetNodeStatus}, {"code", "OK"}}) ==
        3);
  CHECK(prometheus.value("plng_plcd_rpcs_total",
                         {{"method", kGetNodeStatus}, {"code", "NOT_FOUND"}}) == 1);
  // The latency histogram: every call counted, each under the 10 s bucket, and
  // usable by histogram_quantile as dashboards use it.
  const std::string histogram =
      std::string("plng_plcd_rpc_duration_seconds_bucket{method=\"") + kGetNodeStatus + "\"";
  CHECK(prometheus.value(histogram + ",le=\"+Inf\"}") == 4);
  CHECK(prometheus.value(histogram + ",le=\"10\"}") == 4);
  const double p50 = prometheus.value(
      std::string("histogram_quantile(0.5, plng_plcd_rpc_duration_seconds_bucket{method=\"") +
      kGetNodeStatus + "\"})");
  CHECK(p50 > 0);
  CHECK(p50 < 10);
  CHECK(prometheus.value("plng_plcd_node_streams_open") == 2);
  CHECK(prometheus.value("plng_plcd_fanout_lag_seconds_count") >= 1);
  CHECK(prometheus.value("plng_plcd_db_pool_size") == 16);
  CHECK(prometheus.value("plng_plcd_db_transaction_duration_seconds_count") > 0);
  CHECK(prometheus.value("plng_plcd_process_resident_memory_bytes") > 1e6);

  // Streams closed by their nodes: the gauge follows, and each stream is
  // counted as an RPC once it ended (none while open).
  s1.reset();
  s2.reset();
  for (int i = 0; i < 10; ++i) {
    prometheus.waitForScrapes();
    if (prometheus.value("plng_plcd_node_streams_open") == 0) break;
  }
  CHECK(prometheus.value("plng_plcd_node_streams_open") == 0);
  CHECK(prometheus.value("sum(plng_plcd_rpcs_total{method=\"/planetlab.v1.NodeSync/"
                         "WatchSlivers\"})") == 2);
}
