// What sliver-enter and sliver-init say to each other to start an ssh login
// inside a running sliver (docs/node.md, "Logins").
//
// sliverd hands sliver-init a listening SOCK_SEQPACKET socket bound at
// <run_dir>/slivers/<slice>.logins (NodePaths::sliverLogins, in a directory
// only host root may enter). One connection is one login:
//
//   sliver-enter -> sliver-init   the request: kRequestMagic, then fields, each
//                                 one NUL-terminated string whose first byte
//                                 says what it is: 'a' an argument to the shell
//                                 (after argv[0], e.g. "-c", "<command>"),
//                                 'e' an environment entry NAME=value. With it,
//                                 SCM_RIGHTS: exactly three descriptors, the
//                                 login's stdin, stdout and stderr.
//   sliver-enter -> sliver-init   kSignal: a signal for the login's shell
//                                 (relayedSignal() says which are passed on).
//   sliver-init -> sliver-enter   kExited: the shell's wait status; the
//                                 connection is closed after it.
//
// A connection closed before kExited: sliver-init hangs the login up (SIGHUP
// to its process group); sliver-enter, the sliver stopped.
//
// sliver-init parses the request in place, without the heap.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace plng::sliverd::logins {

inline constexpr char kRequestMagic[] = "plng-login-1";  // with its NUL
inline constexpr std::size_t kMaxRequest = 16384;
inline constexpr std::size_t kMaxArgs = 16;
inline constexpr std::size_t kMaxEnv = 32;

// A signal message: kSignal, then the signal number as one byte.
inline constexpr char kSignal = 's';
// An exit message: kExited, then the wait status (int32, host byte order).
inline constexpr char kExited = 'x';
inline constexpr std::size_t kExitedSize = 1 + sizeof(std::int32_t);

// The signals sliver-enter relays to the login (sshd's hangup and
// termination, and what a client may ask for); others are ignored.
inline bool relayedSignal(int sig) {
  return sig == SIGHUP || sig == SIGTERM || sig == SIGINT || sig == SIGQUIT;
}

// A request parsed in place: the pointers point into the buffer given to
// parseRequest, and each list ends with nullptr.
struct Request {
  const char* args[kMaxArgs + 1] = {};
  std::size_t arg_count = 0;
  const char* env[kMaxEnv + 1] = {};
  std::size_t env_count = 0;
};

// The request's bytes (without the descriptors).
inline std::string encodeRequest(const std::vector<std::string>& args,
                                 const std::vector<std::string>& env) {
  std::string out(kRequestMagic, sizeof kRequestMagic);
  for (const std::string& arg : args) {
    out += 'a';
    out += arg;
    out += '\0';
  }
  for (const std::string& entry : env) {
    out += 'e';
    out += entry;
    out += '\0';
  }
  return out;
}

// Parses `size` bytes at `data`. False for anything not made by encodeRequest
// within the limits: a wrong magic, an unterminated field, an unknown kind,
// too many arguments or entries, an argument with a NUL in it, an environment
// entry without '=' or with an empty name.
inline bool parseRequest(const char* data, std::size_t size, Request& out) {
  out = Request{};
  if (size > kMaxRequest || size < sizeof kRequestMagic ||
      std::memcmp(data, kRequestMagic, sizeof kRequestMagic) != 0) {
    return false;
  }
  std::size_t at = sizeof kRequestMagic;
  while (at < size) {
    const void* end = std::memchr(data + at, '\0', size - at);
    if (end == nullptr) return false;
    const char kind = data[at];
    const char* text = data + at + 1;
    at = static_cast<std::size_t>(static_cast<const char*>(end) - data) + 1;
    if (kind == 'a') {
      if (out.arg_count == kMaxArgs) return false;
      out.args[out.arg_count++] = text;
    } else if (kind == 'e') {
      const char* equals = std::strchr(text, '=');
      if (equals == nullptr || equals == text || out.env_count == kMaxEnv) return false;
      out.env[out.env_count++] = text;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace plng::sliverd::logins
