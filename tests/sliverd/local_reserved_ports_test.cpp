// sliverd keeps the node's ip_local_reserved_ports with every slice's reserved
// ports (sliverd/vnet/local_reserved_ports.h): here on a plain file standing for
// the sysctl, so without root and without touching the host.
#include "sliverd/vnet/local_reserved_ports.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/file.h"
#include "tests/support/scratch_dir.h"

using plng::proto::Transport;
using plng::sliverd::LocalReservedPorts;

namespace {

std::string contents(const std::filesystem::path& file) { return plng::base::readFile(file); }

void put(const std::filesystem::path& file, const std::string& text) {
  std::ofstream(file) << text;
}

}  // namespace

TEST_CASE("the operator's reserved ports are kept, the slices' added, and decommission restores",
          "[sliverd][vnet]") {
  plng::test::ScratchDir scratch("plng-reserved-ports");
  const auto sysctl = scratch.path() / "ip_local_reserved_ports";
  const auto saved = scratch.path() / "state" / "ip_local_reserved_ports.before";
  put(sysctl, "8080\n");
  {
    LocalReservedPorts ports(saved, sysctl);
    CHECK(contents(saved) == "8080\n");
    CHECK(ports.set({{Transport::kTcp, 22, 22}, {Transport::kUdp, 6000, 6010}}));
    CHECK(contents(sysctl) == "22,6000-6010,8080\n");
    // Unchanged: not written again.
    put(sysctl, "touched\n");
    CHECK_FALSE(ports.set({{Transport::kTcp, 22, 22}, {Transport::kUdp, 6000, 6010}}));
    CHECK(contents(sysctl) == "touched\n");
    CHECK(ports.set({{Transport::kTcp, 22, 22}}));
    CHECK(contents(sysctl) == "22,8080\n");
  }
  // A restarted sliverd finds the operator's value in its state, not the
  // sysctl it wrote itself.
  {
    LocalReservedPorts ports(saved, sysctl);
    CHECK(ports.set({}));
    CHECK(contents(sysctl) == "8080\n");
    CHECK(ports.set({{Transport::kTcp, 443, 443}}));
  }
  LocalReservedPorts::restore(saved, sysctl);
  CHECK(contents(sysctl) == "8080\n");
  CHECK_FALSE(std::filesystem::exists(saved));
  // Nothing saved: nothing to do.
  put(sysctl, "1\n");
  LocalReservedPorts::restore(saved, sysctl);
  CHECK(contents(sysctl) == "1\n");
}

TEST_CASE("an operator's value that does not parse is refused, and nothing written",
          "[sliverd][vnet]") {
  plng::test::ScratchDir scratch("plng-reserved-ports");
  const auto sysctl = scratch.path() / "ip_local_reserved_ports";
  put(sysctl, "80,oops\n");
  LocalReservedPorts ports(scratch.path() / "saved", sysctl);
  CHECK_THROWS_WITH(ports.set({{Transport::kTcp, 22, 22}}), Catch::Contains("'oops'"));
  CHECK(contents(sysctl) == "80,oops\n");
}
