// The web portal end to end in a real browser: a real PostgreSQL and plcd serving
// the built portal (web/) and its JSON API, and tests/portal/portal_e2e.mjs
// driving Debian's Chromium through playwright-core over the whole scenario of
// issue 12 (a site joins and is approved, a user registers and is enabled, a
// slice is made, joined, renewed within and beyond its window, the calls found in
// the events browser, ...), checking the text each page shows. Its screenshots
// stay in <build>/tests/plc/portal-artifacts.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "tests/support/child_process.h"
#include "tests/support/plc_fixture.h"
#include "tests/support/skip.h"

TEST_CASE("the portal in Chromium: join, register, slice, renew, events", "[plc][pg][e2e]") {
  namespace fs = std::filesystem;
  const fs::path artifacts = fs::current_path() / "portal-artifacts";
  fs::remove_all(artifacts);
  fs::create_directories(artifacts);
  plng::test::PlcFixture fx(
      plng::test::PlcFixtureOptions{.portal = true, .portalRoot = PLNG_PORTAL_DIST_DIR});
  plng::test::SpawnOptions script;
  script.argv = {PLNG_NODE_PATH,
                 PLNG_PORTAL_E2E_SCRIPT,
                 "--url",
                 "http://" + fx.plcd().portalAddress() + "/",
                 "--admin-email",
                 plng::test::PlcFixture::kAdminEmail,
                 "--admin-password",
                 plng::test::PlcFixture::kAdminPassword,
                 "--artifacts",
                 artifacts.string(),
                 "--node-modules",
                 PLNG_PORTAL_NODE_MODULES};
  script.parentDeathSignal = SIGKILL;
  auto browser = plng::test::ChildProcess::spawn(script);
  auto status = browser.waitFor(std::chrono::minutes(8));
  if (!status) {
    browser.terminate(SIGKILL, std::chrono::seconds(0));
    FAIL("portal_e2e.mjs ran for more than 8 minutes");
  }
  INFO("portal_e2e.mjs: " << plng::test::describeWaitStatus(*status) << "; screenshots in "
                          << artifacts.string());
  if (WIFEXITED(*status) && WEXITSTATUS(*status) == plng::test::kSkipCode)
    plng::test::skipTest("portal_e2e.mjs found no Chromium or playwright-core");
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  // The test looked at the pages, not only photographed them: its screenshots are there.
  std::size_t screenshots = 0;
  for (const auto& entry : fs::directory_iterator(artifacts))
    if (entry.path().extension() == ".png") ++screenshots;
  CHECK(screenshots >= 8);
}
