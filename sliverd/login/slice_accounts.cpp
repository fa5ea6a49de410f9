#include "sliverd/login/slice_accounts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <set>
#include <thread>

#include "base/error.h"
#include "base/fd.h"
#include "base/file.h"
#include "base/strings.h"
#include "node/sliver_name.h"

namespace plng::sliverd {
namespace fs = std::filesystem;
using base::SysError;
using base::throwErrno;
using base::UniqueFd;

namespace {

// How long to wait for another user-database writer (lckpwdf waits 15 s).
constexpr auto kLockTimeout = std::chrono::seconds(15);

std::string joinFields(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ':';
    out += fields[i];
  }
  return out;
}

// One of the user database files, as lines, with the mode and owner to keep
// when it is rewritten.
struct EtcFile {
  fs::path path;
  bool exists = false;
  std::vector<std::string> lines;
  mode_t mode = 0644;
  uid_t uid = 0;
  gid_t gid = 0;

  // The entry whose first field is `name`, or lines.end().
  std::vector<std::string>::iterator find(std::string_view name) {
    return std::find_if(lines.begin(), lines.end(), [&](const std::string& line) {
      return line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
             line[name.size()] == ':';
    });
  }
};

EtcFile readEtcFile(const fs::path& path, mode_t mode_if_missing) {
  EtcFile file;
  file.path = path;
  file.mode = mode_if_missing;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return file;
    throwErrno("open " + path.string());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throwErrno("stat " + path.string());
  file.exists = true;
  file.mode = st.st_mode & 07777;
  file.uid = st.st_uid;
  file.gid = st.st_gid;
  const std::string content = base::readAll(fd.get(), path.string());
  std::size_t start = 0;
  while (start < content.size()) {
    std::size_t nl = content.find('\n', start);
    if (nl == std::string::npos) nl = content.size();
    file.lines.push_back(content.substr(start, nl - start));
    start = nl + 1;
  }
  return file;
}

// Replaces the file atomically (base::writeFileAtomic, durable) with the same
// mode and, when run as root, the same owner.
void writeEtcFile(const EtcFile& file) {
  std::string content;
  for (const auto& line : file.lines) content += line + "\n";
  std::optional<base::FileOwner> owner;
  if (::geteuid() == 0) owner = base::FileOwner{file.uid, file.gid};
  base::writeFileAtomic(file.path, content, file.mode, base::Durability::kDurable, owner);
}

// The lock every user-database writer takes (glibc's lckpwdf, and through it
// useradd, userdel, passwd): a write lock on <etc>/.pwd.lock. An open file
// description lock conflicts with lckpwdf's process-associated one and, unlike
// it, is not dropped when some other descriptor of the file is closed.
class UserDatabaseLock {
 public:
  explicit UserDatabaseLock(const fs::path& etc_dir) {
    fs::path path = etc_dir / ".pwd.lock";
    fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd_) throwErrno("open " + path.string());
    auto deadline = std::chrono::steady_clock::now() + kLockTimeout;
    for (;;) {
      struct flock lock {};
      lock.l_type = F_WRLCK;
      lock.l_whence = SEEK_SET;
      if (::fcntl(fd_.get(), F_OFD_SETLK, &lock) == 0) return;
      if (errno != EAGAIN && errno != EACCES && errno != EINTR) throwErrno("lock " + path.string());
      if (std::chrono::steady_clock::now() > deadline) {
        throw SysError(ETIMEDOUT,
                       "lock " + path.string() + " (another program is editing the user database)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  UniqueFd fd_;
};

bool parseId(const std::string& text, unsigned long& out) {
  if (text.empty() || text.size() > 10) return false;
  out = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<unsigned long>(c - '0');
  }
  return true;
}

// The lowest id in [first, last] that no entry of `file` uses in field `index`.
std::optional<unsigned long> lowestFreeId(const EtcFile& file, std::size_t index,
                                          unsigned long first, unsigned long last) {
  std::set<unsigned long> used;
  for (const auto& line : file.lines) {
    auto fields = base::split(line, ':');
    unsigned long id = 0;
    if (fields.size() > index && parseId(fields[index], id)) used.insert(id);
  }
  for (unsigned long id = first; id <= last; ++id) {
    if (!used.count(id)) return id;
  }
  return std::nullopt;
}

std::optional<SliceAccount> accountFromPasswdLine(const std::string& line) {
  auto fields = base::split(line, ':');
  if (fields.size() != 7 || !isSliceAccountGecos(fields[4])) return std::nullopt;
  unsigned long uid = 0, gid = 0;
  if (!parseId(fields[2], uid) || !parseId(fields[3], gid)) return std::nullopt;
  return SliceAccount{fields[0], static_cast<uid_t>(uid), static_cast<gid_t>(gid), fields[5],
                      fields[6]};
}

void requireFieldSafe(const std::string& what, const std::string& value) {
  if (value.empty() || value.find_first_of(":\n") != std::string::npos || value[0] != '/') {
    throw std::invalid_argument(what + " \"" + value +
                                "\" cannot go into /etc/passwd (needs an absolute path "
                                "without ':' or newlines)");
  }
}

long daysSinceEpoch() {
  using namespace std::chrono;
  return duration_cast<days>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

SliceAccounts::SliceAccounts(SliceAccountsConfig config) : config_(std::move(config)) {
  requireFieldSafe("login shell", config_.login_shell.string());
  requireFieldSafe("state directory", config_.paths.sliverDir("x").string());
  if (config_.first_uid == 0 || config_.first_uid > config_.last_uid) {
    throw std::invalid_argument("slice account uid range is empty or includes root");
  }
}

fs::path SliceAccounts::etc(std::string_view file) const { return config_.root / "etc" / file; }

std::optional<fs::path> SliceAccounts::neighbourSliverDir(const std::string& slice) const {
  for (const auto& neighbour : config_.neighbours) {
    fs::path dir = neighbour.sliverDir(slice);
    std::error_code ec;
    if (dir != config_.paths.sliverDir(slice) && fs::is_directory(dir, ec)) return dir;
  }
  return std::nullopt;
}

SliceAccount SliceAccounts::ensureSliceAccount(const std::string& slice) {
  if (!node::isValidSliverName(slice)) {
    throw SliceAccountError("slice \"" + slice +
                            "\" cannot have a host account: a user name is 1-32 characters of "
                            "a-z, 0-9, '_' and '-', starting with a letter or '_'");
  }
  UserDatabaseLock lock(config_.root / "etc");
  EtcFile passwd = readEtcFile(etc("passwd"), 0644);
  EtcFile shadow = readEtcFile(etc("shadow"), 0640);
  EtcFile group = readEtcFile(etc("group"), 0644);
  EtcFile gshadow = readEtcFile(etc("gshadow"), 0640);

  auto existing = passwd.find(slice);
  std::optional<SliceAccount> account;
  if (existing != passwd.lines.end()) {
    account = accountFromPasswdLine(*existing);
    if (!account) {
      throw SliceAccountError("host account \"" + slice +
                              "\" exists and is not a PlanetLab NG slice account (GECOS \"" +
                              std::string(kSliceAccountTag) + "\"); not touching it");
    }
  }

  // The shared group first: passwd entries must never name a missing group.
  gid_t gid = 0;
  auto group_line = group.find(kSliceGroup);
  if (group_line != group.lines.end()) {
    unsigned long id = 0;
    auto fields = base::split(*group_line, ':');
    if (fields.size() < 3 || !parseId(fields[2], id)) {
      throw SliceAccountError("malformed entry for group " + std::string(kSliceGroup) + " in " +
                              group.path.string());
    }
    gid = static_cast<gid_t>(id);
  } else {
    auto id = lowestFreeId(group, 2, config_.first_uid, config_.last_uid);
    if (!id) throw SliceAccountError("no free gid for group " + std::string(kSliceGroup));
    gid = static_cast<gid_t>(*id);
    group.lines.push_back(std::string(kSliceGroup) + ":x:" + std::to_string(gid) + ":");
    writeEtcFile(group);
    if (gshadow.exists && gshadow.find(kSliceGroup) == gshadow.lines.end()) {
      gshadow.lines.push_back(std::string(kSliceGroup) + ":!::");
      writeEtcFile(gshadow);
    }
  }

  SliceAccount wanted;
  wanted.slice = slice;
  wanted.gid = gid;
  wanted.home = config_.paths.sliverDir(slice);
  // A neighbour keeps this account for a sliver it has: leave it to them.
  if (account && account->home != wanted.home && neighbourSliverDir(slice) == account->home) {
    return *account;
  }
  wanted.shell = config_.login_shell;
  if (account) {
    wanted.uid = account->uid;
  } else {
    auto id = lowestFreeId(passwd, 2, config_.first_uid, config_.last_uid);
    if (!id) {
      throw SliceAccountError("no free uid for slice " + slice + " in [" +
                              std::to_string(config_.first_uid) + ", " +
                              std::to_string(config_.last_uid) + "]");
    }
    wanted.uid = static_cast<uid_t>(*id);
  }

  if (shadow.find(slice) == shadow.lines.end()) {
    // "*": no password matches it, but unlike "!" sshd does not take it for a
    // locked account, so key logins work with or without PAM.
    shadow.lines.push_back(slice + ":*:" + std::to_string(daysSinceEpoch()) + ":0:99999:7:::");
    writeEtcFile(shadow);
  }
  if (!account || *account != wanted) {
    std::string line =
        joinFields({slice, "x", std::to_string(wanted.uid), std::to_string(wanted.gid),
                    std::string(kSliceAccountTag), wanted.home.string(), wanted.shell.string()});
    if (account) {
      *existing = line;
    } else {
      passwd.lines.push_back(line);
    }
    writeEtcFile(passwd);
  }
  return wanted;
}

bool SliceAccounts::removeSliceAccount(const std::string& slice) {
  if (!node::isValidSliverName(slice)) return false;
  UserDatabaseLock lock(config_.root / "etc");
  EtcFile passwd = readEtcFile(etc("passwd"), 0644);
  auto entry = passwd.find(slice);
  if (entry == passwd.lines.end()) return false;
  auto account = accountFromPasswdLine(*entry);
  if (!account) return false;
  if (!config_.neighbours.empty()) {
    // Another instance's account is not ours to remove; ours goes to a
    // neighbour that still has the slice, so logins there keep working.
    if (account->home != config_.paths.sliverDir(slice)) return false;
    if (auto home = neighbourSliverDir(slice)) {
      *entry = joinFields({slice, "x", std::to_string(account->uid), std::to_string(account->gid),
                           std::string(kSliceAccountTag), home->string(), account->shell.string()});
      writeEtcFile(passwd);
      return false;
    }
  }
  passwd.lines.erase(entry);
  writeEtcFile(passwd);
  EtcFile shadow = readEtcFile(etc("shadow"), 0640);
  auto shadow_entry = shadow.find(slice);
  if (shadow_entry != shadow.lines.end()) {
    shadow.lines.erase(shadow_entry);
    writeEtcFile(shadow);
  }
  return true;
}

std::vector<SliceAccount> SliceAccounts::listSliceAccounts() const {
  std::vector<SliceAccount> accounts;
  for (const auto& line : readEtcFile(etc("passwd"), 0644).lines) {
    if (auto account = accountFromPasswdLine(line)) accounts.push_back(std::move(*account));
  }
  std::sort(accounts.begin(), accounts.end(),
            [](const SliceAccount& a, const SliceAccount& b) { return a.slice < b.slice; });
  return accounts;
}

std::optional<SliceAccount> SliceAccounts::findSliceAccount(const std::string& slice) const {
  for (auto& account : listSliceAccounts()) {
    if (account.slice == slice) return account;
  }
  return std::nullopt;
}

bool SliceAccounts::removeSliceGroupIfUnused() {
  UserDatabaseLock lock(config_.root / "etc");
  EtcFile group = readEtcFile(etc("group"), 0644);
  auto entry = group.find(kSliceGroup);
  if (entry == group.lines.end()) return false;
  auto fields = base::split(*entry, ':');
  if (fields.size() < 3) return false;
  EtcFile passwd = readEtcFile(etc("passwd"), 0644);
  for (const auto& line : passwd.lines) {
    auto user = base::split(line, ':');
    if (user.size() == 7 && user[3] == fields[2]) return false;
  }
  group.lines.erase(entry);
  writeEtcFile(group);
  EtcFile gshadow = readEtcFile(etc("gshadow"), 0640);
  auto gshadow_entry = gshadow.find(kSliceGroup);
  if (gshadow_entry != gshadow.lines.end()) {
    gshadow.lines.erase(gshadow_entry);
    writeEtcFile(gshadow);
  }
  return true;
}

void writeSliceAuthorizedKeys(const node::NodePaths& paths, const std::string& slice,
                              const std::vector<std::string>& keys) {
  if (!node::isValidSliverName(slice)) {
    throw std::invalid_argument("slice \"" + slice + "\" cannot have a host account");
  }
  std::string content;
  for (const auto& key : keys) {
    if (key.find_first_of(std::string("\n\r\0", 3)) != std::string::npos) {
      throw std::invalid_argument("a key of slice " + slice + " spans several lines");
    }
    if (key.empty()) continue;
    content += key + "\n";
  }
  fs::path dir = paths.sliverDir(slice);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throwErrno("mkdir " + dir.string());
  base::writeFileAtomic(paths.authorizedKeys(slice), content, 0644);
}

}  // namespace plng::sliverd
