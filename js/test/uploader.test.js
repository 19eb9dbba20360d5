import { beforeEach, describe, expect, it, vi } from 'vitest';
import { clearOptionsCache } from '../src/options.js';
import { getUploader, init } from '../src/uploader.js';
import { FakeServer, OPTIONS, assetJson, makeFile } from './fake-server.js';

const SIGNED = 'https://bucket.s3.example/media/abc?X-Amz-Signature=secret';

/** The Jinja `uploader` macro's markup, exactly. */
function markup(profile = 'avatar', name = 'avatar_asset_id') {
  return `
<div class="rindle-uploader" data-rindle-uploader data-profile="${profile}" data-endpoint="/rindle" data-name="${name}">
  <input type="file" accept="image/png,image/jpeg" data-rindle-file>
  <progress max="100" value="0" data-rindle-progress hidden></progress>
  <span data-rindle-status aria-live="polite"></span>
  <button type="button" data-rindle-cancel hidden>Cancel</button>
  <input type="hidden" name="${name}" data-rindle-asset-id>
</div>`;
}

function parts(root) {
  return {
    file: root.querySelector('[data-rindle-file]'),
    progress: root.querySelector('[data-rindle-progress]'),
    status: root.querySelector('[data-rindle-status]'),
    cancel: root.querySelector('[data-rindle-cancel]'),
    assetId: root.querySelector('[data-rindle-asset-id]'),
  };
}

/** Choose `file` in the uploader's file input, as a user would. */
function choose(root, file) {
  const input = root.querySelector('[data-rindle-file]');
  Object.defineProperty(input, 'files', { value: [file], configurable: true });
  input.dispatchEvent(new Event('change', { bubbles: true }));
}

/** Every rindle:* event reaching `document`, as [type, detail, event]. */
function recordEvents() {
  const seen = [];
  for (const type of ['rindle:start', 'rindle:progress', 'rindle:complete', 'rindle:error',
    'rindle:cancel']) {
    document.addEventListener(type, (e) => seen.push([type, e.detail, e]));
  }
  return seen;
}

function presignedServer(options = {}) {
  const server = new FakeServer({ options }).install();
  let n = 0;
  server.on('POST', /^\/rindle\/uploads$/, (req) => {
    n += 1;
    return { status: 201, body: { session_id: `ses_${n}`, asset_id: `ast_${n}`,
      upload: { method: 'PUT', url: SIGNED, headers: { 'Content-Type': req.body.content_type },
        expires_at: '2026-11-27T18:00:00+00:00' } } };
  });
  server.on('POST', /^\/rindle\/uploads\/(ses_\d+)\/complete$/, (req, m) => ({
    body: { session_id: m[1], asset: assetJson(m[1].replace('ses', 'ast')) },
  }));
  return server;
}

const until = (el, type) => new Promise((resolve) => {
  el.addEventListener(type, (e) => resolve(e), { once: true });
});

describe('DOM uploader', () => {
  beforeEach(() => {
    clearOptionsCache();
    localStorage.clear();
    document.body.innerHTML = '';
  });

  it('wires each uploader once, however often init runs', async () => {
    const server = presignedServer();
    document.body.innerHTML = markup() + markup('post_image', 'image_id');
    const first = init();
    expect(first).toHaveLength(2);
    expect(init()).toEqual([]);
    expect(init(document.body)).toEqual([]);
    const [a] = document.querySelectorAll('[data-rindle-uploader]');
    expect(getUploader(a)).toBe(first[0]);
    expect(a.dataset.rindleState).toBe('idle');

    const done = until(a, 'rindle:complete');
    choose(a, makeFile(10));
    await done;
    expect(server.calls('POST', /uploads$/)).toHaveLength(1);
    expect(server.xhrs()).toHaveLength(1);
  });

  it('wires an uploader given as the root itself', () => {
    document.body.innerHTML = markup();
    const el = document.querySelector('[data-rindle-uploader]');
    expect(init(el)).toHaveLength(1);
    expect(init(document)).toHaveLength(0);
  });

  it('uploads the chosen file, fires events, fills the hidden input', async () => {
    presignedServer();
    document.body.innerHTML = `<form>${markup()}</form>`;
    init();
    const root = document.querySelector('[data-rindle-uploader]');
    const ui = parts(root);
    const seen = recordEvents();
    const changes = [];
    document.addEventListener('change', (e) => {
      if (e.target === ui.assetId) changes.push(e.target.value);
    });
    const file = makeFile(10);
    const done = until(root, 'rindle:complete');
    choose(root, file);
    expect(root.dataset.rindleState).toBe('uploading');
    expect(ui.progress.hidden).toBe(false);
    expect(ui.cancel.hidden).toBe(false);
    await done;

    expect(seen.map(([type]) => type)).toEqual(['rindle:start', 'rindle:progress',
      'rindle:complete']);
    const [[, start, startEvent], [, progress], [, complete]] = seen;
    expect(startEvent.bubbles).toBe(true);
    expect(startEvent.composed).toBe(true);
    expect(startEvent.target).toBe(root);
    expect(start).toEqual({ file, strategy: 'presigned_put' });
    expect(progress).toEqual({ loaded: 10, total: 10, percent: 100 });
    expect(complete).toEqual({ assetId: 'ast_1', sessionId: 'ses_1', asset: assetJson('ast_1') });

    expect(ui.assetId.value).toBe('ast_1');
    expect(changes).toEqual(['ast_1']);
    expect(root.dataset.rindleState).toBe('complete');
    expect(ui.progress.value).toBe(100);
    expect(ui.progress.hidden).toBe(true);
    expect(ui.cancel.hidden).toBe(true);
    expect(ui.status.textContent).toBe('Uploaded me.png.');
  });

  it('keeps several uploaders on one page apart', async () => {
    const server = presignedServer({ accept: ['image/png', 'image/jpeg', 'video/mp4'],
      extensions: ['png', 'jpg', 'jpeg', 'mp4'] });
    document.body.innerHTML = markup('avatar', 'avatar_asset_id') + markup('lesson', 'video_id');
    init();
    const [a, b] = document.querySelectorAll('[data-rindle-uploader]');
    const doneA = until(a, 'rindle:complete');
    const doneB = until(b, 'rindle:complete');
    choose(a, makeFile(10));
    choose(b, makeFile(12, 'talk.mp4', 'video/mp4'));
    const [ea, eb] = await Promise.all([doneA, doneB]);
    const byName = Object.fromEntries(server.calls('POST', /uploads$/)
      .map((r) => [r.body.filename, r.body.profile]));
    expect(byName).toEqual({ 'me.png': 'avatar', 'talk.mp4': 'lesson' });
    expect(server.calls('GET', /upload-options$/).map((r) => r.url).sort()).toEqual([
      '/rindle/profiles/avatar/upload-options', '/rindle/profiles/lesson/upload-options']);
    expect(parts(a).assetId.value).toBe(ea.detail.assetId);
    expect(parts(b).assetId.value).toBe(eb.detail.assetId);
    expect(ea.detail.assetId).not.toBe(eb.detail.assetId);
  });

  it('refuses an obviously wrong file client-side with rindle:error', async () => {
    const server = presignedServer();
    document.body.innerHTML = markup();
    init();
    const root = document.querySelector('[data-rindle-uploader]');
    const seen = recordEvents();
    const failed = until(root, 'rindle:error');
    choose(root, makeFile(OPTIONS.max_bytes + 1));
    const event = await failed;
    expect(event.detail).toEqual({ code: 'max_bytes_exceeded', message: expect.any(String) });
    expect(seen.map(([type]) => type)).toEqual(['rindle:error']);
    expect(root.dataset.rindleState).toBe('error');
    expect(parts(root).status.textContent).toBe(event.detail.message);
    expect(parts(root).progress.hidden).toBe(true);
    expect(parts(root).assetId.value).toBe('');
    expect(server.calls('POST', /uploads$/)).toHaveLength(0);

    const typed = until(root, 'rindle:error');
    choose(root, makeFile(10, 'x.gif', 'image/gif'));
    expect((await typed).detail.code).toBe('mime_not_allowed');
  });

  it("reports the server's error code and never the signed URL", async () => {
    const server = presignedServer();
    server.storage = () => ({ status: 403, text: `<Error><URL>${SIGNED}</URL></Error>` });
    document.body.innerHTML = markup();
    init();
    const root = document.querySelector('[data-rindle-uploader]');
    const failed = until(root, 'rindle:error');
    choose(root, makeFile(10));
    const { detail } = await failed;
    expect(detail.code).toBe('storage_rejected');
    expect(root.textContent).not.toContain('X-Amz');
    expect(JSON.stringify(detail)).not.toContain('X-Amz');
  });

  it('the cancel button aborts a multipart upload and DELETEs its session', async () => {
    const server = new FakeServer({
      options: { strategies: ['multipart', 'presigned_put'], multipart_threshold: 5 },
    }).install();
    server.on('POST', /^\/rindle\/multipart$/, () => ({ status: 201,
      body: { session_id: 'mp_1', asset_id: 'ast_mp', part_size: 4, part_count: 3 } }));
    server.on('POST', /^\/rindle\/multipart\/mp_1\/parts$/, (req) => ({ body: { parts:
      Object.fromEntries(req.body.part_numbers.map((n) => [n, { url: `https://s3.example/k?partNumber=${n}`, headers: {} }])) } }));
    server.on('DELETE', /^\/rindle\/multipart\/mp_1$/, () => ({ body: { session_id: 'mp_1',
      state: 'aborted' } }));
    server.storage = () => new Promise(() => {});
    document.body.innerHTML = markup();
    const [uploader] = init();
    const root = uploader.root;
    const seen = recordEvents();
    choose(root, makeFile(10));
    await vi.waitFor(() => expect(server.inflight).toBe(3));
    expect(uploader.uploading).toBe(true);

    parts(root).cancel.click();
    expect(seen.map(([type]) => type)).toEqual(['rindle:start', 'rindle:progress', 'rindle:cancel']);
    expect(root.dataset.rindleState).toBe('idle');
    expect(parts(root).progress.hidden).toBe(true);
    expect(parts(root).cancel.hidden).toBe(true);
    expect(parts(root).status.textContent).toBe('Upload cancelled.');
    expect(server.aborted).toHaveLength(3);
    await vi.waitFor(() => expect(server.calls('DELETE', /mp_1$/)).toHaveLength(1));
    expect(localStorage.length).toBe(0);
    expect(uploader.cancel()).toBe(false); // nothing left to cancel
    expect(seen.map(([type]) => type)).not.toContain('rindle:error');
  });

  it('choosing another file replaces the running upload', async () => {
    const server = presignedServer();
    let hold = true;
    server.storage = () => (hold ? new Promise(() => {}) : { status: 200 });
    document.body.innerHTML = markup();
    const [uploader] = init();
    const seen = recordEvents();
    choose(uploader.root, makeFile(10, 'first.png'));
    await vi.waitFor(() => expect(server.inflight).toBe(1));
    hold = false;
    const done = until(uploader.root, 'rindle:complete');
    choose(uploader.root, makeFile(10, 'second.png'));
    const { detail } = await done;
    expect(detail.assetId).toBe('ast_2');
    expect(seen.map(([type]) => type)).toEqual(['rindle:start', 'rindle:cancel', 'rindle:start',
      'rindle:progress', 'rindle:complete']);
    expect(uploader.root.dataset.rindleState).toBe('complete');
  });
});
