// Flow auditing without privileges: the record files' format, hourly rotation
// and retention with an injected clock, the drain's deltas and idle flows
// across a restart (a fake map), the shipping cursor, and the audit pages over
// real records.
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <map>

#include "sliverd/vnet/audit_page.h"
#include "sliverd/vnet/flow_log.h"
#include "tests/support/scratch_dir.h"

using namespace plng::sliverd;

namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kHour = 3600 * kSecond;
// 2026-12-03T10:00:00Z
constexpr std::int64_t kTen = 1796292000 * kSecond;

class FakeClock : public FlowClock {
 public:
  std::int64_t unix_ns = kTen;
  std::uint64_t mono_ns = 1000 * kSecond;
  std::int64_t unixNs() const override { return unix_ns; }
  std::uint64_t monotonicNs() const override { return mono_ns; }
  void advance(std::int64_t ns) {
    unix_ns += ns;
    mono_ns += static_cast<std::uint64_t>(ns);
  }
};

// The map as the programs keep it; takeFlow deletes.
class FakeMap : public FlowSource {
 public:
  FakeMap() { entries.reserve(16); }  // add() hands out references
  std::vector<plng::vnet::FlowEntry> entries;
  std::uint64_t drops = 0;
  std::vector<plng::vnet::FlowEntry> flows() override { return entries; }
  std::optional<vnet_flow> takeFlow(const vnet_flow_key& key) override {
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      if (std::memcmp(&it->key, &key, sizeof(key)) != 0) continue;
      vnet_flow flow = it->flow;
      entries.erase(it);
      return flow;
    }
    return std::nullopt;
  }
  std::uint64_t flowDrops() override { return drops; }
  vnet_flow& add(std::uint32_t xid, const char* dst, std::uint16_t dport, std::uint64_t now) {
    plng::vnet::FlowEntry entry;
    entry.key.xid = xid;
    entry.key.family = 4;
    entry.key.protocol = 6;
    entry.key.sport = 40000;
    entry.key.dport = dport;
    inet_pton(AF_INET, "10.0.0.1", entry.key.saddr);
    inet_pton(AF_INET, dst, entry.key.daddr);
    entry.flow.first_seen_ns = now;
    entry.flow.last_seen_ns = now;
    entries.push_back(entry);
    return entries.back().flow;
  }
};

FlowRecord sample() {
  return FlowRecord{.slice = "pl_alpha",
                    .xid = 1001,
                    .protocol = 6,
                    .src = "10.0.0.1",
                    .dst = "192.0.2.7",
                    .src_port = 40000,
                    .dst_port = 80,
                    .tcp_flags = 0x1b,
                    .packets = 12,
                    .bytes = 3456,
                    .first_seen_ns = kTen + 5 * kSecond + 123,
                    .last_seen_ns = kTen + 9 * kSecond,
                    .refused = ""};
}

std::map<std::string, std::string> slicesByXid() {
  return {{"1001", "pl_alpha"}, {"1002", "pl_beta"}};
}

std::string nameOf(std::uint32_t xid) {
  auto names = slicesByXid();
  auto it = names.find(std::to_string(xid));
  return it == names.end() ? "" : it->second;
}

}  // namespace

TEST_CASE("a flow record is one line of the files and back", "[vnet]") {
  FlowRecord record = sample();
  std::string line = formatFlowLine(record);
  CHECK(line ==
        "2026-12-03T10:00:05.000000123Z\t2026-12-03T10:00:09.000000000Z\tpl_alpha\t1001\t6\t"
        "10.0.0.1\t40000\t192.0.2.7\t80\t27\t12\t3456\t-");
  CHECK(parseFlowLine(line) == record);
  record.refused = "blacklist";
  record.src = "2001:db8::1";
  CHECK(parseFlowLine(formatFlowLine(record)) == record);
  CHECK_FALSE(parseFlowLine(flowFileHeader()));
  CHECK_FALSE(parseFlowLine("2026-12-03T10:00:05.000000123Z\tpl_alpha"));  // torn
  std::string bad_count = line;
  bad_count.replace(bad_count.find("\t12\t"), 4, "\tab\t");
  CHECK_FALSE(parseFlowLine(bad_count));

  auto proto = toProto(sample());
  CHECK(proto.slice_name() == "pl_alpha");
  CHECK(proto.src_addr() == std::string("\x0a\x00\x00\x01", 4));
  CHECK(proto.dst_port() == 80);
  CHECK(proto.first_seen_ns() == kTen + 5 * kSecond + 123);
  CHECK(tcpFlagNames(0x1b) == "FIN,SYN,PSH,ACK");
}

TEST_CASE("flow files rotate hourly and are kept retention days", "[vnet]") {
  plng::test::ScratchDir dir("flows");
  FlowFiles files(dir.path() / "flows", /*retention_days=*/2);
  FlowRecord first = sample();
  files.append({first}, kTen + 10 * kSecond);
  FlowRecord second = sample();
  second.last_seen_ns = kTen + kHour + 5 * kSecond;
  files.append({second}, kTen + kHour + 10 * kSecond);
  CHECK(files.files() == std::vector<std::string>{"2026-12-03T10.tsv", "2026-12-03T11.tsv"});
  auto text = std::ifstream(dir.path() / "flows" / "2026-12-03T10.tsv");
  std::string header;
  std::getline(text, header);
  CHECK(header == flowFileHeader());

  // Reading a window: by last seen.
  CHECK(files.read(kTen, kTen + 2 * kHour).size() == 2);
  CHECK(files.read(kTen + kHour, kTen + 2 * kHour) == std::vector<FlowRecord>{second});

  // Retention: a file goes once its hour ended two days ago.
  CHECK(files.expire(kTen + 48 * kHour).empty());
  CHECK(files.expire(kTen + 49 * kHour) == std::vector<std::string>{"2026-12-03T10.tsv"});
  CHECK(files.files() == std::vector<std::string>{"2026-12-03T11.tsv"});
  // Other files in the directory are not the flow files'.
  std::ofstream(dir.path() / "flows" / "notes.txt") << "x";
  CHECK(files.expire(kTen + 100 * kHour) == std::vector<std::string>{"2026-12-03T11.tsv"});
  CHECK(std::filesystem::exists(dir.path() / "flows" / "notes.txt"));
}

TEST_CASE("the shipping cursor reads each record once, across files", "[vnet]") {
  plng::test::ScratchDir dir("flows");
  FlowFiles files(dir.path(), 7);
  std::vector<FlowRecord> batch(3, sample());
  for (int i = 0; i < 3; ++i)
    batch[static_cast<std::size_t>(i)].packets = static_cast<std::uint64_t>(i + 1);
  files.append(batch, kTen);
  FlowCursor cursor;
  auto got = files.recordsSince(cursor, 2);
  REQUIRE(got.size() == 2);
  CHECK(got[1].packets == 2);
  CHECK(cursor.file == "2026-12-03T10.tsv");
  FlowRecord later = sample();
  later.packets = 4;
  files.append({later}, kTen + kHour);
  got = files.recordsSince(cursor, 10);
  REQUIRE(got.size() == 2);
  CHECK(got[0].packets == 3);
  CHECK(got[1].packets == 4);
  CHECK(files.recordsSince(cursor, 10).empty());
  // A torn last line (a write in progress) is left for later.
  {
    std::ofstream torn(dir.path() / "2026-12-03T11.tsv", std::ios::app);
    torn << formatFlowLine(sample()).substr(0, 20);
  }
  CHECK(files.recordsSince(cursor, 10).empty());
}

TEST_CASE("the drain writes deltas of active flows and closes idle ones, once each", "[vnet]") {
  plng::test::ScratchDir dir("flows");
  FakeClock clock;
  FakeMap map;
  FlowFiles files(dir.path(), 7);
  auto drain = std::make_unique<FlowDrain>(map, files, clock, nameOf,
                                           FlowDrain::Options{.idle = std::chrono::seconds(10)});
  const std::uint64_t start = clock.mono_ns;
  vnet_flow& busy = map.add(1001, "192.0.2.7", 80, start);
  busy.packets = 10;
  busy.bytes = 1000;
  busy.last_seen_ns = start;
  busy.tcp_flags = 0x02;
  vnet_flow& quiet = map.add(1002, "192.0.2.8", 53, start);
  quiet.packets = 1;
  quiet.bytes = 60;
  quiet.last_seen_ns = start;

  clock.advance(5 * kSecond);  // both active
  auto result = drain->drainOnce();
  CHECK(result.records == 2);
  CHECK(map.entries.size() == 2);

  // The busy flow sends more; the quiet one goes idle.
  map.entries[0].flow.packets = 15;
  map.entries[0].flow.bytes = 1500;
  map.entries[0].flow.tcp_flags = 0x12;
  map.entries[0].flow.last_seen_ns = clock.mono_ns;
  clock.advance(8 * kSecond);
  result = drain->drainOnce();
  CHECK(result.records == 1);      // the busy flow's delta; nothing new from the quiet one
  CHECK(map.entries.size() == 1);  // the quiet one taken out

  // A restart: the new drain knows what was written.
  drain = std::make_unique<FlowDrain>(map, files, clock, nameOf,
                                      FlowDrain::Options{.idle = std::chrono::seconds(10)});
  CHECK(drain->drainOnce().records == 0);
  map.entries[0].flow.packets = 16;
  map.entries[0].flow.bytes = 1600;
  clock.advance(20 * kSecond);  // idle now: its last packet
  CHECK(drain->drainOnce().records == 1);
  CHECK(map.entries.empty());

  auto all = files.read(0, clock.unix_ns);
  REQUIRE(all.size() == 4);
  std::uint64_t busy_packets = 0, busy_bytes = 0;
  for (const auto& r : all) {
    if (r.slice != "pl_alpha") continue;
    busy_packets += r.packets;
    busy_bytes += r.bytes;
    CHECK(r.first_seen_ns == kTen);  // the flow's first packet, in unix time
  }
  CHECK(busy_packets == 16);
  CHECK(busy_bytes == 1600);
  CHECK(all[2].tcp_flags == 0x12);
  CHECK(all[1].slice == "pl_beta");
  CHECK(all[1].last_seen_ns == kTen);
}

TEST_CASE("the drain reports the map's drop counter as it grows", "[vnet]") {
  plng::test::ScratchDir dir("flows");
  FakeClock clock;
  FakeMap map;
  FlowFiles files(dir.path(), 7);
  FlowDrain drain(map, files, clock, nameOf, {});
  map.drops = 3;
  auto result = drain.drainOnce();
  CHECK(result.drops == 3);
  CHECK(result.new_drops == 0);  // the first drain: the count so far
  map.drops = 10;
  result = drain.drainOnce();
  CHECK(result.drops == 10);
  CHECK(result.new_drops == 7);
  CHECK(drain.drainOnce().new_drops == 0);
}

TEST_CASE("a slice the node forgot is named by its last known name, or its xid", "[vnet]") {
  plng::test::ScratchDir dir("flows");
  FakeClock clock;
  FakeMap map;
  FlowFiles files(dir.path(), 7);
  bool known = true;
  FlowDrain drain(map, files, clock,
                  [&](std::uint32_t) { return known ? std::string("pl_alpha") : ""; }, {});
  map.add(1001, "192.0.2.7", 80, clock.mono_ns).packets = 1;
  map.add(1003, "192.0.2.7", 81, clock.mono_ns).packets = 1;
  drain.drainOnce();
  known = false;
  map.entries[0].flow.packets = 2;
  map.entries[0].flow.last_seen_ns = clock.mono_ns;
  drain.drainOnce();
  auto all = files.read(0, clock.unix_ns + kHour);
  REQUIRE(all.size() == 3);
  CHECK(all[2].slice == "pl_alpha");
}

TEST_CASE("the audit pages: a destination's table, a slice's summary, JSON, escaping", "[vnet]") {
  plng::test::ScratchDir dir("flows");
  FakeClock clock;
  FlowFiles files(dir.path(), 7);
  FlowRecord web = sample();
  FlowRecord web_again = sample();
  web_again.packets = 3;
  web_again.bytes = 100;
  web_again.tcp_flags = 0x01;
  web_again.last_seen_ns = kTen + 20 * kSecond;
  FlowRecord refused = sample();
  refused.slice = "pl_beta";
  refused.xid = 1002;
  refused.protocol = 17;
  refused.dst_port = 53;
  refused.refused = "blacklist";
  FlowRecord ping = sample();
  ping.protocol = 1;
  ping.src_port = 4242;
  ping.dst_port = 8 << 8;
  ping.tcp_flags = 0;
  FlowRecord elsewhere = sample();
  elsewhere.dst = "192.0.2.99";
  FlowRecord old = sample();
  old.first_seen_ns = old.last_seen_ns = kTen - 2 * kHour;
  files.append({old}, kTen - 2 * kHour);
  files.append({web, web_again, refused, ping, elsewhere}, kTen + 30 * kSecond);
  clock.unix_ns = kTen + kHour - kSecond;

  std::map<std::string, SliceAbout> about = {
      {"pl_alpha", SliceAbout{.description = "Measures <b>latency</b> & \"loss\"",
                              .url = "https://example.org/alpha?a=1&b=2",
                              .contacts = {{"Ada PI", "ada@example.org", "pi"}}}},
      {"pl_beta", SliceAbout{.description = "", .url = "javascript:alert(1)", .contacts = {}}}};
  AuditPages pages(
      files,
      [&](const std::string& slice) {
        auto it = about.find(slice);
        return it == about.end() ? SliceAbout{} : it->second;
      },
      clock,
      AuditPages::Options{.hostname = "node1.example.org", .plc_url = "https://plc.example.org/"});

  auto form = pages.get("/");
  CHECK(form.status == 200);
  CHECK(form.content_type.starts_with("text/html"));
  CHECK(form.body.find("<form method=\"get\" action=\"/\">") != std::string::npos);

  auto page = pages.get("/?dst=192.0.2.7");
  REQUIRE(page.status == 200);
  const std::string& html = page.body;
  // Rows: alpha's TCP flow summed, its ping, beta's refused UDP; nothing else.
  auto rows = [](const std::string& body) {
    std::size_t n = 0;
    for (auto at = body.find("<tr class=\"flow\">"); at != std::string::npos;
         at = body.find("<tr class=\"flow\">", at + 1))
      ++n;
    return n;
  };
  CHECK(rows(html) == 3);
  CHECK(html.find("<td>15</td><td>3556</td>") != std::string::npos);
  CHECK(html.find("<td>FIN,SYN,PSH,ACK</td>") != std::string::npos);
  CHECK(html.find("<td>refused: blacklist</td>") != std::string::npos);
  CHECK(html.find("echo id 4242") != std::string::npos);
  CHECK(html.find("type 8 code 0") != std::string::npos);
  CHECK(html.find("192.0.2.99") == std::string::npos);
  // What PLC says, escaped; only http(s) links.
  CHECK(html.find("Measures &lt;b&gt;latency&lt;/b&gt; &amp; &quot;loss&quot;") !=
        std::string::npos);
  CHECK(html.find("<b>latency") == std::string::npos);
  CHECK(html.find("href=\"https://example.org/alpha?a=1&amp;b=2\"") != std::string::npos);
  CHECK(html.find("href=\"javascript:") == std::string::npos);
  CHECK(html.find("mailto:ada@example.org") != std::string::npos);
  CHECK(html.find("plcctl audit --dst 192.0.2.7") != std::string::npos);
  CHECK(html.find("https://plc.example.org/") != std::string::npos);
  CHECK(html.find("<script") == std::string::npos);

  // Another spelling of the address; one never seen; not an address (escaped back).
  CHECK(rows(pages.get("/?dst=%20192.0.2.7").body) == 3);
  auto none = pages.get("/?dst=192.0.2.1");
  CHECK(none.status == 200);
  CHECK(none.body.find("id=\"none\"") != std::string::npos);
  auto bad = pages.get("/?dst=%3Cscript%3E");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("<script>") == std::string::npos);
  CHECK(bad.body.find("&lt;script&gt;") != std::string::npos);
  CHECK(pages.get("/nothing").status == 404);
  CHECK(pages.get("/?dst=%zz").status == 400);

  auto json = pages.get("/api/flows?dst=192.0.2.7");
  CHECK(json.content_type == "application/json");
  CHECK(json.body.find("\"slice\": \"pl_alpha\"") != std::string::npos);
  CHECK(json.body.find("\"packets\": 15") != std::string::npos);
  CHECK(json.body.find("\"refused\": \"blacklist\"") != std::string::npos);
  CHECK(json.body.find("\"echo_id\": 4242") != std::string::npos);
  CHECK(json.body.find("\"email\": \"ada@example.org\"") != std::string::npos);
  // Protobuf's JSON printer escapes what HTML would take for markup.
  CHECK(json.body.find("Measures \\u003cb\\u003elatency") != std::string::npos);
  CHECK(pages.get("/api/flows?dst=nope").status == 400);

  auto slice = pages.get("/slice/pl_alpha");
  CHECK(slice.status == 200);
  CHECK(rows(slice.body) == 3);  // the web flow, the ping, and the other destination
  CHECK(slice.body.find("39 packets") != std::string::npos);
  auto slice_json = pages.get("/api/slices/pl_beta");
  CHECK(slice_json.body.find("\"refused_packets\": 12") != std::string::npos);
}
