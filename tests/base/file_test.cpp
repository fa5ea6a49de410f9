// base/file.h: whole-file read with a cap, atomic replacement.
#include "base/file.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/error.h"

namespace fs = std::filesystem;
using plng::base::Durability;
using plng::base::SysError;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "plng-base-file-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { fs::remove_all(path); }
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), {}));
  }
};

mode_t modeOf(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("readFile reads every byte, and refuses a file over its cap") {
  TempDir dir;
  const std::string content = std::string(200000, 'x') + std::string("\0tail", 5);
  std::ofstream(dir.path / "f", std::ios::binary) << content;
  CHECK(plng::base::readFile(dir.path / "f") == content);
  CHECK(plng::base::readFile(dir.path / "f", content.size()) == content);
  try {
    plng::base::readFile(dir.path / "f", content.size() - 1);
    FAIL("read past the cap");
  } catch (const SysError& e) {
    CHECK(e.err() == EFBIG);
    CHECK(std::string(e.what()).find((dir.path / "f").string()) != std::string::npos);
  }
}

TEST_CASE("readFile names a missing file; readFileIfExists says it is absent") {
  TempDir dir;
  try {
    plng::base::readFile(dir.path / "missing");
    FAIL("read a missing file");
  } catch (const SysError& e) {
    CHECK(e.err() == ENOENT);
    CHECK(std::string(e.what()).find("missing") != std::string::npos);
  }
  CHECK_FALSE(plng::base::readFileIfExists(dir.path / "missing").has_value());
  std::ofstream(dir.path / "empty");
  CHECK(plng::base::readFileIfExists(dir.path / "empty") == std::string());
}

TEST_CASE("writeFileAtomic writes the content with exactly the mode asked for") {
  TempDir dir;
  const mode_t old_umask = ::umask(077);
  plng::base::writeFileAtomic(dir.path / "a", "hello\n", 0644);
  plng::base::writeFileAtomic(dir.path / "b", "", 0600, Durability::kNoSync);
  ::umask(old_umask);
  CHECK(plng::base::readFile(dir.path / "a") == "hello\n");
  CHECK(modeOf(dir.path / "a") == 0644);
  CHECK(plng::base::readFile(dir.path / "b").empty());
  CHECK(modeOf(dir.path / "b") == 0600);
  CHECK(dir.entries() == 2);  // no temporary file left behind
}

TEST_CASE("writeFileAtomic replaces the file as a whole: an open reader keeps the old one") {
  TempDir dir;
  const fs::path file = dir.path / "state";
  plng::base::writeFileAtomic(file, "old", 0600);
  std::ifstream reader(file);
  struct stat before {};
  REQUIRE(::stat(file.c_str(), &before) == 0);
  plng::base::writeFileAtomic(file, "new content", 0640);
  struct stat after {};
  REQUIRE(::stat(file.c_str(), &after) == 0);
  CHECK(after.st_ino != before.st_ino);  // a new inode renamed in, not rewritten in place
  std::string seen;
  reader >> seen;
  CHECK(seen == "old");
  CHECK(plng::base::readFile(file) == "new content");
  CHECK(modeOf(file) == 0640);
}

TEST_CASE("writeFileAtomic replaces a symbolic link rather than writing through it") {
  TempDir dir;
  std::ofstream(dir.path / "target") << "keep";
  fs::create_symlink(dir.path / "target", dir.path / "link");
  plng::base::writeFileAtomic(dir.path / "link", "mine", 0600);
  CHECK(plng::base::readFile(dir.path / "target") == "keep");
  CHECK_FALSE(fs::is_symlink(dir.path / "link"));
  CHECK(plng::base::readFile(dir.path / "link") == "mine");
}

TEST_CASE("a failed writeFileAtomic leaves the old file and no temporary file") {
  TempDir dir;
  // The rename fails: a directory stands where the file would go.
  fs::create_directory(dir.path / "occupied");
  std::ofstream(dir.path / "occupied" / "x");
  try {
    plng::base::writeFileAtomic(dir.path / "occupied", "data", 0600);
    FAIL("renamed over a non-empty directory");
  } catch (const SysError& e) {
    CHECK(std::string(e.what()).find("rename") != std::string::npos);
    CHECK(std::string(e.what()).find("occupied") != std::string::npos);
  }
  CHECK(fs::is_directory(dir.path / "occupied"));
  CHECK(dir.entries() == 1);

  // The directory does not exist: nothing to clean, and the error says where.
  CHECK_THROWS_AS(plng::base::writeFileAtomic(dir.path / "no" / "file", "x", 0600), SysError);
}

TEST_CASE("writeFileAtomic fails on a full disk and removes its partial file", "[dev-full]") {
  // /dev/full as the directory is impossible; a tmpfs is not ours to mount. A
  // file size limit makes the write itself fail (EFBIG) part-way.
  TempDir dir;
  std::ofstream(dir.path / "f") << "old";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    try {
      plng::base::writeFileAtomic(dir.path / "f", std::string(10000, 'y'), 0600);
    } catch (const SysError& e) {
      ::_exit(e.err() == EFBIG ? 0 : 2);
    }
    ::_exit(1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(plng::base::readFile(dir.path / "f") == "old");
  CHECK(dir.entries() == 1);
}
