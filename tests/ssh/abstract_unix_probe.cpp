// abstract-unix-probe: an abstract unix socket server and client for the root
// tests, run inside slivers (copied into a running sliver's root) and on the
// host. Static, like sliver-init: it runs in any image.
//
//   abstract-unix-probe serve NAME    binds the abstract stream socket "\0NAME"
//                                     and leaves a server behind (a session of
//                                     its own, 120 s at most) that answers each
//                                     connection with "NAME\n"; exits 0 once it
//                                     listens, printing "serving NAME"
//   abstract-unix-probe connect NAME  connects and prints "reply NAME" (exit 0),
//                                     or "refused NAME: <errno name>" (exit 1)
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

socklen_t abstractAddress(const std::string& name, sockaddr_un& address) {
  address = sockaddr_un{};
  address.sun_family = AF_UNIX;
  const std::size_t length = std::min(name.size(), sizeof address.sun_path - 1);
  std::memcpy(address.sun_path + 1, name.data(), length);  // sun_path[0] = '\0': abstract
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length);
}

const char* errnoName(int err) {
  switch (err) {
    case EPERM:
      return "EPERM";
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case EACCES:
      return "EACCES";
    default:
      return std::strerror(err);
  }
}

int serve(const std::string& name) {
  sockaddr_un address;
  const socklen_t length = abstractAddress(name, address);
  const int server = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (server < 0 || ::bind(server, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::listen(server, 16) != 0) {
    std::printf("serve %s: %s\n", name.c_str(), std::strerror(errno));
    return 1;
  }
  std::fflush(stdout);
  int ready[2];
  if (::pipe(ready) != 0) return 1;
  const pid_t pid = ::fork();
  if (pid < 0) return 1;
  if (pid > 0) {
    // Not before the server has left the login's session: the end of the login
    // signals its session and process group, and a server still in them when
    // the login ends (a child scheduled late on a busy host) would go with it.
    ::close(ready[1]);
    char byte = 0;
    if (::read(ready[0], &byte, 1) != 1) return 1;
    std::printf("serving %s\n", name.c_str());
    return 0;
  }
  // The server: out of the caller's session and off its stdio, so that a login
  // that started it can end.
  ::close(ready[0]);
  ::setsid();
  ::signal(SIGHUP, SIG_IGN);
  if (::write(ready[1], "r", 1) != 1) ::_exit(1);
  ::close(ready[1]);
  for (int fd = 0; fd < 3; ++fd) ::close(fd);
  ::alarm(120);
  const std::string reply = name + "\n";
  for (;;) {
    const int client = ::accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    // A client gone already (the test's host side connects and closes) must not
    // end the server with SIGPIPE.
    ssize_t ignored = ::send(client, reply.data(), reply.size(), MSG_NOSIGNAL);
    (void)ignored;
    ::close(client);
  }
}

int connectTo(const std::string& name) {
  sockaddr_un address;
  const socklen_t length = abstractAddress(name, address);
  const int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0) return 2;
  if (::connect(client, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    std::printf("refused %s: %s\n", name.c_str(), errnoName(errno));
    return 1;
  }
  char buffer[256] = {};
  const ssize_t n = ::read(client, buffer, sizeof buffer - 1);
  if (n <= 0) {
    std::printf("refused %s: no reply\n", name.c_str());
    return 1;
  }
  std::printf("reply %s", buffer);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "serve") == 0) return serve(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "connect") == 0) return connectTo(argv[2]);
  std::fprintf(stderr, "usage: abstract-unix-probe serve|connect NAME\n");
  return 2;
}
