// Acknowledged writes survive a crash of PostgreSQL. A few clients create slices
// (AddSlice) and change their tags (SetSliceTag) through plcd on a PgInstance set
// up as the local planet's (durable); PostgreSQL's postmaster is killed with
// SIGKILL in the middle of it and started again; then every call that returned OK
// must be found in the database, and no site may have been granted more slices
// than its quota.
#include <catch2/catch.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <set>
#include <thread>
#include <vector>

#include "tests/support/plc_fixture.h"

namespace pb = planetlab::v1;
using grpc::StatusCode;
using namespace std::chrono_literals;
using plng::test::PgInstance;
using plng::test::PlcFixture;

namespace {

constexpr int kSites = 2;
constexpr int kClientsPerSite = 2;
constexpr int kMaxSlices = 30;  // per site; the clients try for more
constexpr int kAddsPerClient = 24;
// Slices a site must have been granted before the crash: the kill lands mid-load.
constexpr int kKillAfterGranted = 12;

std::string siteName(int site) { return "crash" + std::to_string(site); }

struct Acknowledged {
  std::mutex mutex;
  std::map<std::string, int> slices;       // slice -> its site
  std::map<std::string, int> initscripts;  // slice -> last value acknowledged
  std::map<int, int> grantedPerSite;       // OK AddSlice per site
  std::map<std::string, int> unanswered;   // status code name -> count
  int granted = 0;
};

// One client: AddSlice then SetSliceTag on it, again and again. A call that fails
// for want of the database is not acknowledged (it may or may not have committed);
// the client moves on to a new name, as an unsure client would.
void client(const plng::test::PlcClient& admin, int site, int id, Acknowledged& acked,
            std::chrono::steady_clock::time_point deadline) {
  int attempts = 0;
  for (int n = 0; attempts < kAddsPerClient && std::chrono::steady_clock::now() < deadline; ++n) {
    const std::string slice = siteName(site) + "_c" + std::to_string(id) + "n" + std::to_string(n);
    pb::AddSliceRequest add;
    add.set_name(slice);
    auto [added, info] = admin.call(&pb::Slice::Stub::AddSlice, add);
    if (added.error_code() == StatusCode::RESOURCE_EXHAUSTED) {
      ++attempts;
      continue;
    }
    if (!added.ok()) {
      std::lock_guard lock(acked.mutex);
      ++acked.unanswered[std::to_string(added.error_code())];
      std::this_thread::sleep_for(20ms);
      continue;
    }
    ++attempts;
    {
      std::lock_guard lock(acked.mutex);
      acked.slices[slice] = site;
      ++acked.grantedPerSite[site];
      ++acked.granted;
    }
    for (int v = 1; v <= 3; ++v) {
      pb::SetSliceTagRequest tag;
      tag.set_slice(slice);
      tag.set_tag("initscript");
      tag.set_value("echo " + std::to_string(v));
      if (!admin.call(&pb::Slice::Stub::SetSliceTag, tag).first.ok()) break;
      std::lock_guard lock(acked.mutex);
      acked.initscripts[slice] = v;
    }
  }
}

}  // namespace

TEST_CASE("SIGKILL of PostgreSQL under load loses no acknowledged write", "[plc][pg]") {
  plng::test::skipUnlessPostgres();
  // As the local planet runs it (plng-pg-tmp's default). With
  // Durability::kFastUnsafeForTests, as the planet had it, this test loses slices.
  PgInstance pg;
  REQUIRE(pg.durability() == plng::test::Durability::kDurable);
  PlcFixture fx(pg);
  for (int s = 0; s < kSites; ++s) {
    pb::AddSiteRequest site;
    site.set_login_base(siteName(s));
    site.set_name("Crash site " + std::to_string(s));
    site.set_max_slices(kMaxSlices);
    REQUIRE_OK(fx.admin().call(&pb::Admin::Stub::AddSite, site).first);
  }

  Acknowledged acked;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  std::vector<std::thread> clients;
  for (int s = 0; s < kSites; ++s) {
    for (int c = 0; c < kClientsPerSite; ++c) {
      clients.emplace_back(
          [&, s, c] { client(fx.admin(), s, s * kClientsPerSite + c, acked, deadline); });
    }
  }
  // The crash, while the clients are busy: SIGKILL of the postmaster only, as a
  // crash of it would; its backends notice and exit by themselves.
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(acked.mutex);
      if (acked.granted >= kKillAfterGranted * kSites) break;
    }
    std::this_thread::sleep_for(1ms);
  }
  int grantedAtKill;
  {
    std::lock_guard lock(acked.mutex);
    grantedAtKill = acked.granted;
  }
  pg.kill();
  std::this_thread::sleep_for(500ms);  // calls meanwhile fail: not acknowledged
  pg.start();
  for (auto& t : clients) t.join();

  std::cout << "plc_crash_test: " << acked.granted << " slices acknowledged (" << grantedAtKill
            << " before the kill), " << acked.initscripts.size() << " initscripts; unanswered:";
  for (const auto& [code, n] : acked.unanswered) std::cout << " " << n << "x code " << code;
  std::cout << std::endl;
  CHECK(grantedAtKill >= kKillAfterGranted * kSites);
  // The load went on after the restart (the clients ran out of quota, not time).
  CHECK(acked.granted > grantedAtKill);

  pqxx::connection c(fx.superuserConnectionString());
  pqxx::read_transaction tx(c);
  std::set<std::string> present;
  for (const auto& r : tx.exec("SELECT name FROM slices WHERE deleted_at IS NULL")) {
    present.insert(r[0].as<std::string>());
  }
  std::vector<std::string> lost;
  for (const auto& [slice, site] : acked.slices) {
    if (!present.contains(slice)) lost.push_back(slice);
  }
  INFO("acknowledged but lost: " << lost.size());
  CHECK(lost.empty());

  int stale = 0;
  for (const auto& [slice, value] : acked.initscripts) {
    auto rows = tx.exec_params(
        "SELECT st.value FROM slice_tags st JOIN slices s USING (slice_id)"
        " JOIN tag_types t USING (tag_type_id) WHERE s.name = $1 AND t.name = 'initscript'",
        slice);
    // A later, unacknowledged write may have landed too: never an older value.
    if (rows.empty() || rows[0][0].as<std::string>() < "echo " + std::to_string(value)) ++stale;
  }
  INFO("acknowledged tag values lost or older: " << stale);
  CHECK(stale == 0);

  for (int s = 0; s < kSites; ++s) {
    INFO("site " << siteName(s));
    CHECK(acked.grantedPerSite[s] <= kMaxSlices);
    auto count = tx.exec_params1(
                       "SELECT count(*) FROM slices JOIN sites USING (site_id)"
                       " WHERE login_base = $1 AND slices.deleted_at IS NULL",
                       siteName(s))[0]
                     .as<int>();
    CHECK(count <= kMaxSlices);
  }
}
