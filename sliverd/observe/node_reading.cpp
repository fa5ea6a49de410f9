#include "sliverd/observe/node_reading.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <stdexcept>

#include "app/version.h"
#include "base/error.h"
#include "base/file.h"
#include "base/strings.h"

namespace plng::sliverd {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void malformed(std::string_view file, std::string_view line) {
  throw base::SysError(EPROTO, std::string(file) + ": cannot parse \"" + std::string(line) + "\"");
}

std::uint64_t toUnsigned(std::string_view text, std::string_view file, std::string_view line) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) malformed(file, line);
  return value;
}

double toDouble(const std::string& text, std::string_view file) {
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno != 0) malformed(file, text);
  return value;
}

std::vector<std::string> fields(std::string_view line) {
  std::vector<std::string> out;
  for (const std::string& field : base::split(line, ' '))
    if (!field.empty()) out.push_back(field);
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::uint64_t>> parseMeminfo(std::string_view text) {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const std::string& line : base::split(text, '\n')) {
    if (base::trim(line).empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) malformed("meminfo", line);
    const std::vector<std::string> value = fields(line.substr(colon + 1));
    if (value.empty() || value.size() > 2) malformed("meminfo", line);
    std::uint64_t number = toUnsigned(value[0], "meminfo", line);
    if (value.size() == 2) {
      if (value[1] != "kB") malformed("meminfo", line);
      number *= 1024;
    }
    out.emplace_back(line.substr(0, colon), number);
  }
  return out;
}

LoadAverage parseLoadavg(std::string_view text) {
  const std::vector<std::string> value = fields(base::trim(text));
  if (value.size() < 3) malformed("loadavg", text);
  return {toDouble(value[0], "loadavg"), toDouble(value[1], "loadavg"),
          toDouble(value[2], "loadavg")};
}

double parseUptime(std::string_view text) {
  const std::vector<std::string> value = fields(base::trim(text));
  if (value.empty()) malformed("uptime", text);
  return toDouble(value[0], "uptime");
}

SystemReading readSystem(const fs::path& proc) {
  SystemReading out;
  out.meminfo = parseMeminfo(base::readFile(proc / "meminfo"));
  for (const auto& [name, bytes] : out.meminfo) {
    if (name == "MemTotal") out.memory_total_bytes = bytes;
    if (name == "MemAvailable") out.memory_available_bytes = bytes;
  }
  out.load = parseLoadavg(base::readFile(proc / "loadavg"));
  out.uptime_s = parseUptime(base::readFile(proc / "uptime"));
  return out;
}

NodeObserver::NodeObserver(Sources sources) : sources_(std::move(sources)) {
  if (sources_.runtime == nullptr) throw std::invalid_argument("NodeObserver needs a runtime");
  if (!sources_.clock) {
    sources_.clock = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
  }
}

void NodeObserver::recordPass(bool listed, const std::map<std::string, std::string>& failures) {
  const std::int64_t now = sources_.clock();
  std::lock_guard lock(mutex_);
  ++record_.runs;
  record_.last_at = now;
  record_.last_ok = listed && failures.empty();
  if (!record_.last_ok) ++record_.failures;
  std::map<std::string, std::pair<std::string, std::int64_t>> failing;
  for (const auto& [slice, reason] : failures) {
    auto known = failing_.find(slice);
    failing[slice] = {reason, known != failing_.end() ? known->second.second : now};
  }
  failing_ = std::move(failing);
}

bool NodeObserver::trafficCounted() const {
  return sources_.network != nullptr &&
         sources_.network->state() == NetworkIsolation::State::kEnforced;
}

NodeReading NodeObserver::read() const {
  NodeReading out;
  out.read_at = sources_.clock();
  out.software_version = app::versionText();
  out.features = sources_.features;
  if (sources_.plc_stream) out.plc_stream = sources_.plc_stream();
  try {
    out.system = readSystem(sources_.proc);
  } catch (const std::exception& e) {
    out.errors.push_back(e.what());
  }
  if (sources_.storage != nullptr) {
    try {
      const plng::node::StorageSpace space = sources_.storage->space();
      out.disk_total_bytes = space.total_bytes;
      out.disk_free_bytes = space.available_bytes;
    } catch (const std::exception& e) {
      out.errors.push_back(std::string("sliver storage: ") + e.what());
    }
  }
  std::map<std::string, std::pair<std::string, std::int64_t>> failing;
  {
    std::lock_guard lock(mutex_);
    out.reconcile = record_;
    failing = failing_;
  }

  std::vector<plng::node::SliverStatus> slivers;
  try {
    slivers = sources_.runtime->list();
  } catch (const std::exception& e) {
    out.errors.push_back(std::string("slivers: ") + e.what());
  }
  std::map<std::uint32_t, vnet::SliceTraffic> traffic;
  const bool counted = trafficCounted();
  if (counted) {
    try {
      traffic = sources_.network->traffic();
    } catch (const std::exception& e) {
      out.errors.push_back(std::string("traffic counters: ") + e.what());
    }
  }
  for (const plng::node::SliverStatus& status : slivers) {
    SliverReading sliver;
    sliver.slice = status.config.slice;
    sliver.xid = status.config.xid;
    sliver.state = status.phase == plng::node::SliverPhase::kRunning ? "running" : "stopped";
    if (auto it = failing.find(sliver.slice); it != failing.end()) {
      sliver.state = "failed";
      sliver.failure = it->second.first;
      sliver.failed_since = it->second.second;
      failing.erase(it);
    }
    sliver.cpu_ns = status.usage.cpu_usage_ns;
    sliver.memory_bytes = status.usage.memory_bytes;
    sliver.tasks = status.usage.tasks;
    if (sources_.storage != nullptr) {
      try {
        sliver.disk_bytes = sources_.storage->usedBytes(sliver.slice);
      } catch (const std::exception& e) {
        out.errors.push_back("disk use of " + sliver.slice + ": " + e.what());
      }
    }
    if (counted) {
      sliver.traffic_counted = true;
      if (auto it = traffic.find(sliver.xid); it != traffic.end()) {
        sliver.bytes_in = it->second.ingress_bytes;
        sliver.bytes_out = it->second.egress_bytes;
        sliver.packets_in = it->second.ingress_packets;
        sliver.packets_out = it->second.egress_packets;
      }
      try {
        sliver.refusals = sources_.network->counters(sliver.xid);
      } catch (const std::exception& e) {
        out.errors.push_back("refusals of " + sliver.slice + ": " + e.what());
      }
    }
    out.slivers.push_back(std::move(sliver));
  }
  // A sliver that failed before it existed (its creation failed).
  for (const auto& [slice, why] : failing) {
    SliverReading sliver;
    sliver.slice = slice;
    sliver.state = "failed";
    sliver.failure = why.first;
    sliver.failed_since = why.second;
    out.slivers.push_back(std::move(sliver));
  }
  std::sort(out.slivers.begin(), out.slivers.end(),
            [](const SliverReading& a, const SliverReading& b) { return a.slice < b.slice; });
  return out;
}

bool NodeObserver::hasSliver(const std::string& slice) const {
  return sources_.runtime->get(slice).has_value();
}

std::optional<BandwidthReading> NodeObserver::bandwidth(const std::string& slice) const {
  const std::optional<plng::node::SliverStatus> status = sources_.runtime->get(slice);
  if (!status || !trafficCounted()) return std::nullopt;
  const auto classes = sources_.network->sliceBandwidth();
  const auto it = classes.find(status->config.xid);
  if (it == classes.end()) return std::nullopt;
  BandwidthReading out;
  out.slice = slice;
  out.rate_bps = it->second.min_rate_bps;
  out.ceil_bps = it->second.max_rate_bps;
  const DailyBudgets* budgets = sources_.budgets ? sources_.budgets() : nullptr;
  if (budgets != nullptr) {
    if (auto budget = budgets->slice(slice)) {
      out.daily_bytes = budget->daily_bytes;
      out.bytes_used = budget->window.bytes_used;
      out.bytes_received = budget->window.bytes_received;
      out.capped = budget->capped;
      out.window_end = budget->window_end;
      if (budget->ceil_bps != 0) out.ceil_bps = budget->ceil_bps;
    }
  }
  return out;
}

std::map<std::uint32_t, std::string> NodeObserver::sliceNames() const {
  std::map<std::uint32_t, std::string> names;
  for (const plng::node::SliverStatus& status : sources_.runtime->list())
    names[status.config.xid] = status.config.slice;
  return names;
}

std::vector<PortReading> NodeObserver::ports() const {
  std::vector<PortReading> out;
  if (!trafficCounted()) return out;
  for (const planetlab::v1::PortHolding& holding :
       sources_.network->ports(std::nullopt, sliceNames())) {
    out.push_back(PortReading{.slice = holding.slice_name(),
                              .protocol = holding.protocol(),
                              .first_port = holding.first_port(),
                              .last_port = holding.last_port(),
                              .kind = holding.kind(),
                              .sockets = holding.sockets()});
  }
  return out;
}

}  // namespace plng::sliverd
