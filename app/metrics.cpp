#include "app/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace plng::app {

namespace {

bool validName(std::string_view name, bool label) {
  if (name.empty()) return false;
  if (label && name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (!label && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
    return buffer;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

// Backslash and newline escaped, and the double quote too in label values
// (HELP text keeps it as it is).
std::string escapeText(std::string_view text, bool quote) {
  std::string out;
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

void writeLabels(std::string& out, const Labels& labels) {
  if (labels.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += escapeLabelValue(value);
    out += '"';
  }
  out += '}';
}

void writeHeader(std::string& out, std::string_view name, std::string_view help,
                 std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += escapeText(help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void writeSample(std::string& out, std::string_view name, const Labels& labels, double value) {
  out += name;
  writeLabels(out, labels);
  out += ' ';
  out += formatValue(value);
  out += '\n';
}

Labels zip(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  Labels labels;
  for (std::size_t i = 0; i < names.size(); ++i) labels.emplace_back(names[i], values[i]);
  return labels;
}

}  // namespace

std::string escapeLabelValue(std::string_view value) { return escapeText(value, true); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()) ||
      std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end())
    throw std::invalid_argument("histogram bounds must be strictly ascending");
  counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::observe(double value) {
  auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[static_cast<std::size_t>(bucket)].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot{.bounds = bounds_, .cumulative = {}, .sum = 0};
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

std::vector<double> latencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

template <typename Metric>
Metric& Family<Metric>::with(const std::vector<std::string>& values) {
  if (values.size() != labels_.size())
    throw std::invalid_argument(name_ + ": " + std::to_string(labels_.size()) +
                                " label values expected, got " + std::to_string(values.size()));
  std::lock_guard lock(mutex_);
  auto& child = children_[values];
  if (!child) child = make_();
  return *child;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void MetricsWriter::sample(std::string_view name, std::string_view help, Type type, Labels labels,
                           double value) {
  auto it = series_.find(name);
  if (it == series_.end()) {
    it = series_.emplace(std::string(name), Series{std::string(help), type, {}}).first;
    order_.emplace_back(name);
  }
  it->second.samples.emplace_back(std::move(labels), value);
}

void MetricsRegistry::claim(const std::string& name, const std::vector<std::string>& labels) {
  if (!validName(name, false)) throw std::invalid_argument("bad metric name '" + name + "'");
  for (const auto& label : labels)
    if (!validName(label, true) || label == "le")
      throw std::invalid_argument(name + ": bad label name '" + label + "'");
  if (std::find(names_.begin(), names_.end(), name) != names_.end())
    throw std::invalid_argument("metric " + name + " registered twice");
  names_.push_back(name);
}

Family<Counter>& MetricsRegistry::counter(std::string name, std::string help,
                                          std::vector<std::string> labels) {
  std::lock_guard lock(mutex_);
  claim(name, labels);
  counters_.push_back(std::unique_ptr<Family<Counter>>(
      new Family<Counter>(std::move(name), std::move(help), std::move(labels),
                          [] { return std::make_unique<Counter>(); })));
  return *counters_.back();
}

Family<Gauge>& MetricsRegistry::gauge(std::string name, std::string help,
                                      std::vector<std::string> labels) {
  std::lock_guard lock(mutex_);
  claim(name, labels);
  gauges_.push_back(std::unique_ptr<Family<Gauge>>(
      new Family<Gauge>(std::move(name), std::move(help), std::move(labels),
                        [] { return std::make_unique<Gauge>(); })));
  return *gauges_.back();
}

Family<Histogram>& MetricsRegistry::histogram(std::string name, std::string help,
                                              std::vector<std::string> labels,
                                              std::vector<double> bounds) {
  Histogram check(bounds);  // bad bounds throw here, not at first use
  std::lock_guard lock(mutex_);
  claim(name, labels);
  histograms_.push_back(std::unique_ptr<Family<Histogram>>(new Family<Histogram>(
      std::move(name), std::move(help), std::move(labels),
      [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); })));
  return *histograms_.back();
}

void MetricsRegistry::addCollector(std::function<void(MetricsWriter&)> collect) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(collect));
}

std::string MetricsRegistry::exposition() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& family : counters_) {
    writeHeader(out, family->name_, family->help_, "counter");
    std::lock_guard children(family->mutex_);
    for (const auto& [values, counter] : family->children_)
      writeSample(out, family->name_, zip(family->labels_, values), counter->value());
  }
  for (const auto& family : gauges_) {
    writeHeader(out, family->name_, family->help_, "gauge");
    std::lock_guard children(family->mutex_);
    for (const auto& [values, gauge] : family->children_)
      writeSample(out, family->name_, zip(family->labels_, values), gauge->value());
  }
  for (const auto& family : histograms_) {
    writeHeader(out, family->name_, family->help_, "histogram");
    std::lock_guard children(family->mutex_);
    for (const auto& [values, histogram] : family->children_) {
      Histogram::Snapshot snapshot = histogram->snapshot();
      Labels labels = zip(family->labels_, values);
      for (std::size_t i = 0; i <= snapshot.bounds.size(); ++i) {
        Labels bucket = labels;
        bucket.emplace_back("le", i < snapshot.bounds.size() ? formatValue(snapshot.bounds[i])
                                                             : std::string("+Inf"));
        writeSample(out, family->name_ + "_bucket", bucket,
                    static_cast<double>(snapshot.cumulative[i]));
      }
      writeSample(out, family->name_ + "_sum", labels, snapshot.sum);
      writeSample(out, family->name_ + "_count", labels,
                  static_cast<double>(snapshot.cumulative.back()));
    }
  }
  MetricsWriter writer;
  for (const auto& collect : collectors_) {
    MetricsWriter one;
    try {
      collect(one);
    } catch (const std::exception&) {
      collector_errors_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    for (const auto& name : one.order_)
      for (auto& [labels, value] : one.series_.at(name).samples)
        writer.sample(name, one.series_.at(name).help, one.series_.at(name).type, labels, value);
  }
  for (const auto& name : writer.order_) {
    if (std::find(names_.begin(), names_.end(), name) != names_.end()) continue;  // no twin
    const auto& series = writer.series_.at(name);
    writeHeader(out, name, series.help,
                series.type == MetricsWriter::Type::counter ? "counter" : "gauge");
    for (const auto& [labels, value] : series.samples) writeSample(out, name, labels, value);
  }
  writeHeader(out, "plng_metrics_collector_errors_total",
              "Scrapes at which a collector of values failed (its samples left out).", "counter");
  writeSample(out, "plng_metrics_collector_errors_total", {},
              static_cast<double>(collector_errors_.load(std::memory_order_relaxed)));
  return out;
}

HttpServer::Handler MetricsRegistry::handler() const {
  return [this](std::string_view target) {
    std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics")
      return HttpResponse{404, "text/plain; charset=utf-8", "not found: metrics are at /metrics\n"};
    return HttpResponse{200, kContentType, exposition()};
  };
}

}  // namespace plng::app
