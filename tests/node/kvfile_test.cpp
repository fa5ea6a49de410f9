#include "node/kvfile.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "base/fd.h"
#include "tests/support/scratch_dir.h"

using plng::node::KvMap;
using plng::node::readKvFile;
using plng::node::writeKvFileAtomic;
using plng::test::ScratchDir;

TEST_CASE("kvfile round-trips values with newlines and percent signs") {
  ScratchDir dir("plng-kvfile");
  KvMap values{{"initscript", "#!/bin/sh\necho 100%\r\n"}, {"xid", "42"}, {"empty", ""}};
  writeKvFileAtomic(dir / "state", values);
  CHECK(readKvFile(dir / "state") == values);
  // Nothing but the file itself: no temporary file left behind.
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), {}) == 1);
}

TEST_CASE("kvfile reports a missing file and a malformed line") {
  ScratchDir dir("plng-kvfile");
  CHECK_THROWS_AS(readKvFile(dir / "missing"), plng::base::SysError);
  std::ofstream(dir / "bad") << "no equals sign here\n";
  CHECK_THROWS_WITH(readKvFile(dir / "bad"), Catch::Contains("bad:1: malformed line"));
  std::ofstream(dir / "badescape") << "k=%zz\n";
  CHECK_THROWS(readKvFile(dir / "badescape"));
  CHECK_THROWS_AS(writeKvFileAtomic(dir / "x", {{"a=b", "v"}}), std::invalid_argument);
}
