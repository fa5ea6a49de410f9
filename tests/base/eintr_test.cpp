// base/eintr.h against a real EINTR: a signal whose handler was installed
// without SA_RESTART interrupts a blocking read.
#include "base/eintr.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <thread>

namespace {

std::atomic<int> g_signals{0};
void onSignal(int) { g_signals.fetch_add(1); }

}  // namespace

TEST_CASE("retryOnEintr carries a read on through a signal that interrupts it") {
  struct sigaction action {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the read fails with EINTR
  struct sigaction old {};
  REQUIRE(::sigaction(SIGUSR1, &action, &old) == 0);

  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const pthread_t reader = ::pthread_self();
  // Signals the reader every 20 ms until `enough` holds (a signal that comes
  // before the reader blocks is lost on the handler, the next one is not), then
  // writes `feed` bytes.
  auto interrupt = [&](auto enough, bool feed) {
    return std::thread([=] {
      while (!enough()) {
        ::pthread_kill(reader, SIGUSR1);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (feed) (void)!::write(fds[1], "z", 1);
    });
  };

  SECTION("without the helper the read fails") {
    std::atomic<bool> returned{false};
    std::thread interrupter = interrupt([&] { return returned.load(); }, /*feed=*/false);
    char byte = 0;
    const ssize_t n = ::read(fds[0], &byte, 1);
    const int err = errno;
    returned = true;
    interrupter.join();
    CHECK(n == -1);
    CHECK(err == EINTR);
  }
  SECTION("with it the read returns the byte") {
    std::atomic<int> calls{0};
    // A second call means the first one came back with EINTR.
    std::thread interrupter = interrupt([&] { return calls.load() >= 2; }, /*feed=*/true);
    char byte = 0;
    const ssize_t n = plng::base::retryOnEintr([&] {
      calls.fetch_add(1);
      return ::read(fds[0], &byte, 1);
    });
    interrupter.join();
    CHECK(n == 1);
    CHECK(byte == 'z');
    CHECK(calls.load() >= 2);
  }
  ::close(fds[0]);
  ::close(fds[1]);
  ::sigaction(SIGUSR1, &old, nullptr);
}

TEST_CASE("retryOnEintr returns other failures as they are") {
  int calls = 0;
  const int rc = plng::base::retryOnEintr([&] {
    ++calls;
    return ::close(-1);
  });
  CHECK(rc == -1);
  CHECK(errno == EBADF);
  CHECK(calls == 1);
}
