import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clearOptionsCache } from '../src/options.js';
import { CHUNK_QUANTUM, rangeEnd, resumableKey } from '../src/resumable.js';
import { upload } from '../src/upload.js';
import { FakeServer, flush, makeFile } from './fake-server.js';

const Q = CHUNK_QUANTUM; // 256 KiB
const SESSION_URI = 'https://storage.example/upload/storage/v1/b/bucket/o?uploadType=resumable'
  + '&name=staging%2Fx&upload_id=SECRET-UPLOAD-ID';

/**
 * A Rindle server on a GCS profile plus a GCS-like store behind the session URI: it keeps the
 * bytes it was sent in order, answers 308 + Range for a partial upload and 200 once whole.
 */
function gcsServer({ sessionId = 'rs_1', size = null, hideRange = false } = {}) {
  const server = new FakeServer({
    options: { strategies: ['resumable', 'presigned_put'], multipart_threshold: Q,
      max_bytes: 64 * 1024 * 1024,
      endpoints: { uploads: '/rindle/uploads', resumable: '/rindle/resumable' } },
  }).install();
  const gcs = { held: 0, total: size, complete: false, puts: [] };
  server.gcs = gcs;
  server.on('POST', /^\/rindle\/resumable$/, (req) => {
    gcs.total = req.body.byte_size;
    return { status: 201, body: { session_id: sessionId, asset_id: 'ast_rs', upload: {
      method: 'PUT', url: SESSION_URI, byte_size: req.body.byte_size,
      expires_at: '2026-12-04T18:00:00+00:00' } } };
  });
  server.on('GET', /^\/rindle\/resumable\/([^/]+)$/, (req, m) => ({
    body: { session_id: m[1], asset_id: 'ast_rs', byte_size: gcs.total,
      state: gcs.complete ? 'completed' : (gcs.held ? 'uploading' : 'signed'),
      committed: gcs.held },
  }));
  server.on('DELETE', /^\/rindle\/resumable\/([^/]+)$/, (req, m) => ({
    body: { session_id: m[1], state: 'aborted' },
  }));
  server.storage = (req) => gcsPut(gcs, req, hideRange);
  return server;
}

function gcsPut(gcs, req, hideRange = false) {
  const range = req.headers['Content-Range'];
  gcs.puts.push(range);
  const size = req.body ? req.body.size : 0;
  let m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range);
  if (m) {
    if (Number(m[1]) !== gcs.held || Number(m[2]) - Number(m[1]) + 1 !== size) {
      return { status: 400, text: '{"error": {"code": 400, "message": "bad range"}}' };
    }
    gcs.held += size;
    if (m[3] !== '*' && gcs.held === Number(m[3])) {
      gcs.complete = true;
      return { status: 200, text: '{"name": "staging/x"}' };
    }
  } else {
    m = /^bytes \*\/(\d+)$/.exec(range);
    if (m && gcs.held === Number(m[1])) {
      gcs.complete = true;
      return { status: 200, text: '{}' };
    }
  }
  return { status: 308, headers: hideRange ? {} : { Range: `bytes=0-${gcs.held - 1}` } };
}

const stored = (file) => JSON.parse(sessionStorage.getItem(resumableKey('avatar', file))
  || 'null');
const starts = (server) => server.xhrs().map((r) => Number(/bytes (\d+)/.exec(
  r.headers['Content-Range'])[1]));

describe('GCS resumable sessions', () => {
  beforeEach(() => {
    clearOptionsCache();
    sessionStorage.clear();
    localStorage.clear();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('sends 256 KiB-multiple chunks with Content-Range straight to the session URI', async () => {
    const server = gcsServer();
    const file = makeFile(2 * Q + 1000);
    const progress = [];
    const started = [];
    const result = await upload(file, { profile: 'avatar', headers: { 'X-CSRF-Token': 't' },
      resumable: { chunkSize: Q }, onStart: (s) => started.push(s.strategy),
      onProgress: (p) => progress.push(p) });

    expect(started).toEqual(['resumable']);
    expect(result).toEqual({ assetId: 'ast_rs', sessionId: 'rs_1', asset: null });
    expect(server.calls('POST', /resumable$/)[0].body).toEqual({ profile: 'avatar',
      filename: 'me.png', content_type: 'image/png', byte_size: 2 * Q + 1000 });
    expect(server.gcs.puts).toEqual([
      `bytes 0-${Q - 1}/*`,
      `bytes ${Q}-${2 * Q - 1}/*`,
      `bytes ${2 * Q}-${2 * Q + 999}/${2 * Q + 1000}`,
    ]);
    expect(server.xhrs().every((r) => r.url === SESSION_URI && r.method === 'PUT')).toBe(true);
    // Rindle's own headers never go to the store.
    expect(server.xhrs().every((r) => !('X-CSRF-Token' in r.headers))).toBe(true);
    expect(server.calls('POST', /resumable$/)[0].headers['X-CSRF-Token']).toBe('t');
    // The store said "whole": Rindle's status call verifies it.
    expect(server.log().slice(-1)).toEqual(['GET /rindle/resumable/rs_1']);
    expect(progress.at(-1)).toEqual({ loaded: 2 * Q + 1000, total: 2 * Q + 1000, percent: 100 });
    const loaded = progress.map((p) => p.loaded);
    expect(loaded).toEqual([...loaded].sort((a, b) => a - b));
    expect(stored(file)).toBeNull();
  });

  it('rounds the chunk size down to a multiple of 256 KiB', async () => {
    const server = gcsServer();
    await upload(makeFile(3 * Q), { profile: 'avatar', resumable: { chunkSize: Q + 5000 } });
    expect(server.gcs.puts).toEqual([`bytes 0-${Q - 1}/*`, `bytes ${Q}-${2 * Q - 1}/*`,
      `bytes ${2 * Q}-${3 * Q - 1}/${3 * Q}`]);
    const tiny = gcsServer();
    clearOptionsCache();
    await upload(makeFile(Q + 1), { profile: 'avatar', resumable: { chunkSize: 1000 } });
    expect(tiny.gcs.puts).toEqual([`bytes 0-${Q - 1}/*`, `bytes ${Q}-${Q}/${Q + 1}`]);
  });

  it('keeps the session in sessionStorage (not localStorage) while it runs', async () => {
    const server = gcsServer();
    const gate = [];
    server.storage = (req) => new Promise((resolve) => {
      gate.push(() => resolve(gcsPut(server.gcs, req)));
    });
    const file = makeFile(Q + 10);
    const done = upload(file, { profile: 'avatar', resumable: { chunkSize: Q } });
    await vi.waitFor(() => expect(server.inflight).toBe(1));
    expect(stored(file)).toMatchObject({ session_id: 'rs_1', asset_id: 'ast_rs',
      upload_url: SESSION_URI, byte_size: Q + 10, endpoint: '/rindle' });
    expect(JSON.stringify({ ...localStorage })).not.toContain('SECRET');
    while (gate.length) {
      gate.shift()();
      await flush();
      await vi.waitFor(() => expect(gate.length > 0 || server.inflight === 0).toBe(true));
    }
    await done;
    expect(stored(file)).toBeNull();
  });

  it('with remember: false keeps the session URI in memory only', async () => {
    const server = gcsServer();
    const gate = [];
    server.storage = (req) => new Promise((resolve) => {
      gate.push(() => resolve(gcsPut(server.gcs, req)));
    });
    const done = upload(makeFile(Q + 10), { profile: 'avatar',
      resumable: { chunkSize: Q, remember: false } });
    await vi.waitFor(() => expect(server.inflight).toBe(1));
    expect(sessionStorage.length).toBe(0);
    expect(localStorage.length).toBe(0);
    gate.shift()();
    await vi.waitFor(() => expect(gate.length).toBe(1));
    gate.shift()();
    await done;
  });

  it('after a network error waits, asks Rindle how far it got and goes on from there', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    vi.spyOn(Math, 'random').mockReturnValue(0.5); // jitter: 3/4 of the exponential delay
    const server = gcsServer();
    const dropped = new Set();
    server.storage = (req) => {
      const start = Number(/bytes (\d+)/.exec(req.headers['Content-Range'])[1]);
      if (start === Q && !dropped.has(Q)) {
        dropped.add(Q);
        gcsPut(server.gcs, req); // the store took the chunk; its answer is lost
        return { network: true };
      }
      if (start === 2 * Q && !dropped.has(2 * Q)) {
        dropped.add(2 * Q); // lost before the store took it
        return { network: true };
      }
      return gcsPut(server.gcs, req);
    };
    const file = makeFile(3 * Q);
    const done = upload(file, { profile: 'avatar', resumable: { chunkSize: Q } });
    await flush(200);
    expect(starts(server)).toEqual([0, Q]);
    await vi.advanceTimersByTimeAsync(374); // first delay: 500 * 3/4
    expect(server.calls('GET', /resumable\/rs_1$/)).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    // Rindle said 2 chunks are in: the third goes next, the second is not sent again.
    expect(server.calls('GET', /resumable\/rs_1$/)).toHaveLength(1);
    expect(starts(server)).toEqual([0, Q, 2 * Q]);
    // That was progress: the next failure waits the first delay again, then resends.
    await vi.advanceTimersByTimeAsync(374);
    expect(starts(server)).toEqual([0, Q, 2 * Q]);
    await vi.advanceTimersByTimeAsync(1);
    expect(starts(server)).toEqual([0, Q, 2 * Q, 2 * Q]);
    const result = await done;
    expect(result.assetId).toBe('ast_rs');
    expect(server.calls('GET', /resumable\/rs_1$/)).toHaveLength(3);
    expect(server.gcs.complete).toBe(true);
  });

  it('asks Rindle when the Range header is unreadable (CORS) and goes on', async () => {
    const server = gcsServer({ hideRange: true });
    const result = await upload(makeFile(2 * Q + 1), { profile: 'avatar',
      resumable: { chunkSize: Q } });
    expect(result.assetId).toBe('ast_rs');
    expect(server.log().slice(2)).toEqual([
      `PUT ${SESSION_URI.split('?')[0]}`, 'GET /rindle/resumable/rs_1',
      `PUT ${SESSION_URI.split('?')[0]}`, 'GET /rindle/resumable/rs_1',
      `PUT ${SESSION_URI.split('?')[0]}`, 'GET /rindle/resumable/rs_1',
    ]);
    expect(starts(server)).toEqual([0, Q, 2 * Q]);
  });

  it('retries 5xx, gives up after 4 attempts without progress, and keeps the record', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const server = gcsServer();
    server.storage = (req) => (req.headers['Content-Range'].startsWith('bytes 0-')
      ? gcsPut(server.gcs, req) : { status: 503, text: 'backend error' });
    const file = makeFile(2 * Q);
    const done = upload(file, { profile: 'avatar', resumable: { chunkSize: Q } })
      .catch((e) => e);
    await vi.advanceTimersByTimeAsync(60000);
    const err = await done;
    expect(err).toMatchObject({ code: 'storage_rejected', status: 503 });
    expect(err.message).not.toContain('SECRET');
    expect(err.message).not.toContain('storage.example');
    expect(starts(server)).toEqual([0, Q, Q, Q, Q]);
    expect(server.calls('GET', /resumable\/rs_1$/)).toHaveLength(3);
    expect(stored(file)).toMatchObject({ session_id: 'rs_1' }); // choosing again resumes
    expect(server.calls('DELETE', /resumable/)).toHaveLength(0);
  });

  it('does not retry a refusal (4xx) and never shows the session URI', async () => {
    const server = gcsServer();
    server.storage = () => ({ status: 403, text: `<Error>denied for ${SESSION_URI}</Error>` });
    const err = await upload(makeFile(2 * Q), { profile: 'avatar',
      resumable: { chunkSize: Q } }).catch((e) => e);
    expect(err).toMatchObject({ code: 'storage_rejected', status: 403 });
    expect(err.message).not.toContain('SECRET');
    expect(server.xhrs()).toHaveLength(1);
  });

  it('an expired store session (404) forgets the record', async () => {
    const server = gcsServer();
    server.storage = () => ({ status: 404, text: 'Not Found' });
    const file = makeFile(2 * Q);
    const err = await upload(file, { profile: 'avatar' }).catch((e) => e);
    expect(err.code).toBe('session_expired');
    expect(stored(file)).toBeNull();
  });

  it('passes on the server\'s error when verification fails', async () => {
    const server = gcsServer();
    server.on('GET', /^\/rindle\/resumable\/([^/]+)$/, () => ({ status: 415,
      body: { error: { code: 'mime_mismatch', message: 'The bytes are not a PNG.' } } }));
    const err = await upload(makeFile(Q + 1), { profile: 'avatar' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'mime_mismatch', status: 415,
      message: 'The bytes are not a PNG.' });
  });

  it('cancel aborts the chunk in flight, DELETEs the session and forgets it', async () => {
    const server = gcsServer();
    server.storage = () => new Promise(() => {}); // never answers
    const file = makeFile(2 * Q);
    const controller = new AbortController();
    const done = upload(file, { profile: 'avatar', signal: controller.signal,
      headers: { 'X-CSRF-Token': 't' } }).catch((e) => e);
    await vi.waitFor(() => expect(server.inflight).toBe(1));
    expect(stored(file)).not.toBeNull();
    controller.abort();
    const err = await done;
    expect(err.code).toBe('cancelled');
    expect(server.aborted).toEqual([SESSION_URI]);
    const del = server.calls('DELETE', /^\/rindle\/resumable\/rs_1$/);
    expect(del).toHaveLength(1);
    expect(del[0].headers['X-CSRF-Token']).toBe('t');
    expect(stored(file)).toBeNull();
  });

  it('resumes after a reload from Rindle\'s committed count, without a new session', async () => {
    const server = gcsServer();
    const file = makeFile(3 * Q);
    server.gcs.held = Q; // what the store kept before the reload
    server.gcs.total = 3 * Q;
    sessionStorage.setItem(resumableKey('avatar', file), JSON.stringify({
      session_id: 'rs_old', asset_id: 'ast_old', upload_url: SESSION_URI, byte_size: 3 * Q,
      endpoint: '/rindle', saved_at: Date.now() }));
    const progress = [];
    const result = await upload(file, { profile: 'avatar', resumable: { chunkSize: Q },
      onProgress: (p) => progress.push(p.loaded) });
    expect(server.calls('POST', /resumable$/)).toHaveLength(0);
    expect(server.calls('GET', /resumable\/rs_old$/).length).toBeGreaterThan(0);
    expect(starts(server)).toEqual([Q, 2 * Q]);
    expect(progress[0]).toBe(Q);
    expect(result).toEqual({ assetId: 'ast_rs', sessionId: 'rs_old', asset: null });
    expect(stored(file)).toBeNull();
  });

  it('a stored session Rindle no longer has (4xx) starts afresh', async () => {
    const server = gcsServer();
    server.on('GET', /^\/rindle\/resumable\/rs_old$/, () => ({ status: 404,
      body: { error: { code: 'session_not_found', message: 'gone' } } }));
    const file = makeFile(2 * Q);
    sessionStorage.setItem(resumableKey('avatar', file), JSON.stringify({
      session_id: 'rs_old', asset_id: 'ast_old', upload_url: `${SESSION_URI}-old`,
      byte_size: 2 * Q, endpoint: '/rindle', saved_at: Date.now() }));
    const result = await upload(file, { profile: 'avatar', resumable: { chunkSize: Q } });
    expect(result.sessionId).toBe('rs_1');
    expect(server.calls('POST', /resumable$/)).toHaveLength(1);
    expect(server.xhrs().every((r) => r.url === SESSION_URI)).toBe(true);
  });

  it('a stored session that already completed sends nothing', async () => {
    const server = gcsServer();
    server.gcs.complete = true;
    server.gcs.held = 2 * Q;
    const file = makeFile(2 * Q);
    sessionStorage.setItem(resumableKey('avatar', file), JSON.stringify({
      session_id: 'rs_old', asset_id: 'ast_rs', upload_url: SESSION_URI, byte_size: 2 * Q,
      endpoint: '/rindle', saved_at: Date.now() }));
    const result = await upload(file, { profile: 'avatar' });
    expect(result).toEqual({ assetId: 'ast_rs', sessionId: 'rs_old', asset: null });
    expect(server.xhrs()).toHaveLength(0);
    expect(stored(file)).toBeNull();
  });

  it('finishes with an empty PUT when every byte is in but the store said nothing', async () => {
    const server = gcsServer();
    const file = makeFile(2 * Q);
    server.gcs.held = 2 * Q; // all bytes in, but sent with "/*": the store is not done
    server.gcs.total = 2 * Q;
    sessionStorage.setItem(resumableKey('avatar', file), JSON.stringify({
      session_id: 'rs_old', asset_id: 'ast_rs', upload_url: SESSION_URI, byte_size: 2 * Q,
      endpoint: '/rindle', saved_at: Date.now() }));
    await upload(file, { profile: 'avatar' });
    expect(server.gcs.puts).toEqual([`bytes */${2 * Q}`]);
    expect(server.gcs.complete).toBe(true);
  });

  it('uses fetch for the chunks where there is no XMLHttpRequest (Node, workers)', async () => {
    const server = gcsServer();
    vi.stubGlobal('XMLHttpRequest', undefined);
    const sent = [];
    server.on('PUT', /^https:\/\/storage\.example\//, async (req) => {
      sent.push(req);
      const res = gcsPut(server.gcs, { headers: req.headers, body: req.body });
      return { status: res.status, headers: res.headers, body: res.status === 200 ? {} : undefined };
    });
    const result = await upload(makeFile(Q + 5), { profile: 'avatar',
      headers: { 'X-CSRF-Token': 't' }, resumable: { chunkSize: Q } });
    expect(result.assetId).toBe('ast_rs');
    expect(sent.map((r) => r.headers['Content-Range'])).toEqual([`bytes 0-${Q - 1}/*`,
      `bytes ${Q}-${Q + 4}/${Q + 5}`]);
    expect(sent.every((r) => !('X-CSRF-Token' in r.headers))).toBe(true);
    const init = server.fetch.mock.calls.find(([url]) => String(url).startsWith('https://'))[1];
    expect(init.credentials).toBe('omit');
  });

  it('reads GCS\'s Range header', () => {
    expect(rangeEnd('bytes=0-262143')).toBe(Q);
    expect(rangeEnd('bytes=0-0')).toBeNull(); // gcp-storage-emulator's "nothing yet"
    expect(rangeEnd(null)).toBeNull();
    expect(rangeEnd('bytes=5-9')).toBeNull();
  });
});
