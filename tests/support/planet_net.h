// A planet's network for tests: deploy/planet-net.sh's namespaces (nodes on a
// bridge standing for the Internet, a remote site behind a router running echo
// and iperf3 servers; docs/vnet.md, "Local planet"), brought up for one test and
// taken down with everything in it when the fixture goes.
//
//   plng::test::PlanetNet::requireUsable();          // SKIP (77) without root or tools
//   plng::test::PlanetNet net(/*nodes=*/2);
//   auto reply = net.runInNode(1, {"ping", "-c", "1", net.remote().ipv4});
//   { plng::test::ScopedNetns in(net.node(2)); /* sockets made here are node2's */ }
//
// Commands run in a namespace with `nsenter --net=...`, never `ip netns exec`:
// that remounts /sys, hiding /sys/fs/cgroup and /sys/fs/bpf from the command.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "base/fd.h"

namespace plng::test {

// One namespace of the planet: a node, the remote site or the router.
struct PlanetHost {
  std::string name;             // "node1", "remote", "router"
  std::filesystem::path netns;  // /run/netns/<prefix>-<name>
  std::string ipv4;
  std::string ipv6;
};

struct CommandResult {
  int status = 0;      // wait status (describeWaitStatus); 0 = exited 0
  std::string output;  // stdout and stderr together
  bool ok() const { return status == 0; }
};

class PlanetNet {
 public:
  struct Options {
    int nodes = 2;
    // Empty: a private prefix for this process and fixture ("pnt<pid>x<n>").
    std::string prefix;
    // A veth from the test's own namespace onto the planet's bridge (host()), so
    // the test process reaches nodes directly. Only one planet with a host link
    // may exist at a time (its subnets are taken in the host's namespace).
    bool host_link = false;
  };

  // Skips the test (exit 77 with the reason) unless it runs as root and ip,
  // nsenter, python3 and iperf3 are installed.
  static void requireUsable();

  // `planet-net.sh up`; throws std::runtime_error with the script's output.
  explicit PlanetNet(Options options);
  explicit PlanetNet(int nodes) : PlanetNet(Options{nodes, /*prefix=*/"", /*host_link=*/false}) {}
  // `planet-net.sh down`: namespaces, the host link and every process left in them.
  ~PlanetNet();
  PlanetNet(const PlanetNet&) = delete;
  PlanetNet& operator=(const PlanetNet&) = delete;

  const std::string& prefix() const { return prefix_; }
  const std::vector<PlanetHost>& nodes() const { return nodes_; }
  const PlanetHost& node(int k) const;  // 1-based, as the nodes are named
  const PlanetHost& remote() const { return remote_; }
  // The router's addresses on the nodes' bridge (the nodes' default gateway);
  // its netns is the Internet namespace.
  const PlanetHost& router() const { return router_; }
  // The host side of the host link (Options::host_link); empty addresses without.
  const PlanetHost& host() const { return host_; }
  int remoteEchoPort() const { return echo_port_; }
  int remoteIperf3Port() const { return iperf3_port_; }

  // Runs argv in the host's namespace, output captured, SIGKILLed after `timeout`.
  CommandResult runIn(const PlanetHost& where, const std::vector<std::string>& argv,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  CommandResult runInNode(int k, const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
    return runIn(node(k), argv, timeout);
  }

 private:
  std::string prefix_;
  std::vector<PlanetHost> nodes_;
  PlanetHost remote_, router_, host_;
  int echo_port_ = 0;
  int iperf3_port_ = 0;
};

// Moves the calling thread into a planet host's network namespace until
// destroyed (setns affects one thread): sockets it creates meanwhile belong to
// that namespace and stay there. Throws base::SysError.
class ScopedNetns {
 public:
  explicit ScopedNetns(const PlanetHost& where);
  ~ScopedNetns();
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

 private:
  base::UniqueFd previous_;
};

}  // namespace plng::test
