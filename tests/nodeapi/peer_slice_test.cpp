// Caller identification and the local API's framing and grammar, without
// privileges: /proc/<pid>/cgroup and mountinfo parsing, cgroup → slice,
// `proper` sliver control, frames.
#include "sliverd/local/peer_slice.h"

#include <catch2/catch.hpp>

#include "sliverd/local/local_protocol.h"
#include "sliverd/local/local_service.h"

using namespace plng::sliverd;
using plng::node::cgroupPathOfDir;
using plng::node::unifiedCgroupPath;

TEST_CASE("the unified cgroup of a process, on v2 and hybrid hosts") {
  CHECK(unifiedCgroupPath("0::/system.slice/sliverd.service/slivers/pl_a\n") ==
        "/system.slice/sliverd.service/slivers/pl_a");
  CHECK(unifiedCgroupPath("4:memory:/x\n1:cpu:/\n0::/a/b\n") == "/a/b");
  CHECK(unifiedCgroupPath("0::/a/b (deleted)\n") == "/a/b");
  CHECK_FALSE(unifiedCgroupPath("4:memory:/x\n"));
}

TEST_CASE("a cgroup directory's hierarchy path from mountinfo") {
  const std::string hybrid =
      "25 1 0:23 / / rw - ext4 /dev/sda rw\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
      "42 31 0:39 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
  CHECK(cgroupPathOfDir("/sys/fs/cgroup/unified/sliverd/slivers", hybrid) == "/sliverd/slivers");
  CHECK(cgroupPathOfDir("/sys/fs/cgroup/unified", hybrid) == "/");
  // A mount of a subtree (cgroup namespace, container): the root field prefixes.
  const std::string sub = "50 1 0:40 /machine/c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
  CHECK(cgroupPathOfDir("/sys/fs/cgroup/slivers", sub) == "/machine/c1/slivers");
  // Escaped spaces in the mount point.
  const std::string spaced = "50 1 0:40 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
  CHECK(cgroupPathOfDir("/mnt/my cg/x", spaced) == "/x");
  CHECK_THROWS_AS(cgroupPathOfDir("/sys/fs/cgroup/memory/x", hybrid), plng::base::SysError);
}

TEST_CASE("a cgroup below sliversDir belongs to the first component's slice") {
  CHECK(plng::node::sliverOfCgroup("/d/slivers/pl_a", "/d/slivers") == "pl_a");
  CHECK(plng::node::sliverOfCgroup("/d/slivers/pl_a/init/x", "/d/slivers") == "pl_a");
  CHECK_FALSE(plng::node::sliverOfCgroup("/d/slivers", "/d/slivers"));
  CHECK_FALSE(plng::node::sliverOfCgroup("/d/daemon", "/d/slivers"));
  // A sibling sharing the prefix is not below it.
  CHECK_FALSE(plng::node::sliverOfCgroup("/d/slivers2/pl_a", "/d/slivers"));
  CHECK_FALSE(plng::node::sliverOfCgroup("/", "/d/slivers"));
}

TEST_CASE("the proper tag grammar for sliver control") {
  auto allows = [](const char* proper, const char* target) {
    return plng::node::properFromTag(proper).allowsSliverControl(target);
  };
  CHECK(allows("sliver_control:pl_b", "pl_b"));
  CHECK(allows("vsys:x, sliver_control:pl_b,sliver_control:pl_c", "pl_c"));
  CHECK(allows("sliver_control:*", "anything"));
  CHECK_FALSE(allows("sliver_control:pl_b", "pl_bb"));
  CHECK_FALSE(allows("", "pl_b"));
  CHECK_FALSE(allows("xsliver_control:*", "pl_b"));
  // What cannot be a privilege, or names no slice, is refused (TagError).
  CHECK_THROWS_AS(plng::node::properFromTag("sliver_control:"), plng::node::TagError);
  CHECK_THROWS_AS(plng::node::properFromTag("sliver_control:../x"), plng::node::TagError);
  CHECK_THROWS_AS(plng::node::properFromTag("Sliver_Control:*"), plng::node::TagError);
  CHECK_THROWS_AS(plng::node::properFromTag("vsys:\x01"), plng::node::TagError);
}

TEST_CASE("local API frames round-trip and refuse garbage") {
  planetlab::v1::GetSliverRequest req;
  req.set_slice_name("pl_a");
  LocalRequest decoded = decodeLocalRequest(encodeLocalRequest("GetSliver", req));
  CHECK(decoded.method == "GetSliver");
  planetlab::v1::GetSliverRequest back;
  REQUIRE(back.ParseFromString(decoded.payload));
  CHECK(back.slice_name() == "pl_a");

  planetlab::v1::SliverInfo info;
  info.set_slice_name("pl_a");
  LocalResponse ok = decodeLocalResponse(encodeLocalResponse(grpc::Status::OK, &info));
  CHECK(ok.status.ok());
  LocalResponse denied = decodeLocalResponse(
      encodeLocalResponse(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"), &info));
  CHECK(denied.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(denied.status.error_message() == "no");
  CHECK(denied.payload.empty());

  CHECK_THROWS(decodeLocalRequest(""));
  CHECK_THROWS(decodeLocalRequest(std::string("\x09Get", 4)));
  CHECK_THROWS(decodeLocalResponse("abc"));
  const unsigned char huge[4] = {0x10, 0, 0, 0};
  CHECK_THROWS(frameLength(huge, kMaxLocalResponse));
  const unsigned char fine[4] = {0, 0, 1, 0};
  CHECK(frameLength(fine, kMaxLocalRequest) == 256);
  // Requests are small: one just over the limit is refused by its length alone.
  const unsigned char over[4] = {0, 0, 0x10, 0x01};
  CHECK_THROWS_WITH(frameLength(over, kMaxLocalRequest),
                    Catch::Contains("4097 bytes exceeds the limit of 4096"));
}

TEST_CASE("a sliver's granted rspec from its config and network tags") {
  plng::node::SliverConfig config;
  config.resources.cpu_share = 64;
  config.resources.mem_limit_bytes = 1 << 27;
  config.disk_quota_bytes = 5ull << 30;
  ResourceSpec s = grantedSpec(
      config,
      plng::node::networkLimitsFromTags({{"net_min_rate", "5000"}, {"net_max_rate", "10000000"}}));
  CHECK(s.cpu_share == 64);
  CHECK(s.mem_limit_bytes == 1u << 27);
  CHECK(s.disk_quota_bytes == 5ull << 30);
  CHECK(s.net_min_rate == 5000);
  CHECK(s.net_max_rate == 10000000);
  // A rate that is not canonical is refused, no longer read as 0.
  CHECK_THROWS_AS(plng::node::networkLimitsFromTags({{"net_min_rate", "5kbit"}}),
                  plng::node::TagError);
}
