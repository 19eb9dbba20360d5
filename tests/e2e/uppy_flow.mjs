// Bundle uppy_page.js (esbuild) into <page-dir>, open <base>/uppy/ (served same-origin with the
// demo by tests/e2e/uppy_app.py) in Debian's chromium, choose <image> and let Uppy's @uppy/tus
// upload it. Prints one JSON line: what the page saw.
//   node uppy_flow.mjs <base-url> <page-dir> <image-path>
import { chromium } from 'playwright-core';
import * as esbuild from 'esbuild';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [base, pageDir, image] = process.argv.slice(2);
const result = { console: [] };

await esbuild.build({
  entryPoints: [join(import.meta.dirname, 'uppy_page.js')],
  outfile: join(pageDir, 'page.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['chrome100'],
  logLevel: 'warning',
});
writeFileSync(join(pageDir, 'index.html'), '<!doctype html><html><head><meta charset="utf-8">'
  + '<title>Uppy tus</title></head><body><input type="file" id="file" accept="image/png">'
  + '<script src="page.js"></script></body></html>');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  await page.goto(`${base}/uppy/`, { waitUntil: 'load' });
  await page.waitForFunction(() => window.__uppy);
  await page.setInputFiles('#file', image);
  await page.waitForFunction(() => (window.__uppy.result && window.__uppy.success)
    || window.__uppy.error, null, { timeout: 60000 });
  const state = await page.evaluate(() => window.__uppy);
  if (state.error) throw new Error(`upload failed: ${JSON.stringify(state.error)}`);
  console.log(JSON.stringify({ ok: true, ...result, ...state }));
} catch (err) {
  const state = await browser.contexts()[0]?.pages()[0]?.evaluate(() => window.__uppy)
    .catch(() => null);
  console.log(JSON.stringify({ ok: false, error: String((err && err.stack) || err), ...result,
    state }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
