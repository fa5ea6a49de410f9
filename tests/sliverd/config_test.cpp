// sliverd's config file: defaults, parsing, and errors that name the line.
#include "sliverd/daemon/config.h"

#include <catch2/catch.hpp>

using plng::sliverd::SliverdConfig;
using plng::sliverd::sliverdConfigTable;

TEST_CASE("config: documented defaults parse back to the defaults", "[sliverd][config]") {
  auto text = sliverdConfigTable().documentedDefaults();
  auto parsed = sliverdConfigTable().parse(text, "defaults");
  SliverdConfig defaults;
  CHECK(parsed.plc_address == defaults.plc_address);
  CHECK(parsed.state_dir == "/var/lib/sliverd");
  CHECK(parsed.run_dir == "/run/sliverd");
  CHECK(parsed.capacity_cpu_shares == 1000);
  CHECK(parsed.delete_grace_s == defaults.delete_grace_s);
  CHECK(parsed.watchdog == true);
  // Every key the brief promises operators is there.
  for (const char* key :
       {"hostname", "plc_address", "node_key_file", "state_dir", "run_dir", "images_dir", "listen",
        "log_level", "poll_interval_s", "reconnect_min_ms", "reconnect_max_ms", "stop_grace_ms",
        "delete_grace_s", "sliver_init", "storage_volume_bytes", "storage_kind",
        "capacity_cpu_shares"}) {
    CHECK_THAT(text, Catch::Contains(std::string("\n") + key + " = "));
  }
}

TEST_CASE("config: values override defaults; paths follow", "[sliverd][config]") {
  auto c = sliverdConfigTable().parse(
      "hostname = n1.example.org  # this node\n"
      "state_dir = /srv/sliverd\n"
      "images_dir = /srv/images\n"
      "reconnect_min_ms = 50\nreconnect_max_ms = 400\n"
      "watchdog = false\n",
      "test.conf");
  CHECK(c.effectiveHostname() == "n1.example.org");
  CHECK(c.reconnect_min_ms == 50);
  CHECK(c.watchdog == false);
  auto p = c.paths();
  CHECK(p.state_dir == "/srv/sliverd");
  CHECK(p.image("debian12") == "/srv/images/debian12");
  CHECK_FALSE(SliverdConfig{}.effectiveHostname().empty());
}

TEST_CASE("config: errors name the file, line and key", "[sliverd][config]") {
  CHECK_THROWS_WITH(sliverdConfigTable().parse("\nbogus = 1\n", "x.conf"),
                    Catch::Contains("x.conf:2") && Catch::Contains("unknown key 'bogus'"));
  CHECK_THROWS_WITH(
      sliverdConfigTable().parse("poll_interval_s = soon\n", "x.conf"),
      Catch::Contains("x.conf:1: poll_interval_s") && Catch::Contains("not an integer"));
  CHECK_THROWS_WITH(sliverdConfigTable().parse("listen\n", "x.conf"),
                    Catch::Contains("expected 'key = value'"));
  CHECK_THROWS_WITH(
      sliverdConfigTable().parse("reconnect_min_ms = 5000\nreconnect_max_ms = 10\n", "x"),
      Catch::Contains("x:2: reconnect_max_ms must be at least reconnect_min_ms"));
  CHECK_THROWS_WITH(sliverdConfigTable().parse("watchdog = maybe\n", "x"),
                    Catch::Contains("not true or false"));
  CHECK_THROWS_WITH(sliverdConfigTable().load("/nonexistent/sliverd.conf"),
                    Catch::Contains("cannot read config file"));
}

TEST_CASE("config: network isolation keys and their defaults", "[sliverd][config]") {
  using plng::proto::PortRange;
  using plng::proto::Transport;
  SliverdConfig defaults;
  CHECK(defaults.network_isolation);
  // sshd, the audit page (audit_listen's default port), the NodeManager
  // (listen's), /metrics (metrics_listen's) and the sensor server.
  CHECK(defaults.nodePorts() == std::vector<PortRange>{{Transport::kTcp, 22, 22},
                                                       {Transport::kTcp, 80, 80},
                                                       {Transport::kTcp, 8621, 8622},
                                                       {Transport::kTcp, 33080, 33080}});
  CHECK(defaults.serviceAllowlist() == std::vector<PortRange>{{Transport::kTcp, 33080, 33080}});
  CHECK(defaults.bpfPinDir() == "/sys/fs/bpf/plng/var-lib-sliverd");

  auto c = sliverdConfigTable().parse(
      "node_ports = udp:161, tcp:22,tcp:23\n"
      "service_allowlist =\n"
      "network_isolation = off\n"
      "listen = [::]:9000\n"
      "audit_listen = [::1]:8080\n"
      "sensor_listen = 0.0.0.0:3000\n"
      "metrics_listen = [::1]:9100\n"
      "state_dir = /srv/node-2/state\n",
      "x.conf");
  CHECK_FALSE(c.network_isolation);
  // The ports of sliverd's servers are kept whatever node_ports says; the
  // sensors' alone are on the allowlist, whatever service_allowlist says.
  CHECK(c.nodePorts() == std::vector<PortRange>{{Transport::kTcp, 22, 23},
                                                {Transport::kTcp, 3000, 3000},
                                                {Transport::kTcp, 8080, 8080},
                                                {Transport::kTcp, 9000, 9000},
                                                {Transport::kTcp, 9100, 9100},
                                                {Transport::kUdp, 161, 161}});
  CHECK(c.serviceAllowlist() == std::vector<PortRange>{{Transport::kTcp, 3000, 3000}});
  // Every instance pins apart, by its state directory.
  CHECK(c.bpfPinDir() == "/sys/fs/bpf/plng/srv-node\\x2d2-state");
  c.bpf_pin_dir = "/sys/fs/bpf/elsewhere";
  CHECK(c.bpfPinDir() == "/sys/fs/bpf/elsewhere");

  // listen on port 0 (tests: any free port) keeps no extra port, nor an empty audit_listen.
  c = sliverdConfigTable().parse(
      "listen = 127.0.0.1:0\naudit_listen =\nsensor_listen =\nmetrics_listen = 127.0.0.1:0\n"
      "node_ports = tcp:22\nservice_allowlist =\n",
      "x.conf");
  CHECK(c.nodePorts() == std::vector<PortRange>{{Transport::kTcp, 22, 22}});
  CHECK(c.serviceAllowlist().empty());

  // Slivers may not read the node's metrics.
  CHECK_THROWS_WITH(
      sliverdConfigTable().parse("metrics_listen = 127.0.0.1:9100\nservice_allowlist = "
                                 "tcp:33080,tcp:9000-9200\n",
                                 "x.conf"),
      Catch::Contains("metrics_listen's port must not be on service_allowlist"));
}

TEST_CASE("config: port lists follow the ports grammar, the pin directory is absolute",
          "[sliverd][config]") {
  CHECK_THROWS_WITH(sliverdConfigTable().parse("node_ports = 22\n", "x.conf"),
                    Catch::Contains("x.conf:1: node_ports") &&
                        Catch::Contains("item 1 \"22\": expected <tcp|udp>:<port>[-<port>]"));
  CHECK_THROWS_WITH(
      sliverdConfigTable().parse("service_allowlist = tcp:0\n", "x.conf"),
      Catch::Contains("x.conf:1: service_allowlist") && Catch::Contains("port 0 is out of range"));
  CHECK_THROWS_WITH(sliverdConfigTable().parse("network_isolation = maybe\n", "x.conf"),
                    Catch::Contains("x.conf:1: network_isolation"));
  CHECK_THROWS_WITH(sliverdConfigTable().parse("bpf_pin_dir = sys/fs/bpf/x\n", "x.conf"),
                    Catch::Contains("x.conf:1: bpf_pin_dir") &&
                        Catch::Contains("must be empty or an absolute path"));
  CHECK(sliverdConfigTable().parse("network_isolation = on\n", "x").network_isolation);
}

TEST_CASE("config: instance names are systemd-escape --path's, so distinct directories differ",
          "[sliverd][config]") {
  using plng::sliverd::instanceName;
  CHECK(instanceName("/var/lib/sliverd") == "var-lib-sliverd");
  CHECK(instanceName("/var/lib/sliverd/") == "var-lib-sliverd");
  CHECK(instanceName("//var//lib/./sliverd") == "var-lib-sliverd");
  CHECK(instanceName("/") == "-");
  CHECK(instanceName("/srv/a-b") == "srv-a\\x2db");
  CHECK(instanceName("/srv/a/b") == "srv-a-b");
  CHECK(instanceName("/srv/a b") == "srv-a\\x20b");
  CHECK(instanceName("/.hidden/x") == "\\x2ehidden-x");
  CHECK(instanceName("/tmp/plng.x1") == "tmp-plng.x1");
}

TEST_CASE("config: daily byte budget keys, their defaults and bounds", "[sliverd][config]") {
  SliverdConfig defaults;
  CHECK(defaults.net_budget_threshold_pct == 90);  // PlanetLab's bwmon
  CHECK(defaults.net_budget_interval_s == 30);
  auto c = sliverdConfigTable().parse("net_budget_threshold_pct = 100\nnet_budget_interval_s = 1\n",
                                      "x.conf");
  CHECK(c.net_budget_threshold_pct == 100);
  CHECK(c.net_budget_interval_s == 1);
  CHECK_THROWS_WITH(sliverdConfigTable().parse("net_budget_threshold_pct = 0\n", "x.conf"),
                    Catch::Contains("x.conf:1: net_budget_threshold_pct"));
  CHECK_THROWS_WITH(sliverdConfigTable().parse("net_budget_threshold_pct = 101\n", "x.conf"),
                    Catch::Contains("net_budget_threshold_pct"));
  CHECK_THROWS_WITH(sliverdConfigTable().parse("net_budget_interval_s = 0\n", "x.conf"),
                    Catch::Contains("net_budget_interval_s"));
}
