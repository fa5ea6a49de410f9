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
