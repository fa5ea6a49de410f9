#include "tests/vnet/vnet_fixture.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "base/error.h"
#include "tests/support/skip.h"
#include "vnet-bpf/discard.skel.h"

namespace plng::test {
namespace fs = std::filesystem;

namespace {

constexpr uid_t kSliceUid = 61000;  // no capability in the node's namespace

void writeFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// In the child: joins `cgroup`, drops to the slice uid unless `as_root`.
void becomeSlice(const fs::path& cgroup, bool as_root) {
  std::string pid = std::to_string(getpid());
  int fd = open((cgroup / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, pid.data(), pid.size()) < 0) _exit(120);
  close(fd);
  if (!as_root) {
    if (setgroups(0, nullptr) != 0 || setresgid(kSliceUid, kSliceUid, kSliceUid) != 0 ||
        setresuid(kSliceUid, kSliceUid, kSliceUid) != 0)
      _exit(121);
  }
}

}  // namespace

void enterPrivateNetwork() {
  requireRoot();
  if (unshare(CLONE_NEWNET) != 0)
    skipTest(std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno));
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq request{};
  std::strcpy(request.ifr_name, "lo");
  if (ioctl(sock, SIOCGIFFLAGS, &request) != 0) base::throwErrno("SIOCGIFFLAGS lo");
  request.ifr_flags |= IFF_UP;
  if (ioctl(sock, SIOCSIFFLAGS, &request) != 0) base::throwErrno("SIOCSIFFLAGS lo");
  close(sock);
  // Per network namespace: ping sockets for every group, gone with the namespace.
  writeFile("/proc/sys/net/ipv4/ping_group_range", "0 2147483647");
}

SliceProcess::SliceProcess(const fs::path& cgroup, bool as_root,
                           const std::function<int()>& setup) {
  int report[2];
  int hold[2];
  if (pipe2(report, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0) base::throwErrno("pipe");
  pid_ = fork();
  if (pid_ < 0) base::throwErrno("fork");
  if (pid_ == 0) {
    close(report[0]);
    close(hold[1]);
    becomeSlice(cgroup, as_root);
    int result = setup();
    if (write(report[1], &result, sizeof(result)) != sizeof(result)) _exit(122);
    char byte;
    while (read(hold[0], &byte, 1) > 0) {
    }
    _exit(0);
  }
  close(report[1]);
  close(hold[0]);
  // The write end of `hold` stays open in this process: the child holds until killed.
  report_fd_ = report[0];
}

int SliceProcess::result() {
  if (!result_) {
    int value = -1;
    if (read(report_fd_, &value, sizeof(value)) != sizeof(value))
      throw std::runtime_error("slice process died before reporting");
    result_ = value;
  }
  return *result_;
}

SliceProcess::~SliceProcess() { stop(); }

void SliceProcess::stop() {
  if (report_fd_ >= 0) close(report_fd_);
  report_fd_ = -1;
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

int runInSlice(const fs::path& cgroup, const std::function<int()>& body, bool as_root) {
  SliceProcess process(cgroup, as_root, body);
  return process.result();
}

VnetEnvironment::VnetEnvironment() {
  static std::atomic<int> counter{0};
  slivers = sandbox.roots().unified / "slivers";
  slice_a = slivers / "a";
  slice_b = slivers / "b";
  fs::create_directories(slice_a);
  fs::create_directories(slice_b);
  pin_dir = fs::path("/sys/fs/bpf") /
            ("plng-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
}

VnetEnvironment::~VnetEnvironment() {
  try {
    vnet::NetworkPolicy::removePinned(pin_dir);
  } catch (const std::exception&) {
  }
}

vnet::PolicyOptions VnetEnvironment::options() const {
  vnet::PolicyOptions options;
  options.pin_dir = pin_dir;
  options.slivers_cgroup = slivers;
  options.node_ports = {{proto::Transport::kTcp, 22, 22}, {proto::Transport::kTcp, 5555, 5555}};
  options.service_allowlist = {{proto::Transport::kTcp, 7000, 7000},
                               {proto::Transport::kUdp, 7000, 7000}};
  return options;
}

std::unique_ptr<vnet::NetworkPolicy> VnetEnvironment::open(
    std::optional<vnet::PolicyOptions> given) {
  auto policy = std::make_unique<vnet::NetworkPolicy>(given ? *given : options());
  policy->setSliverCgroup(vnet::NetworkPolicy::cgroupId(slice_a), kXidA);
  policy->setSliverCgroup(vnet::NetworkPolicy::cgroupId(slice_b), kXidB);
  return policy;
}

namespace {

socklen_t fillAddress(int family, const char* address, int port, sockaddr_storage& storage) {
  std::memset(&storage, 0, sizeof(storage));
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(port));
    inet_pton(AF_INET, address, &in->sin_addr);
    return sizeof(sockaddr_in);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(static_cast<std::uint16_t>(port));
  inet_pton(AF_INET6, address, &in6->sin6_addr);
  return sizeof(sockaddr_in6);
}

int localPort(int sock) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  getsockname(sock, reinterpret_cast<sockaddr*>(&storage), &length);
  return storage.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port)
                                      : ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
}

}  // namespace

int bindSocket(int family, int type, int port, bool reuseaddr, bool reuseport, bool v4mapped,
               int* bound) {
  int sock = socket(family, type, 0);
  if (sock < 0) return errno;
  int one = 1;
  if (reuseaddr) setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (reuseport) setsockopt(sock, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  sockaddr_storage storage{};
  socklen_t length =
      fillAddress(family, family == AF_INET ? "0.0.0.0" : (v4mapped ? "::ffff:127.0.0.1" : "::"),
                  port, storage);
  if (bind(sock, reinterpret_cast<sockaddr*>(&storage), length) != 0) return errno;
  if (type == SOCK_STREAM && listen(sock, 16) != 0) return errno;
  if (bound) *bound = localPort(sock);
  return 0;
}

int listenAsNode(int family, int type, int port, bool any_address) {
  int sock = socket(family, type | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage storage{};
  const char* address =
      family == AF_INET ? (any_address ? "0.0.0.0" : "127.0.0.1") : (any_address ? "::" : "::1");
  socklen_t length = fillAddress(family, address, port, storage);
  if (bind(sock, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      (type == SOCK_STREAM && listen(sock, 1024) != 0))
    base::throwErrno(std::string("node listener on ") + address + ":" + std::to_string(port));
  return sock;
}

int connectTcp(int family, const char* address, int port) {
  int sock = socket(family, SOCK_STREAM, 0);
  if (sock < 0) return errno;
  sockaddr_storage storage{};
  socklen_t length = fillAddress(family, address, port, storage);
  int rc = connect(sock, reinterpret_cast<sockaddr*>(&storage), length);
  int err = rc == 0 ? 0 : errno;
  close(sock);
  return err;
}

int sendUdp(int family, const char* address, int port, int* local_port, bool reuseaddr) {
  int sock = socket(family, SOCK_DGRAM, 0);
  if (sock < 0) return errno;
  int one = 1;
  if (reuseaddr) setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage storage{};
  socklen_t length = fillAddress(family, address, port, storage);
  if (sendto(sock, "x", 1, 0, reinterpret_cast<sockaddr*>(&storage), length) != 1) return errno;
  if (local_port) *local_port = localPort(sock);
  return 0;  // kept open
}

void attachUdpDiscard(const char* device) {
  unsigned index = if_nametoindex(device);
  if (index == 0) base::throwErrno(std::string("no device ") + device);
  vnet_discard* skeleton = vnet_discard::open_and_load();
  if (!skeleton) base::throwErrno("load of the discard program");
  int rc = bpf_xdp_attach(static_cast<int>(index), bpf_program__fd(skeleton->progs.vnet_discard),
                          XDP_FLAGS_DRV_MODE, nullptr);
  vnet_discard::destroy(skeleton);  // the attachment holds the program
  if (rc != 0) throw base::SysError(-rc, std::string("XDP attach to ") + device);
}

}  // namespace plng::test
