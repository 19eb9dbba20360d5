// Streaming through (the demo's simulated) Mux in a real browser, on the demo page:
//   1. the streamed-lesson uploader: the clip goes to Rindle, its 720p rendition is pushed
//      to Mux, and the <video> gains the signed HLS source before the 720p MP4;
//   2. the clip uploader: the browser PUTs straight to Mux's upload URL, then plays HLS;
//   3. cancelling a direct upload mid-PUT DELETEs the session (Mux's upload is cancelled).
//   node stream_flow.mjs <base-url> <clip-path> <artifact-dir>
import { chromium } from 'playwright-core';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, clip, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--mute-audio'],
});
const result = { console: [], requests: [] };

async function played(page, selector) {
  // The signed HLS URL answers (the simulator checks the JWT), from the page's own origin.
  return page.evaluate(async (sel) => {
    const v = document.querySelector(sel);
    const hls = v.dataset.rindleHls;
    const res = await fetch(hls);
    const text = await res.text();
    const forged = await fetch(hls.replace(/token=.*/, 'token=forged'));
    return { hls, status: res.status, playlist: text.slice(0, 7), forged: forged.status,
             sources: [...v.querySelectorAll('source')].map((s) => s.type),
             poster: v.getAttribute('poster'), stream: v.dataset.streamState };
  }, selector);
}

async function uploadTo(page, form, file = clip) {
  await page.evaluate((f) => {
    window.__s = { events: [] };
    const el = document.querySelector(f);
    for (const name of ['rindle:start', 'rindle:complete', 'rindle:error', 'rindle:cancel']) {
      el.addEventListener(name, (e) => {
        window.__s.events.push(name);
        if (name === 'rindle:error') window.__s.error = e.detail;
      });
    }
  }, form);
  await page.setInputFiles(`${form} [data-rindle-file]`, file);
}

try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 2200 } });
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  page.on('request', (r) => result.requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  await page.goto(base + '/', { waitUntil: 'load' });
  await page.waitForFunction(() => window.Rindle && window.htmx);

  // 1. server push
  await uploadTo(page, '#stream-form');
  await page.waitForFunction(() => window.__s.events.includes('rindle:complete') || window.__s.error,
    null, { timeout: 60000 });
  if (await page.evaluate(() => window.__s.error)) throw new Error('stream upload failed');
  await page.waitForFunction(() => {
    const v = document.querySelector('#stream video');
    return v && v.dataset.rindleHls && v.querySelectorAll('source').length >= 2;
  }, null, { timeout: 120000 });
  result.push = await played(page, '#stream video');

  // 2. direct upload to Mux
  await uploadTo(page, '#clip-form');
  await page.waitForFunction(() => window.__s.events.includes('rindle:complete') || window.__s.error,
    null, { timeout: 60000 });
  if (await page.evaluate(() => window.__s.error)) {
    throw new Error(`clip upload failed: ${JSON.stringify(await page.evaluate(() => window.__s.error))}`);
  }
  await page.waitForFunction(() => {
    const v = document.querySelector('#clip video');
    return v && v.dataset.rindleHls;
  }, null, { timeout: 60000 });
  result.direct = await played(page, '#clip video');
  result.directPut = result.requests.filter((r) => r.startsWith('PUT /_mux/upload/')).length;
  await page.screenshot({ path: join(artifacts, 'stream-ready.png'), fullPage: true });

  // 3. cancel a direct upload while its PUT is held open
  await page.route('**/_mux/upload/**', () => { /* never answered: the PUT hangs */ });
  const deletes = [];
  page.on('response', (r) => {
    if (r.request().method() === 'DELETE' && new URL(r.url()).pathname.startsWith('/rindle/uploads/')) {
      deletes.push(r);
    }
  });
  result.step = 'cancel: upload';
  // Another file: choosing the same one again would not change the input.
  const second = join(artifacts, 'stream-cancel.mp4');
  copyFileSync(clip, second);
  await uploadTo(page, '#clip-form', second);
  await page.waitForFunction(() => window.__s.events.includes('rindle:start'), null,
    { timeout: 30000 });
  result.step = 'cancel: button';
  await page.waitForFunction(() => {
    const b = document.querySelector('#clip-form [data-rindle-cancel]');
    return b && !b.hidden;
  }, null, { timeout: 30000 });
  await page.waitForTimeout(300);
  result.step = 'cancel: click';
  await page.click('#clip-form [data-rindle-cancel]');
  for (let i = 0; i < 200 && !deletes.length; i += 1) await page.waitForTimeout(50);
  if (!deletes.length) throw new Error('no DELETE of the upload session after cancel');
  const answer = deletes[0];
  result.cancel = { status: answer.status(), body: await answer.json(),
                    events: await page.evaluate(() => window.__s.events) };
  console.log(JSON.stringify({ ok: true, ...result }));
} catch (err) {
  try {
    result.html = await browser.contexts()[0].pages()[0].evaluate(
      () => (document.querySelector('#stream')?.innerHTML || '').slice(0, 2000)
        + (document.querySelector('#clip')?.innerHTML || '').slice(0, 2000));
  } catch { /* the page is gone */ }
  try {
    result.events = await browser.contexts()[0].pages()[0].evaluate(() => window.__s);
  } catch { /* the page is gone */ }
  console.log(JSON.stringify({ ok: false, error: String(err && err.stack || err), ...result }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
