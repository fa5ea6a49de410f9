// Flow auditing against the real kernel: slices in sliver cgroups send TCP,
// UDP (IPv4 and IPv6), ICMP echo and raw packets in a network namespace of the
// test's own, one is refused by the blacklist; the records vnet-bpf keeps are
// drained into files and matched against what was sent; a test-sized map
// counts what it cannot record; the "who sent this?" page is served over HTTP
// and rendered in headless Chromium (Debian's chromium), whose DOM must hold
// the slices' rows and whose screenshot must show the table.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <png.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "app/http_server.h"
#include "base/file.h"
#include "sliverd/vnet/audit_page.h"
#include "sliverd/vnet/flow_log.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/skip.h"
#include "tests/vnet/vnet_fixture.h"
#include "vnet-bpf/network_policy.h"

using namespace plng::test;
using namespace plng::vnet;
using namespace plng::sliverd;

namespace {

// The drain's view of a NetworkPolicy (sliverd's NetworkIsolation is one too).
class PolicyFlows : public FlowSource {
 public:
  explicit PolicyFlows(NetworkPolicy& policy) : policy_(policy) {}
  std::vector<FlowEntry> flows() override { return policy_.flows(); }
  std::optional<vnet_flow> takeFlow(const vnet_flow_key& key) override {
    return policy_.takeFlow(key);
  }
  std::uint64_t flowDrops() override { return policy_.flowDrops(); }

 private:
  NetworkPolicy& policy_;
};

std::string sliceName(std::uint32_t xid) {
  return xid == kXidA ? "pl_alpha" : xid == kXidB ? "pl_beta" : "";
}

int localPortOf(int sock) {
  sockaddr_storage local{};
  socklen_t length = sizeof(local);
  getsockname(sock, reinterpret_cast<sockaddr*>(&local), &length);
  return local.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port)
                                    : ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
}

// A TCP connection to 127.0.0.1:port writing `writes` segments of 1000 bytes,
// then closing: the source port, or -errno.
int sendTcp(int port, int writes) {
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return -errno;
  char chunk[1000];
  std::memset(chunk, 'x', sizeof(chunk));
  for (int i = 0; i < writes; ++i) {
    if (write(sock, chunk, sizeof(chunk)) != static_cast<ssize_t>(sizeof(chunk))) return -errno;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // one segment each
  }
  int source = localPortOf(sock);
  shutdown(sock, SHUT_WR);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  close(sock);
  return source;
}

// `count` datagrams of `size` bytes from one socket: its port, or -errno.
int sendDatagrams(int family, const char* address, int port, int count, std::size_t size) {
  int sock = socket(family, SOCK_DGRAM, 0);
  sockaddr_storage to{};
  socklen_t length;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&to);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, address, &in->sin_addr);
    length = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&to);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET6, address, &in6->sin6_addr);
    length = sizeof(sockaddr_in6);
  }
  std::string payload(size, 'u');
  for (int i = 0; i < count; ++i)
    if (sendto(sock, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), length) <
        0)
      return -errno;
  int source = localPortOf(sock);
  close(sock);
  return source;
}

// `count` echo requests with 56 bytes of data from a ping socket: its echo id.
int sendPings(int count) {
  int sock = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  if (sock < 0) return -errno;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < count; ++i) {
    std::uint8_t packet[8 + 56] = {};
    packet[0] = ICMP_ECHO;
    packet[7] = static_cast<std::uint8_t>(i + 1);
    if (sendto(sock, packet, sizeof(packet), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0)
      return -errno;
  }
  int id = localPortOf(sock);  // a ping socket's port is its echo id
  close(sock);
  return id;
}

// One IPv4 UDP packet (8 bytes of header, no data) through an IP_HDRINCL raw
// socket: 0 or errno.
int sendRawUdp(const char* destination, int source_port, int destination_port) {
  int sock = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (sock < 0) return errno;
  std::uint8_t packet[28] = {};
  packet[0] = 0x45;
  packet[3] = sizeof(packet);
  packet[8] = 64;
  packet[9] = IPPROTO_UDP;
  inet_pton(AF_INET, "127.0.0.1", packet + 12);
  inet_pton(AF_INET, destination, packet + 16);
  packet[20] = static_cast<std::uint8_t>(source_port >> 8);
  packet[21] = static_cast<std::uint8_t>(source_port);
  packet[22] = static_cast<std::uint8_t>(destination_port >> 8);
  packet[23] = static_cast<std::uint8_t>(destination_port);
  packet[25] = 8;  // UDP length
  sockaddr_in to{};
  to.sin_family = AF_INET;
  inet_pton(AF_INET, destination, &to.sin_addr);
  int err =
      sendto(sock, packet, sizeof(packet), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0
          ? errno
          : 0;
  close(sock);
  return err;
}

// The records of one flow summed (a long flow may have several).
struct Totals {
  std::size_t records = 0;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  std::uint32_t tcp_flags = 0;
  std::string refused;
};
Totals totalsOf(const std::vector<FlowRecord>& records,
                const std::function<bool(const FlowRecord&)>& match) {
  Totals totals;
  for (const FlowRecord& r : records) {
    if (!match(r)) continue;
    ++totals.records;
    totals.packets += r.packets;
    totals.bytes += r.bytes;
    totals.tcp_flags |= r.tcp_flags;
    totals.refused = r.refused;
  }
  return totals;
}

// What a slice sent in the traffic test, to find its records.
struct Sent {
  int tcp_port = 0;
  int udp_port = 0;
  int udp6_port = 0;
  int echo_id = 0;
};

// Slice A sends TCP, UDP, IPv6 UDP, echo requests, a raw packet and a raw
// packet to a blacklisted destination; slice B one UDP datagram.
Sent sendTraffic(VnetEnvironment& env, NetworkPolicy& policy) {
  Sent sent;
  sent.tcp_port = runInSlice(env.slice_a, [] { return sendTcp(7000, 10); });
  REQUIRE(sent.tcp_port > 0);
  sent.udp_port =
      runInSlice(env.slice_a, [] { return sendDatagrams(AF_INET, "127.0.0.1", 7000, 5, 100); });
  REQUIRE(sent.udp_port > 0);
  sent.udp6_port =
      runInSlice(env.slice_a, [] { return sendDatagrams(AF_INET6, "::1", 7000, 2, 10); });
  REQUIRE(sent.udp6_port > 0);
  sent.echo_id = runInSlice(env.slice_a, [] { return sendPings(3); });
  REQUIRE(sent.echo_id > 0);
  CHECK(runInSlice(
            env.slice_a, [] { return sendRawUdp("127.0.0.1", 40500, 7000); },
            /*as_root=*/true) == 0);
  policy.setBlacklist({parsePrefix("127.0.0.9/32")});
  CHECK(runInSlice(
            env.slice_a, [] { return sendRawUdp("127.0.0.9", 40501, 7000); },
            /*as_root=*/true) == EPERM);
  CHECK(runInSlice(env.slice_b, [] {
          return sendDatagrams(AF_INET, "127.0.0.1", 7000, 1, 20) > 0 ? 0 : 1;
        }) == 0);
  return sent;
}

// A GET to 127.0.0.1:port: the whole response, headers and body.
std::string httpRequest(int port, const std::string& request) {
  int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(port));
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    close(sock);
    return "connect: " + std::string(std::strerror(errno));
  }
  plng::base::writeAll(sock, request, "audit page request");
  // Up to the end, or a reset (a server refusing a request it did not read whole).
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(sock, buffer, sizeof(buffer), 0)) > 0)
    response.append(buffer, static_cast<std::size_t>(n));
  close(sock);
  return response;
}

std::string httpGet(int port, const std::string& target) {
  return httpRequest(port, "GET " + target + " HTTP/1.1\r\nHost: node\r\n\r\n");
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The rows of a PNG image whose pixels are not near white along a run of at
// least `min_run` pixels: the lines a bordered table draws.
std::size_t longHorizontalLines(const std::filesystem::path& png_path, int min_run) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, png_path.c_str())) return 0;
  image.format = PNG_FORMAT_GRAY;
  std::vector<std::uint8_t> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) return 0;
  std::size_t lines = 0;
  for (std::uint32_t y = 0; y < image.height; ++y) {
    int run = 0;
    int longest = 0;
    for (std::uint32_t x = 0; x < image.width; ++x) {
      run = pixels[y * image.width + x] < 200 ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    if (longest >= min_run) ++lines;
  }
  return lines;
}

}  // namespace

TEST_CASE("flow records match the traffic slices sent: TCP, UDP, ICMP echo, raw, refused",
          "[vnet][root][flows]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  policy->setSlice(kXidA, SlicePolicy{.raw_sockets = true, .max_ports = 2000, .reserved = {}});
  int listener = listenAsNode(AF_INET, SOCK_STREAM, 7000);
  Sent sent = sendTraffic(env, *policy);
  CHECK(policy->flowDrops() == 0);

  ScratchDir dir("flows");
  FlowFiles files(dir.path(), 7);
  PolicyFlows source(*policy);
  // Idle at once: every record is taken out of the map.
  FlowDrain drain(source, files, systemFlowClock(), sliceName,
                  FlowDrain::Options{.idle = std::chrono::nanoseconds(1)});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto result = drain.drainOnce();
  CHECK(result.records >= 7);
  CHECK(policy->flows().empty());
  auto records = files.read(0, systemFlowClock().unixNs() + 1'000'000'000);
  for (const FlowRecord& r : records) {
    INFO(formatFlowLine(r));
    CHECK(r.first_seen_ns <= r.last_seen_ns);
    CHECK(r.last_seen_ns <= systemFlowClock().unixNs());
    CHECK(r.last_seen_ns > systemFlowClock().unixNs() - 60'000'000'000);
  }

  // TCP: SYN, the handshake's ACK, ten segments of 1000 bytes, FIN, and ACKs
  // of whatever the node's side sent; headers 40 to 60 bytes each.
  auto tcp = totalsOf(records, [&](const FlowRecord& r) {
    return r.protocol == 6 && r.src_port == static_cast<std::uint32_t>(sent.tcp_port);
  });
  CHECK(tcp.packets >= 13);
  CHECK(tcp.packets <= 16);
  CHECK(tcp.bytes >= 10000 + tcp.packets * 40);
  CHECK(tcp.bytes <= 10000 + tcp.packets * 60);
  CHECK(tcp.tcp_flags == (0x01 | 0x02 | 0x08 | 0x10));  // FIN SYN PSH ACK
  CHECK(tcp.refused.empty());
  auto tcp_record = std::find_if(records.begin(), records.end(), [&](const FlowRecord& r) {
    return r.protocol == 6 && r.src_port == static_cast<std::uint32_t>(sent.tcp_port);
  });
  REQUIRE(tcp_record != records.end());
  CHECK(tcp_record->slice == "pl_alpha");
  CHECK(tcp_record->src == "127.0.0.1");
  CHECK(tcp_record->dst == "127.0.0.1");
  CHECK(tcp_record->dst_port == 7000);

  // UDP: exactly what was sent, 28 bytes of headers per datagram.
  auto udp = totalsOf(records, [&](const FlowRecord& r) {
    return r.protocol == 17 && r.src_port == static_cast<std::uint32_t>(sent.udp_port) &&
           r.src == "127.0.0.1";
  });
  CHECK(udp.packets == 5);
  CHECK(udp.bytes == 5 * (100 + 28));
  auto udp6 = totalsOf(records, [&](const FlowRecord& r) {
    return r.protocol == 17 && r.src_port == static_cast<std::uint32_t>(sent.udp6_port) &&
           r.dst == "::1";
  });
  CHECK(udp6.packets == 2);
  CHECK(udp6.bytes == 2 * (10 + 48));

  // ICMP echo: type 8 code 0, the socket's id; 8 + 56 bytes and the IP header.
  auto echo = totalsOf(records, [&](const FlowRecord& r) {
    return r.protocol == 1 && r.src_port == static_cast<std::uint32_t>(sent.echo_id);
  });
  CHECK(echo.packets == 3);
  CHECK(echo.bytes == 3 * (20 + 8 + 56));
  CHECK(totalsOf(records, [&](const FlowRecord& r) {
          return r.protocol == 1 && r.dst_port == (8u << 8) &&
                 r.src_port == static_cast<std::uint32_t>(sent.echo_id);
        }).records == 1);

  // The raw packet that left, and the one the blacklist refused.
  auto raw = totalsOf(records, [](const FlowRecord& r) {
    return r.protocol == 17 && r.src_port == 40500 && r.dst_port == 7000;
  });
  CHECK(raw.packets == 1);
  CHECK(raw.bytes == 28);
  CHECK(raw.refused.empty());
  auto refused = totalsOf(records, [](const FlowRecord& r) { return r.dst == "127.0.0.9"; });
  CHECK(refused.packets == 1);
  CHECK(refused.refused == "blacklist");
  CHECK(policy->counters(kXidA).at("blacklist") == 1);

  // Slice B's datagram is B's; the node's own traffic is nobody's.
  auto b = totalsOf(records, [](const FlowRecord& r) { return r.slice == "pl_beta"; });
  CHECK(b.packets == 1);
  CHECK(b.bytes == 48);
  CHECK(sendDatagrams(AF_INET, "127.0.0.1", 7000, 1, 1) > 0);
  CHECK(policy->flows().empty());
  close(listener);
}

TEST_CASE("a long flow is written as deltas, once, across a restart of the drain",
          "[vnet][root][flows]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  int listener = listenAsNode(AF_INET, SOCK_DGRAM, 7000);
  ScratchDir dir("flows");
  FlowFiles files(dir.path(), 7);
  PolicyFlows source(*policy);
  // One socket kept open in the slice, sending on demand.
  int to_slice[2];
  REQUIRE(pipe(to_slice) == 0);
  SliceProcess sender(env.slice_a, false, [&] {
    int sock = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(7000);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    std::thread([sock, in = to_slice[0]] {
      char n;
      while (read(in, &n, 1) == 1)
        for (int i = 0; i < n; ++i) send(sock, "0123456789", 10, 0);
    }).detach();
    return 0;
  });
  REQUIRE(sender.result() == 0);
  auto send_from_slice = [&](char n) {
    REQUIRE(write(to_slice[1], &n, 1) == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  };
  const FlowDrain::Options active{.idle = std::chrono::hours(1)};
  {
    FlowDrain drain(source, files, systemFlowClock(), sliceName, active);
    send_from_slice(4);
    CHECK(drain.drainOnce().records == 1);
    send_from_slice(3);
    CHECK(drain.drainOnce().records == 1);
    CHECK(drain.drainOnce().records == 0);  // nothing new
  }
  // sliverd restarts: the map kept counting; only what is new is written.
  send_from_slice(2);
  FlowDrain restarted(source, files, systemFlowClock(), sliceName, active);
  CHECK(restarted.drainOnce().records == 1);
  CHECK(policy->flows().size() == 1);
  auto records = files.read(0, systemFlowClock().unixNs() + 1'000'000'000);
  REQUIRE(records.size() == 3);
  CHECK(records[0].packets == 4);
  CHECK(records[1].packets == 3);
  CHECK(records[2].packets == 2);
  CHECK(records[2].bytes == 2 * 38);
  // One flow: its first packet (converted to unix time at each drain, to the microsecond).
  CHECK(std::abs(records[0].first_seen_ns - records[2].first_seen_ns) < 1'000'000);
  close(to_slice[1]);
  close(listener);
}

TEST_CASE("a full flow map counts the packets it could not record", "[vnet][root][flows]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto options = env.options();
  options.flow_entries = 4;
  auto policy = env.open(options);
  // Ten flows from ten sockets: four fit, the packets of six are counted.
  for (int i = 0; i < 10; ++i)
    REQUIRE(runInSlice(env.slice_a, [] {
              return sendDatagrams(AF_INET, "127.0.0.1", 7000, 1, 1) > 0 ? 0 : 1;
            }) == 0);
  CHECK(policy->flows().size() == 4);
  CHECK(policy->flowDrops() == 6);
  // Packets of a flow that has its record are still counted there.
  auto before = policy->flows();
  ScratchDir dir("flows");
  FlowFiles files(dir.path(), 7);
  PolicyFlows source(*policy);
  FlowDrain drain(source, files, systemFlowClock(), sliceName,
                  FlowDrain::Options{.idle = std::chrono::nanoseconds(1)});
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  auto result = drain.drainOnce();
  CHECK(result.records == 4);
  CHECK(result.drops == 6);
  CHECK(runInSlice(env.slice_a, [] {
          return sendDatagrams(AF_INET, "127.0.0.1", 7000, 2, 1) > 0 ? 0 : 1;
        }) == 0);
  result = drain.drainOnce();
  CHECK(result.new_drops == 0);  // room again after the drain
  CHECK(result.records == 1);

  // Another size: the pinned map is replaced (its records go, with a warning).
  policy.reset();
  options.flow_entries = 8;
  std::vector<std::string> warnings;
  options.log = [&](LogLevel level, const std::string& message) {
    if (level == LogLevel::kWarn) warnings.push_back(message);
  };
  policy = env.open(options);
  CHECK(std::any_of(warnings.begin(), warnings.end(), [](const std::string& warning) {
    return warning.find("the config asks for 8: replaced") != std::string::npos;
  }));
  CHECK(policy->flows().empty());
  CHECK(policy->flowDrops() == 6);  // pinned apart: it keeps counting
}

TEST_CASE("the audit page serves real records over HTTP and Chromium shows the table",
          "[vnet][root][flows]") {
  enterPrivateNetwork();
  VnetEnvironment env;
  auto policy = env.open();
  policy->setSlice(kXidA, SlicePolicy{.raw_sockets = true, .max_ports = 2000, .reserved = {}});
  int listener = listenAsNode(AF_INET, SOCK_STREAM, 7000);
  sendTraffic(env, *policy);
  ScratchDir dir("flows");
  FlowFiles files(dir.path(), 7);
  PolicyFlows source(*policy);
  FlowDrain drain(source, files, systemFlowClock(), sliceName,
                  FlowDrain::Options{.idle = std::chrono::nanoseconds(1)});
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  REQUIRE(drain.drainOnce().records >= 7);

  AuditPages pages(
      files,
      [](const std::string& slice) {
        if (slice != "pl_alpha") return SliceAbout{};
        return SliceAbout{.description = "Latency <measurements> for science",
                          .url = "https://alpha.example.org/",
                          .contacts = {{"Ada Lovelace", "ada@example.org", "pi"}}};
      },
      systemFlowClock(), AuditPages::Options{.hostname = "node1.test", .plc_url = ""});
  plng::app::HttpServer server([&pages](std::string_view target) { return pages.get(target); },
                               plng::app::HttpServer::Options{.listen = "127.0.0.1:0",
                                                              .config_key = "audit_listen",
                                                              .timeout = std::chrono::seconds(2)});
  const int port = server.port();
  REQUIRE(port > 0);

  SECTION("HTTP: HTML and JSON, strict headers, GET only, bounded requests") {
    std::string page = httpGet(port, "/?dst=127.0.0.1");
    CHECK(page.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(page.find("Content-Security-Policy: default-src 'none'") != std::string::npos);
    CHECK(page.find("X-Content-Type-Options: nosniff") != std::string::npos);
    CHECK(page.find("<td>pl_alpha</td>") != std::string::npos);
    CHECK(page.find("<td>pl_beta</td>") != std::string::npos);
    CHECK(page.find("Latency &lt;measurements&gt; for science") != std::string::npos);
    CHECK(page.find("mailto:ada@example.org") != std::string::npos);
    CHECK(count(page, "<tr class=\"flow\">") == 5);               // TCP, UDP, ICMP, raw, B's UDP
    CHECK(page.find("refused: blacklist") == std::string::npos);  // that went elsewhere
    std::string refused = httpGet(port, "/?dst=127.0.0.9");
    CHECK(refused.find("refused: blacklist") != std::string::npos);
    CHECK(count(refused, "<tr class=\"flow\">") == 1);

    std::string json = httpGet(port, "/api/flows?dst=127.0.0.1");
    CHECK(json.find("Content-Type: application/json") != std::string::npos);
    CHECK(json.find("\"slice\": \"pl_alpha\"") != std::string::npos);
    CHECK(json.find("\"protocol\": \"ICMP\"") != std::string::npos);
    CHECK(json.find("\"tcp_flags\": \"FIN,SYN,PSH,ACK\"") != std::string::npos);
    std::string slice = httpGet(port, "/api/slices/pl_alpha");
    CHECK(slice.find("\"refused_packets\": 1") != std::string::npos);
    CHECK(httpGet(port, "/slice/pl_beta").find("1 packets") != std::string::npos);

    CHECK(httpRequest(port, "POST /?dst=127.0.0.1 HTTP/1.1\r\nHost: n\r\nContent-Length: 0\r\n\r\n")
              .starts_with("HTTP/1.1 405"));
    std::string huge =
        "GET /?dst=127.0.0.1 HTTP/1.1\r\nHost: n\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
    CHECK(httpRequest(port, huge).starts_with("HTTP/1.1 431"));  // Request Header Fields Too Large
    CHECK(httpGet(port, "/etc/passwd").starts_with("HTTP/1.1 404"));
    std::string head = httpRequest(port, "HEAD /?dst=127.0.0.1 HTTP/1.1\r\nHost: n\r\n\r\n");
    CHECK(head.starts_with("HTTP/1.1 200"));
    CHECK(head.find("<html") == std::string::npos);
    // A request never finished is dropped at the timeout.
    auto start = std::chrono::steady_clock::now();
    CHECK(httpRequest(port, "GET / HTTP/1.1\r\n").empty());
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    // The page is a node service: slices do not reach it.
    CHECK(runInSlice(env.slice_a, [port] { return connectTcp(AF_INET, "127.0.0.1", port); }) ==
          EPERM);
    CHECK(connectTcp(AF_INET, "127.0.0.1", port) == 0);
  }

  SECTION("headless Chromium: the DOM has the slices' rows and the screenshot shows the table") {
    if (access("/usr/bin/chromium", X_OK) != 0)
      skipTest("no /usr/bin/chromium (Debian's chromium package; deploy/install-deps.sh)");
    // Chromium's own sandbox needs unprivileged user namespaces for a non-root
    // user; as root it refuses to start without --no-sandbox. It only renders
    // the test's own page from loopback in the test's network namespace, and
    // the page has no scripts (its CSP forbids them), so running it unsandboxed
    // here exposes nothing.
    const std::filesystem::path artifacts = PLNG_TEST_ARTIFACT_DIR;
    const std::filesystem::path screenshot = artifacts / "vnet_flows_page.png";
    const std::filesystem::path empty_shot = artifacts / "vnet_flows_page_empty.png";
    const std::filesystem::path dom = dir.path() / "dom.html";
    auto chromium = [&](const std::string& what, const std::string& target) {
      std::string url = "http://127.0.0.1:" + std::to_string(port) + target;
      std::string command = "HOME=" + dir.path().string() +
                            " timeout 90 /usr/bin/chromium --headless --no-sandbox --disable-gpu "
                            "--no-first-run --disable-dev-shm-usage --hide-scrollbars "
                            "--user-data-dir=" +
                            (dir.path() / "profile").string() + " --window-size=1400,1000 " + what +
                            " '" + url + "' 2>" + (dir.path() / "chromium.log").string();
      int status = std::system(command.c_str());
      INFO(command);
      INFO(plng::base::readFileIfExists(dir.path() / "chromium.log").value_or(""));
      REQUIRE(WIFEXITED(status));
      REQUIRE(WEXITSTATUS(status) == 0);
    };
    chromium("--dump-dom > " + dom.string(), "/?dst=127.0.0.1");
    std::string rendered = plng::base::readFile(dom);
    CHECK(count(rendered, "<tr class=\"flow\">") == 5);
    CHECK(rendered.find("<td>pl_alpha</td>") != std::string::npos);
    CHECK(rendered.find("<td>pl_beta</td>") != std::string::npos);

    std::filesystem::remove(screenshot);
    chromium("--screenshot=" + screenshot.string(), "/?dst=127.0.0.1");
    chromium("--screenshot=" + empty_shot.string(), "/?dst=192.0.2.1");
    REQUIRE(std::filesystem::exists(screenshot));
    // The table's borders: long horizontal lines, one above and below each
    // row; the page without records has none.
    std::size_t lines = longHorizontalLines(screenshot, 600);
    INFO("screenshot: " << screenshot.string());
    CHECK(lines >= 2 * 6);  // the heading row and five flows
    CHECK(longHorizontalLines(empty_shot, 600) == 0);
  }
  close(listener);
}
