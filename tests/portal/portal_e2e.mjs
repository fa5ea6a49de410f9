#!/usr/bin/env node
// End-to-end test of the web portal in a real browser (headless Chromium driven
// by playwright-core), against a running plcd that serves the portal and its
// JSON endpoint (portal_listen, portal_root).
//
// Usage:
//   node tests/portal/portal_e2e.mjs --url http://127.0.0.1:8680/ \
//       --admin-email admin@planet.test --admin-password-file FILE \
//       --artifacts DIR [--node-modules DIR] [--chromium /usr/bin/chromium]
//
//   --url                  the portal's address (plcd's portal_listen)      env PLNG_PORTAL_URL
//   --admin-email          an enabled admin account (plcd create-admin)     env PLNG_ADMIN_EMAIL
//   --admin-password-file  a file holding its password (first line), or    env PLNG_ADMIN_PASSWORD_FILE
//   --admin-password       the password itself                              env PLNG_ADMIN_PASSWORD
//   --artifacts            where the screenshots (NN-step.png) and, on     env PLNG_ARTIFACTS_DIR
//                          failure, failure.png and failure.html go
//   --node-modules         the node_modules holding playwright-core        env PLNG_PORTAL_NODE_MODULES
//                          (default: web/node_modules; the CMake build's is
//                          <build>/web/node_modules)
//   --chromium             the browser (default /usr/bin/chromium); no browser is ever downloaded
//
// Exit status: 0 when every step passed; 1 at the first step that failed (its
// name and what the page showed are printed); 2 for bad arguments; 77 when
// Chromium or playwright-core is missing (ctest: SKIP_RETURN_CODE 77).
//
// The scenario, every step checked by the text the page shows:
//   1. anonymous: a site (fresh login base) requests to join; told it waits for approval
//   2. the admin approves it on Admin → Sites; creates two nodes at it through the JSON API
//   3. anonymous: a user registers at that site; told it waits for approval
//   4. the site's PI logs in and enables the user, granting the role "tech"
//   5. the PI creates a slice, adds the user and the two nodes (checkboxes, filtered by
//      site), sets the tag vref (its description, kind and default shown)
//   6. the user logs in, sees the slice, adds an SSH key, sees each node's sliver state
//      (the first node reported the sliver failing, through the JSON API as a node
//      would), renews the slice within the
//      allowed window (the new expiry shown) and beyond it (refused, the server's
//      message shown as it is), downloads the slice's ticket
//   7. the admin finds those calls in the events browser
//   8. the other screens: the user's API token (works, then revoked), the warning of
//      a slice expiring within a week, the PI removing a node and deleting the slice,
//      the admin's tag types, node groups, blacklist and PLC keys; the user logs out
//   9. the admin's forms: adds a site, and a node at it (a 31-byte key refused in
//      the page, nothing sent; its generated Ed25519 key in hex taken), sets and
//      deletes a node tag, changes its boot state, deletes it; sets a slice tag for a
//      node group; adds a tag type, changes its description, deletes it; renames,
//      resizes and disables the site — each change checked through the JSON API
// Names are unique per run (a random suffix), so the script may run again on the
// same database.

import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const kSkip = 77;
const here = dirname(fileURLToPath(import.meta.url));

// ------------------------------------------------------------------ arguments
function parseArgs(argv) {
  const options = {
    url: process.env.PLNG_PORTAL_URL || '',
    adminEmail: process.env.PLNG_ADMIN_EMAIL || '',
    adminPassword: process.env.PLNG_ADMIN_PASSWORD || '',
    adminPasswordFile: process.env.PLNG_ADMIN_PASSWORD_FILE || '',
    artifacts: process.env.PLNG_ARTIFACTS_DIR || '',
    nodeModules: process.env.PLNG_PORTAL_NODE_MODULES || join(here, '../../web/node_modules'),
    chromium: process.env.PLNG_CHROMIUM || '/usr/bin/chromium',
  };
  const keys = {
    '--url': 'url', '--admin-email': 'adminEmail', '--admin-password': 'adminPassword',
    '--admin-password-file': 'adminPasswordFile', '--artifacts': 'artifacts',
    '--node-modules': 'nodeModules', '--chromium': 'chromium',
  };
  for (let i = 0; i < argv.length; i++) {
    const key = keys[argv[i]];
    if (!key || i + 1 >= argv.length) usage(`unknown or incomplete argument: ${argv[i]}`);
    options[key] = argv[++i];
  }
  if (options.adminPasswordFile) options.adminPassword = readFileSync(options.adminPasswordFile, 'utf8').split('\n')[0];
  for (const [name, key] of [['--url', 'url'], ['--admin-email', 'adminEmail'], ['--admin-password(-file)', 'adminPassword'], ['--artifacts', 'artifacts']]) {
    if (!options[key]) usage(`${name} is required`);
  }
  if (!options.url.endsWith('/')) options.url += '/';
  options.artifacts = resolve(options.artifacts);
  return options;
}

function usage(problem) {
  console.error(`portal_e2e: ${problem}`);
  console.error('usage: portal_e2e.mjs --url URL --admin-email EMAIL (--admin-password-file FILE | --admin-password PW) --artifacts DIR [--node-modules DIR] [--chromium PATH]');
  process.exit(2);
}

const opt = parseArgs(process.argv.slice(2));
mkdirSync(opt.artifacts, { recursive: true });

if (!existsSync(opt.chromium)) {
  console.log(`portal_e2e: SKIPPED: no browser at ${opt.chromium} (apt-get install chromium)`);
  process.exit(kSkip);
}
let chromium;
try {
  ({ chromium } = createRequire(join(resolve(opt.nodeModules), 'noop.js'))('playwright-core'));
} catch (e) {
  console.log(`portal_e2e: SKIPPED: playwright-core not found in ${opt.nodeModules} (npm ci in web/): ${e.message}`);
  process.exit(kSkip);
}

// ------------------------------------------------------------------ the JSON API
// For setup the scenario needs before a page can show it (nodes registered and
// reporting as sliverd would), and to check what the admin's forms changed.
async function api(service, method, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(new URL(`planetlab.v1.${service}/${method}`, opt.url), { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${service}.${method}: HTTP ${r.status}: ${text}`);
  return JSON.parse(text);
}

// ------------------------------------------------------------------ checking the page
const kTimeoutMs = 15000;
let currentStep = '(start)';
let screenshotCount = 0;
const problems = []; // console errors (a CSP violation shows there) and page errors

// What every page must keep (web/README.md): each form control labelled, each
// table with column headers, no inline style (the CSP would refuse it anyway).
async function checkPageRules(page) {
  const broken = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
      if (!el.labels || !el.labels.length || !el.labels[0].textContent.trim()) out.push(`a ${el.tagName.toLowerCase()} named "${el.name || el.id}" has no label`);
    }
    for (const t of document.querySelectorAll('table')) {
      if (!t.querySelector('thead th')) out.push(`a table ("${t.caption ? t.caption.textContent : ''}") has no column headers`);
    }
    // (Playwright's screenshots leave empty style="" attributes behind; only a
    // style with content is the page's own.)
    for (const el of document.querySelectorAll('[style]')) {
      if (el.getAttribute('style').trim()) out.push(`<${el.tagName.toLowerCase()}> has an inline style: ${el.outerHTML.slice(0, 200)}`);
    }
    if (document.querySelectorAll('script:not([src])').length) out.push('an inline <script>');
    return out;
  });
  if (broken.length) throw new Error(`${page.url()} breaks the page rules:\n  ${broken.join('\n  ')}`);
}

async function screenshot(page, name) {
  await checkPageRules(page);
  const file = join(opt.artifacts, `${String(++screenshotCount).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`    screenshot ${file}`);
}

// Waits until `locator`'s text contains every one of `texts`; fails with what it showed.
async function expectText(locator, ...texts) {
  const deadline = Date.now() + kTimeoutMs;
  let shown = '';
  for (;;) {
    try {
      shown = (await locator.first().innerText({ timeout: 1000 })) || '';
      if (texts.every((t) => shown.includes(t))) return shown;
    } catch {
      // not there yet
    }
    if (Date.now() > deadline) {
      throw new Error(`expected ${texts.map((t) => JSON.stringify(t)).join(' and ')} in ${locator}, which shows:\n${shown.slice(0, 2000) || '(nothing)'}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The success message of the action just done (role="status"), containing `text`.
// When it does not come, the error the page shows instead is the likely reason.
async function expectStatus(scope, text) {
  try {
    return await expectText(scope.getByRole('status').filter({ hasText: text }), text);
  } catch (e) {
    const alerts = await scope.getByRole('alert').allInnerTexts().catch(() => []);
    if (alerts.length) e.message += `\nthe page shows the error: ${alerts.join(' | ')}`;
    throw e;
  }
}

async function expectNoText(locator, text) {
  const shown = await locator.first().innerText();
  if (shown.includes(text)) throw new Error(`did not expect ${JSON.stringify(text)} in ${locator}, which shows:\n${shown.slice(0, 2000)}`);
}

async function noAlert(page) {
  const alerts = page.getByRole('alert');
  if (await alerts.count()) throw new Error(`unexpected error shown: ${await alerts.first().innerText()}`);
}

async function go(page, route, heading) {
  await page.goto(new URL(`#/${route}`, opt.url).toString());
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

async function login(page, email, password, { keyboard = false } = {}) {
  await go(page, 'login', 'Log in to PlanetLab');
  if (keyboard) {
    // As a keyboard user: focus is on the heading after the page loads; Tab
    // reaches the fields in order and Enter submits.
    await page.getByLabel('Email', { exact: true }).focus();
    await page.keyboard.type(email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(password);
    await page.keyboard.press('Enter');
  } else {
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
  }
  await page.getByRole('heading', { level: 1, name: 'Slices' }).waitFor();
  await expectText(page.getByRole('navigation', { name: 'Main' }), `Log out ${email}`);
}

// Every actor gets a browser context of its own (its own storage and session);
// the browser's clock and time zone are UTC so that times typed and shown match.
async function actor(browser, name) {
  const context = await browser.newContext({ timezoneId: 'UTC', locale: 'en-GB', acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(kTimeoutMs);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) {
      problems.push(`${name}: console error: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  return page;
}

// An OpenSSH ed25519 public key line and its SHA256 fingerprint, as sshd would print them.
function sshKey(comment) {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const blob = Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
  return {
    line: `ssh-ed25519 ${blob.toString('base64')} ${comment}`,
    fingerprint: `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`,
  };
}

// A node's key pair; AddNode takes the public half as a raw 32-byte Ed25519 key
// (a point on the curve; PLC refuses other bytes), base64 in JSON.
const nodeKeys = new Map();
function nodePublicKey(hostname) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  nodeKeys.set(hostname, privateKey);
  return publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
}

// The node logs in with its key (Auth.GetNodeChallenge, Auth.NodeLogin: Ed25519 over
// "planetlab-node-login" NUL hostname NUL nonce) and reports, as sliverd would, that
// the slice's sliver fails on it (NodeSync.ReportStatus).
async function nodeReportsFailure(hostname, slice, reason) {
  const challenge = await api('Auth', 'GetNodeChallenge', { hostname });
  const nonce = Buffer.from(challenge.nonce, 'base64');
  const message = Buffer.concat([Buffer.from(`planetlab-node-login\0${hostname}\0`), nonce]);
  const signature = sign(null, message, nodeKeys.get(hostname)).toString('base64');
  const { token } = await api('Auth', 'NodeLogin', { hostname, nonce: challenge.nonce, signature });
  const now = Math.floor(Date.now() / 1000);
  await api('NodeSync', 'ReportStatus', {
    reportedAt: String(now),
    health: {
      lastReconcileAt: String(now),
      lastReconcileOk: false,
      sliversRunning: 0,
      sliversFailed: [{ sliceName: slice, reason, since: String(now - 120) }],
    },
  }, token);
}

// "2027-01-29T13:45" (datetime-local, UTC here) -> "2027-01-29 13:45 UTC", as the portal prints times.
const shownTime = (localInput) => `${localInput.replace('T', ' ')} UTC`;
function addDays(localInput, days) {
  const d = new Date(`${localInput}:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 16);
}

// ------------------------------------------------------------------ the scenario
const suffix = randomBytes(4).toString('hex').replace(/^[0-9]/, 'x').slice(0, 6);
const site = {
  loginBase: `e2e${suffix}`,
  name: `E2E University ${suffix}`,
  url: `https://e2e-${suffix}.example.org/`,
};
const pi = { email: `pi-${suffix}@e2e.example.org`, password: `pi-password-${suffix}`, first: 'Paula', last: 'Investigator' };
const user = { email: `user-${suffix}@e2e.example.org`, password: `user-password-${suffix}`, first: 'Ursula', last: 'User' };
const sliceName = `${site.loginBase}_demo`;
const nodes = [`n1-${suffix}.e2e.example.org`, `n2-${suffix}.e2e.example.org`];
const kSliverFailure = 'image busybox: no such image in /var/lib/sliverd/images';

async function step(name, fn) {
  currentStep = name;
  console.log(`--- ${name}`);
  const started = Date.now();
  await fn();
  console.log(`    (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  if (problems.length) throw new Error(`the browser reported:\n  ${problems.join('\n  ')}`);
}

let browser;
let refusalMessage = '';
const pages = [];
async function main() {
  console.log(`portal_e2e: ${opt.url}, site ${site.loginBase}, artifacts in ${opt.artifacts}`);
  // launch() gives the browser a fresh temporary profile (user-data-dir) of its own.
  browser = await chromium.launch({
    executablePath: opt.chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const anon = await actor(browser, 'anonymous');
  const adm = await actor(browser, 'admin');
  const piPage = await actor(browser, 'pi');
  const userPage = await actor(browser, 'user');
  pages.push(anon, adm, piPage, userPage);

  await step('1. a site requests to join', async () => {
    await go(anon, 'join/site', 'Request a site');
    await anon.getByLabel('Login base', { exact: true }).fill(site.loginBase);
    await anon.getByLabel('Site name', { exact: true }).fill(site.name);
    await anon.getByLabel('Web site URL', { exact: true }).fill(site.url);
    await anon.getByLabel('PI first name', { exact: true }).fill(pi.first);
    await anon.getByLabel('PI last name', { exact: true }).fill(pi.last);
    await anon.getByLabel('PI email', { exact: true }).fill(pi.email);
    await anon.getByLabel('PI password', { exact: true }).fill(pi.password);
    await anon.getByLabel('Technical contact name', { exact: true }).fill('Tom Tech');
    await anon.getByLabel('Technical contact email', { exact: true }).fill(`tech-${suffix}@e2e.example.org`);
    await anon.getByRole('button', { name: 'Request the site' }).click();
    await expectStatus(anon, `Site "${site.loginBase}" requested`);
    await expectText(anon.getByRole('status'), 'waits for a PlanetLab administrator');
    await noAlert(anon);
    await screenshot(anon, 'site-requested');

    // Until it is approved, its PI cannot log in.
    await go(anon, 'login', 'Log in to PlanetLab');
    await anon.getByLabel('Email', { exact: true }).fill(pi.email);
    await anon.getByLabel('Password', { exact: true }).fill(pi.password);
    await anon.getByRole('button', { name: 'Log in' }).click();
    const refusal = await expectText(anon.getByRole('alert'), '');
    console.log(`    the PI's login before approval is refused: ${refusal}`);
    await screenshot(anon, 'pi-login-before-approval');
  });

  let adminToken;
  await step('2. the admin approves the site (and registers two nodes at it)', async () => {
    await login(adm, opt.adminEmail, opt.adminPassword);
    await go(adm, 'admin/sites', 'Admin: Sites');
    const pending = adm.getByRole('table', { name: 'Sites waiting for approval' });
    await expectText(pending, site.loginBase, site.name, 'Tom Tech');
    await screenshot(adm, 'admin-pending-sites');
    await adm.getByRole('button', { name: `Approve ${site.loginBase}` }).click();
    await expectStatus(adm, `Site ${site.loginBase} approved.`);
    await noAlert(adm);
    const all = adm.getByRole('table', { name: 'All sites' });
    await expectText(all, site.loginBase);
    // Gone from the waiting list (which may now be empty: no table at all).
    if (await pending.count()) await expectNoText(pending, site.loginBase);
    await screenshot(adm, 'admin-site-approved');

    adminToken = (await api('Auth', 'Login', { email: opt.adminEmail, password: opt.adminPassword })).token;
    for (const hostname of nodes) {
      await api('Admin', 'AddNode', { hostname, loginBase: site.loginBase, publicKey: nodePublicKey(hostname) }, adminToken);
    }
    await go(adm, 'admin/nodes', 'Admin: Nodes');
    await expectText(adm.getByRole('table', { name: 'Nodes' }), ...nodes);
  });

  await step('3. a user registers at the site', async () => {
    await go(anon, 'join/user', 'Register as a user at a site');
    await anon.getByLabel('Site login base', { exact: true }).fill(site.loginBase);
    await anon.getByLabel('First name', { exact: true }).fill(user.first);
    await anon.getByLabel('Last name', { exact: true }).fill(user.last);
    await anon.getByLabel('Email', { exact: true }).fill(user.email);
    await anon.getByLabel('Password', { exact: true }).fill(user.password);
    await anon.getByRole('button', { name: 'Register' }).click();
    await expectStatus(anon, `Account ${user.email} registered`);
    await expectText(anon.getByRole('status'), 'waits for approval');
    await noAlert(anon);
    await screenshot(anon, 'user-registered');
  });

  await step("4. the site's PI enables the user", async () => {
    await login(piPage, pi.email, pi.password);
    await go(piPage, 'whoami', 'Who am I');
    await expectText(piPage.getByRole('table', { name: 'Roles' }), 'pi', site.loginBase);
    await go(piPage, 'pi', 'People at my sites');
    const waiting = piPage.getByRole('table', { name: `Waiting for approval at ${site.loginBase}` });
    await expectText(waiting, user.email, `${user.first} ${user.last}`);
    await screenshot(piPage, 'pi-pending-people');
    await piPage.getByRole('button', { name: `Enable ${user.email}` }).click();
    await expectStatus(piPage, `${user.email} enabled.`);
    await noAlert(piPage);
    const everyone = piPage.getByRole('table', { name: `Everyone at ${site.loginBase}` });
    const row = everyone.getByRole('row').filter({ hasText: user.email });
    await expectText(row, 'yes');
    // A new account holds the role "user" at its site already; the PI adds "tech".
    await row.getByLabel(`Role for ${user.email}`, { exact: true }).selectOption('tech');
    await row.getByRole('button', { name: 'Grant role' }).click();
    await expectStatus(piPage, `${user.email} is now tech at ${site.loginBase}.`);
    await noAlert(piPage);
    await expectText(everyone.getByRole('row').filter({ hasText: user.email }), 'tech, user');
    await screenshot(piPage, 'pi-user-enabled');
  });

  await step('5. the PI creates a slice, adds the user, two nodes and a tag', async () => {
    await go(piPage, 'slices/new', 'Create a slice');
    await piPage.getByLabel('Site', { exact: true }).selectOption(site.loginBase);
    await piPage.getByLabel('Slice name (after the site prefix)', { exact: true }).fill('demo');
    await piPage.getByLabel('Description', { exact: true }).fill('The portal end-to-end test slice');
    await piPage.getByLabel('URL', { exact: true }).fill(`${site.url}demo`);
    await piPage.getByRole('button', { name: 'Create slice' }).click();
    await piPage.getByRole('heading', { level: 1, name: `Slice ${sliceName}` }).waitFor();
    await noAlert(piPage);

    await piPage.getByLabel('Add members (emails, separated by commas or spaces)', { exact: true }).fill(user.email);
    await piPage.getByRole('button', { name: 'Add members' }).click();
    await expectStatus(piPage, `Added ${user.email}.`);
    await expectText(piPage.getByRole('table', { name: 'Slice members' }), user.email);

    await piPage.getByLabel('Site', { exact: true }).selectOption(site.loginBase);
    await expectText(piPage.getByText(/nodes shown/), '2 of');
    for (const hostname of nodes) await piPage.getByLabel(hostname, { exact: true }).check();
    await piPage.getByRole('button', { name: 'Add selected nodes to the slice' }).click();
    await expectStatus(piPage, 'Added 2 node(s)');
    await expectText(piPage.getByText(/nodes shown/), '2 in the slice');
    const nodeTable = piPage.getByRole('table', { name: /^Nodes/ });
    for (const hostname of nodes) await expectText(nodeTable.getByRole('row').filter({ hasText: hostname }), 'yes');
    await noAlert(piPage);

    await piPage.getByLabel('Tag', { exact: true }).selectOption('vref');
    await expectText(piPage.locator('dl.tag-type'), "reference image of the sliver's root filesystem", 'string', 'debian12', 'user');
    await piPage.getByLabel('Value', { exact: true }).fill('busybox');
    await piPage.getByRole('button', { name: 'Set tag' }).click();
    await expectStatus(piPage, 'Tag vref set to "busybox"');
    await expectText(piPage.getByRole('table', { name: `Tags of ${sliceName}` }), 'vref', 'busybox', 'every node');
    await noAlert(piPage);
    await screenshot(piPage, 'pi-slice-set-up');

    await nodeReportsFailure(nodes[0], sliceName, kSliverFailure);
  });

  await step('6. the user sees the slice, adds an SSH key, renews the slice', async () => {
    await login(userPage, user.email, user.password, { keyboard: true });
    const list = userPage.getByRole('table', { name: "My slices and my sites' slices" });
    await expectText(list.getByRole('row').filter({ hasText: sliceName }), site.loginBase, 'active', '2');
    await screenshot(userPage, 'user-slices');

    const key = sshKey(`ursula@e2e-${suffix}`);
    await go(userPage, 'account', 'My account');
    await userPage.getByLabel('Public key (OpenSSH format)', { exact: true }).fill(key.line);
    await userPage.getByRole('button', { name: 'Add key' }).click();
    await expectStatus(userPage, `Key ${key.fingerprint} added.`);
    await expectText(userPage.getByRole('table', { name: 'My SSH keys' }), key.fingerprint, `ursula@e2e-${suffix}`);
    await noAlert(userPage);
    await screenshot(userPage, 'user-ssh-key');

    // Each node's sliver as its latest report has it: the first node reported
    // the sliver failing; the second never reported (nor made contact).

    await userPage.getByRole('link', { name: 'Slices', exact: true }).click();
    await userPage.getByRole('link', { name: sliceName }).click();
    await userPage.getByRole('heading', { level: 1, name: `Slice ${sliceName}` }).waitFor();
    const nodeRows = userPage.getByRole('table', { name: /^Nodes/ }).getByRole('row');
    await expectText(nodeRows.filter({ hasText: nodes[0] }), 'node up; sliver FAILED since', kSliverFailure);
    await expectText(nodeRows.filter({ hasText: nodes[1] }), 'node down; no report yet');
    await screenshot(userPage, 'user-sliver-state');
    const expiry = userPage.getByLabel('New expiry (your local time)', { exact: true });
    await expectText(userPage.locator('section[aria-labelledby="renew-h"]'), 'You may renew up to');
    const latest = await expiry.inputValue();
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(latest)) throw new Error(`the renewal date is not prefilled (shows "${latest}")`);
    await userPage.getByRole('button', { name: 'Renew slice' }).click();
    await expectStatus(userPage, `Renewed: ${sliceName} now expires ${shownTime(latest)}`);
    await noAlert(userPage);
    await screenshot(userPage, 'user-renewed');

    const tooLate = addDays(latest, 30);
    await expiry.fill(tooLate);
    const [response] = await Promise.all([
      userPage.waitForResponse((r) => r.url().endsWith('/planetlab.v1.Slice/RenewSlice')),
      userPage.getByRole('button', { name: 'Renew slice' }).click(),
    ]);
    if (response.ok()) throw new Error(`renewing to ${tooLate}, past the allowed window, was accepted`);
    const refusal = await response.json();
    const shown = await expectText(userPage.getByRole('alert'), refusal.message);
    if (shown.trim() !== refusal.message) throw new Error(`the refusal is not shown as the server gave it: "${shown}" vs "${refusal.message}"`);
    console.log(`    renewing too far is refused (${refusal.code}): ${refusal.message}`);
    refusalMessage = refusal.message;
    await expectText(userPage.locator('dl.facts'), shownTime(latest));
    await screenshot(userPage, 'user-renew-refused');

    const [download] = await Promise.all([
      userPage.waitForEvent('download'),
      userPage.getByRole('button', { name: 'Download ticket' }).click(),
    ]);
    const ticketFile = join(opt.artifacts, download.suggestedFilename());
    await download.saveAs(ticketFile);
    const ticket = JSON.parse(readFileSync(ticketFile, 'utf8'));
    if (!ticket.body || !ticket.signature || !ticket.keyId) throw new Error(`the downloaded ticket lacks body, signature or keyId: ${JSON.stringify(ticket).slice(0, 300)}`);
    await expectStatus(userPage, `Ticket for ${sliceName} downloaded`);
  });

  await step('7. the admin finds those calls in the events browser', async () => {
    await go(adm, 'admin/events', 'Admin: Events');
    await adm.getByLabel('Object', { exact: true }).fill(`slice:${sliceName}`);
    await adm.getByRole('button', { name: 'Search events' }).click();
    await expectStatus(adm, 'event(s) found.');
    const events = adm.getByRole('table', { name: /^Events/ });
    await expectText(events, 'AddSlice', 'AddSliceMembers', 'AddSliceNodes', 'SetSliceTag', 'RenewSlice', pi.email, user.email);
    await screenshot(adm, 'admin-events-slice');

    await adm.getByLabel('Object', { exact: true }).fill('');
    await adm.getByLabel('Caller', { exact: true }).fill(user.email);
    await adm.getByLabel('Method', { exact: true }).fill('RenewSlice');
    await adm.getByRole('button', { name: 'Search events' }).click();
    await expectStatus(adm, '2 event(s) found.');
    const rows = events.getByRole('row');
    await expectText(rows.filter({ hasText: 'OK' }), 'RenewSlice', user.email);
    await expectText(rows.filter({ hasNotText: 'OK' }).filter({ hasText: 'RenewSlice' }), refusalMessage);
    await adm.getByLabel('Caller', { exact: true }).fill(user.email);
    await adm.getByLabel('Method', { exact: true }).fill('AddPersonKey');
    await adm.getByRole('button', { name: 'Search events' }).click();
    await expectText(events, 'AddPersonKey', 'OK');
    await screenshot(adm, 'admin-events-user');
  });

  await step('8. the other screens: API tokens, the expiry warning, node removal, slice deletion, admin lists', async () => {
    // The user creates an API token, which works, then revokes it, after which it does not.
    await go(userPage, 'account', 'My account');
    await userPage.getByLabel('Token description', { exact: true }).fill(`e2e token ${suffix}`);
    await userPage.getByRole('button', { name: 'Create token' }).click();
    await expectText(userPage.locator('.new-token'), 'Token created', 'not shown again');
    const token = await userPage.getByLabel('New API token', { exact: true }).inputValue();
    const me = await api('Auth', 'WhoAmI', {}, token);
    if (me.email !== user.email) throw new Error(`the new API token is ${me.email}'s, not ${user.email}'s`);
    const tokenRow = userPage.getByRole('table', { name: 'My API tokens' }).getByRole('row').filter({ hasText: `e2e token ${suffix}` });
    await expectText(tokenRow, 'in ');
    await screenshot(userPage, 'user-api-token');
    await tokenRow.getByRole('button', { name: 'Revoke' }).click();
    await tokenRow.getByRole('button', { name: 'Yes, revoke' }).click();
    await expectStatus(userPage, `Token "e2e token ${suffix}" revoked.`);
    const refused = await api('Auth', 'WhoAmI', {}, token).then(() => null, (e) => e);
    if (!refused) throw new Error('the revoked API token still works');

    // A slice expiring within a week is shown with a warning.
    const soon = Math.floor(Date.now() / 1000) + 3 * 86400;
    await api('Slice', 'RenewSlice', { name: sliceName, expiresAt: String(soon) }, adminToken);
    await go(userPage, 'slices', 'Slices');
    await expectText(userPage.getByRole('table', { name: "My slices and my sites' slices" }).getByRole('row').filter({ hasText: sliceName }),
      'WARNING: expires in under 7 days');
    await screenshot(userPage, 'user-slice-expiry-warning');

    // The PI takes one node off the slice, then deletes the slice (after confirming).
    await go(piPage, `slice/${sliceName}`, `Slice ${sliceName}`);
    await piPage.getByLabel('In this slice', { exact: true }).selectOption('in');
    await piPage.getByLabel(nodes[1], { exact: true }).check();
    await piPage.getByRole('button', { name: 'Remove selected nodes from the slice' }).click();
    await expectStatus(piPage, `Removed 1 node(s): ${nodes[1]}.`);
    await expectText(piPage.getByText(/nodes shown/), '1 in the slice');
    await piPage.getByRole('button', { name: 'Delete slice' }).click();
    await piPage.getByRole('button', { name: `Yes, delete ${sliceName}` }).click();
    await piPage.getByRole('heading', { level: 1, name: 'Slices' }).waitFor();
    await expectText(piPage.locator('main'), 'Slices');
    await expectNoText(piPage.locator('main'), sliceName);

    // The admin's lists: tag types, node groups, the blacklist, PLC's keys.
    await go(adm, 'admin/tagtypes', 'Admin: Tag types');
    await expectText(adm.getByRole('table', { name: 'Tag types' }).getByRole('row').filter({ hasText: 'vref' }), 'slice/config', 'string', 'debian12', 'user');
    await go(adm, 'admin/nodegroups', 'Admin: Node groups');
    await adm.getByLabel('Group name', { exact: true }).fill(`group${suffix}`);
    await adm.getByLabel('Node tag', { exact: true }).fill('arch');
    await adm.getByLabel('Tag value', { exact: true }).fill('x86_64');
    await adm.getByRole('button', { name: 'Add node group' }).click();
    await expectStatus(adm, `Node group group${suffix} added`);
    await expectText(adm.getByRole('table', { name: /^Node groups/ }), `group${suffix}`, 'arch', 'x86_64');
    await adm.getByRole('button', { name: `Delete group${suffix}` }).click();
    await adm.getByRole('button', { name: 'Yes' }).click();
    await expectStatus(adm, `Node group group${suffix} deleted.`);
    await go(adm, 'admin/blacklist', 'Admin: Blacklist');
    const prefix = `198.51.100.${1 + (parseInt(suffix.slice(-2), 16) % 250)}/32`;
    await adm.getByLabel('Prefix (CIDR, IPv4 or IPv6)', { exact: true }).fill(prefix);
    await adm.getByLabel('Reason', { exact: true }).fill(`e2e test ${suffix}`);
    await adm.getByRole('button', { name: 'Add to blacklist' }).click();
    await expectStatus(adm, `${prefix} blacklisted.`);
    await expectText(adm.getByRole('table', { name: 'Destination blacklist' }), prefix, `e2e test ${suffix}`);
    await screenshot(adm, 'admin-blacklist');
    await adm.getByRole('button', { name: `Remove ${prefix}` }).click();
    await adm.getByRole('button', { name: 'Yes' }).click();
    await expectStatus(adm, `${prefix} removed from the blacklist.`);
    await go(adm, 'admin/plckeys', 'Admin: PLC keys');
    await expectText(adm.getByRole('table', { name: 'PLC ticket-signing keys' }), 'yes');
    await noAlert(adm);
    await screenshot(adm, 'admin-plc-keys');

    // The user logs out: back to the login page, and the session is over on PLC too.
    const session = await userPage.evaluate(() => sessionStorage.getItem('plng.portal.token'));
    await userPage.getByRole('button', { name: `Log out ${user.email}` }).click();
    await userPage.getByRole('heading', { level: 1, name: 'Log in to PlanetLab' }).waitFor();
    await go(userPage, 'slices', 'Log in to PlanetLab');
    const after = await api('Auth', 'WhoAmI', {}, session).then(() => null, (e) => e);
    if (!after) throw new Error('the session still works after logging out');
  });

  await step("9. the admin's forms: a site, a node (its key, tags, boot state), a slice tag for a node group, a tag type", async () => {
    const base = `adm${suffix}`;
    const hostname = `n3-${suffix}.e2e.example.org`;
    const group = `grp${suffix}`;
    const arch = `e2e-${suffix}`;
    const tagType = `e2e_${suffix}`;

    // A site, through the form; the API shows it as added.
    await go(adm, 'admin/sites', 'Admin: Sites');
    const addSite = adm.getByRole('region', { name: 'Add a site', exact: true });
    await addSite.getByLabel('Login base', { exact: true }).fill(base);
    await addSite.getByLabel('Site name', { exact: true }).fill(`Admin-made ${suffix}`);
    await addSite.getByLabel('Web site URL', { exact: true }).fill(`https://adm-${suffix}.example.org/`);
    await addSite.getByLabel('Max slices', { exact: true }).fill('3');
    await addSite.getByRole('button', { name: 'Add site' }).click();
    await expectStatus(adm, `Site ${base} added (enabled; at most 3 slices`);
    const siteRow = adm.getByRole('table', { name: 'All sites' }).getByRole('row').filter({ hasText: base });
    await expectText(siteRow, `Admin-made ${suffix}`);
    await siteRow.getByRole('cell', { name: 'yes', exact: true }).waitFor();
    await noAlert(adm);
    await screenshot(adm, 'admin-site-added');
    const [added] = (await api('Admin', 'GetSites', { loginBases: [base] }, adminToken)).sites;
    if (!added || !added.enabled || added.maxSlices !== 3 || added.pending) throw new Error(`AddSite made ${JSON.stringify(added)}`);

    // A node at it: a key of 31 bytes is refused in the page, with nothing sent;
    // the node's real key (hex, as plcctl node keygen prints it) is taken.
    await api('Admin', 'AddNodeGroup', { name: group, tag: 'arch', value: arch }, adminToken);
    await go(adm, 'admin/nodes', 'Admin: Nodes');
    const addNode = adm.getByRole('region', { name: 'Add a node', exact: true });
    const { publicKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    let addNodeCalls = 0;
    const countAddNode = (r) => r.url().endsWith('/planetlab.v1.Admin/AddNode') && addNodeCalls++;
    adm.on('request', countAddNode);
    await addNode.getByLabel('Hostname', { exact: true }).fill(hostname);
    await addNode.getByLabel('Site', { exact: true }).selectOption(base);
    await addNode.getByLabel('Public key', { exact: true }).fill(raw.toString('hex').slice(2));
    await addNode.getByRole('button', { name: 'Add node' }).click();
    await expectText(addNode.getByRole('alert'), 'The public key is 31 bytes (62 hex digits)', '32 bytes');
    await screenshot(adm, 'admin-node-bad-key');
    if (addNodeCalls) throw new Error('a 31-byte key was sent to PLC');
    if ((await api('Admin', 'GetNodes', { loginBase: base }, adminToken)).nodes.length) throw new Error('a node was added with a bad key');
    await addNode.getByLabel('Public key', { exact: true }).fill(raw.toString('hex'));
    await addNode.getByRole('button', { name: 'Add node' }).click();
    await expectStatus(adm, `Node ${hostname} added at ${base} (boot state boot).`);
    adm.off('request', countAddNode);
    if (addNodeCalls !== 1) throw new Error(`AddNode was called ${addNodeCalls} times`);

    // Its tags and boot state, on its panel.
    await adm.getByRole('button', { name: `Manage ${hostname}` }).click();
    const panel = adm.getByRole('region', { name: `Node ${hostname}`, exact: true });
    await expectText(panel, raw.toString('hex'));
    await panel.getByLabel('Node tag', { exact: true }).selectOption('arch');
    await panel.getByLabel('Tag value', { exact: true }).fill(arch);
    await panel.getByRole('button', { name: 'Set node tag' }).click();
    await expectStatus(panel, `Tag arch of ${hostname} set to "${arch}".`);
    await expectText(panel.getByRole('table', { name: `Tags of ${hostname}` }), 'arch', arch);
    await expectText(adm.getByRole('table', { name: 'Nodes' }).getByRole('row').filter({ hasText: hostname }), `arch=${arch}`, group);
    await panel.getByLabel(`Boot state of ${hostname}`, { exact: true }).selectOption('safeboot');
    await panel.getByRole('button', { name: 'Change boot state' }).click();
    await expectStatus(panel, `${hostname} is now in boot state safeboot.`);
    await noAlert(adm);
    await screenshot(adm, 'admin-node-managed');
    let [node] = (await api('Admin', 'GetNodes', { hostnames: [hostname] }, adminToken)).nodes;
    if (node.loginBase !== base || node.bootState !== 'safeboot' || node.tags.arch !== arch || !node.nodegroups.includes(group) ||
        node.publicKey !== raw.toString('base64')) {
      throw new Error(`the node is not as the forms left it: ${JSON.stringify(node)}`);
    }
    await panel.getByRole('button', { name: 'Delete tag arch' }).click();
    await expectStatus(panel, `Tag arch of ${hostname} deleted.`);
    [node] = (await api('Admin', 'GetNodes', { hostnames: [hostname] }, adminToken)).nodes;
    if ('arch' in node.tags || node.nodegroups.length) throw new Error(`the node tag was not deleted: ${JSON.stringify(node)}`);

    // A slice tag for the node group, on a slice of the new site.
    const groupSlice = `${base}_groups`;
    await api('Slice', 'AddSlice', { name: groupSlice, description: 'node group tags', url: `https://adm-${suffix}.example.org/` }, adminToken);
    await go(adm, `slice/${groupSlice}`, `Slice ${groupSlice}`);
    await adm.getByLabel('Tag', { exact: true }).selectOption('vref');
    await adm.getByLabel('Value', { exact: true }).fill('alpine');
    await adm.getByLabel('Scope', { exact: true }).selectOption(`group:${group}`);
    await adm.getByRole('button', { name: 'Set tag' }).click();
    await expectStatus(adm, `Tag vref set to "alpine" on group ${group}.`);
    await expectText(adm.getByRole('table', { name: `Tags of ${groupSlice}` }).getByRole('row').filter({ hasText: 'alpine' }), 'vref', `group ${group}`);
    await screenshot(adm, 'admin-slice-tag-node-group');
    const { tags } = await api('Slice', 'GetSliceTags', { slice: groupSlice }, adminToken);
    if (!tags.some((t) => t.tag === 'vref' && t.value === 'alpine' && t.nodegroup === group && !t.node)) {
      throw new Error(`no vref tag for node group ${group}: ${JSON.stringify(tags)}`);
    }

    // The node goes, after a confirmation.
    await go(adm, 'admin/nodes', 'Admin: Nodes');
    await adm.getByRole('button', { name: `Manage ${hostname}` }).click();
    await panel.getByRole('button', { name: `Delete node ${hostname}` }).click();
    await panel.getByRole('button', { name: `Yes, delete ${hostname}` }).click();
    await expectStatus(adm, `Node ${hostname} deleted.`);
    if ((await api('Admin', 'GetNodes', { loginBase: base }, adminToken)).nodes.length) throw new Error('the deleted node is still listed');

    // A tag type: added, its description changed, deleted.
    await go(adm, 'admin/tagtypes', 'Admin: Tag types');
    const addType = adm.getByRole('region', { name: 'Add a tag type', exact: true });
    await addType.getByLabel('Name', { exact: true }).fill(tagType);
    await addType.getByLabel('Description', { exact: true }).fill('uplink of the e2e test');
    await addType.getByLabel('Category', { exact: true }).selectOption('node');
    await addType.getByLabel('Least role to set it', { exact: true }).selectOption('tech');
    await addType.getByLabel('Value kind', { exact: true }).selectOption('rate');
    await addType.getByLabel('Default value', { exact: true }).fill('10Mbit');
    await addType.getByRole('button', { name: 'Add tag type' }).click();
    await expectStatus(adm, `Tag type ${tagType} added (node, rate).`);
    const typeRow = adm.getByRole('table', { name: 'Tag types' }).getByRole('row').filter({ hasText: tagType });
    await expectText(typeRow, 'node', 'rate', '10000000', 'tech', 'uplink of the e2e test');
    await screenshot(adm, 'admin-tagtype-added');
    await typeRow.getByRole('button', { name: `Edit ${tagType}` }).click();
    const editType = adm.getByRole('region', { name: `Edit tag type ${tagType}`, exact: true });
    await editType.getByLabel('Description', { exact: true }).fill('uplink cap of the e2e test, bit/s');
    await editType.getByRole('button', { name: `Save tag type ${tagType}` }).click();
    await expectStatus(editType, `Tag type ${tagType} saved (least role tech, default "10000000").`);
    await expectText(typeRow, 'uplink cap of the e2e test, bit/s');
    await screenshot(adm, 'admin-tagtype-edited');
    const [type] = (await api('Admin', 'GetTagTypes', { names: [tagType] }, adminToken)).tagTypes;
    if (type.description !== 'uplink cap of the e2e test, bit/s' || type.minRole !== 'tech' || type.category !== 'node' ||
        type.valueKind !== 'rate' || type.defaultValue !== '10000000') {
      throw new Error(`the tag type is not as the forms left it: ${JSON.stringify(type)}`);
    }
    await typeRow.getByRole('button', { name: `Delete ${tagType}` }).click();
    await typeRow.getByRole('button', { name: `Yes, delete ${tagType}` }).click();
    await expectStatus(adm, `Tag type ${tagType} deleted.`);
    if ((await api('Admin', 'GetTagTypes', { names: [tagType] }, adminToken)).tagTypes.length) throw new Error('the deleted tag type is still listed');

    // Last, the site: renamed, fewer slivers, disabled.
    await go(adm, 'admin/sites', 'Admin: Sites');
    await adm.getByRole('button', { name: `Edit ${base}` }).click();
    const editSite = adm.getByRole('region', { name: `Edit site ${base}`, exact: true });
    await editSite.getByLabel('Site name', { exact: true }).fill(`Admin-made ${suffix}, renamed`);
    await editSite.getByLabel('Max slivers', { exact: true }).fill('40');
    await editSite.getByLabel('Enabled (its people may log in and its slices run)', { exact: true }).uncheck();
    await editSite.getByRole('button', { name: `Save site ${base}` }).click();
    await expectStatus(editSite, `Site ${base} saved: Admin-made ${suffix}, renamed, disabled, at most 3 slices and 40 slivers.`);
    await expectText(siteRow, `Admin-made ${suffix}, renamed`);
    await siteRow.getByRole('cell', { name: 'no', exact: true }).waitFor();
    await siteRow.getByRole('cell', { name: '40', exact: true }).waitFor();
    await noAlert(adm);
    await screenshot(adm, 'admin-site-edited');
    const [edited] = (await api('Admin', 'GetSites', { loginBases: [base] }, adminToken)).sites;
    if (edited.name !== `Admin-made ${suffix}, renamed` || edited.enabled || edited.maxSlices !== 3 || edited.maxSlivers !== 40) {
      throw new Error(`UpdateSite left ${JSON.stringify(edited)}`);
    }
  });
}

let status = 0;
try {
  await main();
  console.log('portal_e2e: PASSED');
} catch (e) {
  status = 1;
  console.error(`portal_e2e: FAILED at step "${currentStep}": ${e.message}`);
  for (const page of pages) {
    try {
      const url = page.url();
      if (url === 'about:blank') continue;
      const i = pages.indexOf(page);
      await page.screenshot({ path: join(opt.artifacts, `failure-${i}.png`), fullPage: true });
      writeFileSync(join(opt.artifacts, `failure-${i}.txt`), `${url}\n\n${await page.locator('body').innerText()}`);
    } catch {
      // the browser may be gone
    }
  }
  console.error(`portal_e2e: the pages at the time are in ${opt.artifacts}/failure-*.png and failure-*.txt`);
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(status);
