// The operator console in a real browser: an admin opens the overview, finds a failed
// variant on /jobs, clicks Retry and watches the row turn ready over SSE; on an asset's page
// the same happens to its variants table; the pages fit a phone; a non-admin gets the 403.
//   node console_flow.mjs <base-url> <jobs-asset-id> <page-asset-id> <artifact-dir>
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, jobsAsset, pageAsset, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `admin-${name}.png`), fullPage: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
});
const result = { console: [], streams: [], loads: 0 };
try {
  const admin = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  await admin.addCookies([{ name: 'operator', value: 'yes', url: base }]);
  const page = await admin.newPage();
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  page.on('request', (r) => { if (r.url().includes('/rindle/events/asset/')) result.streams.push(r.url().split('?')[0]); });
  page.on('load', () => { result.loads += 1; });
  result.failures = [];
  page.on('response', (r) => { if (r.status() >= 400) result.failures.push(`${r.status()} ${r.url()}`); });

  const overview = await page.goto(`${base}/admin/`);
  result.overview = { status: overview.status(), failed: await page.locator('h3', { hasText: 'Failed variants' }).count() };
  // The first Tab lands on the skip link (keyboard users skip the navigation).
  await page.keyboard.press('Tab');
  result.firstFocus = await page.evaluate(() => document.activeElement.className);
  await shot(page, '1-overview');

  await page.getByRole('link', { name: 'Variants and jobs' }).click();
  await page.waitForURL(/\/admin\/jobs$/);
  await page.waitForFunction(() => window.htmx);
  const rowId = `job-${jobsAsset}-thumb`;
  const row = page.locator(`[id="${rowId}"]`);
  result.before = await row.getAttribute('data-state');
  await shot(page, '2-jobs-failed');
  const loadsBefore = result.loads;
  await row.getByRole('button', { name: /^Retry/ }).click();
  await page.waitForFunction((id) => { const r = document.getElementById(id); return r && r.dataset.state !== 'failed'; }, rowId);
  result.during = { state: await row.getAttribute('data-state'), live: await row.evaluate((r) => r.hasAttribute('sse-connect')),
                    flash: (await page.locator('#flash').innerText()).trim() };
  await shot(page, '3-jobs-retried');
  await page.waitForFunction((id) => document.getElementById(id)?.dataset.state === 'ready', rowId, { timeout: 30000 });
  result.after = { state: await row.getAttribute('data-state'), live: await row.evaluate((r) => r.hasAttribute('sse-connect')),
                   cell: (await row.locator('.job-state').innerText()).trim(), reloaded: result.loads !== loadsBefore };
  await shot(page, '4-jobs-ready');

  // The asset page: its section holds the stream; Retry swaps the live part, which the
  // stream's variant_ready then refreshes.
  await page.goto(`${base}/admin/assets/${pageAsset}`);
  await page.waitForFunction(() => window.htmx);
  const variant = page.locator('#asset-live-body tr[data-variant="thumb"]');
  result.pageBefore = await variant.getAttribute('data-state');
  await page.getByRole('button', { name: 'Retry failed variants' }).click();
  await page.waitForFunction(() => document.querySelector('#asset-live-body tr[data-variant="thumb"]')?.dataset.state !== 'failed');
  result.pageDuring = await variant.getAttribute('data-state');
  await page.waitForFunction(() => document.querySelector('#asset-live-body tr[data-variant="thumb"]')?.dataset.state === 'ready', null, { timeout: 30000 });
  result.pageAfter = { state: await variant.getAttribute('data-state'), heading: (await page.locator('#live-heading').innerText()).trim() };
  await shot(page, '5-asset-ready');

  // Phone width: nothing wider than the screen (tables scroll inside their own region).
  await page.setViewportSize({ width: 375, height: 812 });
  result.phone = {};
  for (const [name, path] of [['overview', '/admin/'], ['jobs', '/admin/jobs'], ['asset', `/admin/assets/${pageAsset}`], ['assets', '/admin/assets']]) {
    await page.goto(base + path);
    result.phone[name] = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    await shot(page, `6-phone-${name}`);
  }

  const stranger = await browser.newContext({ viewport: { width: 800, height: 600 } });
  const refused = await stranger.newPage();
  const answer = await refused.goto(`${base}/admin/`);
  result.refused = { status: answer.status(), text: (await refused.locator('main').innerText()).trim() };
  await shot(refused, '7-refused');
  console.log(JSON.stringify({ ok: true, ...result }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String((err && err.stack) || err), ...result }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
