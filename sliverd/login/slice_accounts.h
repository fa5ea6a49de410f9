// Host accounts for slices: `ssh <slice>@<node>` needs a host user named after
// the slice whose login shell is sliver-enter (docs/node.md, "SSH login").
//
// SliceAccounts edits <root>/etc/passwd, shadow, group and gshadow directly,
// holding the same lock as lckpwdf(3), useradd and passwd (an fcntl lock on
// <root>/etc/.pwd.lock), and replaces each file atomically (write "<file>+",
// fsync, rename) keeping its mode and owner. `root` is "/" on a node and a
// temporary directory in tests.
//
// Only accounts whose GECOS field is exactly kSliceAccountTag are ever changed
// or listed: an existing host account with a slice's name is reported, never
// taken over. Every slice account has the primary group kSliceGroup (created on
// first use), which sshd_config matches (deploy/sshd/planetlab-slices.conf).
//
// Several node instances on one host (the local planet: each node in its own
// network namespace, with its own sliverd and sshd) share these accounts: a
// slice on two nodes has one host account. Its home names the instance that
// keeps it (paths.sliverDir(slice)); `neighbours` lists the host's other
// instances (from sliver-enter.d, slice_login.h). An instance leaves alone an
// account a neighbour keeps for a sliver it still has, and when its own sliver
// goes while a neighbour still has one, it hands the account over (the home
// changes, the uid stays) instead of removing it.
//
// Host uids come from a dedicated range, [70000, 99999] by default: above
// useradd's UID_MAX (60000) and Debian's reserved 60000-65535, below /etc/subuid's
// usual start (100000), and far below the slices' user-namespace ranges
// (node/idrange.h, from 2^30) so a slice account never owns a file in any sliver.
// The uid is only an identity for sshd and sliver-enter: inside the sliver the
// login runs as the sliver's root, mapped through the slice's own id range.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "node/paths.h"

namespace plng::sliverd {

inline constexpr std::string_view kSliceAccountTag = "PlanetLab NG slice";
inline constexpr std::string_view kSliceGroup = "plng-slices";
inline constexpr std::string_view kDefaultSliverEnterPath = "/usr/libexec/planetlab/sliver-enter";

// A slice name that cannot be a host user name (or collides with a host account
// that is not a slice account). The message says which rule it breaks.
class SliceAccountError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SliceAccountsConfig {
  std::filesystem::path root = "/";  // holds etc/passwd, etc/shadow, etc/group
  std::filesystem::path login_shell{kDefaultSliverEnterPath};
  node::NodePaths paths;                    // an account's home is paths.sliverDir(slice)
  std::vector<node::NodePaths> neighbours;  // other node instances sharing these accounts
  uid_t first_uid = 70000;
  uid_t last_uid = 99999;  // inclusive; also the range for kSliceGroup's gid
};

struct SliceAccount {
  std::string slice;  // the user name
  uid_t uid = 0;
  gid_t gid = 0;
  std::filesystem::path home;
  std::filesystem::path shell;
  bool operator==(const SliceAccount&) const = default;
};

// True when a passwd entry with this GECOS field is a slice account.
inline bool isSliceAccountGecos(std::string_view gecos) { return gecos == kSliceAccountTag; }

class SliceAccounts {
 public:
  explicit SliceAccounts(SliceAccountsConfig config);

  // Creates the slice's account (password "*": no password ever matches, yet
  // sshd still accepts keys; "!" would make sshd without PAM refuse the login),
  // or brings an existing slice account's home and shell up to date. Keeps an
  // existing account's uid. Idempotent. Throws SliceAccountError for a name
  // that is not valid or belongs to a host account that is not a slice account,
  // or when the uid range is full; SysError when the files cannot be written.
  SliceAccount ensureSliceAccount(const std::string& slice);
  // Removes the slice's account (passwd and shadow), or hands it to a
  // neighbour that still has the slice's sliver. Returns false when there was
  // no slice account by that name or a neighbour keeps it; never touches other
  // accounts.
  bool removeSliceAccount(const std::string& slice);
  // Every slice account, by name.
  std::vector<SliceAccount> listSliceAccounts() const;
  std::optional<SliceAccount> findSliceAccount(const std::string& slice) const;
  // Removes kSliceGroup when no account has it as primary group (tests, node
  // decommissioning). Returns true when it was removed.
  bool removeSliceGroupIfUnused();

  const SliceAccountsConfig& config() const { return config_; }

 private:
  std::filesystem::path etc(std::string_view file) const;
  // The sliver directory of a neighbour that has the slice, if one does.
  std::optional<std::filesystem::path> neighbourSliverDir(const std::string& slice) const;
  SliceAccountsConfig config_;
};

// Writes the slice members' public keys (one OpenSSH key line each) to
// NodePaths::authorizedKeys(slice), atomically and mode 0644, creating the
// sliver's directory (0755) if needed: sliverd-keys reads it as sshd's
// AuthorizedKeysCommandUser (nobody), so state_dir and state_dir/slivers must be
// traversable by others too. Throws std::invalid_argument for a key holding a
// newline or NUL (it would smuggle a second line, with options, into the file),
// SysError when writing fails.
void writeSliceAuthorizedKeys(const node::NodePaths& paths, const std::string& slice,
                              const std::vector<std::string>& keys);

}  // namespace plng::sliverd
