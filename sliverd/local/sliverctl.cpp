// sliverctl: the local API from a shell, inside a sliver or on the node.
//
// sliverd decides who the caller is from the kernel (the cgroup of the calling
// process), so the same command means "my sliver" inside a sliver and needs a
// slice name on the host.
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/status_name.h"
#include "sliverd/local/capture_stream.h"
#include "sliverd/local/local_protocol.h"

namespace {

constexpr int kExitUsage = 64;        // EX_USAGE
constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE: no sliverd to talk to

constexpr const char* kUsage =
    R"(usage: sliverctl [--socket PATH] [--timeout SECONDS] [--json] COMMAND [SLICE]

Talks to sliverd's local API. Inside a sliver, SLICE defaults to your own
sliver; on the host, name one. sliverd identifies the caller by its cgroup:
a sliver acts on itself (and on the slivers its `proper` tag grants with
sliver_control:<slice> or sliver_control:*), root on the host on every sliver,
other host users may only read.

commands:
  list              the slivers you may see (yours; on the host: all)
  get [SLICE]       one sliver: state, granted and effective resources, usage
  start [SLICE]     start the sliver (no-op when running)
  stop [SLICE]      stop the sliver (SIGTERM to its init, SIGKILL after a grace)
  restart [SLICE]   stop, then start
  ports [SLICE|*]   the ports the slice holds (bound by its sockets, claimed by
                    its raw or ping traffic) and has reserved (its `ports` tag),
                    its cap, and what the network policy refused it, by reason;
                    `*` (the node's root): every owner, the node's ports included
  capture -w FILE [-i IF] [-c COUNT] [--seconds S] [EXPR]
                    your slice's own packets as a pcap file (`sliverctl capture
                    --help`); inside a sliver only
  net [SLICE]       the slice's daily byte budget: bytes sent and received in
                    its 24-hour window, the window, the ceil in force and
                    whether the budget lowered it

options:
  --socket PATH     the local API socket (default: $SLIVERD_SOCKET, else
                    /run/sliverd/api/sliverd.sock on the host, and
                    /run/sliverd/sliverd.sock inside slivers)
  --timeout SECONDS how long to wait for sliverd's answer (default 60; 5 s at
                    most to be let in)
  --json            print the answer as JSON (proto3 JSON mapping)
  -h, --help        this text

exit status: 0 on success; the gRPC status code of a refused call (e.g. 5
NOT_FOUND, 7 PERMISSION_DENIED, 9 FAILED_PRECONDITION); 4 DEADLINE_EXCEEDED when
sliverd did not answer within the timeout (the call may still take effect); 64
for a usage error; 69 when sliverd cannot be reached.
)";

void printPorts(const planetlab::v1::GetPortsResponse& ports) {
  std::printf("%-6s %-11s %-24s %-9s %s\n", "PROTO", "PORT", "SLICE", "HOLD", "SOCKETS");
  std::size_t held = 0;
  for (const auto& p : ports.ports()) {
    std::string range = std::to_string(p.first_port());
    if (p.last_port() != p.first_port()) range += "-" + std::to_string(p.last_port());
    const std::string owner = p.slice_name().empty() ? "(node)" : p.slice_name();
    const std::string sockets = p.kind() == "bound" ? std::to_string(p.sockets()) : "-";
    std::printf("%-6s %-11s %-24s %-9s %s\n", p.protocol().c_str(), range.c_str(), owner.c_str(),
                p.kind().c_str(), sockets.c_str());
    if (p.kind() == "bound" || p.kind() == "claimed") ++held;
  }
  if (ports.max_ports() != 0) {
    std::printf("%zu ports held of at most %u at once\n", held, ports.max_ports());
  }
  // Sorted by reason, so the output reads the same each time.
  const std::map<std::string, std::uint64_t> refusals(ports.refusals().begin(),
                                                      ports.refusals().end());
  for (const auto& [reason, count] : refusals) {
    std::printf("refused (%s): %llu\n", reason.c_str(), static_cast<unsigned long long>(count));
  }
}

std::string utc(std::int64_t unix_seconds) {
  const std::time_t t = unix_seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

void printNetUsage(const planetlab::v1::NetUsage& u) {
  std::printf("slice:    %s\n", u.slice_name().c_str());
  if (u.daily_bytes() == 0) {
    std::printf("budget:   none (net_daily_bytes = 0)\n");
  } else {
    std::printf("budget:   %llu bytes a day\n", static_cast<unsigned long long>(u.daily_bytes()));
  }
  std::printf("sent:     %llu bytes", static_cast<unsigned long long>(u.bytes_used()));
  if (u.daily_bytes() != 0) {
    std::printf(" (%.1f%% of the budget)",
                100.0 * static_cast<double>(u.bytes_used()) / static_cast<double>(u.daily_bytes()));
  }
  std::printf("\nreceived: %llu bytes\n", static_cast<unsigned long long>(u.bytes_received()));
  std::printf("window:   %s .. %s\n", utc(u.window_start()).c_str(), utc(u.window_end()).c_str());
  if (u.ceil_bps() == 0) {
    std::printf("ceil:     none (the node does not shape its uplink)\n");
  } else {
    std::printf("ceil:     %llu bit/s%s\n", static_cast<unsigned long long>(u.ceil_bps()),
                u.capped() ? " (capped: lowered by the daily byte budget)" : "");
  }
}

std::string bytes(std::uint64_t n) {
  if (n == 0) return "-";
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double v = static_cast<double>(n);
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f%s" : "%.1f%s", v, units[u]);
  return buf;
}

std::string rspecLine(const planetlab::v1::RSpec& r) {
  return "cpu_share=" + std::to_string(r.cpu_share()) +
         " cpu_cap_pct=" + std::to_string(r.cpu_cap_pct()) +
         " mem_limit=" + bytes(r.mem_limit_bytes()) + " tasks=" + std::to_string(r.tasks()) +
         " disk_quota=" + bytes(r.disk_quota_bytes()) +
         " net_min_rate=" + std::to_string(r.net_min_rate()) +
         " net_max_rate=" + std::to_string(r.net_max_rate());
}

void printSliver(const planetlab::v1::SliverInfo& s) {
  std::cout << "slice:      " << s.slice_name() << "\n"
            << "xid:        " << s.xid() << "\n"
            << "state:      " << s.state() << "\n"
            << "source:     " << s.source() << "\n"
            << "expires_at: " << s.expires_at() << "\n"
            << "granted:    " << rspecLine(s.rspec()) << "\n"
            << "effective:  " << rspecLine(s.effective()) << "\n"
            << "init_pid:   " << s.init_pid() << "\n"
            << "memory:     " << bytes(s.memory_bytes()) << "\n"
            << "cpu_usage:  " << s.cpu_usage_ns() / 1000000 << " ms\n"
            << "tasks:      " << s.tasks() << "\n";
  if (!s.message().empty()) std::cout << "message:    " << s.message() << "\n";
}

void printJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::cout << json << "\n";
}

// A client of sliverd's local API; nullopt (said on stderr) when it cannot be reached.
std::optional<plng::sliverd::LocalApiClient> connect(const std::string& socket_path,
                                                     std::chrono::milliseconds timeout) {
  std::optional<plng::sliverd::LocalApiClient> client;
  try {
    client.emplace(socket_path, timeout, std::min(timeout, plng::sliverd::kLocalConnectTimeout));
  } catch (const std::exception& e) {
    std::cerr << "sliverctl: " << e.what() << " (is sliverd running? --socket names another)\n";
  }
  return client;
}

// The exit status of a refused call, said on stderr.
int refused(const grpc::Status& status) {
  std::cerr << "sliverctl: " << plng::statusCodeName(status.error_code()) << ": "
            << status.error_message() << "\n";
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ? kExitUnavailable
                                                              : status.error_code();
}

constexpr const char* kCaptureUsage =
    R"(usage: sliverctl [--socket PATH] capture -w FILE [-i INTERFACE] [-c COUNT]
                 [--seconds SECONDS] [--snaplen BYTES] [EXPRESSION...]

Writes your slice's own packets to FILE as a pcap file that `tcpdump -r FILE`
reads: packets your slice sends (from ports and ICMP echo ids it holds) and
packets sent to it, on every interface of the node or the one named, IPv4 and
IPv6 (link type RAW: each record starts at the IP header). Never another
slice's packets, nor the node's, nor ARP. sliverd makes the capture and streams
it to sliverctl: slices without the net_capture tag (which lets stock tcpdump
run in the sliver) use this. Run it inside your sliver.

  -w FILE         where the pcap goes; "-" = standard output, e.g.
                  `sliverctl capture -w - | tcpdump -r -`
  -i INTERFACE    one interface (default: all)
  -c COUNT        stop after COUNT packets (default 1000, at most 1000000)
  --seconds SECONDS
                  stop after SECONDS (default 60, at most 3600)
  --snaplen BYTES bytes kept of each packet (default and most 262144)
  EXPRESSION      a tcpdump filter expression: the stream is handed to the
                  sliver's own tcpdump (`tcpdump -r - -w FILE -c COUNT
                  EXPRESSION`), which must be installed; COUNT then counts
                  matching packets

Ctrl-C stops it; what was captured until then is in FILE. sliverctl prints
what sliverd applied (count, seconds) on standard error.

exit status: 0 when the capture ended (count or time reached, or sliverd ended
it); the gRPC status code of a refused capture (7 PERMISSION_DENIED outside a
sliver, 14 UNAVAILABLE without network isolation, 8 RESOURCE_EXHAUSTED when
the node runs too many captures); 64 for a usage error.
)";

// A positive number argument of capture's options, or nullopt.
std::optional<std::uint32_t> positive(const std::string& text) {
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const auto value = static_cast<std::uint32_t>(std::stoul(text));
  if (value == 0) return std::nullopt;
  return value;
}

int capture(const std::string& socket_path, std::chrono::milliseconds timeout,
            const std::vector<std::string>& args) {
  planetlab::v1::CaptureRequest request;
  std::string file;
  std::vector<std::string> expression;
  std::uint32_t count = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    const bool has_value = i + 1 < args.size();
    if (arg == "-h" || arg == "--help") {
      std::cout << kCaptureUsage;
      return 0;
    } else if (arg == "-w" && has_value) {
      file = args[++i];
    } else if (arg == "-i" && has_value) {
      request.set_interface(args[++i]);
    } else if ((arg == "-c" || arg == "--seconds" || arg == "--snaplen") && has_value) {
      const auto value = positive(args[++i]);
      if (!value) {
        std::cerr << "sliverctl capture: " << arg << " takes a positive number, not '" << args[i]
                  << "'\n";
        return kExitUsage;
      }
      if (arg == "-c") count = *value;
      if (arg == "--seconds") request.set_seconds(*value);
      if (arg == "--snaplen") request.set_snaplen(*value);
    } else if (arg == "--") {
      expression.insert(expression.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    } else if (!arg.empty() && arg[0] == '-') {
      std::cerr << "sliverctl capture: unknown option " << arg << "\n" << kCaptureUsage;
      return kExitUsage;
    } else {
      expression.push_back(arg);
    }
  }
  if (file.empty()) {
    std::cerr << "sliverctl capture: -w FILE is required (\"-\" for standard output)\n";
    return kExitUsage;
  }
  // With an expression tcpdump counts the matching packets; sliverd's bound
  // is then the most it sends.
  request.set_count(expression.empty() ? count : plng::sliverd::kMaxCapturePackets);

  std::optional<plng::sliverd::LocalApiClient> client = connect(socket_path, timeout);
  if (!client) return kExitUnavailable;
  planetlab::v1::CaptureResponse applied;
  const grpc::Status status = client->capture(request, &applied);
  if (!status.ok()) return refused(status);
  std::cerr << "sliverctl: capturing your slice's packets on "
            << (request.interface().empty() ? "every interface" : request.interface())
            << " for at most " << applied.count() << " packets and " << applied.seconds() << " s\n";
  const int stream = client->connection();
  if (!expression.empty()) {
    // The sliver's own tcpdump filters the stream, reading it from stdin.
    if (::dup2(stream, STDIN_FILENO) < 0) return kExitUnavailable;
    std::vector<std::string> argv = {"tcpdump", "-r", "-", "-w", file};
    if (count != 0) {
      argv.push_back("-c");
      argv.push_back(std::to_string(count));
    }
    argv.push_back("--");
    argv.insert(argv.end(), expression.begin(), expression.end());
    std::vector<char*> pointers;
    for (auto& word : argv) pointers.push_back(word.data());
    pointers.push_back(nullptr);
    ::execvp("tcpdump", pointers.data());
    std::cerr << "sliverctl capture: cannot run tcpdump for the filter expression ("
              << std::strerror(errno) << "); without one, filter afterwards with "
              << "`tcpdump -r FILE EXPRESSION`\n";
    return kExitUnavailable;
  }
  const int out = file == "-"
                      ? STDOUT_FILENO
                      : ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    std::cerr << "sliverctl capture: " << file << ": " << std::strerror(errno) << "\n";
    return kExitUsage;
  }
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(stream, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buffer + done, static_cast<std::size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        std::cerr << "sliverctl capture: writing " << file << ": " << std::strerror(errno) << "\n";
        return kExitUnavailable;
      }
      done += w;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path;
  if (const char* env = std::getenv("SLIVERD_SOCKET")) socket_path = env;
  if (socket_path.empty()) {
    // The host's <run_dir>/api is bound at /run/sliverd inside slivers.
    socket_path = ::access("/run/sliverd/api/sliverd.sock", F_OK) == 0
                      ? "/run/sliverd/api/sliverd.sock"
                      : "/run/sliverd/sliverd.sock";
  }
  bool json = false;
  std::chrono::milliseconds timeout = plng::sliverd::kLocalCallTimeout;
  auto parseTimeout = [&](const std::string& text) {
    char* end = nullptr;
    double secs = std::strtod(text.c_str(), &end);
    if (text.empty() || end == nullptr || *end != '\0' || !(secs > 0) || secs > 86400) {
      return false;
    }
    timeout = std::chrono::milliseconds(static_cast<long long>(secs * 1000 + 0.5));
    return timeout.count() > 0;
  };
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--socket" && i + 1 < argc) {
      socket_path = argv[++i];
    } else if (arg.rfind("--socket=", 0) == 0) {
      socket_path = arg.substr(9);
    } else if ((arg == "--timeout" && i + 1 < argc) || arg.rfind("--timeout=", 0) == 0) {
      const std::string value = arg == "--timeout" ? argv[++i] : arg.substr(10);
      if (!parseTimeout(value)) {
        std::cerr << "sliverctl: --timeout takes seconds (more than 0, at most 86400), not '"
                  << value << "'\n";
        return kExitUsage;
      }
    } else if (arg == "capture") {
      // Its own options follow (kCaptureUsage).
      return capture(socket_path, timeout, std::vector<std::string>(argv + i + 1, argv + argc));
    } else if (!arg.empty() && arg[0] == '-') {
      std::cerr << "sliverctl: unknown option " << arg << "\n" << kUsage;
      return kExitUsage;
    } else {
      words.push_back(arg);
    }
  }
  if (words.empty() || words.size() > 2 || (words[0] == "list" && words.size() > 1)) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string& command = words[0];
  const std::string slice = words.size() > 1 ? words[1] : "";

  std::optional<plng::sliverd::LocalApiClient> client = connect(socket_path, timeout);
  if (!client) return kExitUnavailable;

  grpc::Status status;
  planetlab::v1::ListSliversResponse list;
  planetlab::v1::SliverInfo info;
  planetlab::v1::GetPortsResponse ports;
  planetlab::v1::NetUsage net;
  if (command == "list") {
    status = client->listSlivers(&list);
  } else if (command == "get") {
    status = client->getSliver(slice, &info);
  } else if (command == "start") {
    status = client->startSliver(slice, &info);
  } else if (command == "stop") {
    status = client->stopSliver(slice, &info);
  } else if (command == "restart") {
    status = client->restartSliver(slice, &info);
  } else if (command == "ports") {
    status = client->getPorts(slice, &ports);
  } else if (command == "net") {
    status = client->getNetUsage(slice, &net);
  } else {
    std::cerr << "sliverctl: unknown command " << command << "\n" << kUsage;
    return kExitUsage;
  }
  if (!status.ok()) return refused(status);
  if (command == "list") {
    if (json) {
      printJson(list);
    } else {
      std::printf("%-24s %6s %-9s %-10s %9s %9s %8s  %s\n", "SLICE", "XID", "STATE", "SOURCE",
                  "CPU", "MEMORY", "INIT", "MESSAGE");
      for (const auto& s : list.slivers()) {
        // Why a sliver is failed or stopped, or what was applied other than
        // granted: the last column, so a failure is never a bare state.
        std::printf("%-24s %6u %-9s %-10s %9s %9s %8u  %s\n", s.slice_name().c_str(), s.xid(),
                    s.state().c_str(), s.source().c_str(),
                    std::to_string(s.effective().cpu_share()).c_str(),
                    bytes(s.memory_bytes()).c_str(), s.init_pid(), s.message().c_str());
      }
    }
  } else if (command == "ports") {
    if (json) {
      printJson(ports);
    } else {
      printPorts(ports);
    }
  } else if (command == "net") {
    if (json) {
      printJson(net);
    } else {
      printNetUsage(net);
    }
  } else if (json) {
    printJson(info);
  } else {
    printSliver(info);
  }
  return 0;
}
