// base/unix_socket.h: descriptors with a payload over a socketpair.
#include "base/unix_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <vector>

#include "base/error.h"
#include "base/fd.h"

using plng::base::SysError;
using plng::base::UniqueFd;

namespace {

struct SocketPair {
  UniqueFd a, b;
  explicit SocketPair(int type = SOCK_STREAM) {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

// A pipe whose read end we pass; what is written to the write end shows that the
// received descriptor is the same open file.
struct Pipe {
  UniqueFd read, write;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

bool isOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

std::size_t openDescriptors() {
  std::size_t n = 0;
  for (int fd = 0; fd < 1024; ++fd) n += isOpen(fd) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("several descriptors and a payload arrive together, close-on-exec") {
  SocketPair pair;
  Pipe p1, p2, p3;
  const int sent[] = {p1.read.get(), p2.read.get(), p3.read.get()};
  plng::base::sendFds(pair.a.get(), "hello", sent, "send");

  auto message = plng::base::receiveFds(pair.b.get(), 64, 4, "receive");
  CHECK(message.payload == "hello");
  REQUIRE(message.fds.size() == 3);
  Pipe* pipes[] = {&p1, &p2, &p3};
  for (std::size_t i = 0; i < 3; ++i) {
    const int fd = message.fds[i].get();
    CHECK(fd != sent[i]);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    const char byte = static_cast<char>('0' + i);
    REQUIRE(::write(pipes[i]->write.get(), &byte, 1) == 1);
    char got = 0;
    CHECK(::read(fd, &got, 1) == 1);
    CHECK(got == byte);
  }
}

TEST_CASE("a payload without descriptors, and end of file") {
  SocketPair pair;
  plng::base::sendFds(pair.a.get(), "x", {}, "send");
  auto message = plng::base::receiveFds(pair.b.get(), 8, 2, "receive");
  CHECK(message.payload == "x");
  CHECK(message.fds.empty());
  pair.a.reset();
  auto eof = plng::base::receiveFds(pair.b.get(), 8, 2, "receive");
  CHECK(eof.payload.empty());
  CHECK(eof.fds.empty());
}

TEST_CASE("more descriptors than the receiver takes: all closed, and an error") {
  SocketPair pair;
  Pipe p1, p2, p3;
  const int sent[] = {p1.read.get(), p2.read.get(), p3.read.get()};
  plng::base::sendFds(pair.a.get(), "three", sent, "send");
  const std::size_t before = openDescriptors();
  try {
    plng::base::receiveFds(pair.b.get(), 64, 2, "receive the overlay");
    FAIL("a truncated message was accepted");
  } catch (const SysError& e) {
    CHECK(e.err() == EPROTO);
    CHECK(std::string(e.what()).find("receive the overlay") != std::string::npos);
  }
  CHECK(openDescriptors() == before);  // the two that fitted were closed too
}

TEST_CASE("a datagram longer than the receiver's buffer is refused, its descriptors closed") {
  SocketPair pair(SOCK_SEQPACKET);
  Pipe p;
  const int sent[] = {p.read.get()};
  plng::base::sendFds(pair.a.get(), "a long payload", sent, "send");
  const std::size_t before = openDescriptors();
  CHECK_THROWS_AS(plng::base::receiveFds(pair.b.get(), 4, 1, "receive"), SysError);
  CHECK(openDescriptors() == before);
}

TEST_CASE("receiveFdsInto: the no-heap form for a child") {
  SocketPair pair;
  Pipe p;
  const int sent[] = {p.read.get()};
  plng::base::sendFds(pair.a.get(), "g", sent, "send");
  char byte = 0;
  int fd = -1;
  std::size_t count = 0;
  CHECK(plng::base::receiveFdsInto(pair.b.get(), {&byte, 1}, {&fd, 1}, count) == 1);
  CHECK(byte == 'g');
  REQUIRE(count == 1);
  UniqueFd owned(fd);
  CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);

  const int two[] = {p.read.get(), p.write.get()};
  plng::base::sendFds(pair.a.get(), "g", two, "send");
  fd = -1;
  CHECK(plng::base::receiveFdsInto(pair.b.get(), {&byte, 1}, {&fd, 1}, count) == -1);
  CHECK(errno == EPROTO);
  CHECK(count == 0);
  CHECK_FALSE(isOpen(fd));
}

TEST_CASE("sendFds refuses an empty payload, and fails on a closed peer") {
  SocketPair pair;
  CHECK_THROWS_AS(plng::base::sendFds(pair.a.get(), "", {}, "send"), SysError);
  pair.b.reset();
  try {
    plng::base::sendFds(pair.a.get(), "x", {}, "hand over");
    FAIL("sent to a closed peer");
  } catch (const SysError& e) {
    CHECK(e.err() == EPIPE);  // and no SIGPIPE killed the test
  }
}
