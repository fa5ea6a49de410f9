#include "sliverd/vnet/flow_log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "base/error.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/strings.h"

namespace plng::sliverd {

namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
constexpr std::int64_t kNsPerHour = 3600 * kNsPerSecond;
constexpr std::string_view kFileSuffix = ".tsv";
constexpr std::string_view kReportedFile = "reported";
constexpr std::size_t kFields = 13;

std::string addressText(std::uint8_t family, const std::uint8_t* address) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 6 ? AF_INET6 : AF_INET, address, text, sizeof(text));
  return text;
}

// The address's bytes in network order (4 or 16); empty when it is not one.
std::string addressBytes(const std::string& text) {
  std::uint8_t bytes[16];
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1) return std::string(bytes, bytes + 4);
  if (inet_pton(AF_INET6, text.c_str(), bytes) == 1) return std::string(bytes, bytes + 16);
  return {};
}

template <typename Number>
bool parseNumber(std::string_view text, Number& out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

std::optional<std::int64_t> parseUnixNs(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ
  if (text.size() != 30 || text[10] != 'T' || text[19] != '.' || text[29] != 'Z') return {};
  tm parts{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  std::int64_t nanos = 0;
  if (!parseNumber(text.substr(0, 4), year) || !parseNumber(text.substr(5, 2), month) ||
      !parseNumber(text.substr(8, 2), day) || !parseNumber(text.substr(11, 2), hour) ||
      !parseNumber(text.substr(14, 2), minute) || !parseNumber(text.substr(17, 2), second) ||
      !parseNumber(text.substr(20, 9), nanos))
    return {};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = minute;
  parts.tm_sec = second;
  return static_cast<std::int64_t>(timegm(&parts)) * kNsPerSecond + nanos;
}

std::int64_t hourStart(std::int64_t unix_ns) {
  std::int64_t seconds = unix_ns / kNsPerSecond;
  return (seconds - seconds % 3600) * kNsPerSecond;
}

// The start of the hour a file holds, from its name; nullopt for other files.
std::optional<std::int64_t> hourOfFile(std::string_view name) {
  if (name.size() != 13 + kFileSuffix.size() || !name.ends_with(kFileSuffix)) return {};
  auto start = parseUnixNs(std::string(name.substr(0, 13)) + ":00:00.000000000Z");
  if (!start || FlowFiles::fileNameOfHour(*start) != name) return {};
  return start;
}

// The complete lines of `path` from `offset`: the text up to its last newline.
std::string completeLinesFrom(const fs::path& path, std::uint64_t offset) {
  base::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return {};  // expired meanwhile
    base::throwErrno("open " + path.string());
  }
  if (lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0)
    base::throwErrno("seek in " + path.string());
  std::string text = base::readAll(fd.get(), path.string());
  auto last = text.rfind('\n');
  text.resize(last == std::string::npos ? 0 : last + 1);
  return text;
}

void forEachLine(std::string_view text, const std::function<void(std::string_view)>& visit) {
  while (!text.empty()) {
    auto end = text.find('\n');
    visit(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
}

}  // namespace

// --- records --------------------------------------------------------------------------

std::string_view flowFileHeader() {
  return "# first_seen\tlast_seen\tslice\txid\tprotocol\tsrc\tsrc_port\tdst\tdst_port\ttcp_flags"
         "\tpackets\tbytes\trefused";
}

std::string formatUnixNs(std::int64_t unix_ns) {
  time_t seconds = static_cast<time_t>(unix_ns / kNsPerSecond);
  tm parts{};
  gmtime_r(&seconds, &parts);
  char text[64];
  snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", parts.tm_year + 1900,
           parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
           static_cast<long long>(unix_ns % kNsPerSecond));
  return text;
}

std::string formatFlowLine(const FlowRecord& r) {
  std::string line;
  auto field = [&line](std::string_view value) {
    if (!line.empty()) line += '\t';
    line += value;
  };
  field(formatUnixNs(r.first_seen_ns));
  field(formatUnixNs(r.last_seen_ns));
  field(r.slice);
  field(std::to_string(r.xid));
  field(std::to_string(r.protocol));
  field(r.src);
  field(std::to_string(r.src_port));
  field(r.dst);
  field(std::to_string(r.dst_port));
  field(std::to_string(r.tcp_flags));
  field(std::to_string(r.packets));
  field(std::to_string(r.bytes));
  field(r.refused.empty() ? "-" : r.refused);
  return line;
}

std::optional<FlowRecord> parseFlowLine(std::string_view line) {
  if (line.empty() || line.front() == '#') return {};
  std::vector<std::string> fields = base::split(line, '\t');
  if (fields.size() != kFields) return {};
  FlowRecord r;
  auto first = parseUnixNs(fields[0]);
  auto last = parseUnixNs(fields[1]);
  if (!first || !last) return {};
  r.first_seen_ns = *first;
  r.last_seen_ns = *last;
  r.slice = fields[2];
  r.src = fields[5];
  r.dst = fields[7];
  r.refused = fields[12] == "-" ? "" : fields[12];
  if (!parseNumber(fields[3], r.xid) || !parseNumber(fields[4], r.protocol) ||
      !parseNumber(fields[6], r.src_port) || !parseNumber(fields[8], r.dst_port) ||
      !parseNumber(fields[9], r.tcp_flags) || !parseNumber(fields[10], r.packets) ||
      !parseNumber(fields[11], r.bytes))
    return {};
  return r;
}

planetlab::v1::FlowRecord toProto(const FlowRecord& r) {
  planetlab::v1::FlowRecord out;
  out.set_slice_name(r.slice);
  out.set_xid(r.xid);
  out.set_protocol(r.protocol);
  out.set_src_addr(addressBytes(r.src));
  out.set_dst_addr(addressBytes(r.dst));
  out.set_src_port(r.src_port);
  out.set_dst_port(r.dst_port);
  out.set_tcp_flags(r.tcp_flags);
  out.set_packets(r.packets);
  out.set_bytes(r.bytes);
  out.set_first_seen_ns(r.first_seen_ns);
  out.set_last_seen_ns(r.last_seen_ns);
  out.set_refused(r.refused);
  return out;
}

std::string protocolName(std::uint32_t protocol) {
  switch (protocol) {
    case 1:
      return "ICMP";
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 58:
      return "ICMPv6";
    default:
      return std::to_string(protocol);
  }
}

std::string tcpFlagNames(std::uint32_t flags) {
  static constexpr const char* kNames[] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
  std::string names;
  for (int bit = 0; bit < 8; ++bit) {
    if (!(flags & (1u << bit))) continue;
    if (!names.empty()) names += ',';
    names += kNames[bit];
  }
  return names;
}

namespace {

class SystemFlowClock final : public FlowClock {
 public:
  std::int64_t unixNs() const override { return read(CLOCK_REALTIME); }
  std::uint64_t monotonicNs() const override {
    return static_cast<std::uint64_t>(read(CLOCK_MONOTONIC));
  }

 private:
  static std::int64_t read(clockid_t clock) {
    timespec now{};
    clock_gettime(clock, &now);
    return static_cast<std::int64_t>(now.tv_sec) * kNsPerSecond + now.tv_nsec;
  }
};

}  // namespace

const FlowClock& systemFlowClock() {
  static const SystemFlowClock clock;
  return clock;
}

// --- files ----------------------------------------------------------------------------

FlowFiles::FlowFiles(fs::path dir, int retention_days)
    : dir_(std::move(dir)), retention_days_(retention_days) {
  fs::create_directories(dir_);
}

std::string FlowFiles::fileNameOfHour(std::int64_t unix_ns) {
  return formatUnixNs(unix_ns).substr(0, 13) + std::string(kFileSuffix);
}

void FlowFiles::append(const std::vector<FlowRecord>& records, std::int64_t now_ns) {
  if (records.empty()) return;
  fs::path path = dir_ / fileNameOfHour(now_ns);
  base::UniqueFd fd(open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
  if (!fd) base::throwErrno("open " + path.string());
  std::string text;
  struct stat info {};
  if (fstat(fd.get(), &info) == 0 && info.st_size == 0) (text += flowFileHeader()) += '\n';
  for (const FlowRecord& record : records) (text += formatFlowLine(record)) += '\n';
  base::writeAll(fd.get(), text, path.string());
}

std::vector<std::string> FlowFiles::files() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    std::string name = entry.path().filename().string();
    if (hourOfFile(name)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());  // the names sort as their hours do
  return names;
}

std::vector<std::string> FlowFiles::expire(std::int64_t now_ns) {
  const std::int64_t keep_from =
      now_ns - static_cast<std::int64_t>(retention_days_) * 24 * kNsPerHour;
  std::vector<std::string> removed;
  for (const std::string& name : files()) {
    if (*hourOfFile(name) + kNsPerHour > keep_from) continue;
    std::error_code ec;
    if (fs::remove(dir_ / name, ec)) removed.push_back(name);
  }
  return removed;
}

std::vector<FlowRecord> FlowFiles::read(std::int64_t since_ns, std::int64_t until_ns) const {
  // A record is written after its last packet: it is in the file of that
  // hour or of a later one.
  const std::int64_t first_hour = hourStart(since_ns);
  std::vector<FlowRecord> records;
  for (const std::string& name : files()) {
    if (*hourOfFile(name) < first_hour) continue;
    forEachLine(completeLinesFrom(dir_ / name, 0), [&](std::string_view line) {
      auto record = parseFlowLine(line);
      if (record && record->last_seen_ns >= since_ns && record->last_seen_ns <= until_ns)
        records.push_back(std::move(*record));
    });
  }
  return records;
}

std::vector<FlowRecord> FlowFiles::recordsSince(FlowCursor& cursor, std::size_t limit) const {
  std::vector<FlowRecord> records;
  for (const std::string& name : files()) {
    if (records.size() >= limit) break;
    if (!cursor.file.empty() && name < cursor.file) continue;
    std::uint64_t offset = name == cursor.file ? cursor.offset : 0;
    std::string text = completeLinesFrom(dir_ / name, offset);
    std::string_view rest = text;
    while (!rest.empty() && records.size() < limit) {
      auto end = rest.find('\n');
      if (auto record = parseFlowLine(rest.substr(0, end))) records.push_back(std::move(*record));
      offset += end + 1;
      rest.remove_prefix(end + 1);
    }
    cursor = FlowCursor{.file = name, .offset = offset};
  }
  return records;
}

// --- the drain ------------------------------------------------------------------------

bool FlowDrain::KeyLess::operator()(const vnet_flow_key& a, const vnet_flow_key& b) const {
  return std::memcmp(&a, &b, sizeof(a)) < 0;
}

FlowDrain::FlowDrain(FlowSource& source, FlowFiles& files, const FlowClock& clock,
                     std::function<std::string(std::uint32_t)> slice_name, Options options)
    : source_(source),
      files_(files),
      clock_(clock),
      slice_name_(std::move(slice_name)),
      options_(options) {
  loadReported();
}

// <dir>/reported: a sequence of (vnet_flow_key, packets, bytes), as this
// host's structs lay them out (a node's own state, never shipped).
struct ReportedEntry {
  vnet_flow_key key;
  std::uint64_t packets;
  std::uint64_t bytes;
};

void FlowDrain::loadReported() {
  auto content = base::readFileIfExists(files_.dir() / kReportedFile);
  if (!content || content->size() % sizeof(ReportedEntry) != 0) return;
  for (std::size_t at = 0; at < content->size(); at += sizeof(ReportedEntry)) {
    ReportedEntry entry{};
    std::memcpy(&entry, content->data() + at, sizeof(entry));
    reported_[entry.key] = Reported{entry.packets, entry.bytes};
  }
}

void FlowDrain::saveReported() const {
  std::string content;
  content.reserve(reported_.size() * sizeof(ReportedEntry));
  for (const auto& [key, counts] : reported_) {
    ReportedEntry entry{key, counts.packets, counts.bytes};
    content.append(reinterpret_cast<const char*>(&entry), sizeof(entry));
  }
  base::writeFileAtomic(files_.dir() / kReportedFile, content, 0640, base::Durability::kNoSync);
}

std::string FlowDrain::nameOf(std::uint32_t xid) {
  // Asked once per slice and drain; a slice removed since keeps its last name.
  if (asked_.insert(xid).second) {
    std::string name = slice_name_ ? slice_name_(xid) : std::string();
    if (!name.empty()) names_[xid] = name;
  }
  auto known = names_.find(xid);
  return known != names_.end() ? known->second : "xid:" + std::to_string(xid);
}

FlowRecord FlowDrain::recordOf(const vnet_flow_key& key, const vnet_flow& flow,
                               const Reported& before) {
  FlowRecord r;
  r.xid = key.xid;
  r.slice = nameOf(key.xid);
  r.protocol = key.protocol;
  r.src = addressText(key.family, key.saddr);
  r.dst = addressText(key.family, key.daddr);
  r.src_port = key.sport;
  r.dst_port = key.dport;
  r.tcp_flags = flow.tcp_flags;
  r.packets = flow.packets - before.packets;
  r.bytes = flow.bytes - before.bytes;
  r.first_seen_ns = static_cast<std::int64_t>(flow.first_seen_ns) + unix_shift_;
  r.last_seen_ns = static_cast<std::int64_t>(flow.last_seen_ns) + unix_shift_;
  r.refused = key.refused ? std::string(vnet::reasonName(key.refused)) : std::string();
  return r;
}

FlowDrain::Result FlowDrain::drainOnce() {
  Result result;
  asked_.clear();
  const std::uint64_t now = clock_.monotonicNs();
  // The programs' stamps are CLOCK_MONOTONIC: unix time is now's, shifted.
  unix_shift_ = clock_.unixNs() - static_cast<std::int64_t>(now);
  const auto idle = static_cast<std::uint64_t>(options_.idle.count());
  std::vector<FlowRecord> records;
  std::map<vnet_flow_key, Reported, KeyLess> still_counted;
  for (const vnet::FlowEntry& entry : source_.flows()) {
    Reported before;
    if (auto known = reported_.find(entry.key); known != reported_.end()) before = known->second;
    vnet_flow flow = entry.flow;
    if (now > flow.last_seen_ns && now - flow.last_seen_ns >= idle) {
      auto last = source_.takeFlow(entry.key);
      if (!last) continue;
      flow = *last;
    } else {
      still_counted[entry.key] = Reported{flow.packets, flow.bytes};
    }
    // Counts below what was written: the map was replaced since.
    if (flow.packets < before.packets || flow.bytes < before.bytes) before = Reported{};
    if (flow.packets == before.packets) continue;
    records.push_back(recordOf(entry.key, flow, before));
  }
  const std::int64_t now_unix = clock_.unixNs();
  files_.append(records, now_unix);
  // After the records: a crash between the two writes the deltas of active
  // flows once more (docs/vnet.md).
  if (!records.empty() || still_counted.size() != reported_.size()) {
    reported_ = std::move(still_counted);
    saveReported();
  }
  result.records = records.size();
  result.drops = source_.flowDrops();
  result.new_drops = drops_ && result.drops > *drops_ ? result.drops - *drops_ : 0;
  drops_ = result.drops;
  result.expired = files_.expire(now_unix);
  return result;
}

}  // namespace plng::sliverd
