// The login request sliver-enter sends to sliver-init (sliverd/init/
// login_request.h): what is accepted, and everything else refused.
#include "sliverd/init/login_request.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <string>
#include <vector>

namespace logins = plng::sliverd::logins;

namespace {

bool parses(const std::string& bytes, logins::Request& request) {
  return logins::parseRequest(bytes.data(), bytes.size(), request);
}

std::string magic() { return std::string(logins::kRequestMagic, sizeof logins::kRequestMagic); }

}  // namespace

TEST_CASE("a login request carries the shell's arguments and environment", "[ssh]") {
  logins::Request request;
  const std::string bytes =
      logins::encodeRequest({"-c", "echo 'a b'; exit 3"}, {"TERM=xterm", "SSH_CLIENT=1 2 3"});
  REQUIRE(parses(bytes, request));
  REQUIRE(request.arg_count == 2);
  CHECK(std::string(request.args[0]) == "-c");
  CHECK(std::string(request.args[1]) == "echo 'a b'; exit 3");
  CHECK(request.args[2] == nullptr);
  REQUIRE(request.env_count == 2);
  CHECK(std::string(request.env[0]) == "TERM=xterm");
  CHECK(std::string(request.env[1]) == "SSH_CLIENT=1 2 3");
  CHECK(request.env[2] == nullptr);

  // An interactive login: nothing but the magic; an empty argument is one.
  REQUIRE(parses(logins::encodeRequest({}, {}), request));
  CHECK(request.arg_count == 0);
  CHECK(request.env_count == 0);
  REQUIRE(parses(logins::encodeRequest({""}, {}), request));
  CHECK(request.arg_count == 1);
}

TEST_CASE("a malformed login request is refused", "[ssh]") {
  logins::Request request;
  CHECK_FALSE(parses("", request));
  CHECK_FALSE(parses("plng-login-2", request));                       // another version
  CHECK_FALSE(parses(magic().substr(0, 5), request));                 // cut short
  CHECK_FALSE(parses(magic() + "a-c", request));                      // unterminated field
  CHECK_FALSE(parses(magic() + std::string("x1\0", 3), request));     // unknown kind
  CHECK_FALSE(parses(magic() + std::string("\0", 1), request));       // no kind at all
  CHECK_FALSE(parses(magic() + std::string("eTERM\0", 6), request));  // no '='
  CHECK_FALSE(parses(magic() + std::string("e=x\0", 4), request));    // empty name
  CHECK(parses(magic() + std::string("eTERM=\0", 7), request));       // empty value is fine

  std::vector<std::string> many_args(logins::kMaxArgs + 1, "x");
  CHECK_FALSE(parses(logins::encodeRequest(many_args, {}), request));
  many_args.pop_back();
  CHECK(parses(logins::encodeRequest(many_args, {}), request));
  std::vector<std::string> many_env(logins::kMaxEnv + 1, "A=1");
  CHECK_FALSE(parses(logins::encodeRequest({}, many_env), request));

  const std::string huge = logins::encodeRequest({std::string(logins::kMaxRequest, 'x')}, {});
  CHECK_FALSE(parses(huge, request));
}

TEST_CASE("only hangup, termination and interrupts are relayed to a login", "[ssh]") {
  for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGQUIT}) CHECK(logins::relayedSignal(sig));
  for (int sig : {0, SIGKILL, SIGSTOP, SIGUSR1, SIGCHLD, 200})
    CHECK_FALSE(logins::relayedSignal(sig));
}
