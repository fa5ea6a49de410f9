// sliverd's sensor server and /metrics with real slivers (docs/sensors.md,
// docs/metrics.md): the sensors answer what /proc and the slivers' cgroups
// say, HEAD without a body, 404 for what does not exist; a sliver reaches
// the sensor port from inside while the node's /metrics port, like every node
// service off the allowlist, is refused to it; Debian's Prometheus scrapes
// /metrics and answers the same figures. PLC's state is the one sliverd
// keeps on disk (no PLC runs); everything runs in a network namespace of the
// test's own.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "base/fd.h"
#include "base/file.h"
#include "node/kvfile.h"
#include "proto/plc.pb.h"
#include "tests/sliverd/sliverd_test_util.h"
#include "tests/support/node_cgroup_sandbox.h"
#include "tests/support/node_image.h"
#include "tests/support/node_private_network.h"
#include "tests/support/prometheus_server.h"
#include "tests/support/scratch_dir.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using plng::base::UniqueFd;

namespace {

// A TCP port free on loopback now (the kernel's pick, released again).
int freePort() {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(sock.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)) == 0);
  socklen_t size = sizeof(at);
  REQUIRE(::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&at), &size) == 0);
  return ntohs(at.sin_port);
}

struct Response {
  int status = 0;
  std::string headers;
  std::string body;
};

// `method target` to 127.0.0.1:port; status 0 when nothing answered.
Response http(int port, const std::string& method, const std::string& target) {
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return {};
  plng::base::writeAll(sock.get(), method + " " + target + " HTTP/1.1\r\nHost: node\r\n\r\n",
                       method);
  const std::string all = plng::base::readAll(sock.get(), "sensor response");
  Response out;
  const auto end = all.find("\r\n\r\n");
  if (all.size() < 12 || end == std::string::npos) return out;
  out.status = std::stoi(all.substr(9, 3));
  out.headers = all.substr(0, end);
  out.body = all.substr(end + 4);
  return out;
}

// The value of `field` in a two-column CSV body (field,value rows).
std::uint64_t csvField(const std::string& body, const std::string& field) {
  const auto at = body.find("\n" + field + ",");
  REQUIRE(at != std::string::npos);
  return std::stoull(body.substr(at + field.size() + 2));
}

std::uint64_t meminfoBytes(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string name, unit;
  std::uint64_t value = 0;
  while (in >> name >> value) {
    if (name == field + ":") return value * 1024;
    std::getline(in, unit);
  }
  FAIL("no " << field << " in /proc/meminfo");
  return 0;
}

// The row of `slice` in the /slivers body, split at commas.
std::vector<std::string> sliverRow(const std::string& body, const std::string& slice) {
  const auto at = body.find("\n" + slice + ",");
  if (at == std::string::npos) return {};
  const std::string line = body.substr(at + 1, body.find('\n', at + 1) - at - 1);
  std::vector<std::string> out;
  std::size_t from = 0;
  for (auto comma = line.find(','); comma != std::string::npos; comma = line.find(',', from)) {
    out.push_back(line.substr(from, comma - from));
    from = comma + 1;
  }
  out.push_back(line.substr(from));
  return out;
}

}  // namespace

TEST_CASE("sliverd's sensors answer real values and reach slivers; its metrics do not",
          "[root][sliverd][vnet]") {
  plng::test::CgroupSandbox sandbox;  // skips when not root
  plng::test::ScratchDir scratch("plng-sliverd-sensors");
  plng::test::PrivateNetwork network(/*with_peer=*/true);
  const fs::path images =
      plng::test::busyboxImage(PLNG_BUILD_IMAGE_SCRIPT, fs::path(PLNG_TEST_IMAGES_DIR) / "busybox");
  const fs::path& dir = scratch.path();
  const int sensor_port = freePort();
  int metrics_port = freePort();
  while (metrics_port == sensor_port) metrics_port = freePort();

  std::ofstream(dir / "sliverd.conf")
      << plng::test::standaloneSliverdConfig(dir, images.parent_path(), PLNG_SLIVER_INIT_PATH)
      << "audit_listen = \n"
      << "uplink = plngv0\n"
      << "sensor_listen = 127.0.0.1:" << sensor_port << "\n"
      << "metrics_listen = 127.0.0.1:" << metrics_port << "\n";

  // The slice asks its node's sensors, and its /metrics, from inside, once a
  // second; a busy child holds memory its cgroup is charged for.
  planetlab::v1::NodeState state;
  state.set_version(1);
  state.set_epoch("sensors-test");
  state.set_hostname("node1.test");
  auto* sliver = state.add_slivers();
  sliver->set_slice_name("pl_sense");
  sliver->set_xid(811);
  (*sliver->mutable_tags())["vref"] = "busybox";
  // busybox's own wget crashes in static builds: nc speaks HTTP.
  const std::string ask = "printf 'GET %s HTTP/1.0\\r\\n\\r\\n' ";
  (*sliver->mutable_tags())["initscript"] =
      "#!/bin/sh\n"
      "while :; do\n"
      "  " +
      ask + "/load5 | nc -w 2 127.0.0.1 " + std::to_string(sensor_port) +
      " > /var/load5.new 2>&1; mv /var/load5.new /var/load5\n"
      "  " +
      ask + "/metrics | nc -w 2 127.0.0.1 " + std::to_string(metrics_port) +
      " > /var/metrics.new 2>&1; echo exit=$? >> /var/metrics.new; mv /var/metrics.new "
      "/var/metrics\n"
      "  sleep 1\n"
      "done\n";
  fs::create_directories(dir / "state");
  plng::base::writeFileAtomic(dir / "state" / "plc-state", state.SerializeAsString(), 0600);

  std::set<fs::path> cgroups{sandbox.roots().unified};
  for (const auto& [controller, path] : sandbox.roots().v1) cgroups.insert(path);
  auto spawn = [&](const char* command) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (const auto& cgroup : cgroups) std::ofstream(cgroup / "cgroup.procs") << ::getpid();
      const int log = ::open((dir / "sliverd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(log, 1);
      ::dup2(log, 2);
      const std::string config = (dir / "sliverd.conf").string();
      ::execl(PLNG_SLIVERD_PATH, "sliverd", "--config", config.c_str(), command, nullptr);
      ::_exit(127);
    }
    return pid;
  };
  auto waitFor = [](auto done, std::chrono::seconds timeout = 30s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(100ms);
    return done();
  };
  auto log = [&] { return plng::base::readFileIfExists(dir / "sliverd.log").value_or(""); };
  auto sliverFile = [&](const std::string& path) -> std::string {
    try {
      auto record = plng::node::readKvFile(dir / "run" / "slivers" / "pl_sense.init");
      return plng::base::readFileIfExists("/proc/" + record.at("pid") + "/root" + path)
          .value_or("");
    } catch (const std::exception&) {
      return "";
    }
  };

  pid_t pid = spawn("serve");
  struct Guard {
    pid_t& pid;
    std::function<pid_t(const char*)> spawn;
    ~Guard() {
      int status = 0;
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
      }
      ::waitpid(spawn("decommission"), &status, 0);
    }
  } guard{pid, spawn};

  INFO(log());
  REQUIRE(waitFor([&] { return http(sensor_port, "GET", "/").status == 200; }));

  {  // The node's figures.
    const Response meminfo = http(sensor_port, "GET", "/meminfo");
    CHECK(meminfo.status == 200);
    CHECK(meminfo.headers.find("Content-Type: text/csv") != std::string::npos);
    CHECK(meminfo.body.starts_with("field,bytes\n"));
    CHECK(csvField(meminfo.body, "MemTotal") == meminfoBytes("MemTotal"));
    const double available = static_cast<double>(csvField(meminfo.body, "MemAvailable"));
    CHECK(std::abs(available - static_cast<double>(meminfoBytes("MemAvailable"))) <
          0.1 * static_cast<double>(meminfoBytes("MemTotal")));
    const Response uptime = http(sensor_port, "GET", "/uptime");
    REQUIRE(uptime.body.starts_with("uptime_seconds\n"));
    const double ours = std::stod(plng::base::readFile("/proc/uptime"));
    CHECK(std::abs(std::stod(uptime.body.substr(15)) - ours) < 5);
    CHECK(http(sensor_port, "GET", "/load").body.starts_with("load1\n"));

    const Response head = http(sensor_port, "HEAD", "/meminfo");
    CHECK(head.status == 200);
    CHECK(head.body.empty());
    const Response unknown = http(sensor_port, "GET", "/nosuch");
    CHECK(unknown.status == 404);
    CHECK(unknown.body.find("no sensor /nosuch") != std::string::npos);
    CHECK(http(sensor_port, "GET", "/bandwidth/pl_nobody").status == 404);
  }

  {  // Slivers: their cgroup's figures; the sensors reach them, /metrics does not.
    const fs::path cgroup = sandbox.roots().unified / "slivers" / "pl_sense";
    REQUIRE(waitFor([&] {
      return sliverRow(http(sensor_port, "GET", "/slivers").body, "pl_sense").size() == 8;
    }));
    const auto row = sliverRow(http(sensor_port, "GET", "/slivers").body, "pl_sense");
    CHECK(row[1] == "running");
    const auto memory = plng::base::readFileIfExists(cgroup / "memory.current");
    if (memory) {
      const double ours = std::stod(*memory);
      INFO("sensor " << row[3] << " cgroup " << ours);
      CHECK(std::abs(std::stod(row[3]) - ours) < 0.25 * ours + (1 << 20));
    }
    CHECK(std::stoi(row[4]) >= 2);  // sliver-init, the shell, its wget or sleep

    // From inside: the sensor answers, the metrics port is refused.
    CHECK(waitFor(
        [&] { return sliverFile("/var/load5").find("\r\n\r\nload5\n") != std::string::npos; }));
    REQUIRE(waitFor([&] { return sliverFile("/var/metrics").find("exit=") != std::string::npos; }));
    const std::string from_inside = sliverFile("/var/metrics");
    INFO(from_inside);
    CHECK(from_inside.find("Operation not permitted") != std::string::npos);
    CHECK(from_inside.find("HTTP/1.") == std::string::npos);
    CHECK(http(metrics_port, "GET", "/metrics").status == 200);  // the node itself may

    const Response bandwidth = http(sensor_port, "GET", "/bandwidth/pl_sense");
    INFO(bandwidth.body);
    CHECK(bandwidth.status == 200);
    CHECK(bandwidth.body.starts_with("slice,rate_bps,ceil_bps,"));
    CHECK(bandwidth.body.find("\npl_sense,") != std::string::npos);
    // The metrics port is among the node's own.
    const std::string ports = http(sensor_port, "GET", "/ports").body;
    INFO(ports);
    CHECK(ports.starts_with("slice,protocol,first_port,last_port,kind,sockets\n"));
    bool kept = false;
    std::istringstream lines(ports);
    for (std::string line; std::getline(lines, line);) {
      const auto held = sliverRow("\n" + line + "\n", line.substr(0, line.find(',')));
      if (held.size() == 6 && held[0].empty() && held[1] == "tcp" && held[4] == "node" &&
          std::stoi(held[2]) <= metrics_port && metrics_port <= std::stoi(held[3]))
        kept = true;
    }
    CHECK(kept);
    // The sliver's bytes out: its wget requests.
    CHECK(waitFor([&] {
      const auto now = sliverRow(http(sensor_port, "GET", "/slivers").body, "pl_sense");
      return now.size() == 8 && std::stoull(now[7]) > 0;
    }));

    const Response metrics = http(metrics_port, "GET", "/metrics");
    CHECK(metrics.body.find("plng_slice_memory_bytes{slice=\"pl_sense\"}") != std::string::npos);
    CHECK(metrics.body.find(
              "plng_slice_policy_drops_total{slice=\"pl_sense\",reason=\"node_service\"}") !=
          std::string::npos);
  }
  {  // Debian's Prometheus scrapes /metrics, and its answers are the node's.
    plng::test::PrometheusServer prometheus(
        {{.job = "sliverd", .address = "127.0.0.1:" + std::to_string(metrics_port)}});
    prometheus.waitForScrapes();
    INFO(prometheus.logTail());
    CHECK(prometheus.value("plng_node_memory_total_bytes") ==
          static_cast<double>(meminfoBytes("MemTotal")));
    CHECK(prometheus.value("plng_node_slivers", {{"state", "running"}}) == 1);
    CHECK(prometheus.value("plng_sliverd_reconcile_runs_total") >= 1);
    const double memory = prometheus.value("plng_slice_memory_bytes", {{"slice", "pl_sense"}});
    if (auto current = plng::base::readFileIfExists(sandbox.roots().unified / "slivers" /
                                                    "pl_sense" / "memory.current")) {
      const double ours = std::stod(*current);
      CHECK(std::abs(memory - ours) < 0.25 * ours + (1 << 20));
    }
    CHECK(prometheus.value("plng_slice_tasks", {{"slice", "pl_sense"}}) >= 2);
    CHECK(prometheus.value("plng_slice_network_transmit_bytes_total", {{"slice", "pl_sense"}}) > 0);
    CHECK(prometheus.value("plng_slice_policy_drops_total",
                           {{"slice", "pl_sense"}, {"reason", "node_service"}}) >= 1);
  }
}
