// tests/support/planet_net.h: the fixture other vnet and e2e tests build on.
// Root: real namespaces, real packets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "base/fd.h"
#include "tests/support/planet_net.h"

namespace {
namespace fs = std::filesystem;
using plng::test::PlanetNet;

// A TCP round trip to the remote site's echo server from a socket made in the
// calling thread's current network namespace.
std::string echoOverTcp(const std::string& ipv4, int port) {
  plng::base::UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(sock);
  timeval timeout{.tv_sec = 5, .tv_usec = 0};
  ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(::inet_pton(AF_INET, ipv4.c_str(), &addr.sin_addr) == 1);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "";
  const std::string hello = "hello from a node";
  REQUIRE(::write(sock.get(), hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()));
  char buf[64] = {};
  ssize_t n = ::read(sock.get(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

ino_t netnsInode(const fs::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE("a planet network: nodes reach each other and the remote site, then it is gone",
          "[root][vnet]") {
  PlanetNet::requireUsable();
  fs::path node2_netns;
  {
    PlanetNet net(/*nodes=*/2);
    REQUIRE(net.nodes().size() == 2);
    CHECK(net.node(1).ipv4 != net.node(2).ipv4);
    CHECK_THROWS_AS(net.node(3), std::out_of_range);
    node2_netns = net.node(2).netns;
    CHECK(fs::exists(node2_netns));

    for (const auto& target :
         {net.node(2).ipv4, net.node(2).ipv6, net.remote().ipv4, net.remote().ipv6}) {
      auto ping = net.runInNode(1, {"ping", "-c", "1", "-W", "2", target});
      INFO(ping.output);
      CHECK(ping.ok());
    }
    // The remote site is not the router, and an address outside the planet is
    // not reachable from a node.
    CHECK(net.router().ipv4 != net.remote().ipv4);
    CHECK_FALSE(net.runInNode(1, {"ping", "-c", "1", "-W", "1", "192.0.2.77"}).ok());

    // A socket made while the thread is in node2's namespace talks from node2;
    // afterwards the thread is back in the test's own namespace. (No packet is
    // sent from there: without a host link the host would route the planet's
    // addresses off the machine.)
    const auto own_netns = netnsInode("/proc/thread-self/ns/net");
    {
      plng::test::ScopedNetns in_node2(net.node(2));
      CHECK(netnsInode("/proc/thread-self/ns/net") == netnsInode(net.node(2).netns));
      CHECK(echoOverTcp(net.remote().ipv4, net.remoteEchoPort()) == "hello from a node");
    }
    CHECK(netnsInode("/proc/thread-self/ns/net") == own_netns);
  }
  CHECK_FALSE(fs::exists(node2_netns));
}
