#include "node/rootfs_release.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "base/fd.h"

using plng::base::UniqueFd;
using plng::node::pinRootOf;
using plng::node::RootfsReleaser;

namespace {

// A pipe whose write end stands in for a pin: the read end sees EOF once the
// releaser has closed it.
struct Pin {
  UniqueFd read_end;
  UniqueFd write_end;
  Pin() {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    read_end.reset(p[0]);
    write_end.reset(p[1]);
  }
  bool closed() const {
    char c;
    const int flags = ::fcntl(read_end.get(), F_GETFL);
    ::fcntl(read_end.get(), F_SETFL, flags | O_NONBLOCK);
    const ssize_t n = ::read(read_end.get(), &c, 1);
    ::fcntl(read_end.get(), F_SETFL, flags);
    return n == 0;
  }
};

}  // namespace

TEST_CASE("the releaser closes what it is handed, and waitFor waits for exactly that sliver") {
  RootfsReleaser releaser;
  Pin a, b;
  releaser.release("pl_a", std::move(a.write_end));
  releaser.release("pl_b", std::move(b.write_end));
  releaser.waitFor("pl_a");
  CHECK(a.closed());
  releaser.waitFor("pl_b");
  CHECK(b.closed());
  releaser.waitFor("pl_none");           // nothing held: returns at once
  releaser.release("pl_a", UniqueFd());  // an empty pin is no pin
  releaser.waitFor("pl_a");
}

TEST_CASE("pins still queued are closed when the releaser goes") {
  Pin pins[20];
  {
    RootfsReleaser releaser;
    for (auto& pin : pins) releaser.release("pl_many", std::move(pin.write_end));
  }
  for (auto& pin : pins) CHECK(pin.closed());
}

TEST_CASE("a process's root is pinned while it lives, and not once it is gone") {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
  REQUIRE(pidfd);
  UniqueFd pin = pinRootOf(child, pidfd.get());
  REQUIRE(pin);
  struct stat pinned {
  }, root{};
  REQUIRE(::fstat(pin.get(), &pinned) == 0);
  REQUIRE(::stat("/", &root) == 0);
  CHECK(pinned.st_dev == root.st_dev);
  CHECK(pinned.st_ino == root.st_ino);

  ::kill(child, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK_FALSE(pinRootOf(child, pidfd.get()));
}
