// app/metrics.h: the registry's families, collectors and the text exposition
// format, read back by Prometheus' own promtool, the Python client's parser and a
// real Prometheus server scraping it.
#include "app/metrics.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <thread>

#include "tests/support/prometheus_server.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/shell_command.h"
#include "tests/support/skip.h"

namespace {

using plng::app::MetricsRegistry;
using plng::app::MetricsWriter;

void fill(MetricsRegistry& registry) {
  auto& rpcs = registry.counter("plng_rpc_total", "RPCs answered.", {"method", "code"});
  rpcs.with({"GetSlivers", "OK"}).add();
  rpcs.with({"GetSlivers", "OK"}).add(2);
  rpcs.with({"AddSlice", "PERMISSION_DENIED"}).add();
  registry.gauge("plng_streams_open", "Open node streams.").with({}).set(42);
  auto& latency = registry.histogram("plng_rpc_seconds", "RPC latency.", {"method"});
  latency.with({"GetSlivers"}).observe(0.0007);
  latency.with({"GetSlivers"}).observe(0.3);
  latency.with({"GetSlivers"}).observe(99);
  registry.addCollector([](MetricsWriter& out) {
    out.gauge("plng_slice_memory_bytes", "Memory of a slice.", {{"slice", "pl_a"}}, 1.5e9);
    out.gauge("plng_slice_memory_bytes", "Memory of a slice.",
              {{"slice", "odd \"name\"\\ with\nnewline"}}, 7);
    out.counter("plng_slice_cpu_seconds_total", "CPU of a slice.", {{"slice", "pl_a"}}, 12.25);
  });
  registry.addCollector([](MetricsWriter&) { throw std::runtime_error("cannot read"); });
}

}  // namespace

TEST_CASE("the exposition has every family, child, bucket and collected sample") {
  MetricsRegistry registry;
  fill(registry);
  std::string text = registry.exposition();
  INFO(text);
  CHECK(text.find("# TYPE plng_rpc_total counter\n") != std::string::npos);
  CHECK(text.find("plng_rpc_total{method=\"GetSlivers\",code=\"OK\"} 3\n") != std::string::npos);
  CHECK(text.find("plng_rpc_total{method=\"AddSlice\",code=\"PERMISSION_DENIED\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("plng_streams_open 42\n") != std::string::npos);
  CHECK(text.find("plng_rpc_seconds_bucket{method=\"GetSlivers\",le=\"0.001\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("plng_rpc_seconds_bucket{method=\"GetSlivers\",le=\"0.5\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("plng_rpc_seconds_bucket{method=\"GetSlivers\",le=\"+Inf\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("plng_rpc_seconds_count{method=\"GetSlivers\"} 3\n") != std::string::npos);
  CHECK(text.find("plng_slice_memory_bytes{slice=\"pl_a\"} 1500000000\n") != std::string::npos);
  CHECK(text.find(R"(slice="odd \"name\"\\ with\nnewline")") != std::string::npos);
  CHECK(text.find("plng_slice_cpu_seconds_total{slice=\"pl_a\"} 12.25\n") != std::string::npos);
  // One HELP/TYPE per name; the failing collector is counted, not fatal.
  std::size_t first = text.find("# TYPE plng_slice_memory_bytes");
  CHECK(text.find("# TYPE plng_slice_memory_bytes", first + 1) == std::string::npos);
  CHECK(text.find("plng_metrics_collector_errors_total 1\n") != std::string::npos);
}

TEST_CASE("bad names and label counts are refused") {
  MetricsRegistry registry;
  CHECK_THROWS_AS(registry.counter("9lives", "x"), std::invalid_argument);
  CHECK_THROWS_AS(registry.counter("plng_x", "x", {"__reserved"}), std::invalid_argument);
  CHECK_THROWS_AS(registry.histogram("plng_h", "x", {"le"}), std::invalid_argument);
  CHECK_THROWS_AS(registry.histogram("plng_h2", "x", {}, {1, 0.5}), std::invalid_argument);
  auto& family = registry.counter("plng_y_total", "y", {"a"});
  CHECK_THROWS_AS(registry.gauge("plng_y_total", "again"), std::invalid_argument);
  CHECK_THROWS_AS(family.with({}), std::invalid_argument);
  CHECK_THROWS_AS(family.with({"1", "2"}), std::invalid_argument);
}

TEST_CASE("updates from many threads are all counted") {
  MetricsRegistry registry;
  auto& family = registry.counter("plng_n_total", "n", {"t"});
  auto& histogram = registry.histogram("plng_d_seconds", "d", {});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10000; ++i) {
        family.with({std::to_string(t % 2)}).add();
        histogram.with({}).observe(0.002);
      }
    });
  for (auto& thread : threads) thread.join();
  CHECK(family.with({"0"}).value() + family.with({"1"}).value() == 40000);
  CHECK(histogram.with({}).snapshot().cumulative.back() == 40000);
}

TEST_CASE("/metrics and nothing else is served") {
  MetricsRegistry registry;
  fill(registry);
  auto handler = registry.handler();
  auto metrics = handler("/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.content_type == MetricsRegistry::kContentType);
  CHECK(handler("/metrics?x=1").status == 200);
  CHECK(handler("/").status == 404);
  CHECK(handler("/metricsx").status == 404);
}

TEST_CASE("promtool and the Python client parse the exposition") {
  MetricsRegistry registry;
  fill(registry);
  plng::test::ScratchDir dir("metrics");
  const auto file = dir.path() / "metrics.txt";
  std::ofstream(file) << registry.exposition();
  if (access("/usr/bin/promtool", X_OK) != 0)
    plng::test::skipTest("no /usr/bin/promtool (Debian's prometheus; deploy/install-deps.sh)");
  // promtool lints names and help too; it prints nothing when all is well. The
  // parser is Debian's python3-prometheus-client, under /usr/bin/python3 (a
  // python3 earlier on PATH may be another installation without it).
  plng::test::shellOutput("promtool check metrics < " + file.string() + " 2>&1");
  std::string parsed = plng::test::shellOutput(
      "/usr/bin/python3 -c 'import sys\n"
      "from prometheus_client.parser import text_string_to_metric_families as parse\n"
      "for f in parse(open(sys.argv[1]).read()):\n"
      "  for s in f.samples: print(f.type, s.name, sorted(s.labels.items()), s.value)' " +
      file.string());
  INFO(parsed);
  CHECK(parsed.find("counter plng_rpc_total [('code', 'OK'), ('method', 'GetSlivers')] 3.0") !=
        std::string::npos);
  CHECK(parsed.find("histogram plng_rpc_seconds_bucket [('le', '+Inf'), ('method', "
                    "'GetSlivers')] 3.0") != std::string::npos);
  CHECK(parsed.find("gauge plng_slice_memory_bytes [('slice', 'odd \"name\"\\\\ with\\nnewline')] "
                    "7.0") != std::string::npos);
}

TEST_CASE("a real Prometheus server scrapes the registry over app::HttpServer") {
  MetricsRegistry registry;
  fill(registry);
  plng::app::HttpServer server(
      registry.handler(),
      plng::app::HttpServer::Options{.listen = "127.0.0.1:0", .config_key = "metrics_listen"});
  plng::test::PrometheusServer prometheus(
      {{.job = "toyd", .address = "127.0.0.1:" + std::to_string(server.port())}});
  prometheus.waitForScrapes();
  CHECK(prometheus.value("plng_rpc_total", {{"method", "GetSlivers"}, {"code", "OK"}}) == 3);
  CHECK(prometheus.value("plng_streams_open{job=\"toyd\"}") == 42);
  CHECK(prometheus.value("plng_slice_memory_bytes", {{"slice", "odd \"name\"\\ with\nnewline"}}) ==
        7);
  // The histogram is usable as dashboards use it: two of three under half a second.
  CHECK(prometheus.value("sum(plng_rpc_seconds_bucket{le=\"0.5\"}) / "
                         "sum(plng_rpc_seconds_count)") == Approx(2.0 / 3));
  CHECK_THROWS_WITH(prometheus.query("sum("), Catch::Contains("parse error"));
}
