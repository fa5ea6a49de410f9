#include "sliverd/observe/sensors.h"

#include <spdlog/fmt/fmt.h>

#include <array>
#include <stdexcept>
#include <string>

namespace plng::sliverd {

namespace {

struct Sensor {
  const char* path;
  const char* about;
};

constexpr std::array<Sensor, 8> kSensors{{
    {"/meminfo", "the node's /proc/meminfo, every field in bytes"},
    {"/load", "1-minute load average"},
    {"/load5", "5-minute load average"},
    {"/uptime", "seconds since the node booted"},
    {"/slivers", "every sliver: state, CPU, memory, tasks, disk, bytes in and out"},
    {"/bandwidth/<slice>", "a slice's rate, ceil and daily byte budget"},
    {"/ports", "ports held on the node, by slice"},
    {"/", "this list"},
}};

app::HttpResponse csv(std::string body) {
  return {200, SensorPages::kContentType, std::move(body)};
}

app::HttpResponse notFound(std::string message) {
  return {404, "text/plain; charset=utf-8", std::move(message) + "\n"};
}

// Figures as plain decimals: a CSV reader should not meet "1e+06".
std::string decimal(double value) { return fmt::format("{:.2f}", value); }

SystemReading systemOf(const NodeReading& reading) {
  if (!reading.errors.empty() && reading.system.meminfo.empty())
    throw std::runtime_error("cannot read the node: " + reading.errors.front());
  return reading.system;
}

}  // namespace

app::HttpResponse SensorPages::get(std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/") {
    std::string body = "sensor,description\n";
    for (const Sensor& sensor : kSensors) body += fmt::format("{},{}\n", sensor.path, sensor.about);
    return csv(std::move(body));
  }
  if (path == "/meminfo") {
    std::string body = "field,bytes\n";
    for (const auto& [name, bytes] : systemOf(observer_.read()).meminfo)
      body += fmt::format("{},{}\n", name, bytes);
    return csv(std::move(body));
  }
  if (path == "/load")
    return csv("load1\n" + decimal(systemOf(observer_.read()).load.load1) + "\n");
  if (path == "/load5")
    return csv("load5\n" + decimal(systemOf(observer_.read()).load.load5) + "\n");
  if (path == "/uptime")
    return csv("uptime_seconds\n" + decimal(systemOf(observer_.read()).uptime_s) + "\n");
  if (path == "/slivers") {
    const NodeReading reading = observer_.read();
    std::string body = "slice,state,cpu_seconds,memory_bytes,tasks,disk_bytes,bytes_in,bytes_out\n";
    for (const SliverReading& s : reading.slivers) {
      body += fmt::format("{},{},{:.3f},{},{},{},{},{}\n", s.slice, s.state,
                          static_cast<double>(s.cpu_ns) / 1e9, s.memory_bytes, s.tasks,
                          s.disk_bytes, s.bytes_in, s.bytes_out);
    }
    return csv(std::move(body));
  }
  if (path == "/ports") {
    std::string body = "slice,protocol,first_port,last_port,kind,sockets\n";
    for (const PortReading& p : observer_.ports()) {
      body += fmt::format("{},{},{},{},{},{}\n", p.slice, p.protocol, p.first_port, p.last_port,
                          p.kind, p.sockets);
    }
    return csv(std::move(body));
  }
  constexpr std::string_view kBandwidth = "/bandwidth/";
  if (path.starts_with(kBandwidth)) {
    const std::string slice(path.substr(kBandwidth.size()));
    if (slice.empty() || !observer_.hasSliver(slice))
      return notFound("no sliver of slice \"" + slice + "\" on this node (see /slivers)");
    const std::optional<BandwidthReading> b = observer_.bandwidth(slice);
    if (!b) {
      return notFound("slice " + slice +
                      " has no bandwidth class on this node: network isolation or bandwidth "
                      "control is off");
    }
    return csv(fmt::format(
        "slice,rate_bps,ceil_bps,daily_bytes,bytes_used,bytes_received,capped,window_end\n"
        "{},{},{},{},{},{},{},{}\n",
        b->slice, b->rate_bps, b->ceil_bps, b->daily_bytes, b->bytes_used, b->bytes_received,
        b->capped ? 1 : 0, b->window_end));
  }
  return notFound("no sensor " + std::string(path) + " on this node; GET / lists them");
}

}  // namespace plng::sliverd
