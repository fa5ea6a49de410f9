// The node's flow shipper against a real PostgreSQL and plcd: batches handed to
// it arrive at PLC once, wait on disk while PLC is down (across a shipper
// restart too), are stored once when resent, and the spool stays bounded,
// counting what it had to drop.
#include "sliverd/daemon/flow_shipper.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/sliverd/sliverd_test_util.h"
#include "tests/support/plc_seed.h"
#include "tests/support/scratch_dir.h"

using namespace plng::test;
using namespace std::chrono_literals;
using plng::sliverd::FlowShipper;

namespace {

pb::FlowRecord udpFlow(std::uint8_t last_octet) {
  const auto now = unixNow() * 1000000000LL;
  pb::FlowRecord f;
  f.set_slice_name("ship_probe");
  f.set_protocol(17);
  f.set_src_addr(std::string("\x0a\x00\x00\x01", 4));
  f.set_dst_addr(std::string("\xc0\x00\x02", 3) + static_cast<char>(last_octet));
  f.set_src_port(5353);
  f.set_dst_port(53);
  f.set_packets(1);
  f.set_bytes(80);
  f.set_first_seen_ns(now - 1000000000LL);
  f.set_last_seen_ns(now);
  return f;
}

struct ShipperPlanet {
  ShipperPlanet() : seed(fix), spool("flow-shipper") {
    seed.site("ship");
    node = seed.node("n1.ship.test", "ship");
  }

  FlowShipper::Options options(std::size_t per_batch = 1000, std::size_t max_batches = 100) {
    FlowShipper::Options o;
    o.hostname = node.hostname;
    o.node_key = node.private_key;
    o.spool_dir = spool.path() / "flow-spool";
    o.max_batch_flows = per_batch;
    o.max_spooled_batches = max_batches;
    o.retry_min = 50ms;
    o.retry_max = 200ms;
    return o;
  }
  std::int64_t count(const std::string& sql) { return seed.sql(sql)[0][0].as<std::int64_t>(); }
  std::int64_t storedFlows() { return count("SELECT count(*) FROM flows"); }
  std::int64_t batches() { return count("SELECT count(*) FROM flow_batches"); }

  PlcFixture fix;
  Seeder seed;
  SeededNode node;
  ScratchDir spool;
};

}  // namespace

TEST_CASE("the shipper's batches arrive at PLC once", "[sliverd][plc][pg][flows]") {
  ShipperPlanet p;
  FlowShipper shipper(p.fix.plcd().channel(), p.options(/*per_batch=*/2));
  shipper.start();
  shipper.ship({udpFlow(1), udpFlow(2), udpFlow(3)});
  REQUIRE(eventually([&] { return shipper.pending() == 0; }));
  CHECK(shipper.sent() == 2);
  CHECK(p.storedFlows() == 3);
  CHECK(p.batches() == 2);
  // Nothing handed over: nothing sent.
  shipper.ship({});
  std::this_thread::sleep_for(200ms);
  CHECK(p.batches() == 2);
}

TEST_CASE("while PLC is down batches wait on disk, across a restart of the shipper",
          "[sliverd][plc][pg][flows]") {
  ShipperPlanet p;
  p.fix.plcd().stop();
  {
    FlowShipper shipper(p.fix.plcd().channel(), p.options());
    shipper.start();
    const auto before = std::chrono::steady_clock::now();
    shipper.ship({udpFlow(1), udpFlow(2)});
    // ship() never waits for PLC.
    CHECK(std::chrono::steady_clock::now() - before < 1s);
    std::this_thread::sleep_for(500ms);
    CHECK(shipper.pending() == 1);
    CHECK(shipper.sent() == 0);
  }  // sliverd stops
  p.fix.plcd().start();
  CHECK(p.storedFlows() == 0);
  FlowShipper restarted(p.fix.plcd().channel(), p.options());
  CHECK(restarted.pending() == 1);
  restarted.start();
  REQUIRE(eventually([&] { return restarted.pending() == 0; }));
  CHECK(p.storedFlows() == 2);
  CHECK(p.batches() == 1);
}

TEST_CASE("a batch sent again after PLC's answer was lost is stored once",
          "[sliverd][plc][pg][flows]") {
  ShipperPlanet p;
  const auto options = p.options();
  std::filesystem::path copy = p.spool.path() / "copy";
  {
    // Spooled while stopped: the file is there to copy before it is sent.
    FlowShipper shipper(p.fix.plcd().channel(), options);
    shipper.ship({udpFlow(1)});
    const auto file = std::filesystem::directory_iterator(options.spool_dir)->path();
    std::filesystem::copy_file(file, copy);
    shipper.start();
    REQUIRE(eventually([&] { return shipper.pending() == 0; }));
    std::filesystem::rename(copy, file);  // as if the answer never came
  }
  FlowShipper again(p.fix.plcd().channel(), options);
  again.start();
  REQUIRE(eventually([&] { return again.pending() == 0; }));
  CHECK(again.sent() == 1);
  CHECK(p.storedFlows() == 1);
  CHECK(p.batches() == 1);
}

TEST_CASE("the spool is bounded and PLC learns what was dropped", "[sliverd][plc][pg][flows]") {
  ShipperPlanet p;
  FlowShipper shipper(p.fix.plcd().channel(), p.options(/*per_batch=*/1, /*max_batches=*/2));
  shipper.ship({udpFlow(1), udpFlow(2), udpFlow(3)});
  CHECK(shipper.pending() == 2);
  // A batch PLC refuses as malformed would be refused forever: dropped and counted.
  auto bad = udpFlow(4);
  bad.set_protocol(300);
  shipper.ship({bad});
  CHECK(shipper.pending() == 2);
  shipper.start();
  REQUIRE(eventually([&] { return shipper.pending() == 0; }));
  CHECK(shipper.sent() == 1);  // two went for room, the malformed one was refused
  CHECK(p.storedFlows() == 1);
  // The next batch tells PLC about the refused batch's record.
  shipper.ship({udpFlow(5)});
  REQUIRE(eventually([&] { return shipper.pending() == 0; }));
  CHECK(p.storedFlows() == 2);
  CHECK(p.count("SELECT sum(dropped)::bigint FROM flow_batches") == 3);
}
