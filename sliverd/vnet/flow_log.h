// Flow auditing on the node (docs/vnet.md, "Flow auditing"): the per-flow
// records vnet-bpf's egress program keeps, drained every few seconds into
// hourly files, kept a number of days, and read back for the node's "who sent
// this?" page and for shipping to PLC.
//
//   <dir>/YYYY-MM-DDTHH.tsv  the records drained during that hour (UTC), one per
//                            line (formatFlowLine), after a "#" header line
//   <dir>/reported           what the files hold already of the flows the map
//                            still counts, so that a restarted sliverd writes
//                            only what is new
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "proto/plc.pb.h"
#include "vnet-bpf/network_policy.h"

namespace plng::sliverd {

// One record: what a slice sent to one destination in one flow, since the
// previous record of the same flow. Converts one to one to
// planetlab.v1.FlowRecord (toProto).
struct FlowRecord {
  std::string slice;  // its name; "xid:<n>" when the node no longer knows it
  std::uint32_t xid = 0;
  std::uint32_t protocol = 0;  // IP protocol number: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6
  std::string src;             // addresses as text ("192.0.2.1", "2001:db8::1")
  std::string dst;
  std::uint32_t src_port = 0;  // TCP/UDP; ICMP echo: its id
  std::uint32_t dst_port = 0;  // TCP/UDP; ICMP: type << 8 | code
  std::uint32_t tcp_flags = 0;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  std::int64_t first_seen_ns = 0;  // unix time: the flow's first packet
  std::int64_t last_seen_ns = 0;   // its last packet counted here
  std::string refused;             // empty: sent; else the policy's reason ("blacklist", ...)
  bool operator==(const FlowRecord&) const = default;
};

// A record as one line of the files (no newline), and back; nullopt for a
// line that is not one (the header, a torn last line).
std::string formatFlowLine(const FlowRecord& record);
std::optional<FlowRecord> parseFlowLine(std::string_view line);
// The header line each file starts with.
std::string_view flowFileHeader();
planetlab::v1::FlowRecord toProto(const FlowRecord& record);
// "TCP", "UDP", "ICMP", "ICMPv6" or the number.
std::string protocolName(std::uint32_t protocol);
// "SYN,ACK,FIN" for TCP flags; empty for none.
std::string tcpFlagNames(std::uint32_t flags);
// "2026-12-03T10:00:01.123456789Z".
std::string formatUnixNs(std::int64_t unix_ns);

// The drain's two clocks: the programs stamp packets with CLOCK_MONOTONIC, the
// files carry unix time.
class FlowClock {
 public:
  virtual ~FlowClock() = default;
  virtual std::int64_t unixNs() const = 0;
  virtual std::uint64_t monotonicNs() const = 0;
};
const FlowClock& systemFlowClock();

// Where records come from: vnet-bpf's map (NetworkIsolation), a fake in tests.
class FlowSource {
 public:
  virtual ~FlowSource() = default;
  virtual std::vector<vnet::FlowEntry> flows() = 0;
  virtual std::optional<vnet_flow> takeFlow(const vnet_flow_key& key) = 0;
  virtual std::uint64_t flowDrops() = 0;
};

// A position in the files: what comes after it has not been read.
struct FlowCursor {
  std::string file;  // "YYYY-MM-DDTHH.tsv"; empty: before the oldest file
  std::uint64_t offset = 0;
  bool operator==(const FlowCursor&) const = default;
};

// The hourly files. Appending (the drain) and reading (the page, the shipper)
// may run on different threads: a file only grows by whole lines written at
// once, and readers stop at the last complete line.
class FlowFiles {
 public:
  FlowFiles(std::filesystem::path dir, int retention_days);
  const std::filesystem::path& dir() const { return dir_; }

  // Appends to the file of the hour of `now_ns` (created with its header).
  void append(const std::vector<FlowRecord>& records, std::int64_t now_ns);
  // Deletes the files of hours that ended more than retention_days before
  // `now_ns`; returns their names.
  std::vector<std::string> expire(std::int64_t now_ns);
  // Records whose last packet was seen in [since_ns, until_ns].
  std::vector<FlowRecord> read(std::int64_t since_ns, std::int64_t until_ns) const;
  // The shipping seam: up to `limit` records written after `cursor`, oldest
  // first; `cursor` moves past them (persist it to resume after a restart).
  std::vector<FlowRecord> recordsSince(FlowCursor& cursor, std::size_t limit) const;
  // The hourly files present, oldest first.
  std::vector<std::string> files() const;

  static std::string fileNameOfHour(std::int64_t unix_ns);

 private:
  std::filesystem::path dir_;
  int retention_days_;
};

// Moves records from the map into the files. A flow idle for `idle` is taken
// out of the map (its last counts); an active one stays, and each drain writes
// what it counted since the drain before (its delta), remembered in
// <dir>/reported. Runs on one thread.
class FlowDrain {
 public:
  struct Options {
    std::chrono::nanoseconds idle = std::chrono::seconds(10);
  };
  // `slice_name` names a slice by xid (empty: unknown to the node).
  FlowDrain(FlowSource& source, FlowFiles& files, const FlowClock& clock,
            std::function<std::string(std::uint32_t)> slice_name, Options options);

  struct Result {
    std::size_t records = 0;           // lines written
    std::uint64_t drops = 0;           // the map's drop counter
    std::uint64_t new_drops = 0;       // its growth since the previous drain
    std::vector<std::string> expired;  // files deleted by retention
  };
  Result drainOnce();

 private:
  struct Reported {
    std::uint64_t packets = 0;
    std::uint64_t bytes = 0;
  };
  struct KeyLess {
    bool operator()(const vnet_flow_key& a, const vnet_flow_key& b) const;
  };
  void loadReported();
  void saveReported() const;
  std::string nameOf(std::uint32_t xid);
  FlowRecord recordOf(const vnet_flow_key& key, const vnet_flow& flow, const Reported& before);

  FlowSource& source_;
  FlowFiles& files_;
  const FlowClock& clock_;
  std::function<std::string(std::uint32_t)> slice_name_;
  Options options_;
  std::map<vnet_flow_key, Reported, KeyLess> reported_;
  std::map<std::uint32_t, std::string> names_;  // every name seen, for slices since removed
  std::set<std::uint32_t> asked_;               // xids looked up in this drain
  std::optional<std::uint64_t> drops_;
  std::int64_t unix_shift_ = 0;  // unix time minus CLOCK_MONOTONIC, at this drain
};

}  // namespace plng::sliverd
