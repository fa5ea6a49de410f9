// Readers of procfs files: the mount table, a process's stat line, a process's
// cgroups. Each comes as parse (from the text, for tests and for a text read
// elsewhere) and read (from /proc). They throw SysError: the errno of a failed
// read, or EPROTO naming the line for text the kernel would not write.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plng::base {

// One line of /proc/<pid>/mountinfo (proc(5)), its paths unescaped.
struct MountInfoEntry {
  int mount_id = 0;
  int parent_id = 0;
  unsigned major = 0;
  unsigned minor = 0;
  std::string root;         // the path within the filesystem that is mounted
  std::string mount_point;  // where, in this mount namespace
  std::string mount_options;
  std::vector<std::string> optional_fields;  // "shared:5", "master:1", ...
  std::string fstype;
  std::string source;
  std::string super_options;
};

// The kernel writes ' ', '\t', '\n' and '\\' in mountinfo's paths as a backslash
// and three octal digits (\040, \011, \012, \134). Undoes that: a backslash
// followed by exactly three octal digits of value up to \377 is that byte;
// anything else (a lone or trailing backslash, "\08", "\400") stays as written.
std::string unescapeMountInfoField(std::string_view field);

std::vector<MountInfoEntry> parseMountInfo(std::string_view text);
std::vector<MountInfoEntry> readMountInfo(
    const std::filesystem::path& file = "/proc/self/mountinfo");

// The fields of /proc/<pid>/stat (proc(5)) that the project reads.
struct ProcStat {
  pid_t pid = 0;
  std::string comm;  // field 2, without its parentheses; may hold ')' and blanks
  char state = 0;    // field 3: R, S, D, Z, T, ...
  pid_t ppid = 0;
  pid_t pgrp = 0;
  pid_t session = 0;
  int tty_nr = 0;                // the controlling terminal's device number, 0 for none
  std::uint64_t utime = 0;       // clock ticks of user time (field 14)
  std::uint64_t stime = 0;       // of system time (field 15)
  std::uint64_t cutime = 0;      // of waited-for children's user time (field 16)
  std::uint64_t cstime = 0;      // of their system time (field 17)
  std::uint64_t start_time = 0;  // clock ticks after boot (field 22)
};

// The comm field is whatever the process named itself (up to 15 bytes, any of
// them ')' or a blank): it runs from the first '(' to the LAST ')'.
ProcStat parseProcStat(std::string_view text);
// nullopt when the process does not exist (any more).
std::optional<ProcStat> readProcStat(pid_t pid, const std::filesystem::path& proc = "/proc");

// One line of /proc/<pid>/cgroup: "hierarchy-id:controllers:path".
struct ProcCgroupEntry {
  unsigned hierarchy_id = 0;             // 0 for the cgroup v2 (unified) hierarchy
  std::vector<std::string> controllers;  // "cpu", "cpuacct", "name=systemd"; none on v2
  std::string path;  // relative to the hierarchy's root: "/a/b"; may hold ':'; " (deleted)" dropped
};

// The path is everything after the second ':' (it may hold ':' itself).
std::vector<ProcCgroupEntry> parseProcCgroup(std::string_view text);
std::vector<ProcCgroupEntry> readProcCgroup(pid_t pid, const std::filesystem::path& proc = "/proc");

}  // namespace plng::base
