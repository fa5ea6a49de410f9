// sliverConfigFromTags: what a slice's effective tags make of a sliver.
#include <catch2/catch.hpp>

#include "node/resources.h"
#include "node/runtime.h"

using plng::node::sliverConfigFromTags;
using plng::node::TagError;

TEST_CASE("sliverConfigFromTags reads every sliver tag", "[sliver]") {
  auto c = sliverConfigFromTags("pl_demo", 42,
                                {{"cpu_share", "64"},
                                 {"mem_limit", "268435456"},
                                 {"tasks", "100"},
                                 {"disk_quota", "5368709120"},
                                 {"vref", "debian12"},
                                 {"initscript", "#!/bin/sh\necho hi\n"},
                                 {"capabilities", "CAP_NET_RAW"},
                                 {"net_max_rate", "10000000"}});  // not the runtime's
  CHECK(c.slice == "pl_demo");
  CHECK(c.xid == 42);
  CHECK(c.resources.cpu_share == 64);
  CHECK(c.resources.mem_limit_bytes == 268435456);
  CHECK(c.resources.tasks == 100);
  CHECK(c.disk_quota_bytes == 5368709120ull);
  CHECK(c.vref == "debian12");
  CHECK(c.initscript == "#!/bin/sh\necho hi\n");
  CHECK(c.capabilities == "CAP_NET_RAW");
}

TEST_CASE("sliverConfigFromTags keeps defaults for missing tags", "[sliver]") {
  auto c = sliverConfigFromTags("pl_min", 7, {});
  CHECK(c.resources == plng::node::Resources{});
  CHECK(c.disk_quota_bytes == 0);
  CHECK(c.vref.empty());  // the node's default image
  CHECK(c.initscript.empty());
  CHECK(c.capabilities.empty());
}

TEST_CASE("sliverConfigFromTags refuses values it cannot apply", "[sliver]") {
  auto refused = [](const std::string& tag, const std::string& value, const std::string& says) {
    INFO(tag << "=" << value);
    try {
      sliverConfigFromTags("pl_bad", 1, {{tag, value}});
      FAIL("accepted");
    } catch (const TagError& e) {
      CHECK_THAT(e.what(), Catch::Contains(says));
    }
  };
  refused("disk_quota", "5GB", "disk_quota");
  refused("disk_quota", "-1", "disk_quota");
  refused("disk_quota", "1000", "out of range");
  refused("vref", "../../etc", "vref");
  refused("vref", ".hidden", "vref");
  refused("vref", "a/b", "vref");
  refused("capabilities", "CAP_SYS_MODULE", "never granted");
  refused("capabilities", "CAP_NOPE", "unknown");
  refused("cpu_share", "lots", "cpu_share");
}
