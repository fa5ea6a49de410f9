// base/proc.h: mountinfo with its escapes, /proc/<pid>/stat with a hostile
// comm, /proc/<pid>/cgroup.
#include "base/proc.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "base/error.h"

using plng::base::SysError;
using plng::base::unescapeMountInfoField;

TEST_CASE("mountinfo's octal escapes: blank, tab, newline, backslash") {
  CHECK(unescapeMountInfoField("/mnt/my\\040disk") == "/mnt/my disk");
  CHECK(unescapeMountInfoField("a\\011b") == "a\tb");
  CHECK(unescapeMountInfoField("a\\012b") == "a\nb");
  CHECK(unescapeMountInfoField("a\\134b") == "a\\b");
  CHECK(unescapeMountInfoField("\\040") == " ");         // at both ends
  CHECK(unescapeMountInfoField("\\134040") == "\\040");  // unescaped once, not twice
}

TEST_CASE("malformed escapes stay as written") {
  CHECK(unescapeMountInfoField("a\\") == "a\\");        // trailing backslash
  CHECK(unescapeMountInfoField("a\\04") == "a\\04");    // too few digits at the end
  CHECK(unescapeMountInfoField("a\\08x") == "a\\08x");  // 8 is not octal
  CHECK(unescapeMountInfoField("a\\x41") == "a\\x41");
  CHECK(unescapeMountInfoField("\\400") == "\\400");  // more than a byte
  CHECK(unescapeMountInfoField("\\0401") == " 1");    // exactly three digits
}

TEST_CASE("mountinfo lines: fields, optional fields, escapes") {
  const auto entries = plng::base::parseMountInfo(
      "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 shared:5 - ext3 /dev/root "
      "rw,errors=continue\n"
      "40 36 0:42 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
  REQUIRE(entries.size() == 2);
  const auto& a = entries[0];
  CHECK(a.mount_id == 36);
  CHECK(a.parent_id == 35);
  CHECK(a.major == 98);
  CHECK(a.minor == 0);
  CHECK(a.root == "/mnt1");
  CHECK(a.mount_point == "/mnt/a b");
  CHECK(a.mount_options == "rw,noatime");
  CHECK(a.optional_fields == std::vector<std::string>{"master:1", "shared:5"});
  CHECK(a.fstype == "ext3");
  CHECK(a.source == "/dev/root");
  CHECK(a.super_options == "rw,errors=continue");
  CHECK(entries[1].optional_fields.empty());
  CHECK(entries[1].fstype == "cgroup2");
  CHECK(entries[1].minor == 42);
}

TEST_CASE("a malformed mountinfo line is refused with its number") {
  const char* bad[] = {
      "36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root\n",    // a field short after "-"
      "36 35 98:0 /mnt1 /mnt2 rw ext3 /dev/root rw\n",   // no "-"
      "36 x 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw\n",  // not a number
      "36 35 980 /mnt1 /mnt2 rw - ext3 /dev/root rw\n",  // no major:minor
  };
  for (const char* line : bad) {
    INFO(line);
    try {
      plng::base::parseMountInfo(std::string("1 0 0:1 / / rw - rootfs rootfs rw\n") + line);
      FAIL("accepted");
    } catch (const SysError& e) {
      CHECK(e.err() == EPROTO);
      CHECK(std::string(e.what()).find("line 2") != std::string::npos);
    }
  }
}

TEST_CASE("this process's mount table has a root") {
  const auto entries = plng::base::readMountInfo();
  REQUIRE_FALSE(entries.empty());
  bool root = false;
  for (const auto& e : entries) root = root || e.mount_point == "/";
  CHECK(root);
}

TEST_CASE("/proc/<pid>/stat: a comm with ')' and a blank does not shift the fields") {
  char old_name[17] = {};
  REQUIRE(::prctl(PR_GET_NAME, old_name) == 0);
  REQUIRE(::prctl(PR_SET_NAME, "a) b") == 0);
  const auto stat = plng::base::readProcStat(::getpid());
  ::prctl(PR_SET_NAME, old_name);
  REQUIRE(stat.has_value());
  CHECK(stat->pid == ::getpid());
  CHECK(stat->comm == "a) b");
  CHECK(stat->ppid == ::getppid());
  CHECK(stat->pgrp == ::getpgrp());
  CHECK(stat->session == ::getsid(0));
  CHECK((stat->state == 'R' || stat->state == 'S'));
  CHECK(stat->start_time > 0);
}

TEST_CASE("a /proc/<pid>/stat text, and a process that does not exist") {
  const auto stat = plng::base::parseProcStat(
      "42 ((x) y)) S 1 42 42 34816 42 4194560 100 0 0 0 7 3 2 1 20 0 1 0 123456 0 0\n");
  CHECK(stat.pid == 42);
  CHECK(stat.comm == "(x) y)");
  CHECK(stat.state == 'S');
  CHECK(stat.tty_nr == 34816);
  CHECK(stat.utime == 7);
  CHECK(stat.stime == 3);
  CHECK(stat.cutime == 2);
  CHECK(stat.cstime == 1);
  CHECK(stat.start_time == 123456);
  CHECK_THROWS_AS(plng::base::parseProcStat("42 (x S 1"), SysError);
  CHECK_THROWS_AS(plng::base::parseProcStat("42 (x) S 1 2"), SysError);
  // pid_max is at most 2^22.
  CHECK_FALSE(plng::base::readProcStat(1 << 23).has_value());
}

TEST_CASE("/proc/<pid>/cgroup entries: v1 controllers, named hierarchies, v2, ':' in a path") {
  const auto entries = plng::base::parseProcCgroup(
      "12:cpu,cpuacct:/slivers/pl_a\n"
      "1:name=systemd:/init.scope\n"
      "0::/odd:name\n");
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].hierarchy_id == 12);
  CHECK(entries[0].controllers == std::vector<std::string>{"cpu", "cpuacct"});
  CHECK(entries[0].path == "/slivers/pl_a");
  CHECK(entries[1].controllers == std::vector<std::string>{"name=systemd"});
  CHECK(entries[2].hierarchy_id == 0);
  CHECK(entries[2].controllers.empty());
  CHECK(entries[2].path == "/odd:name");
  CHECK_THROWS_AS(plng::base::parseProcCgroup("0:/x\n"), SysError);
  CHECK_THROWS_AS(plng::base::parseProcCgroup("x::/\n"), SysError);
}

TEST_CASE("this process's /proc/self/cgroup") {
  const auto entries = plng::base::readProcCgroup(::getpid());
  REQUIRE_FALSE(entries.empty());
  std::ifstream in("/proc/self/cgroup");
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
  }
  CHECK(entries.size() == lines);
  for (const auto& e : entries) CHECK(e.path.starts_with("/"));
}
