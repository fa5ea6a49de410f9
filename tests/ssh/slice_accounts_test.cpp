// Slice accounts against a temporary /etc (no root needed), and the login
// tools' configuration files.
#include "sliverd/login/slice_accounts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

#include "base/fd.h"
#include "base/file.h"
#include "node/sliver_name.h"
#include "sliverd/login/slice_login.h"
#include "tests/support/scratch_dir.h"

namespace fs = std::filesystem;
using plng::sliverd::SliceAccount;
using plng::sliverd::SliceAccountError;
using plng::sliverd::SliceAccounts;
using plng::sliverd::SliceAccountsConfig;

namespace {

const char* kPasswd =
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n"
    "site_taken:x:1001:1001:not a slice:/home/site_taken:/bin/sh\n"
    "squatter:x:70000:70000:PlanetLab NG slice lookalike:/:/bin/sh\n";
const char* kShadow =
    "root:$y$hash:19000:0:99999:7:::\n"
    "alice:!:19000:0:99999:7:::\n";
const char* kGroup =
    "root:x:0:\n"
    "alice:x:1000:\n"
    "site_taken:x:1001:\n"
    "other:x:70000:\n";
const char* kGshadow = "root:*::\nalice:!::\n";

struct TempEtc {
  plng::test::ScratchDir scratch{"plng-accounts"};
  fs::path root = scratch.path();
  TempEtc() {
    fs::create_directories(root / "etc");
    write("passwd", kPasswd, 0644);
    write("shadow", kShadow, 0640);
    write("group", kGroup, 0644);
    write("gshadow", kGshadow, 0640);
  }
  void write(const std::string& name, const std::string& text, mode_t mode) {
    std::ofstream(root / "etc" / name) << text;
    ::chmod((root / "etc" / name).c_str(), mode);
  }
  std::string read(const std::string& name) const {
    return plng::base::readFileIfExists(root / "etc" / name).value_or("");
  }
  SliceAccountsConfig config() const {
    SliceAccountsConfig config;
    config.root = root;
    config.login_shell = "/usr/libexec/planetlab/sliver-enter";
    config.paths.state_dir = "/var/lib/sliverd";
    return config;
  }
};

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("slice account names are sliver names: user-name rules", "[ssh]") {
  using plng::node::isValidSliverName;
  CHECK(isValidSliverName("princeton_codeen"));
  CHECK(isValidSliverName("pl_x-1"));
  CHECK(isValidSliverName("_internal"));
  CHECK_FALSE(isValidSliverName(""));
  CHECK_FALSE(isValidSliverName("Princeton_codeen"));
  CHECK_FALSE(isValidSliverName("1site_x"));
  CHECK_FALSE(isValidSliverName("-site_x"));
  CHECK_FALSE(isValidSliverName("site/x"));
  CHECK_FALSE(isValidSliverName("site:x"));
  CHECK_FALSE(isValidSliverName("site.x"));
  CHECK_FALSE(isValidSliverName(std::string(33, 'a')));
  CHECK(isValidSliverName(std::string(32, 'a')));
}

TEST_CASE("ensureSliceAccount creates a tagged account with sliver-enter as shell", "[ssh]") {
  TempEtc etc;
  SliceAccounts accounts(etc.config());
  SliceAccount account = accounts.ensureSliceAccount("princeton_codeen");

  // 70000 is taken (by a lookalike), so the lowest free uid is the next one;
  // the shared group got a gid of the same range.
  CHECK(account.uid == 70001);
  CHECK(account.gid == 70001);
  CHECK(account.home == "/var/lib/sliverd/slivers/princeton_codeen");
  CHECK(account.shell == "/usr/libexec/planetlab/sliver-enter");
  CHECK(
      contains(etc.read("passwd"),
               "\nprinceton_codeen:x:70001:70001:PlanetLab NG slice:"
               "/var/lib/sliverd/slivers/princeton_codeen:/usr/libexec/planetlab/sliver-enter\n"));
  CHECK(contains(etc.read("shadow"), "\nprinceton_codeen:*:"));
  CHECK(contains(etc.read("group"), "\nplng-slices:x:70001:\n"));
  CHECK(contains(etc.read("gshadow"), "\nplng-slices:!::\n"));
  // Every other line is left as it was, and the files keep their modes.
  CHECK(etc.read("passwd").rfind(kPasswd, 0) == 0);
  CHECK(etc.read("shadow").rfind(kShadow, 0) == 0);
  CHECK((fs::status(etc.root / "etc/shadow").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
  for (const auto& entry : fs::directory_iterator(etc.root / "etc")) {
    // writeFileAtomic's temporary files are ".<name>.XXXXXX"; the lock is .pwd.lock.
    const std::string name = entry.path().filename().string();
    CHECK((!name.starts_with(".") || name == ".pwd.lock"));
  }

  SECTION("idempotent, and a second slice gets the next uid in the shared group") {
    std::string before = etc.read("passwd");
    CHECK(accounts.ensureSliceAccount("princeton_codeen") == account);
    CHECK(etc.read("passwd") == before);
    SliceAccount second = accounts.ensureSliceAccount("mit_ron");
    CHECK(second.uid == 70002);
    CHECK(second.gid == account.gid);
    auto listed = accounts.listSliceAccounts();
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].slice == "mit_ron");
    CHECK(listed[1] == account);
  }
  SECTION("a changed login shell or state directory is applied, the uid kept") {
    auto config = etc.config();
    config.login_shell = "/opt/plng/sliver-enter";
    config.paths.state_dir = "/srv/sliverd";
    SliceAccount updated = SliceAccounts(config).ensureSliceAccount("princeton_codeen");
    CHECK(updated.uid == account.uid);
    CHECK(updated.shell == "/opt/plng/sliver-enter");
    CHECK(contains(etc.read("passwd"),
                   "princeton_codeen:x:70001:70001:PlanetLab NG slice:"
                   "/srv/sliverd/slivers/princeton_codeen:/opt/plng/sliver-enter\n"));
  }
  SECTION("removeSliceAccount removes passwd and shadow entries; the group goes when unused") {
    CHECK_FALSE(accounts.removeSliceGroupIfUnused());
    CHECK(accounts.removeSliceAccount("princeton_codeen"));
    CHECK_FALSE(accounts.removeSliceAccount("princeton_codeen"));
    CHECK(etc.read("passwd") == kPasswd);
    CHECK(etc.read("shadow") == kShadow);
    CHECK(accounts.listSliceAccounts().empty());
    CHECK(accounts.removeSliceGroupIfUnused());
    CHECK(etc.read("group") == kGroup);
    CHECK(etc.read("gshadow") == kGshadow);
  }
}

TEST_CASE("other host accounts are never touched", "[ssh]") {
  TempEtc etc;
  SliceAccounts accounts(etc.config());
  // An existing account with the slice's name that is not a slice account.
  CHECK_THROWS_WITH(accounts.ensureSliceAccount("site_taken"),
                    Catch::Contains("exists and is not a PlanetLab NG slice account"));
  CHECK_THROWS_AS(accounts.ensureSliceAccount("root"), SliceAccountError);
  CHECK_FALSE(accounts.removeSliceAccount("alice"));
  CHECK_FALSE(accounts.removeSliceAccount("squatter"));  // GECOS only resembles the tag
  CHECK(etc.read("passwd") == kPasswd);
  CHECK(etc.read("shadow") == kShadow);
  CHECK(accounts.listSliceAccounts().empty());
  CHECK_THROWS_WITH(accounts.ensureSliceAccount("Bad_Name"),
                    Catch::Contains("cannot have a host account"));
  CHECK_THROWS_WITH(accounts.ensureSliceAccount("../etc"),
                    Catch::Contains("cannot have a host account"));
}

TEST_CASE("a full uid range is reported", "[ssh]") {
  TempEtc etc;
  auto config = etc.config();
  config.first_uid = 70000;  // taken by "squatter"
  config.last_uid = 70001;
  SliceAccounts accounts(config);
  accounts.ensureSliceAccount("site_a");
  CHECK_THROWS_WITH(accounts.ensureSliceAccount("site_b"), Catch::Contains("no free uid"));
}

TEST_CASE("account changes wait for the user-database lock (lckpwdf)", "[ssh]") {
  TempEtc etc;
  SliceAccounts accounts(etc.config());
  plng::base::UniqueFd lock(
      ::open((etc.root / "etc/.pwd.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  REQUIRE(lock);
  struct flock hold {};
  hold.l_type = F_WRLCK;
  hold.l_whence = SEEK_SET;
  REQUIRE(::fcntl(lock.get(), F_OFD_SETLK, &hold) == 0);

  auto done = std::async(std::launch::async, [&] { return accounts.ensureSliceAccount("site_a"); });
  CHECK(done.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
  CHECK_FALSE(contains(etc.read("passwd"), "site_a"));
  hold.l_type = F_UNLCK;
  REQUIRE(::fcntl(lock.get(), F_OFD_SETLK, &hold) == 0);
  CHECK(done.get().slice == "site_a");
  CHECK(contains(etc.read("passwd"), "\nsite_a:x:"));
}

TEST_CASE("login tools' configuration file", "[ssh]") {
  // In /tmp whatever $TMPDIR says: its sticky bit and owner are part of the test.
  plng::test::ScratchDir scratch("plng-loginconf", 0755, "/tmp");
  const fs::path& dir = scratch.path();

  std::ofstream(dir / "sliver-enter.conf") << "state_dir=/srv/state\nrun_dir=/run/node7\n";
  ::chmod((dir / "sliver-enter.conf").c_str(), 0644);
  auto config = plng::sliverd::findSliceLoginConfig(dir / "sliver-enter", false);
  CHECK(config.source == dir / "sliver-enter.conf");
  CHECK(config.paths.sliverInit("site_x") == "/run/node7/slivers/site_x.init");
  CHECK(config.paths.authorizedKeys("site_x") == "/srv/state/slivers/site_x/authorized_keys");

  std::ofstream(dir / "typo.conf") << "state-dir=/srv/state\n";
  CHECK_THROWS_WITH(plng::sliverd::readSliceLoginConfig(dir / "typo.conf"),
                    Catch::Contains("unknown key \"state-dir\""));
  std::ofstream(dir / "relative.conf") << "run_dir=run\n";
  CHECK_THROWS_WITH(plng::sliverd::readSliceLoginConfig(dir / "relative.conf"),
                    Catch::Contains("absolute path"));

  if (::geteuid() == 0) {
    // /tmp is sticky and root's: accepted; a file others may write is not.
    CHECK_NOTHROW(plng::sliverd::requireRootOwnedPath(dir / "sliver-enter.conf"));
    CHECK_NOTHROW(plng::sliverd::findSliceLoginConfig(dir / "sliver-enter", true));
    ::chmod((dir / "sliver-enter.conf").c_str(), 0666);
    CHECK_THROWS_WITH(plng::sliverd::findSliceLoginConfig(dir / "sliver-enter", true),
                      Catch::Contains("writable by root only"));
    ::chmod((dir / "sliver-enter.conf").c_str(), 0644);
    ::chmod(dir.c_str(), 0777);
    CHECK_THROWS_WITH(plng::sliverd::requireRootOwnedPath(dir / "sliver-enter.conf"),
                      Catch::Contains(dir.string() + " must belong to root"));
    ::chmod(dir.c_str(), 0755);
    ::chown((dir / "sliver-enter.conf").c_str(), 65534, 65534);
    CHECK_THROWS_WITH(plng::sliverd::requireRootOwnedPath(dir / "sliver-enter.conf"),
                      Catch::Contains("must belong to root"));
    fs::create_symlink(dir / "typo.conf", dir / "link.conf");
    CHECK_THROWS_WITH(plng::sliverd::requireRootOwnedPath(dir / "link.conf"),
                      Catch::Contains("symbolic link"));
  }
}

TEST_CASE("several node instances on one host: the instance whose network namespace it is",
          "[ssh]") {
  plng::test::ScratchDir scratch("plng-loginconf", 0755, "/tmp");
  const fs::path& dir = scratch.path();
  fs::create_directory(dir / "sliver-enter.d");
  auto instance = [&](const std::string& name, const std::string& netns) {
    std::ofstream(dir / "sliver-enter.d" / (name + ".conf"))
        << "state_dir=/srv/" << name << "\nrun_dir=/run/" << name << "\nnetns=" << netns << "\n";
    ::chmod((dir / "sliver-enter.d" / (name + ".conf")).c_str(), 0644);
  };
  // A sliver-enter.conf beside it is not read: the directory comes first.
  std::ofstream(dir / "sliver-enter.conf") << "state_dir=/srv/single\n";
  instance("node1", (dir / "no-such-netns").string());
  instance("node2", "/proc/self/ns/net");
  CHECK(plng::sliverd::isOwnNetworkNamespace("/proc/self/ns/net"));
  CHECK_FALSE(plng::sliverd::isOwnNetworkNamespace(dir / "no-such-netns"));
  CHECK_FALSE(plng::sliverd::isOwnNetworkNamespace(dir / "sliver-enter.conf"));

  auto config = plng::sliverd::findSliceLoginConfig(dir / "sliver-enter", false);
  CHECK(config.source == dir / "sliver-enter.d" / "node2.conf");
  CHECK(config.paths.state_dir == "/srv/node2");
  CHECK(config.netns == "/proc/self/ns/net");
  CHECK(plng::sliverd::readSliceLoginInstances(dir / "sliver-enter.d", false).size() == 2);

  SECTION("no instance serves this namespace: refused, no fallback") {
    fs::remove(dir / "sliver-enter.d" / "node2.conf");
    CHECK_THROWS_WITH(
        plng::sliverd::findSliceLoginConfig(dir / "sliver-enter", false),
        Catch::Contains("no node instance in") && Catch::Contains("serves this network namespace"));
  }
  SECTION("two instances naming this namespace: refused") {
    instance("node3", "/proc/thread-self/ns/net");
    CHECK_THROWS_WITH(plng::sliverd::findSliceLoginConfig(dir / "sliver-enter", false),
                      Catch::Contains("several node instances"));
  }
  SECTION("an instance without netns= is an error") {
    std::ofstream(dir / "sliver-enter.d" / "bad.conf") << "state_dir=/srv/bad\n";
    CHECK_THROWS_WITH(plng::sliverd::readSliceLoginInstances(dir / "sliver-enter.d", false),
                      Catch::Contains("netns="));
  }
  if (::geteuid() == 0) {
    SECTION("setuid: every instance file must be root's and writable by root only") {
      CHECK_NOTHROW(plng::sliverd::findSliceLoginConfig(dir / "sliver-enter", true));
      ::chmod((dir / "sliver-enter.d" / "node1.conf").c_str(), 0666);
      CHECK_THROWS_WITH(plng::sliverd::findSliceLoginConfig(dir / "sliver-enter", true),
                        Catch::Contains("writable by root only"));
    }
  }
}

TEST_CASE("node instances sharing the host's accounts keep and hand over each other's", "[ssh]") {
  TempEtc etc;
  plng::test::ScratchDir states("plng-instances");
  auto instance = [&](const std::string& name) {
    SliceAccountsConfig config = etc.config();
    config.paths.state_dir = states / name;
    for (const auto& other : {"node1", "node2"}) {
      plng::node::NodePaths neighbour;
      neighbour.state_dir = states / other;
      if (other != name) config.neighbours.push_back(neighbour);
    }
    return config;
  };
  SliceAccounts node1(instance("node1")), node2(instance("node2"));
  auto has_sliver = [&](const std::string& node, bool has) {
    fs::path dir = states / node / "slivers" / "princeton_demo";
    has ? fs::create_directories(dir) : fs::remove_all(dir);
  };

  has_sliver("node1", true);
  SliceAccount first = node1.ensureSliceAccount("princeton_demo");
  CHECK(first.home == states / "node1/slivers/princeton_demo");
  // node2 gets the slice too: node1 keeps the one account.
  has_sliver("node2", true);
  CHECK(node2.ensureSliceAccount("princeton_demo") == first);
  CHECK_FALSE(node2.removeSliceAccount("princeton_demo"));  // node1's, not node2's
  CHECK(node1.findSliceAccount("princeton_demo") == first);

  // The slice leaves node1: the account goes to node2, with its uid.
  has_sliver("node1", false);
  CHECK_FALSE(node1.removeSliceAccount("princeton_demo"));
  auto handed = node1.findSliceAccount("princeton_demo");
  REQUIRE(handed);
  CHECK(handed->uid == first.uid);
  CHECK(handed->home == states / "node2/slivers/princeton_demo");
  // It comes back to node1: node2 keeps it. It leaves node2 too: node1 takes over.
  has_sliver("node1", true);
  CHECK(node1.ensureSliceAccount("princeton_demo").home == handed->home);
  has_sliver("node2", false);
  CHECK_FALSE(node2.removeSliceAccount("princeton_demo"));
  CHECK(node1.findSliceAccount("princeton_demo")->home == first.home);
  // Gone from both: removed.
  has_sliver("node1", false);
  CHECK(node1.removeSliceAccount("princeton_demo"));
  CHECK_FALSE(node1.findSliceAccount("princeton_demo"));
}

TEST_CASE("writeSliceAuthorizedKeys writes the members' keys for sliverd-keys", "[ssh]") {
  plng::test::ScratchDir scratch("plng-keys");
  plng::node::NodePaths paths;
  paths.state_dir = scratch / "state";
  fs::create_directories(paths.state_dir / "slivers");

  plng::sliverd::writeSliceAuthorizedKeys(
      paths, "site_x", {"ssh-ed25519 AAAA alice@example.org", "", "ssh-rsa BBBB bob"});
  CHECK(plng::base::readFile(paths.authorizedKeys("site_x")) ==
        "ssh-ed25519 AAAA alice@example.org\nssh-rsa BBBB bob\n");
  CHECK((fs::status(paths.authorizedKeys("site_x")).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
         fs::perms::others_read));

  // Rewritten whole; an injected second line (with options) is refused.
  plng::sliverd::writeSliceAuthorizedKeys(paths, "site_x", {});
  CHECK(fs::file_size(paths.authorizedKeys("site_x")) == 0);
  CHECK_THROWS_AS(plng::sliverd::writeSliceAuthorizedKeys(
                      paths, "site_x", {"ssh-ed25519 AAAA a\ncommand=\"sh\" ssh-rsa BBBB"}),
                  std::invalid_argument);
  CHECK_THROWS_AS(plng::sliverd::writeSliceAuthorizedKeys(paths, "../x", {}),
                  std::invalid_argument);
}
