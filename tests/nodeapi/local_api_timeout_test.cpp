// Clients of sliverd's local API never wait without bound: a socket whose
// listener does not answer (a hung sliverd, or a process that outlived a killed
// sliverd still holding its socket) gives a clear error within the timeout.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "base/error.h"
#include "base/fd.h"
#include "sliverd/local/local_protocol.h"
#include "tests/support/scratch_dir.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using plng::base::UniqueFd;
using Clock = std::chrono::steady_clock;

namespace {

// A listening socket that never accepts, in a scratch directory.
struct SilentListener {
  plng::test::ScratchDir dir{"plng-api-timeout"};
  fs::path path = dir / "sliverd.sock";
  UniqueFd fd;
  explicit SilentListener(int backlog) {
    fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.string().size() + 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd.get(), backlog) == 0);
  }
};

}  // namespace

TEST_CASE("a call that sliverd never answers ends with DEADLINE_EXCEEDED", "[nodeapi]") {
  SilentListener listener(16);
  auto began = Clock::now();
  plng::sliverd::LocalApiClient client(listener.path, 300ms, 300ms);
  planetlab::v1::ListSliversResponse reply;
  grpc::Status status = client.listSlivers(&reply);
  auto took = Clock::now() - began;
  CHECK(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK_THAT(status.error_message(), Catch::Contains("no answer from sliverd at " +
                                                     listener.path.string() + " to ListSlivers"));
  CHECK(took >= 300ms);
  CHECK(took < 10s);
}

TEST_CASE("a connection sliverd never takes ends with ETIMEDOUT", "[nodeapi]") {
  SilentListener listener(0);
  // Fill the backlog; the kernel takes a connection or two more than it says.
  std::vector<UniqueFd> queued;
  for (int i = 0; i < 64; ++i) {
    UniqueFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, listener.path.c_str(), listener.path.string().size() + 1);
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      REQUIRE(errno == EAGAIN);
      break;
    }
    queued.push_back(std::move(c));
  }
  REQUIRE(queued.size() < 64);
  auto began = Clock::now();
  try {
    plng::sliverd::LocalApiClient client(listener.path, 1s, 300ms);
    FAIL("connected to a full backlog");
  } catch (const plng::base::SysError& e) {
    CHECK(e.err() == ETIMEDOUT);
    CHECK_THAT(e.what(), Catch::Contains("took no connection within 300 ms"));
  }
  CHECK(Clock::now() - began < 10s);
}

TEST_CASE("sliverctl says sliverd did not answer and exits 4", "[nodeapi]") {
  SilentListener listener(16);
  auto run = [&](std::vector<std::string> args, std::string& err) {
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(pipe_fds[1], 2);
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      std::vector<char*> argv{const_cast<char*>("sliverctl")};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(PLNG_SLIVERCTL_PATH, argv.data());
      ::_exit(127);
    }
    ::close(pipe_fds[1]);
    // An outer bound, so that a client without timeouts fails here instead of hanging.
    auto deadline = Clock::now() + 30s;
    int status = 0;
    pid_t done = 0;
    char buf[4096];
    while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && Clock::now() < deadline) {
      pollfd pfd{pipe_fds[0], POLLIN, 0};
      if (::poll(&pfd, 1, 100) > 0) {
        ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
        if (n > 0) err.append(buf, static_cast<std::size_t>(n));
      }
    }
    if (done == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ::close(pipe_fds[0]);
      return -1;
    }
    for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) {
      err.append(buf, static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  };
  std::string err;
  int code = run({"--socket", listener.path.string(), "--timeout", "0.5", "list"}, err);
  INFO(err);
  CHECK(code == 4);
  CHECK_THAT(err, Catch::Contains("DEADLINE_EXCEEDED"));
  CHECK_THAT(err, Catch::Contains("no answer from sliverd"));
  // A timeout that is no number of seconds is a usage error.
  std::string bad;
  CHECK(run({"--socket", listener.path.string(), "--timeout", "-1", "list"}, bad) == 64);
  CHECK_THAT(bad, Catch::Contains("--timeout takes seconds"));
}
