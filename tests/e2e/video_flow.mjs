// Upload a clip through the demo page's lesson uploader in a real browser: progress, then the
// live badge's "processing N %", then a playable <video> of the 720p rendition.
//   node video_flow.mjs <base-url> <clip-path> <artifact-dir>
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, clip, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--mute-audio',
         '--autoplay-policy=no-user-gesture-required'],
});
const result = { badges: [], console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 1400 } });
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  await page.goto(base + '/', { waitUntil: 'load' });
  await page.waitForFunction(() => window.Rindle && window.htmx);
  await page.evaluate(() => {
    window.__v = { events: [] };
    const form = document.querySelector('#lesson-form');
    for (const name of ['rindle:start', 'rindle:complete', 'rindle:error']) {
      form.addEventListener(name, (e) => {
        window.__v.events.push(name);
        if (name === 'rindle:error') window.__v.error = e.detail;
      });
    }
    // Every badge text the lesson card shows, as the live element swaps it.
    const seen = new Set();
    setInterval(() => {
      const badge = document.querySelector('#lesson .rindle-badge');
      if (badge && !seen.has(badge.textContent.trim())) {
        seen.add(badge.textContent.trim());
        window.__v.badges = [...seen];
      }
    }, 25);
  });
  await page.setInputFiles('#lesson-form [data-rindle-file]', clip);
  await page.waitForFunction(() => window.__v.events.includes('rindle:complete') || window.__v.error,
    null, { timeout: 60000 });
  const early = await page.evaluate(() => window.__v.error);
  if (early) throw new Error(`upload failed: ${JSON.stringify(early)}`);
  // Ready: the settled <video> carries every rendition (720p first) and the original.
  await page.waitForFunction(() => {
    const v = document.querySelector('#lesson video');
    return v && v.dataset.state === 'ready' && v.querySelectorAll('source').length >= 2;
  }, null, { timeout: 90000 });
  // Play the 720p rendition: the first <source> the browser can play.
  await page.evaluate(() => { const v = document.querySelector('#lesson video'); v.load(); v.play().catch(() => {}); });
  await page.waitForFunction(() => document.querySelector('#lesson video').readyState >= 2,
    null, { timeout: 30000 });
  result.video = await page.evaluate(() => {
    const v = document.querySelector('#lesson video');
    return { readyState: v.readyState, currentSrc: v.currentSrc, videoWidth: v.videoWidth,
             videoHeight: v.videoHeight, poster: v.getAttribute('poster'),
             first: v.querySelector('source').src,
             sources: [...v.querySelectorAll('source')].map((s) => s.type) };
  });
  result.badges = await page.evaluate(() => window.__v.badges || []);
  await page.screenshot({ path: join(artifacts, 'lesson-ready.png'), fullPage: true });
  console.log(JSON.stringify({ ok: true, ...result }));
} catch (err) {
  try {
    result.lesson = await browser.contexts()[0].pages()[0].evaluate(
      () => document.querySelector('#lesson').innerHTML.slice(0, 3000));
  } catch { /* the page is gone */ }
  console.log(JSON.stringify({ ok: false, error: String(err && err.stack || err), ...result }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
