// Prometheus metrics of the daemons (docs/metrics.md): counters, gauges and
// histograms kept in memory as the daemon works, values read from the system
// when a scraper asks (collectors), and the text exposition format (version
// 0.0.4) that Prometheus scrapes from GET /metrics.
//
// A family is one metric name with a fixed list of label names; each set of
// label values is one child, made on first use and kept for the daemon's life
// (keep label values bounded: a method name, a status code, a slice). Updates
// are lock-free after the first use of a child; scrapes lock each family only
// to list its children.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "app/http_server.h"

namespace plng::app {

class Counter {
 public:
  void add(double amount = 1) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);  // upper bounds, ascending; +Inf implied
  void observe(double value);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf (= count)
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative; +Inf last
  std::atomic<double> sum_{0};
};

// Seconds from 0.5 ms to 10 s: RPCs, queries, reconciles.
std::vector<double> latencyBuckets();

template <typename Metric>
class Family {
 public:
  // The child for these label values (as many as the family's label names;
  // std::invalid_argument otherwise).
  Metric& with(const std::vector<std::string>& values);

 private:
  friend class MetricsRegistry;
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::function<std::unique_ptr<Metric>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        make_(std::move(make)) {}
  std::string name_, help_;
  std::vector<std::string> labels_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

// What a collector reports at scrape time: samples of gauges and counters it
// reads from elsewhere (the kernel, a map, another object's counters).
class MetricsWriter {
 public:
  enum class Type { counter, gauge };
  // One sample. Samples of one name must share help, type and label names;
  // they are grouped under one HELP/TYPE however they are interleaved.
  void sample(std::string_view name, std::string_view help, Type type,
              std::vector<std::pair<std::string, std::string>> labels, double value);
  void gauge(std::string_view name, std::string_view help,
             std::vector<std::pair<std::string, std::string>> labels, double value) {
    sample(name, help, Type::gauge, std::move(labels), value);
  }
  void counter(std::string_view name, std::string_view help,
               std::vector<std::pair<std::string, std::string>> labels, double value) {
    sample(name, help, Type::counter, std::move(labels), value);
  }

 private:
  friend class MetricsRegistry;
  struct Series {
    std::string help;
    Type type;
    std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, double>> samples;
  };
  std::vector<std::string> order_;
  std::map<std::string, Series, std::less<>> series_;
};

class MetricsRegistry {
 public:
  // Names follow Prometheus' rules ([a-zA-Z_:][a-zA-Z0-9_:]*, label names
  // without ':' and not starting "__"); a bad or repeated name is
  // std::invalid_argument (a programming error, found by the first test).
  Family<Counter>& counter(std::string name, std::string help,
                           std::vector<std::string> labels = {});
  Family<Gauge>& gauge(std::string name, std::string help, std::vector<std::string> labels = {});
  Family<Histogram>& histogram(std::string name, std::string help, std::vector<std::string> labels,
                               std::vector<double> bounds = latencyBuckets());

  // Called on the scraping thread at every scrape; must not call back into
  // the registry. A collector that throws costs its samples only (the scrape
  // counts it in plng_metrics_collector_errors_total).
  void addCollector(std::function<void(MetricsWriter&)> collect);

  // The text exposition format, version 0.0.4.
  std::string exposition() const;

  // A handler for app::HttpServer: GET /metrics; 404 elsewhere.
  HttpServer::Handler handler() const;

  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void claim(const std::string& name, const std::vector<std::string>& labels);
  mutable std::mutex mutex_;  // the lists below; families and collectors lock their own
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<Family<Counter>>> counters_;
  std::vector<std::unique_ptr<Family<Gauge>>> gauges_;
  std::vector<std::unique_ptr<Family<Histogram>>> histograms_;
  std::vector<std::function<void(MetricsWriter&)>> collectors_;
  mutable std::atomic<std::uint64_t> collector_errors_{0};
};

// "a\"b": a label value as the exposition format writes it (backslash,
// double quote and newline escaped).
std::string escapeLabelValue(std::string_view value);

}  // namespace plng::app
