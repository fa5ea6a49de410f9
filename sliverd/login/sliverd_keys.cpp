// sliverd-keys <user>: sshd's AuthorizedKeysCommand for slice accounts.
//
// Prints the slice members' keys that sliverd keeps in
// <state_dir>/slivers/<slice>/authorized_keys when <user> is a slice account
// (slice_accounts.h), and nothing for any other user or a slice without keys
// (exit 0 either way: sshd then simply finds no key). Read errors go to stderr
// (sshd logs them) with exit 1.
//
// sshd runs it as AuthorizedKeysCommandUser (deploy/sshd/planetlab-slices.conf)
// and requires the binary and every directory above it to belong to root and be
// writable by root only. That user must be able to read the keys file: the
// directories down to it traversable (o+x) and the file readable (0644); the
// keys are public, the directory listings need not be.
// The node's directories come from slice_login.h (a config next to this binary,
// else /etc/planetlab/sliver-enter.conf), or `--config FILE`.
#include <pwd.h>
#include <sys/auxv.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "node/sliver_name.h"
#include "sliverd/login/slice_accounts.h"
#include "sliverd/login/slice_login.h"

namespace {
namespace fs = std::filesystem;

int run(int argc, char** argv) {
  std::string user;
  fs::path config_file;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_file = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      std::puts(
          "usage: sliverd-keys [--config FILE] <user>\n"
          "Prints the authorized keys of slice account <user> (sshd's "
          "AuthorizedKeysCommand).");
      return 0;
    } else if (user.empty() && !arg.empty() && arg[0] != '-') {
      user = arg;
    } else {
      std::fprintf(stderr, "sliverd-keys: usage: sliverd-keys [--config FILE] <user>\n");
      return 2;
    }
  }
  if (user.empty()) {
    std::fprintf(stderr, "sliverd-keys: usage: sliverd-keys [--config FILE] <user>\n");
    return 2;
  }
  if (!plng::node::isValidSliverName(user)) return 0;
  struct passwd* pw = ::getpwnam(user.c_str());
  if (!pw || !plng::sliverd::isSliceAccountGecos(pw->pw_gecos ? pw->pw_gecos : "")) return 0;

  plng::sliverd::SliceLoginConfig config;
  const char* config_env = ::getauxval(AT_SECURE) ? nullptr : std::getenv("PLNG_SLIVER_ENTER_CONF");
  if (!config_file.empty()) {
    config = plng::sliverd::readSliceLoginConfig(config_file);
  } else if (config_env && *config_env) {
    config = plng::sliverd::readSliceLoginConfig(config_env);
  } else {
    config = plng::sliverd::findSliceLoginConfig(fs::read_symlink("/proc/self/exe"),
                                                 /*trusted_only=*/false);
  }
  fs::path keys = config.paths.authorizedKeys(user);
  std::ifstream in(keys);
  if (!in) {
    if (errno == ENOENT) return 0;  // a slice with no keys (yet)
    std::fprintf(stderr, "sliverd-keys: cannot read %s: %s\n", keys.c_str(), std::strerror(errno));
    return 1;
  }
  if (in.peek() != std::ifstream::traits_type::eof()) std::cout << in.rdbuf();
  std::cout.flush();
  return std::cout ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sliverd-keys: %s\n", e.what());
    return 1;
  }
}
