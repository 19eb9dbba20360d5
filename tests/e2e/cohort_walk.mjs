// The whole of Cohort in one real browser, as a new member and then an operator:
//   node cohort_walk.mjs <base-url> <artifact-dir> <avatar1> <avatar2> <hero> <lesson> <mark> <saved-mark>
// 1 join, 2 avatar (presigned PUT) ready, 3 a post with a big hero image (S3 multipart),
// 4 a video lesson over tus with the network cut mid-upload, then processing %, then a
// playable <video>, 5 replace the avatar (the old one is purged), 6 an operator restores the
// missing brand mark and retries the post's failed share card in the console, 7 the account
// is deleted after its preview, 8 the console refuses a visitor who is no operator.
// Screenshots of every step go to <artifact-dir>/walk-*.png; the last line is the JSON result.
import { chromium } from 'playwright-core';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, artifacts, avatar1, avatar2, hero, lesson, mark, savedMark] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--mute-audio', '--autoplay-policy=no-user-gesture-required',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const result = { steps: [], console: [], failures: [], tus: [] };
const shot = async (page, name) => {
  await page.screenshot({ path: join(artifacts, `walk-${name}.png`), fullPage: true });
  result.steps.push(name);
};
let phase = 'before';

// Each uploader's events, by the form it sits in.
const listen = (page) => page.evaluate(() => {
  window.__walk = {};
  for (const name of ['rindle:start', 'rindle:progress', 'rindle:complete', 'rindle:error']) {
    document.addEventListener(name, (e) => {
      const form = e.target.closest('form');
      const key = form ? form.id : 'page';
      const seen = (window.__walk[key] ||= { events: [], progress: [] });
      seen.events.push(name);
      if (name === 'rindle:start') seen.strategy = e.detail.strategy;
      if (name === 'rindle:progress') seen.progress.push(e.detail.percent);
      if (name === 'rindle:error') seen.error = e.detail;
    });
  }
});
const upload = async (page, form, file, { whileGoing } = {}) => {
  await page.setInputFiles(`#${form} [data-rindle-file]`, file);
  if (whileGoing) await whileGoing();
  await page.waitForFunction((f) => {
    const seen = window.__walk[f];
    return seen && (seen.events.includes('rindle:complete') || seen.error);
  }, form, { timeout: 120000, polling: 100 });
  const seen = await page.evaluate((f) => window.__walk[f], form);
  if (seen.error) throw new Error(`${form}: upload failed: ${JSON.stringify(seen.error)}`);
  return seen;
};
const assetState = (page, id) => page.evaluate(async (assetId) => {
  const r = await fetch(`/rindle/assets/${assetId}`);
  if (r.status === 404) return 'gone';
  const body = await r.json();
  return (body.asset || body).state;
}, id);
const until = async (page, check, what, timeout = 60000) => {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(200);
  }
};

try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 1000 } });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') result.console.push(m.text()); });
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) result.failures.push(`${r.status()} ${r.request().method()} ${r.url().split('?')[0]}`);
  });
  page.on('request', (r) => {
    if (r.url().includes('/rindle/tus/')) {
      result.tus.push({ method: r.method(), offset: r.headers()['upload-offset'] ?? null, phase });
    }
  });

  // 1. Join.
  await page.goto(`${base}/members`);
  await page.getByRole('link', { name: 'Join Cohort' }).click();
  await page.getByLabel('Your name').fill('Dora Explorer');
  await page.getByRole('button', { name: 'Join' }).click();
  await page.waitForURL(/\/members\/\d+\?joined=1$/);
  result.member = page.url().match(/\/members\/(\d+)/)[1];
  await page.waitForFunction(() => window.Rindle && window.htmx);
  await listen(page);
  result.welcome = (await page.locator('.notice').innerText()).trim();
  await shot(page, '01-joined');

  // 2. The first avatar: a small photo, one presigned PUT.
  const first = await upload(page, 'avatar-form', avatar1);
  await page.waitForSelector('#member-avatar .rindle-badge [data-state="ready"]', { timeout: 60000 });
  result.avatar = { strategy: first.strategy,
                    id: await page.locator('#member-avatar .rindle-badge').getAttribute('data-rindle-asset') };
  await shot(page, '02-avatar-ready');

  // 3. A post with a big hero image: S3 multipart, parts straight to the bucket.
  await page.locator('#post-title').fill('Crossing the Andes');
  const post = await upload(page, 'post-form', hero);
  await page.waitForSelector('#posts article.post picture', { timeout: 30000 });
  result.post = { strategy: post.strategy, progress: post.progress,
                  id: await page.locator('#posts article.post picture').first().getAttribute('data-rindle-asset') };
  // The card and hero build; the share card can't: the brand mark is missing.
  await until(page, async () => ['degraded', 'ready'].includes(await assetState(page, result.post.id)),
              'the post image to settle', 90000);
  result.post.settled = await assetState(page, result.post.id);
  await page.waitForFunction(() => {
    const img = document.querySelector('#posts article.post picture img');
    return img && img.complete && img.naturalWidth > 0 && !img.src.startsWith('data:');
  }, null, { timeout: 60000 });
  await shot(page, '03-post');

  // 4. A video lesson over tus; the network drops at a third and comes back.
  await page.locator('summary', { hasText: 'Add a video lesson' }).click();
  await page.locator('#video-lesson-title').fill('Knots for climbers');
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 10, downloadThroughput: -1, uploadThroughput: 2 * 1024 * 1024 });
  const video = await upload(page, 'video-lesson-form', lesson, { whileGoing: async () => {
    await page.waitForFunction(() => (window.__walk['video-lesson-form']?.progress || []).some((p) => p >= 30),
                               null, { timeout: 60000, polling: 50 });
    await shot(page, '04-lesson-uploading');
    // Offline through the same DevTools session as the throttle (playwright's setOffline
    // sets the same emulation from another session, and the two fight).
    phase = 'offline';
    await cdp.send('Network.emulateNetworkConditions', {
      offline: true, latency: 0, downloadThroughput: 0, uploadThroughput: 0 });
    await page.waitForTimeout(2500);
    phase = 'after';
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 10, downloadThroughput: -1, uploadThroughput: 2 * 1024 * 1024 });
  } });
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  result.lesson = { strategy: video.strategy, progress: video.progress, badges: [] };
  // Processing: the lesson's live badge shows the percentage, then the video plays.
  await page.waitForSelector('#lessons article.lesson video', { timeout: 30000 });
  await until(page, async () => {
    const text = await page.locator('#lessons article.lesson .rindle-badge').first().textContent().catch(() => null);
    if (text && !result.lesson.badges.includes(text.trim())) result.lesson.badges.push(text.trim());
    return page.evaluate(() => {
      const v = document.querySelector('#lessons article.lesson video');
      return v && v.dataset.state === 'ready' && v.querySelectorAll('source').length >= 2;
    });
  }, 'the lesson video to be ready', 120000);
  await page.evaluate(() => { const v = document.querySelector('#lessons article.lesson video'); v.load(); v.play().catch(() => {}); });
  await page.waitForFunction(() => document.querySelector('#lessons article.lesson video').readyState >= 2, null, { timeout: 30000 });
  result.lesson.video = await page.evaluate(() => {
    const v = document.querySelector('#lessons article.lesson video');
    return { readyState: v.readyState, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
             poster: v.getAttribute('poster'), id: v.dataset.rindleAsset };
  });
  await shot(page, '05-lesson-ready');

  // 5. Replace the avatar: the new one shows, the old one is purged.
  await page.evaluate(() => { delete window.__walk['avatar-form']; });
  await upload(page, 'avatar-form', avatar2);
  await page.waitForFunction((old) => {
    const badge = document.querySelector('#member-avatar .rindle-badge');
    return badge && badge.dataset.rindleAsset !== old && badge.querySelector('[data-state="ready"]');
  }, result.avatar.id, { timeout: 60000 });
  result.avatar.replacedBy = await page.locator('#member-avatar .rindle-badge').getAttribute('data-rindle-asset');
  await until(page, async () => (await assetState(page, result.avatar.id)) === 'gone', 'the old avatar to be purged');
  result.avatar.old = 'gone';
  await shot(page, '06-avatar-replaced');
  await page.goto(`${base}/feed`);
  await page.waitForFunction(() => [...document.querySelectorAll('.post picture img')].every((i) => i.complete));
  await page.screenshot({ path: join(artifacts, 'cohort-feed.png') });
  await page.goto(`${base}/members/${result.member}`);
  await page.screenshot({ path: join(artifacts, 'cohort-member.png') });
  // Phone width: no page is wider than the screen.
  await page.setViewportSize({ width: 375, height: 812 });
  result.phone = {};
  for (const [name, path] of [['members', '/members'], ['join', '/members/new'],
                              ['member', `/members/${result.member}`], ['feed', '/feed'],
                              ['delete', `/members/${result.member}/delete`]]) {
    await page.goto(base + path);
    result.phone[name] = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    await page.screenshot({ path: join(artifacts, `walk-phone-${name}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1000, height: 1000 });

  // 6. The operator: the overview names the failed share card; the brand mark is restored
  // and the variant retried from the jobs page, where it turns ready live.
  await page.goto(`${base}/demo/operator`);
  await page.waitForURL(/\/admin\/$/);
  result.console_overview = await page.locator('h3', { hasText: 'Failed variants' }).count();
  await page.screenshot({ path: join(artifacts, 'console-overview.png') });
  await shot(page, '07-console-overview');
  copyFileSync(savedMark, mark);
  await page.getByRole('link', { name: 'Variants and jobs' }).click();
  await page.waitForURL(/\/admin\/jobs$/);
  await page.waitForFunction(() => window.htmx);
  const rowId = `job-${result.post.id}-share`;
  const row = page.locator(`[id="${rowId}"]`);
  result.share = { before: await row.getAttribute('data-state') };
  await shot(page, '08-console-failed');
  await row.getByRole('button', { name: /^Retry/ }).click();
  await page.waitForFunction((id) => document.getElementById(id)?.dataset.state === 'ready', rowId, { timeout: 60000 });
  result.share.after = await row.getAttribute('data-state');
  await shot(page, '09-console-retried');
  await page.goto(`${base}/admin/assets/${result.post.id}`);
  await page.screenshot({ path: join(artifacts, 'console-asset.png'), fullPage: true });
  result.post.afterRetry = await assetState(page, result.post.id);

  // 7. Delete the account: the preview first, then the erasure.
  await page.goto(`${base}/members/${result.member}`);
  await page.getByRole('link', { name: /^Delete Dora Explorer/ }).click();
  await page.waitForURL(/\/delete$/);
  result.preview = { slots: await page.locator('#erasure-slots tbody tr').count(),
                     purged: await page.locator('#erasure-purged li').count() };
  await shot(page, '10-erasure-preview');
  await page.getByLabel(/I understand/).check();
  await page.getByRole('button', { name: 'Erase Dora Explorer' }).click();
  await page.waitForURL(/\/members\?erased=/);
  result.erased = (await page.locator('.notice').innerText()).trim();
  result.afterErasure = {};
  for (const id of [result.avatar.replacedBy, result.post.id, result.lesson.video.id]) {
    result.afterErasure[id] = await until(page, async () => ((await assetState(page, id)) === 'gone') && 'gone',
                                          `asset ${id} to be purged`);
  }
  await shot(page, '11-erased');

  // 8. A visitor who is no operator: the console answers 403 and shows nothing.
  const stranger = await browser.newContext({ viewport: { width: 800, height: 600 } });
  const refused = await stranger.newPage();
  const answer = await refused.goto(`${base}/admin/assets`);
  result.refused = { status: answer.status(), text: (await refused.locator('main').innerText()).trim() };
  await shot(refused, '12-console-refused');
  console.log(JSON.stringify({ ok: true, ...result }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String((err && err.stack) || err), ...result }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
