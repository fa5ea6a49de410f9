// The local API for real: a unix socket served by LocalApiServer, callers
// identified by the kernel. sliverctl runs as a process placed into a sliver's
// cgroup (in this test's private cgroup2 subtree) and must be taken for that
// slice; root on the host sees everything; other host users may only read.
// A fake SliverRuntime keeps this independent of the launcher.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "error.h"
#include "local_protocol.h"
#include "local_server.h"
#include "node_cgroup_sandbox.h"
#include "node_skip.h"
#include "rcaps.h"
#include "reconciler.h"

namespace v1 = planetlab::v1;
namespace fs = std::filesystem;
using namespace plng::sliverd;

namespace {

class FakeRuntime : public plng::node::SliverRuntime {
 public:
  void add(plng::node::SliverConfig config, plng::node::SliverPhase phase) {
    std::lock_guard lock(mutex_);
    plng::node::SliverStatus s;
    s.config = config;
    s.phase = phase;
    s.init_pid = phase == plng::node::SliverPhase::kRunning ? 4242 : 0;
    s.usage.memory_bytes = 1 << 20;
    slivers_[config.slice] = s;
  }
  plng::node::SliverPhase phase(const std::string& slice) {
    std::lock_guard lock(mutex_);
    return slivers_.at(slice).phase;
  }
  std::vector<std::string> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::vector<plng::node::SliverStatus> list() override {
    std::lock_guard lock(mutex_);
    std::vector<plng::node::SliverStatus> out;
    for (auto& [name, s] : slivers_) out.push_back(s);
    return out;
  }
  std::optional<plng::node::SliverStatus> get(std::string_view slice) override {
    std::lock_guard lock(mutex_);
    auto it = slivers_.find(std::string(slice));
    if (it == slivers_.end()) return std::nullopt;
    return it->second;
  }
  void create(const plng::node::SliverConfig&) override {}
  void start(std::string_view slice) override {
    std::lock_guard lock(mutex_);
    calls_.push_back("start " + std::string(slice));
    slivers_.at(std::string(slice)).phase = plng::node::SliverPhase::kRunning;
  }
  void stop(std::string_view slice, std::chrono::milliseconds) override {
    std::lock_guard lock(mutex_);
    calls_.push_back("stop " + std::string(slice));
    slivers_.at(std::string(slice)).phase = plng::node::SliverPhase::kStopped;
  }
  void update(const plng::node::SliverConfig&) override {}
  void destroy(std::string_view) override {}

 private:
  std::mutex mutex_;
  std::map<std::string, plng::node::SliverStatus> slivers_;
  std::vector<std::string> calls_;
};

class FakeGrants : public GrantedSlivers {
 public:
  std::map<std::string, GrantedSliver> grants;
  std::optional<GrantedSliver> find(const std::string& slice) const override {
    auto it = grants.find(slice);
    if (it == grants.end()) return std::nullopt;
    return it->second;
  }
  std::vector<std::string> slices() const override {
    std::vector<std::string> out;
    for (auto& [name, g] : grants) out.push_back(name);
    return out;
  }
};

struct Ran {
  int exit_code = -1;
  std::string out;
};

// Runs sliverctl with `args`, first moving the child into `cgroup` (when set)
// and dropping to `uid` (when not 0). The child only makes async-signal-safe
// calls between fork and exec: the server's threads are running.
Ran sliverctl(const fs::path& socket, std::vector<std::string> args, const fs::path& cgroup = {},
              uid_t uid = 0) {
  std::vector<std::string> full{PLNG_SLIVERCTL_PATH, "--socket", socket.string()};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string procs = cgroup.empty() ? "" : (cgroup / "cgroup.procs").string();
  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!procs.empty()) {
      int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(120);
      ::close(fd);
    }
    if (uid != 0 && (::setgid(uid) != 0 || ::setuid(uid) != 0)) ::_exit(121);
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    ::execv(argv[0], argv.data());
    ::_exit(122);
  }
  ::close(pipe_fds[1]);
  Ran ran;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof(buf))) > 0;) ran.out.append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return ran;
}

plng::node::SliverConfig config(const std::string& slice, std::uint32_t xid,
                                std::uint32_t cpu_share) {
  plng::node::SliverConfig c;
  c.slice = slice;
  c.xid = xid;
  c.resources.cpu_share = cpu_share;
  return c;
}

struct Node {
  // The real cgroup driver of this host, in a private sandbox below this test's
  // own cgroups: slivers get their directories exactly as sliverd makes them.
  plng::test::CgroupSandbox sandbox;
  std::unique_ptr<plng::node::CgroupDriver> driver = plng::node::makeCgroupDriver(sandbox.roots());
  fs::path dir;
  FakeRuntime runtime;
  FakeGrants grants;
  std::unique_ptr<RcapTable> rcaps;
  std::unique_ptr<PeerIdentifier> peers;
  std::unique_ptr<LocalService> service;
  boost::asio::io_context io;
  std::unique_ptr<LocalApiServer> server;
  std::thread loop;

  Node() {
    char tmpl[] = "/tmp/plng-localapi-XXXXXX";
    dir = ::mkdtemp(tmpl);
    ::chmod(dir.c_str(), 0755);  // other host users must reach the socket
    rcaps = std::make_unique<RcapTable>(dir / "rcaps", ResourceSpec{}, nullptr);
    for (auto [slice, xid] : {std::pair{"pl_alpha", 501u}, {"pl_beta", 502u}, {"pl_ops", 503u}}) {
      GrantedSliver g;
      g.xid = xid;
      g.rspec.cpu_share = 32;
      g.rspec.net_min_rate = 5000;
      g.source = "plc";
      grants.grants[slice] = g;
      runtime.add(config(slice, xid, 32), plng::node::SliverPhase::kRunning);
    }
    grants.grants["pl_ops"].tags["proper"] = "vsys:foo, sliver_control:pl_beta";
    driver->setUp(0);
    for (const char* slice : {"pl_alpha", "pl_beta", "pl_ops"}) driver->create(slice);
    peers = std::make_unique<PeerIdentifier>(*driver);
    service = std::make_unique<LocalService>(runtime, grants, *rcaps, paths());
    server = std::make_unique<LocalApiServer>(io, dir / "sliverd.sock", *service, *peers);
    server->start();
    loop = std::thread([this] { io.run(); });
  }
  ~Node() {
    boost::asio::post(io, [this] { server->stop(); });
    io.stop();
    loop.join();
    server.reset();
    fs::remove_all(dir);
  }
  fs::path socket() const { return dir / "sliverd.sock"; }
  plng::node::NodePaths paths() const {
    plng::node::NodePaths p;
    p.state_dir = dir / "state";
    p.run_dir = dir / "run";
    return p;
  }
  // A cgroup below the sliver's unified directory (sliver-init's processes may
  // sit deeper than the sliver's own directory).
  fs::path cgroupIn(const std::string& slice, const std::string& sub = "") const {
    fs::path p = driver->unifiedDir(slice);
    if (!sub.empty()) {
      p /= sub;
      fs::create_directories(p);
    }
    return p;
  }
};

std::vector<std::string> listed(const std::string& json) {
  std::vector<std::string> names;
  for (std::string slice : {"pl_alpha", "pl_beta", "pl_ops"}) {
    if (json.find("\"slice_name\":\"" + slice + "\"") != std::string::npos) names.push_back(slice);
  }
  return names;
}

}  // namespace

TEST_CASE("host root sees every sliver and may act on all of them", "[root]") {
  plng::test::requireRoot();
  Node node;
  // An rcap bound to pl_alpha shows in its effective resources.
  ResourceSpec extra;
  extra.cpu_share = 100;
  extra.net_min_rate = 20000;
  node.rcaps->bind(node.rcaps->acquire("pl_broker", extra), "pl_alpha");
  node.runtime.add(withBound(config("pl_alpha", 501, 32), node.rcaps->boundTo("pl_alpha")),
                   plng::node::SliverPhase::kRunning);

  LocalApiClient client(node.socket());
  v1::ListSliversResponse list;
  REQUIRE(client.listSlivers(&list).ok());
  CHECK(list.slivers_size() == 3);

  v1::SliverInfo alpha;
  REQUIRE(client.getSliver("pl_alpha", &alpha).ok());
  CHECK(alpha.xid() == 501);
  CHECK(alpha.state() == "running");
  CHECK(alpha.init_pid() == 4242);
  CHECK(alpha.rspec().cpu_share() == 32);
  CHECK(alpha.effective().cpu_share() == 132);
  CHECK(alpha.effective().net_min_rate() == 25000);

  v1::SliverInfo ignored;
  grpc::Status own = client.getSliver("", &ignored);
  CHECK(own.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(client.getSliver("pl_nope", &ignored).error_code() == grpc::StatusCode::NOT_FOUND);

  v1::SliverInfo beta;
  REQUIRE(client.stopSliver("pl_beta", &beta).ok());
  CHECK(beta.state() == "stopped");
  CHECK(node.runtime.phase("pl_beta") == plng::node::SliverPhase::kStopped);
  // The same connection carries several calls.
  REQUIRE(client.startSliver("pl_beta", &beta).ok());
  CHECK(beta.state() == "running");

  // sliverctl on the host, as root, names the slice.
  Ran get = sliverctl(node.socket(), {"get", "pl_ops"});
  CHECK(get.exit_code == 0);
  CHECK_THAT(get.out, Catch::Contains("slice:      pl_ops"));
  CHECK(sliverctl(node.socket(), {"get"}).exit_code == 3);  // INVALID_ARGUMENT
}

TEST_CASE("a process in a sliver's cgroup is that slice and sees only its own sliver", "[root]") {
  plng::test::requireRoot();
  Node node;
  // Deeper than the sliver's own directory: the slice is the first component.
  const fs::path alpha = node.cgroupIn("pl_alpha", "init");

  Ran list = sliverctl(node.socket(), {"--json", "list"}, alpha);
  INFO(list.out);
  REQUIRE(list.exit_code == 0);
  CHECK(listed(list.out) == std::vector<std::string>{"pl_alpha"});

  Ran get = sliverctl(node.socket(), {"get"}, alpha);
  INFO(get.out);
  CHECK(get.exit_code == 0);
  CHECK_THAT(get.out, Catch::Contains("slice:      pl_alpha"));

  Ran peek = sliverctl(node.socket(), {"get", "pl_beta"}, alpha);
  CHECK(peek.exit_code == 7);  // PERMISSION_DENIED
  Ran stop_other = sliverctl(node.socket(), {"stop", "pl_beta"}, alpha);
  INFO(stop_other.out);
  CHECK(stop_other.exit_code == 7);
  CHECK_THAT(
      stop_other.out,
      Catch::Contains("PERMISSION_DENIED: slice pl_alpha may not control the sliver of pl_beta"));
  CHECK(node.runtime.phase("pl_beta") == plng::node::SliverPhase::kRunning);

  Ran restart = sliverctl(node.socket(), {"restart"}, alpha);
  CHECK(restart.exit_code == 0);
  CHECK(node.runtime.calls() == std::vector<std::string>{"stop pl_alpha", "start pl_alpha"});
}

TEST_CASE("proper=sliver_control:<slice> lets a slice control exactly that sliver", "[root]") {
  plng::test::requireRoot();
  Node node;
  const fs::path ops = node.cgroupIn("pl_ops");

  Ran list = sliverctl(node.socket(), {"--json", "list"}, ops);
  CHECK(listed(list.out) == std::vector<std::string>{"pl_beta", "pl_ops"});

  Ran stop_beta = sliverctl(node.socket(), {"stop", "pl_beta"}, ops);
  INFO(stop_beta.out);
  CHECK(stop_beta.exit_code == 0);
  CHECK(node.runtime.phase("pl_beta") == plng::node::SliverPhase::kStopped);

  CHECK(sliverctl(node.socket(), {"stop", "pl_alpha"}, ops).exit_code == 7);
  CHECK(node.runtime.phase("pl_alpha") == plng::node::SliverPhase::kRunning);

  // The tag is re-read at every call: revoking it takes effect at once.
  node.grants.grants["pl_ops"].tags["proper"] = "";
  CHECK(sliverctl(node.socket(), {"start", "pl_beta"}, ops).exit_code == 7);
}

TEST_CASE("other host users may read every sliver but act on none", "[root]") {
  plng::test::requireRoot();
  Node node;
  const uid_t nobody = 65534;
  Ran list = sliverctl(node.socket(), {"--json", "list"}, {}, nobody);
  INFO(list.out);
  REQUIRE(list.exit_code == 0);
  CHECK(listed(list.out).size() == 3);
  Ran stop = sliverctl(node.socket(), {"stop", "pl_alpha"}, {}, nobody);
  CHECK(stop.exit_code == 7);
  CHECK_THAT(stop.out, Catch::Contains("may only read"));
  CHECK(node.runtime.phase("pl_alpha") == plng::node::SliverPhase::kRunning);
}

TEST_CASE("a client sending garbage loses its connection, others are served", "[root]") {
  plng::test::requireRoot();
  Node node;
  {
    LocalApiClient bad(node.socket());
    v1::ListSliversResponse r;
    // An unknown method is answered, not fatal.
    CHECK(bad.call("Reboot", v1::ListSliversRequest{}, &r).error_code() ==
          grpc::StatusCode::UNIMPLEMENTED);
  }
  {
    plng::node::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, node.socket().c_str());
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    const unsigned char huge[4] = {0xff, 0xff, 0xff, 0xff};
    REQUIRE(::write(fd.get(), huge, 4) == 4);
    char c;
    CHECK(::read(fd.get(), &c, 1) == 0);  // closed by the server
  }
  LocalApiClient good(node.socket());
  v1::ListSliversResponse list;
  CHECK(good.listSlivers(&list).ok());
}

TEST_CASE("a sliver stopped through the local API stays stopped until started", "[root]") {
  plng::test::requireRoot();
  Node node;
  const fs::path alpha = node.cgroupIn("pl_alpha", "init");
  DesiredMap desired;
  for (const char* slice : {"pl_alpha", "pl_beta", "pl_ops"}) {
    DesiredSliver d;
    d.config = node.runtime.get(slice)->config;
    desired[slice] = d;
  }
  auto planned = [&] {
    std::vector<std::string> out;
    const auto actual = node.runtime.list();
    for (const auto& a : plan(desired, actual, {}, 0, 3600, heldSlivers(node.paths(), actual))) {
      out.push_back(std::string(toString(a.kind)) + " " + a.slice);
    }
    return out;
  };

  Ran stop = sliverctl(node.socket(), {"stop"}, alpha);
  INFO(stop.out);
  REQUIRE(stop.exit_code == 0);
  CHECK(heldBy(node.paths(), "pl_alpha") == std::optional<std::string>("slice pl_alpha"));
  Ran get = sliverctl(node.socket(), {"--json", "get"}, alpha);
  CHECK_THAT(get.out, Catch::Contains("stopped by slice pl_alpha; start it with sliverctl start"));
  // The host operator stops pl_beta; a reconcile pass starts neither.
  v1::SliverInfo beta;
  REQUIRE(LocalApiClient(node.socket()).stopSliver("pl_beta", &beta).ok());
  CHECK(beta.message() == "stopped by the node operator; start it with sliverctl start");
  CHECK(planned().empty());

  REQUIRE(sliverctl(node.socket(), {"start"}, alpha).exit_code == 0);
  CHECK_FALSE(heldBy(node.paths(), "pl_alpha"));
  CHECK(node.runtime.phase("pl_alpha") == plng::node::SliverPhase::kRunning);
  // pl_alpha's init dies on its own: that one is restarted.
  node.runtime.add(node.runtime.get("pl_alpha")->config, plng::node::SliverPhase::kStopped);
  CHECK(planned() == std::vector<std::string>{"start pl_alpha"});
}
