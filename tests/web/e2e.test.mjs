// End-to-end tests of the web pages in headless Chromium (Debian's
// chromium, driven by playwright-core), against a devnet of real node
// processes on 127.0.0.1, with axe-core on every page.
//
//   CREDENCE_BIN   the credence binary (default: ../../target/debug/credence)
//   CHROMIUM       the browser (default: /usr/bin/chromium)
//   SCREENSHOTS    a folder to write a screenshot of each page into
//
// Run: cargo build -p credence-node && (cd tests/web && npm ci && npm test)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const BIN = process.env.CREDENCE_BIN ?? resolve(here, '../../target/debug/credence');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS;
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

// ---- identifiers that pass their check characters (DESIGN.md) --------
const USCC_ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
function usccCheck(body) {
  const sum = [...body].reduce((s, c, i) => s + USCC_ALPHABET.indexOf(c) * USCC_WEIGHTS[i], 0);
  return USCC_ALPHABET[(31 - (sum % 31)) % 31];
}
function randomDigits(n) {
  let out = '';
  for (let i = 0; i < n; i++) out += Math.floor(Math.random() * 10);
  return out;
}
function freshUscc() {
  const body = '913501' + '00' + randomDigits(9);
  return body + usccCheck(body);
}
function wrongCheck(code) {
  const good = code[17];
  const other = USCC_ALPHABET[(USCC_ALPHABET.indexOf(good) + 1) % 31];
  return code.slice(0, 17) + other;
}
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
function freshResidentId() {
  const body = '350102' + '1985' + '0612' + randomDigits(3);
  const sum = [...body].reduce((s, c, i) => s + Number(c) * ID_WEIGHTS[i], 0);
  return body + '10X98765432'[sum % 11];
}

// ---- the devnet -------------------------------------------------------
async function startDevnet(dir) {
  const child = spawn(BIN, ['devnet', '--dir', dir], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn', NO_COLOR: '1' },
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const started = Date.now();
  while (!out.includes('the nodes keep running')) {
    if (child.exitCode !== null) throw new Error(`devnet exited ${child.exitCode}:\n${out}`);
    if (Date.now() - started > 120_000) throw new Error(`devnet did not start in 120 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const node = (name) => ({
    url: readFileSync(join(dir, name, 'api.addr'), 'utf8').trim().replace(/^(?!http)/, 'http://'),
    token: readFileSync(join(dir, name, 'api.token'), 'utf8').trim(),
  });
  return { child, market: node('market'), tax: node('tax'), court: node('court') };
}

function stopDevnet(child) {
  try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
}

// ---- helpers ------------------------------------------------------------
async function axeCheck(page, name) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `axe-core found serious or critical violations on ${name}`,
  );
}

async function shot(page, name) {
  await axeCheck(page, name);
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }
}

async function login(page, node, lang = 'zh') {
  await page.goto(`${node.url}/lang/${lang}?back=/console/login`);
  const [account, secret] = node.token.split('.');
  await page.fill('#account', account);
  await page.fill('#secret', secret);
  await page.click('main form button[type=submit]');
  await page.waitForURL(/\/console$/);
}

async function until(what, check, ms = 15_000) {
  const started = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function status(url) {
  return (await fetch(url)).status;
}

async function issueListing(page, node, fields) {
  await page.goto(`${node.url}/console/issue`);
  await page.selectOption('#list', 'black');
  await page.selectOption('#subject_kind', fields.kind);
  await page.fill('#subject_id', fields.id);
  await page.fill('#subject_name', fields.name);
  await page.selectOption('#category', 'food-drug');
  await page.selectOption('#severity', 'serious');
  await page.fill('#reason', fields.reason);
  await page.fill('#legal_basis', 'Food Safety Law art. 134');
  await page.fill('#document_number', `E2E-${Date.now()}`);
  for (const m of fields.measures ?? []) await page.check(`#measure-${m}`);
  await page.click('main form.stacked button[type=submit]');
}

test('the web, end to end, in headless Chromium', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'credence-web-'));
  const net = await startDevnet(dir);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const company = freshUscc();
    const person = freshResidentId();
    const masked = person.slice(0, 6) + '*'.repeat(8) + person.slice(14);
    let companyListing;
    let personListing;

    await t.test('the public portal opens in Chinese, and in English on asking', async () => {
      await page.goto(`${net.market.url}/`);
      assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
      await shot(page, 'public-home');
      await page.click('a[hreflang=en]');
      assert.equal(await page.getAttribute('html', 'lang'), 'en');
      assert.match(await page.textContent('h1'), /Credit information/);
      await page.goto(`${net.market.url}/members`);
      assert.match(await page.textContent('main'), /Fuzhou Municipal Market Regulation Bureau/);
      await shot(page, 'public-members');
      await page.goto(`${net.market.url}/lang/zh?back=/`);
    });

    await t.test('an operator logs in; a bad identifier is refused with the check character expected, nothing stored', async () => {
      await page.goto(`${net.market.url}/console`);
      await page.waitForURL(/\/console\/login/);
      await shot(page, 'console-login');
      await login(page, net.market);
      await shot(page, 'console-dashboard');
      const before = await (await fetch(`${net.market.url}/v1/status`, { headers: { authorization: `Bearer ${net.market.token}` } })).json();
      await issueListing(page, net.market, { kind: 'legal_person', id: wrongCheck(company), name: '闽信E2E食品有限公司', reason: 'E2E-COMPANY sold spoiled food' });
      const error = await page.textContent('#subject_id-error');
      assert.match(error, new RegExp(`expected '${company[17]}'`), error);
      assert.equal(await page.getAttribute('#subject_id', 'aria-invalid'), 'true');
      await shot(page, 'console-issue-error');
      const after = await (await fetch(`${net.market.url}/v1/status`, { headers: { authorization: `Bearer ${net.market.token}` } })).json();
      assert.equal(after.notices, before.notices, 'a refused form stores nothing');
      // A category this member may not list, then a publication period
      // past the catalog's maximum: each refused under its field.
      await page.fill('#subject_id', company);
      await page.selectOption('#category', 'tax');
      await page.click('main form.stacked button[type=submit]');
      assert.match(await page.textContent('#category-error'), /not_granted/);
      await page.selectOption('#category', 'food-drug');
      // Four years: within the sharing period, past the three years the
      // catalog allows a serious food-safety listing's publication.
      const fourYears = new Date(Date.now() + 4 * 365 * 86_400_000).toISOString().slice(0, 10);
      await page.fill('#publish_until', fourYears);
      await page.click('main form.stacked button[type=submit]');
      assert.match(await page.textContent('#publish_until-error'), /period_too_long/);
      await shot(page, 'console-issue-period');
      const still = await (await fetch(`${net.market.url}/v1/status`, { headers: { authorization: `Bearer ${net.market.token}` } })).json();
      assert.equal(still.notices, before.notices, 'refused forms store nothing');
      await page.fill('#publish_until', '');
      await page.click('main form.stacked button[type=submit]');
      await page.waitForSelector('p.notice code');
      companyListing = (await page.textContent('p.notice code')).trim();
      assert.match(companyListing, /^[0-9a-f]{64}$/);
      await shot(page, 'console-issued');
    });

    await t.test("the listing appears in another node's portal, found by its code and by name", async () => {
      await until('the listing on the tax node', async () => (await status(`${net.tax.url}/listings/${companyListing}`)) === 200);
      await page.goto(`${net.tax.url}/listings/${companyListing}`);
      assert.match(await page.textContent('main'), /闽信E2E食品有限公司/);
      assert.match(await page.textContent('main'), /Food and drug safety/);
      await shot(page, 'public-listing');
      await page.goto(`${net.tax.url}/search?q=${company}`);
      assert.match(await page.textContent('main table'), /闽信E2E食品有限公司/);
      await page.goto(`${net.tax.url}/search?q=${encodeURIComponent('闽信E2E')}`);
      assert.match(await page.textContent('main table'), /闽信E2E食品有限公司/);
      await shot(page, 'public-search');
      await page.goto(`${net.tax.url}/lists/black?category=food-drug`);
      assert.match(await page.textContent('main table'), /闽信E2E食品有限公司/);
      await shot(page, 'public-blacklist');
    });

    await t.test('a natural person is shown masked in the public search', async () => {
      await issueListing(page, net.market, { kind: 'natural_person', id: person, name: 'Wang Wei', reason: 'E2E-PERSON responsible for spoiled food', measures: ['high-consumption-ban'] });
      await page.waitForSelector('p.notice code');
      personListing = (await page.textContent('p.notice code')).trim();
      await until('the person on the court node', async () => (await status(`${net.court.url}/listings/${personListing}`)) === 200);
      await page.goto(`${net.court.url}/search?q=${person}`);
      const text = await page.textContent('main');
      assert.ok(text.includes(masked), `the masked number ${masked} is shown:\n${text}`);
      assert.ok(!text.includes(person), 'the full identity number is never shown');
      assert.ok(!text.includes('Wang Wei'), 'the full name is never shown');
      await shot(page, 'public-search-masked');
    });

    await t.test('an objection suspends the listing in the portal', async () => {
      const tax = await context.browser().newContext();
      const taxPage = await tax.newPage();
      // With the keyboard alone: Tab to each field, Enter to send.
      await taxPage.goto(`${net.tax.url}/console/login`);
      const [account, secret] = net.tax.token.split('.');
      for (let i = 0; i < 20 && (await taxPage.evaluate(() => document.activeElement?.id)) !== 'account'; i++) {
        await taxPage.keyboard.press('Tab');
      }
      await taxPage.keyboard.type(account);
      await taxPage.keyboard.press('Tab');
      assert.equal(await taxPage.evaluate(() => document.activeElement?.id), 'secret');
      await taxPage.keyboard.type(secret);
      await taxPage.keyboard.press('Enter');
      await taxPage.waitForURL(/\/console$/);
      await taxPage.goto(`${net.tax.url}/console/objections`);
      await shot(taxPage, 'console-objections');
      await taxPage.fill('#listing', companyListing);
      await taxPage.fill('#grounds', 'the company says the samples were not its own');
      await taxPage.click('form:has(input[value=object]) button[type=submit]');
      await taxPage.waitForSelector('p.notice code');
      await tax.close();
      await until('the listing suspended on the market node', async () => (await status(`${net.market.url}/listings/${companyListing}`)) === 404);
      await page.goto(`${net.market.url}/listings/${companyListing}`);
      assert.match(await page.textContent('main'), /暂停/);
      await page.goto(`${net.market.url}/lists/black`);
      assert.ok(!(await page.textContent('main')).includes('闽信E2E食品有限公司'), 'gone from the blacklist page');
    });

    await t.test("the issuer sees the objection and its deadline on its dashboard, rules, and the portal shows the correction", async () => {
      await until('the objection on the dashboard', async () => {
        await page.goto(`${net.market.url}/console`);
        return (await page.locator('tr', { hasText: '闽信E2E食品有限公司' }).count()) > 0;
      });
      const row = page.locator('tr', { hasText: '闽信E2E食品有限公司' });
      assert.match(await row.textContent(), /须由本单位裁决/);
      const objection = (await row.locator('code').textContent()).trim();
      await shot(page, 'console-dashboard-objection');
      await page.goto(`${net.market.url}/console/objections`);
      await page.fill('#objection', objection);
      await page.selectOption('#outcome', 'withdraw');
      await page.fill('#reason', 'the samples were taken from another company');
      await page.click('form:has(input[value=rule]) button[type=submit]');
      await page.waitForSelector('p.notice code');
      await until('the correction on the tax node', async () => (await status(`${net.tax.url}/listings/${companyListing}`)) === 200);
      await page.goto(`${net.tax.url}/listings/${companyListing}`);
      assert.match(await page.textContent('main p.notice'), /公开更正/);
    });

    await t.test('an implementer applies its task', async () => {
      const court = await context.browser().newContext();
      const courtPage = await court.newPage();
      await login(courtPage, net.court, 'en');
      await until('the task on the court node', async () => {
        await courtPage.goto(`${net.court.url}/console/tasks`);
        return (await courtPage.locator(`tr:has(code:text-is("${person}"))`).count()) > 0;
      });
      await shot(courtPage, 'console-tasks');
      const row = courtPage.locator(`tr:has(code:text-is("${person}"))`).filter({ hasText: 'high-consumption-ban' });
      await row.locator('button[value=applied]').click();
      await courtPage.waitForURL(/\/console\/tasks$/);
      assert.equal(await courtPage.locator(`tr:has(code:text-is("${person}"))`).filter({ hasText: 'high-consumption-ban' }).count(), 0, 'the applied task is gone');
      await court.close();
    });

    await t.test('an auditor uploads an export and sees it pass, then a tampered one fail naming the notice', async () => {
      const response = await fetch(`${net.market.url}/v1/export?purpose=web+audit+test&legal_basis=audit+rules`, { headers: { authorization: `Bearer ${net.market.token}` } });
      assert.equal(response.status, 200);
      const bundle = Buffer.from(await response.arrayBuffer());
      const good = join(dir, 'export.bundle');
      writeFileSync(good, bundle);
      await page.goto(`${net.market.url}/console/audit`);
      await page.setInputFiles('#file', good);
      await page.click('main form.stacked button[type=submit]');
      await page.waitForSelector('section.verdict');
      assert.equal(await page.getAttribute('section.verdict', 'class'), 'verdict pass');
      assert.match(await page.textContent('section.verdict pre'), /AUDIT PASSED/);
      await shot(page, 'console-audit-pass');
      const mark = Buffer.from('E2E-COMPANY');
      const at = bundle.indexOf(mark);
      assert.ok(at > 0, 'the listing is in the bundle');
      const tampered = Buffer.from(bundle);
      tampered[at + 4] ^= 0x01;
      const bad = join(dir, 'tampered.bundle');
      writeFileSync(bad, tampered);
      await page.setInputFiles('#file', bad);
      await page.click('main form.stacked button[type=submit]');
      await page.waitForSelector('section.verdict.fail');
      const report = await page.textContent('section.verdict pre');
      assert.match(report, /AUDIT FAILED/);
      assert.match(report, /notice [0-9a-f]{64}/, report);
      await shot(page, 'console-audit-fail');
      // A file that is neither (and larger than an API body may be) is
      // refused with what it is not.
      const junk = join(dir, 'junk.bin');
      writeFileSync(junk, Buffer.alloc(1024 * 1024, 7));
      await page.setInputFiles('#file', junk);
      const [refused] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/console/audit') && r.request().method() === 'POST'),
        page.click('main form.stacked button[type=submit]'),
      ]);
      assert.equal(refused.status(), 422);
      assert.match(await page.textContent('section.verdict pre'), /neither an audit bundle nor a query receipt/);
    });

    await t.test('a federation query gives verified answers and a receipt that verifies on the audit page', async () => {
      await page.goto(`${net.market.url}/console/query`);
      await page.selectOption('#subject_kind', 'natural_person');
      await page.fill('#subject_id', person);
      await page.fill('#purpose', 'contract award check');
      await page.fill('#legal_basis', 'Government Procurement Law art. 22');
      await page.click('main form.stacked button[type=submit]');
      await page.waitForSelector('main h2');
      assert.match(await page.textContent('main table'), new RegExp(personListing));
      await shot(page, 'console-query');
      assert.equal(await page.locator('main p.error').count(), 0, await page.textContent('main'));
      const href = await page.getAttribute('a[download]', 'href');
      assert.match(href, /^data:application\/octet-stream,/);
      const receipt = join(dir, 'query.receipt');
      // Every byte of the data address is percent-encoded.
      const encoded = href.slice(href.indexOf(',') + 1).match(/%[0-9A-F]{2}/g);
      writeFileSync(receipt, Buffer.from(encoded.map((h) => parseInt(h.slice(1), 16))));
      await page.goto(`${net.market.url}/console/audit`);
      await page.setInputFiles('#file', receipt);
      await page.click('main form.stacked button[type=submit]');
      await page.waitForSelector('section.verdict');
      assert.equal(await page.getAttribute('section.verdict', 'class'), 'verdict pass');
      assert.match(await page.textContent('section.verdict h2'), /receipt/);
      await page.goto(`${net.market.url}/console/federation`);
      assert.match(await page.textContent('main table'), /Zhangzhou/);
      await shot(page, 'console-federation');
    });

    await t.test('a second proposal for one version is signed only with the box ticked', async () => {
      const api = (node, path, body) => fetch(`${node.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const allow = (member) => ({ change: { allow: [{ member, notices: 100 }] } });
      const theirs = await api(net.tax, '/v1/federation/proposals', allow('Xiamen Municipal Tax Service'));
      const text = await theirs.text();
      assert.equal(theirs.status, 200, text);
      const { hash } = JSON.parse(text);
      const ours = await api(net.market, '/v1/federation/proposals', allow('Fuzhou Municipal Market Regulation Bureau'));
      assert.equal(ours.status, 200, await ours.text());
      const held = async () => (await (await api(net.market, '/v1/federation')).json())
        .proposals.find((p) => p.hash === hash);
      await until('the market holds the tax office\'s proposal', async () => (await held()) !== undefined);
      await page.goto(`${net.market.url}/console/federation`);
      const section = () => page.locator('section.proposal', { hasText: hash });
      await section().locator('button[type=submit]').click();
      await page.waitForSelector('main p.error');
      assert.match(await page.textContent('main p.error'), /already signed proposal/);
      assert.equal((await held()).members_signed, 1);
      await shot(page, 'console-federation-competing');
      await section().locator('input[name=competing]').check();
      await section().locator('button[type=submit]').click();
      await page.waitForURL(/\/console\/federation$/);
      assert.equal(await page.locator('main p.error').count(), 0, await page.textContent('main'));
      assert.equal((await held()).members_signed, 2);
    });

    await t.test('a wrong secret and a form without its session token are refused', async () => {
      const other = await context.browser().newContext();
      const p = await other.newPage();
      await p.goto(`${net.market.url}/console/login`);
      await p.fill('#account', 'operator');
      await p.fill('#secret', '0'.repeat(64));
      const [response] = await Promise.all([
        p.waitForResponse((r) => r.url().endsWith('/console/login') && r.request().method() === 'POST'),
        p.click('main form button[type=submit]'),
      ]);
      assert.equal(response.status(), 401);
      assert.ok(await p.isVisible('p.error[role=alert]'));
      await shot(p, 'console-login-refused');
      await other.close();
      // A logged-in browser's cookie, but a form from elsewhere: no token.
      const forged = await page.request.post(`${net.market.url}/console/objections`, {
        form: { act: 'object', listing: personListing, grounds: 'forged', respond_by: '2099-01-01' },
      });
      assert.equal(forged.status(), 403);
      assert.match(await forged.text(), /bad_csrf/);
      // And nobody logged in is sent to the login page.
      assert.equal((await fetch(`${net.market.url}/console/issue`, { redirect: 'manual' })).status, 303);
    });

    await t.test('the register of reads shows the export', async () => {
      await page.goto(`${net.market.url}/console/register?kind=export`);
      assert.match(await page.textContent('main table'), /web audit test/);
      await shot(page, 'console-register');
    });
  } finally {
    await browser.close();
    stopDevnet(net.child);
    rmSync(dir, { recursive: true, force: true });
  }
});
