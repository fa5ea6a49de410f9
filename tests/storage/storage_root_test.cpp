// Sliver storage against the real kernel: the btrfs loop volume sliverd makes,
// per-sliver qgroup limits hit by a process running as the slice's root id,
// restart and reboot behaviour, destroy, and a clean unmount at the end.
#include <fcntl.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "node/idrange.h"
#include "node/storage.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/skip.h"

namespace fs = std::filesystem;
using plng::node::IdRange;
using plng::node::IdRangeAllocator;
using plng::node::SliverStorage;
using plng::node::StorageOptions;

namespace {

constexpr std::uint64_t kMiB = 1 << 20;

// Every mount entry at or below `dir`, from /proc/self/mountinfo.
std::vector<std::string> mountsUnder(const fs::path& dir) {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    fields >> id >> parent >> devno >> root >> point;
    if (point == dir.string() || point.rfind(dir.string() + "/", 0) == 0) found.push_back(point);
  }
  return found;
}

// "/dev/loopN" mounted at `point`, or "".
std::string sourceOf(const fs::path& point) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, source;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mp, field, type, src;
    fields >> id >> parent >> devno >> root >> mp;
    while (fields >> field && field != "-") {
    }
    fields >> type >> src;
    if (mp == point.string()) source = src;
  }
  return source;
}

bool loopAttached(const std::string& device) {
  // /sys/block/loopN/loop exists only while a file is attached.
  return fs::exists("/sys/block/" + fs::path(device).filename().string() + "/loop/backing_file");
}

// Autoclear detaches the device when the last user goes; allow it a moment.
bool detachedSoon(const std::string& device) {
  for (int i = 0; i < 100; ++i) {
    if (!loopAttached(device)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A temporary state directory; unmounts whatever the test left mounted below
// it (overlays first, then the volume) and removes it, also after a failure.
struct Scratch {
  plng::test::ScratchDir scratch{"plng-storage"};
  fs::path dir = scratch.path();
  StorageOptions options;
  Scratch() {
    options.state_dir = dir / "state";
    options.volume_bytes = 1ull << 30;
  }
  ~Scratch() {  // before the ScratchDir member removes the tree
    auto mounts = mountsUnder(dir);
    for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
  }
};

struct WriteResult {
  std::uint64_t written = 0;
  int err = 0;  // errno of the write that failed, 0 if all went in
};

// Runs `action(dir_fd)` in a child process holding only `uid`:`uid` (the id
// range's root seen from the host) and returns what it reports. `dir` is opened
// before the ids are dropped: the storage root is 0700, as on a node.
template <typename Action>
WriteResult runAs(uid_t uid, const fs::path& dir, Action action) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    WriteResult result;
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || ::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 ||
        ::setresuid(uid, uid, uid) != 0) {
      result.err = -errno;  // negative: setting up failed, not the write
    } else {
      result = action(dir_fd);
    }
    (void)!::write(fds[1], &result, sizeof result);
    ::_exit(0);
  }
  ::close(fds[1]);
  WriteResult result;
  ssize_t n = ::read(fds[0], &result, sizeof result);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(n == sizeof result);
  REQUIRE(result.err >= 0);
  return result;
}

// Appends up to `bytes` to `name` in 1 MiB writes, stopping at the first error.
WriteResult fill(uid_t uid, const fs::path& dir, const char* name, std::uint64_t bytes) {
  return runAs(uid, dir, [name, bytes](int dir_fd) {
    static char chunk[1 << 20];
    std::memset(chunk, 'x', sizeof chunk);
    WriteResult r;
    int fd = ::openat(dir_fd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      r.err = errno;
      return r;
    }
    while (r.written < bytes) {
      ssize_t n = ::write(fd, chunk, sizeof chunk);
      if (n < 0) {
        r.err = errno;
        break;
      }
      r.written += static_cast<std::uint64_t>(n);
    }
    if (r.err == 0 && ::fsync(fd) != 0) r.err = errno;
    ::close(fd);
    return r;
  });
}

bool overQuota(int err) { return err == EDQUOT || err == ENOSPC; }

void syncVolume(const fs::path& mount_point) {
  int fd = ::open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::syncfs(fd) == 0);
  ::close(fd);
}

std::uint64_t volumeUsed(const fs::path& mount_point) {
  struct statfs st {};
  REQUIRE(::statfs(mount_point.c_str(), &st) == 0);
  return (st.f_blocks - st.f_bfree) * st.f_bsize;
}

// Identifies one btrfs filesystem: a fresh mkfs would give another.
std::uint64_t filesystemId(const fs::path& mount_point) {
  struct statfs st {};
  REQUIRE(::statfs(mount_point.c_str(), &st) == 0);
  std::uint64_t id = 0;
  std::memcpy(&id, &st.f_fsid, sizeof id);
  return id;
}

}  // namespace

TEST_CASE("btrfs qgroup storage: quotas per sliver, restart, reboot, destroy, unmount",
          "[root][storage]") {
  plng::test::requireRoot();
  Scratch s;
  const fs::path volume = s.options.state_dir / "storage";
  const fs::path image = s.options.state_dir / "storage.img";
  IdRangeAllocator ranges(s.dir / "idranges");
  const IdRange a = ranges.acquire("site_a");
  const IdRange b = ranges.acquire("site_b");

  auto started = std::chrono::steady_clock::now();
  auto storage = plng::node::openSliverStorage(s.options);
  auto opened_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  // This host has no ext4/XFS quotas, so probing must land on the loop volume.
  REQUIRE(storage->kind() == "btrfs-qgroup");
  REQUIRE(fs::is_regular_file(image));
  const std::string device = sourceOf(volume);
  REQUIRE(device.rfind("/dev/loop", 0) == 0);
  REQUIRE(loopAttached(device));
  struct stat st {};
  REQUIRE(::stat(volume.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);  // host root only

  auto dirs_a = storage->prepare("site_a", a, 8 * kMiB);
  auto dirs_b = storage->prepare("site_b", b, 64 * kMiB);
  CHECK(dirs_a.upper == volume / "site_a" / "upper");
  CHECK(dirs_a.work == volume / "site_a" / "work");
  for (const auto& dir : {dirs_a.upper, dirs_a.work}) {
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK(st.st_uid == a.first);
    CHECK(st.st_gid == a.first);
  }
  syncVolume(volume);
  const std::uint64_t idle = storage->usedBytes("site_a");
  std::printf("volume created and mounted in %.1f ms; an empty prepared sliver uses %llu bytes\n",
              opened_ms, static_cast<unsigned long long>(idle));
  CHECK(idle < 256 * 1024);

  SECTION("writing past the quota fails for the slice's root, and only for that sliver") {
    WriteResult over = fill(a.first, dirs_a.upper, "fill", 32 * kMiB);
    CHECK(overQuota(over.err));
    CHECK(over.written <= 8 * kMiB);
    CHECK(over.written >= 4 * kMiB);
    REQUIRE(::stat((dirs_a.upper / "fill").c_str(), &st) == 0);
    CHECK(st.st_uid == a.first);  // really written by the range's root

    WriteResult other = fill(b.first, dirs_b.upper, "fill", 16 * kMiB);
    CHECK(other.err == 0);
    CHECK(other.written == 16 * kMiB);

    syncVolume(volume);
    CHECK(storage->usedBytes("site_a") >= over.written);
    CHECK(storage->usedBytes("site_a") <= 8 * kMiB + 256 * 1024);
    CHECK(storage->usedBytes("site_b") >= 16 * kMiB);

    // A raised quota lets the sliver write again, at once.
    storage->setQuota("site_a", 64 * kMiB);
    WriteResult more = fill(a.first, dirs_a.upper, "more", 8 * kMiB);
    CHECK(more.err == 0);
    CHECK(more.written == 8 * kMiB);

    // prepare() again (sliverd re-applying a config) keeps files and the new quota.
    CHECK(storage->prepare("site_a", a, 64 * kMiB).upper == dirs_a.upper);
    CHECK(fs::file_size(dirs_a.upper / "more") == 8 * kMiB);

    SECTION("a restarted sliverd finds the mounted volume, files and quotas") {
      const auto made = filesystemId(volume);
      syncVolume(volume);
      const std::uint64_t used_b = storage->usedBytes("site_b");
      storage.reset();
      auto again = plng::node::openSliverStorage(s.options);
      CHECK(again->kind() == "btrfs-qgroup");
      CHECK(sourceOf(volume) == device);  // the same mount, not a second one
      CHECK(mountsUnder(volume).size() == 1);
      CHECK(filesystemId(volume) == made);
      CHECK(fs::file_size(dirs_a.upper / "more") == 8 * kMiB);
      CHECK(again->usedBytes("site_b") == used_b);
      WriteResult capped = fill(a.first, dirs_a.upper, "capped", 128 * kMiB);
      CHECK(overQuota(capped.err));
      CHECK(capped.written <= 64 * kMiB);
      storage = std::move(again);
    }

    SECTION("after a reboot (volume unmounted) the existing image is mounted, not formatted") {
      const auto made = filesystemId(volume);
      storage.reset();
      plng::node::unmountSliverStorage(s.options);
      CHECK(mountsUnder(volume).empty());
      CHECK(detachedSoon(device));
      auto again = plng::node::openSliverStorage(s.options);
      CHECK(again->kind() == "btrfs-qgroup");
      CHECK(filesystemId(volume) == made);
      CHECK(fs::file_size(dirs_a.upper / "more") == 8 * kMiB);
      CHECK(fs::file_size(dirs_b.upper / "fill") == 16 * kMiB);
      WriteResult capped = fill(a.first, dirs_a.upper, "capped", 128 * kMiB);
      CHECK(overQuota(capped.err));
      CHECK(capped.written <= 64 * kMiB);
      again.reset();
      const std::string second = sourceOf(volume);
      plng::node::unmountSliverStorage(s.options);
      CHECK(detachedSoon(second));
      storage = plng::node::openSliverStorage(s.options);
    }

    SECTION("destroy removes the subvolume and gives its space back") {
      syncVolume(volume);
      const std::uint64_t before = volumeUsed(volume);
      storage->destroy("site_a");
      CHECK_FALSE(fs::exists(volume / "site_a"));
      CHECK_THROWS_AS(storage->usedBytes("site_a"), plng::base::SysError);
      CHECK_NOTHROW(storage->destroy("site_a"));  // idempotent
      // The cleaner thread frees the blocks after the deletion is committed.
      // site_a held 12-16 MiB ("fill" up to its first quota, then "more").
      std::uint64_t after = before;
      for (int i = 0; i < 100 && before - std::min(before, after) < 12 * kMiB; ++i) {
        syncVolume(volume);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        after = volumeUsed(volume);
      }
      CHECK(before - std::min(before, after) >= 12 * kMiB);
      // The other sliver is untouched; the name can be prepared afresh, empty.
      CHECK(fs::file_size(dirs_b.upper / "fill") == 16 * kMiB);
      auto fresh = storage->prepare("site_a", a, 8 * kMiB);
      CHECK(fs::is_empty(fresh.upper));
      syncVolume(volume);
      CHECK(storage->usedBytes("site_a") < 256 * 1024);
    }
  }

  SECTION("an overlay over the upper layer hits the quota too, for writes from inside") {
    const IdRange c = ranges.acquire("site_c");
    auto dirs_c = storage->prepare("site_c", c, 8 * kMiB);
    const fs::path lower = s.dir / "lower", merged = s.dir / "merged";
    fs::create_directories(lower);
    fs::create_directories(merged);
    std::ofstream(lower / "hello") << "from the reference image\n";
    const std::string options = "lowerdir=" + lower.string() +
                                ",upperdir=" + dirs_c.upper.string() +
                                ",workdir=" + dirs_c.work.string();
    REQUIRE(::mount("overlay", merged.c_str(), "overlay", 0, options.c_str()) == 0);

    // Deleting a lower file leaves a whiteout (a 0/0 device) on the nodev volume.
    WriteResult removed = runAs(c.first, merged, [](int dir_fd) {
      WriteResult r;
      if (::unlinkat(dir_fd, "hello", 0) != 0) r.err = errno;
      return r;
    });
    CHECK(removed.err == 0);
    CHECK_FALSE(fs::exists(merged / "hello"));
    REQUIRE(::lstat((dirs_c.upper / "hello").c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK(fs::exists(lower / "hello"));

    WriteResult over = fill(c.first, merged, "fill", 32 * kMiB);
    CHECK(overQuota(over.err));
    CHECK(over.written <= 8 * kMiB);
    CHECK(over.written >= 4 * kMiB);
    CHECK(fs::exists(dirs_c.upper / "fill"));  // it went to the upper layer
    // A sliver at its quota gets out by deleting its own files.
    WriteResult cleaned = runAs(c.first, merged, [](int dir_fd) {
      WriteResult r;
      if (::unlinkat(dir_fd, "fill", 0) != 0) r.err = errno;
      return r;
    });
    CHECK(cleaned.err == 0);
    syncVolume(volume);
    WriteResult after = fill(c.first, merged, "again", 2 * kMiB);
    CHECK(after.err == 0);
    // Another sliver still writes.
    CHECK(fill(b.first, dirs_b.upper, "small", 1 * kMiB).err == 0);
    REQUIRE(::umount2(merged.c_str(), 0) == 0);
  }

  // At the end nothing is left mounted and the loop device is gone.
  const std::string last = sourceOf(volume);
  CHECK_THROWS_AS(plng::node::unmountSliverStorage(s.options), plng::base::SysError);  // open
  storage.reset();
  plng::node::unmountSliverStorage(s.options);
  CHECK(mountsUnder(s.dir).empty());
  CHECK(detachedSoon(last));
  CHECK(detachedSoon(device));
  CHECK_NOTHROW(plng::node::unmountSliverStorage(s.options));  // nothing mounted: no-op
}

TEST_CASE("sliver storage refuses bad kinds and sliver names; 'none' only when asked",
          "[root][storage]") {
  plng::test::requireRoot();
  Scratch s;
  s.options.force_kind = "zfs";
  CHECK_THROWS_AS(plng::node::openSliverStorage(s.options), std::invalid_argument);

  // Forcing a project-quota kind where the filesystem cannot do it says why.
  struct statfs st {};
  REQUIRE(::statfs(s.dir.c_str(), &st) == 0);
  if (st.f_type != 0x58465342 /* XFS */) {
    s.options.force_kind = "xfs-prjquota";
    CHECK_THROWS_AS(plng::node::openSliverStorage(s.options), plng::base::SysError);
  }

  s.options.force_kind = "none";
  auto storage = plng::node::openSliverStorage(s.options);
  CHECK(storage->kind() == "none");
  CHECK_FALSE(fs::exists(s.options.state_dir / "storage.img"));
  const IdRange ids{(1u << 30) + 5 * 65536, 65536};
  auto dirs = storage->prepare("site_none", ids, 8 * kMiB);
  struct stat sb {};
  REQUIRE(::stat(dirs.upper.c_str(), &sb) == 0);
  CHECK(sb.st_uid == ids.first);
  // No quota: 16 MiB go into an "8 MiB" sliver, and usedBytes counts them.
  WriteResult w = fill(ids.first, dirs.upper, "big", 16 * kMiB);
  CHECK(w.err == 0);
  CHECK(storage->usedBytes("site_none") >= 16 * kMiB);
  for (const char* bad : {"", "..", ".hidden", "a/b", "a,b", "a:b", "a=b"}) {
    CHECK_THROWS_AS(storage->prepare(bad, ids, 0), std::invalid_argument);
  }
  storage->destroy("site_none");
  CHECK_FALSE(fs::exists(dirs.upper));
  CHECK_NOTHROW(storage->destroy("site_none"));
  CHECK_NOTHROW(plng::node::unmountSliverStorage(s.options));  // nothing to unmount
}

TEST_CASE("the storage volume is sized from the host's free space, never beyond it",
          "[root][storage]") {
  plng::test::requireRoot();
  auto availableIn = [](const fs::path& dir) {
    struct statfs st {};
    REQUIRE(::statfs(dir.c_str(), &st) == 0);
    return std::uint64_t(st.f_bavail) * std::uint64_t(st.f_bsize);
  };
  SECTION("more than the host has is refused, and nothing is made") {
    Scratch scratch;
    fs::create_directories(scratch.options.state_dir);
    const std::uint64_t available = availableIn(scratch.options.state_dir);
    scratch.options.volume_bytes = available + (1ull << 30);
    scratch.options.force_kind = "btrfs-qgroup";
    try {
      plng::node::openSliverStorage(scratch.options);
      FAIL("a volume larger than the host's free space was made");
    } catch (const plng::base::SysError& e) {
      CHECK(e.err() == ENOSPC);
      CHECK_THAT(e.what(), Catch::Contains("slivers could fill the host's disk"));
    }
    CHECK_FALSE(fs::exists(scratch.options.state_dir / "storage.img"));
    CHECK(mountsUnder(scratch.dir).empty());
  }
  SECTION("0 takes 80% of what is free; one sliver may have all but the reserve") {
    Scratch scratch;
    fs::create_directories(scratch.options.state_dir);
    const std::uint64_t available = availableIn(scratch.options.state_dir);
    scratch.options.volume_bytes = 0;
    auto storage = plng::node::openSliverStorage(scratch.options);
    REQUIRE(storage->kind() == "btrfs-qgroup");
    const std::uint64_t total = storage->space().total_bytes;
    // The image is sparse: free space barely moves meanwhile.
    CHECK(total <= available / 100 * 80);
    CHECK(total >= available / 100 * 78);
    CHECK(storage->maxSliverQuota() == total - total / 100 * 10);
    storage.reset();
    plng::node::unmountSliverStorage(scratch.options);
  }
  SECTION("a 1 GiB volume keeps 256 MiB from any one sliver") {
    Scratch scratch;
    auto storage = plng::node::openSliverStorage(scratch.options);
    CHECK(storage->space().total_bytes == 1ull << 30);
    CHECK(storage->maxSliverQuota() == 768 * kMiB);
    CHECK(plng::node::sliverQuotaCeiling(4ull << 30, 10) == (4ull << 30) - (4ull << 30) / 100 * 10);
    CHECK(plng::node::sliverQuotaCeiling(300 * kMiB, 10) == 150 * kMiB);
    storage.reset();
    plng::node::unmountSliverStorage(scratch.options);
  }
}
