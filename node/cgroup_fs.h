// Internal to node/: file operations on cgroup directories shared by the v2 and
// hybrid drivers (and the test sandbox). Every call works relative to a
// directory fd and reports failures as SysError naming the file and the value.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/fd.h"

namespace plng::node::cgroupfs {

// An open cgroup directory: an O_PATH fd plus its path for error messages.
struct Dir {
  base::UniqueFd fd;
  std::filesystem::path path;
};

// Opens `path` (O_PATH|O_DIRECTORY|O_CLOEXEC); throws SysError.
Dir openDir(const std::filesystem::path& path);
// Opens `name` beneath `parent`; nullopt when it does not exist.
std::optional<Dir> openChild(const Dir& parent, std::string_view name);
// mkdir `name` beneath `parent` (EEXIST is fine).
void makeChild(const Dir& parent, std::string_view name);
// rmdir `name` beneath `parent`; false when it did not exist. EBUSY and other
// errors throw SysError.
bool removeChild(const Dir& parent, std::string_view name);

bool hasFile(const Dir& dir, std::string_view name);
// Writes `value` to an existing knob (never creates it: a missing knob means a
// missing controller and must not be papered over).
void writeKnob(const Dir& dir, std::string_view name, std::string_view value);
// The knob's content without trailing whitespace.
std::string readKnob(const Dir& dir, std::string_view name);
std::uint64_t readKnobU64(const Dir& dir, std::string_view name);
// The value of `key` in a flat keyed file ("usage_usec 123\n..."); nullopt if absent.
std::optional<std::uint64_t> readKeyedU64(const Dir& dir, std::string_view name,
                                          std::string_view key);

// The processes listed in the directory's cgroup.procs.
std::vector<pid_t> procs(const Dir& dir);
// Names of the subdirectories of `dir`.
std::vector<std::string> subdirs(const Dir& dir);

// Whitespace-separated words of a knob such as cgroup.controllers.
std::vector<std::string> words(std::string_view text);

// Kills every process in `dirs` until all are empty or `timeout` passes: writes
// cgroup.kill in `kill_dir` when given and present, then loops SIGKILL over
// cgroup.procs (v1 has no cgroup.kill; processes may fork while we read the list).
// Throws SysError(EBUSY) naming the directory still populated at the deadline.
void killUntilEmpty(const std::vector<const Dir*>& dirs, const Dir* kill_dir,
                    std::chrono::milliseconds timeout);

}  // namespace plng::node::cgroupfs
