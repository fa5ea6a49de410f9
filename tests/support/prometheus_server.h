// A real Prometheus server for tests of /metrics (docs/metrics.md): Debian's
// `prometheus` binary in a scratch directory, listening on a free loopback port,
// scraping the given targets every second; the test asks it PromQL through its
// HTTP API, as an operator's dashboards would. The destructor stops it and
// removes its storage.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/child_process.h"
#include "tests/support/scratch_dir.h"

namespace plng::test {

class PrometheusServer {
 public:
  struct Target {
    std::string job;      // the `job` label of its samples
    std::string address;  // "127.0.0.1:9464"; scraped at /metrics over HTTP
  };
  struct Sample {
    std::map<std::string, std::string> labels;  // __name__ included for plain selectors
    double value = 0;
  };

  // Skips the test (exit 77) when /usr/bin/prometheus is missing; throws when
  // the server does not come up within 30 s (with its log's tail).
  explicit PrometheusServer(const std::vector<Target>& targets);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // An instant query (GET /api/v1/query); throws std::runtime_error with the
  // server's error for a bad query. Scalars come back as one unlabelled sample.
  std::vector<Sample> query(const std::string& promql) const;

  // Waits until every target has been scraped with `up == 1` and, after that,
  // once more (so values set before the call are in), up to `timeout`; throws
  // with the targets' last errors (GET /api/v1/targets) when they are not.
  void waitForScrapes(std::chrono::seconds timeout = std::chrono::seconds(30)) const;

  // The sample of `promql` whose labels include every one of `match`; throws
  // when none or more than one does.
  double value(const std::string& promql,
               const std::map<std::string, std::string>& match = {}) const;

  int port() const { return port_; }
  std::string logTail() const;

 private:
  std::string get(const std::string& target) const;
  std::unique_ptr<ScratchDir> dir_;
  int port_ = 0;
  std::size_t targets_ = 0;
  ChildProcess process_;
};

}  // namespace plng::test
