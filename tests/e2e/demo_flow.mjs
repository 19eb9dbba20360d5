// Upload an image through the demo page in a real browser and watch it become ready:
// progress bar moves, the badge reaches "ready" over SSE, the <picture> switches to a variant.
//   node demo_flow.mjs <base-url> <image-path> <artifact-dir> <label> <expected-variant-width>
//                      [<reload-at-percent>]
// With reload-at-percent the page is reloaded once the upload got that far (the tab
// "crashes" mid-upload) and the same file is chosen again: the uploader must resume.
// result.tus lists the tus requests (method, Upload-Offset, after the reload or not).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, image, artifacts, label, variantWidth, reloadAt] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const shot = (page, name) => page.screenshot({ path: join(artifacts, `${label}-${name}.png`), fullPage: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const result = { progress: [], events: [], console: [], tus: [], live: [] };
let reloaded = false;
const listen = (page) => page.evaluate(() => {
    window.__rindle = { progress: [], events: [] };
    for (const name of ['rindle:start', 'rindle:progress', 'rindle:complete', 'rindle:error']) {
      document.addEventListener(name, (e) => {
        window.__rindle.events.push(name);
        if (name === 'rindle:progress') window.__rindle.progress.push(e.detail.percent);
        if (name === 'rindle:start') window.__rindle.strategy = e.detail.strategy;
        if (name === 'rindle:error') window.__rindle.error = e.detail;
      });
    }
  });
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (r.url().includes('/rindle/tus/')) {
      result.tus.push({ method: r.method(), offset: r.headers()['upload-offset'] ?? null,
                        afterReload: reloaded });
    }
    if (r.url().includes('/rindle/events/')) result.live.push(`request ${r.url().split('?')[0]}`);
  });
  // What the event streams did, so a badge that never turns ready says why.
  page.on('response', (r) => {
    if (r.url().includes('/rindle/events/')) result.live.push(`response ${r.status()}`);
  });
  page.on('requestfailed', (r) => {
    if (r.url().includes('/rindle/events/')) result.live.push(`failed ${r.failure()?.errorText}`);
  });
  await page.goto(base + '/', { waitUntil: 'load' });
  await page.waitForFunction(() => window.Rindle && window.htmx);
  await listen(page);
  // Throttle the upload like a real network, so the progress bar has time to move.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 10, downloadThroughput: -1, uploadThroughput: 2 * 1024 * 1024 });
  await shot(page, '1-before');
  await page.setInputFiles('[data-rindle-file]', image);
  if (reloadAt) {
    await page.waitForFunction((at) => (window.__rindle.progress || []).some((p) => p >= at)
      || window.__rindle.error, Number(reloadAt), { timeout: 30000, polling: 50 });
    const early = await page.evaluate(() => window.__rindle.error);
    if (early) throw new Error(`upload failed before the reload: ${JSON.stringify(early)}`);
    reloaded = true;
    await page.reload({ waitUntil: 'load' });
    await page.waitForFunction(() => window.Rindle && window.htmx);
    await listen(page);
    await page.setInputFiles('[data-rindle-file]', image);
  }
  await page.waitForFunction(() => (window.__rindle.progress || []).some((p) => p > 0 && p < 100)
    || window.__rindle.events.includes('rindle:complete') || window.__rindle.error, null, { timeout: 30000 });
  await shot(page, '2-uploading');
  await page.waitForFunction(() => window.__rindle.events.includes('rindle:complete') || window.__rindle.error,
    null, { timeout: 60000 });
  const state = await page.evaluate(() => window.__rindle);
  if (state.error) throw new Error(`upload failed: ${JSON.stringify(state.error)}`);
  result.progress = state.progress;
  result.strategy = state.strategy;
  result.events = state.events;
  // The attach response swaps in a live badge and picture; SSE takes them to ready.
  await page.waitForSelector('#avatar .rindle-badge', { timeout: 30000 });
  await shot(page, '3-processing');
  await page.waitForSelector('#avatar .rindle-badge [data-state="ready"]', { timeout: 60000 });
  await page.waitForFunction((w) => {
    const img = document.querySelector('#avatar picture img');
    return img && img.complete && img.naturalWidth === Number(w) && (img.currentSrc || img.src).includes('/');
  }, variantWidth, { timeout: 60000 });
  result.img = await page.evaluate(() => {
    const img = document.querySelector('#avatar picture img');
    return { naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
             sources: document.querySelectorAll('#avatar picture source').length };
  });
  result.badge = await page.textContent('#avatar .rindle-badge');
  await shot(page, '4-ready');
  console.log(JSON.stringify({ ok: true, ...result }));
} catch (err) {
  for (const page of browser.contexts().flatMap((c) => c.pages())) {
    result.avatar = await page.evaluate(() => document.querySelector('#avatar')?.innerHTML)
      .catch(() => null);
  }
  console.log(JSON.stringify({ ok: false, error: String(err && err.stack || err), ...result }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
