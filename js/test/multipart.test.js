import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffDelay, MULTIPART_DEFAULTS } from '../src/multipart.js';
import { clearOptionsCache } from '../src/options.js';
import { resumeKey } from '../src/resume.js';
import { upload } from '../src/upload.js';
import { FakeServer, assetJson, flush, makeFile } from './fake-server.js';

const partOf = (url) => Number(new URL(url).searchParams.get('partNumber'));

/** A Rindle server with an S3-like storage; parts of `partSize` bytes. */
function multipartServer({ partSize = 4, sessionId = 'mp_1', listed = [] } = {}) {
  const server = new FakeServer({
    options: { strategies: ['multipart', 'presigned_put'], multipart_threshold: 5 },
  }).install();
  server.on('POST', /^\/rindle\/multipart$/, (req) => ({
    status: 201,
    body: { session_id: sessionId, asset_id: 'ast_mp', part_size: partSize,
      part_count: Math.ceil(req.body.byte_size / partSize) },
  }));
  server.on('POST', /^\/rindle\/multipart\/([^/]+)\/parts$/, (req, m) => ({
    body: {
      parts: Object.fromEntries(req.body.part_numbers.map((n) => [String(n), {
        method: 'PUT',
        url: `https://s3.example/bucket/key?partNumber=${n}&uploadId=${m[1]}&X-Amz-Signature=s${n}`,
        headers: {},
        expires_at: '2026-11-27T18:00:00+00:00',
      }])),
    },
  }));
  server.on('GET', /^\/rindle\/multipart\/([^/]+)\/parts$/, () => ({ body: { parts: listed } }));
  server.on('POST', /^\/rindle\/multipart\/([^/]+)\/complete$/, (req, m) => ({
    body: { session_id: m[1], asset: assetJson('ast_mp') },
  }));
  server.on('DELETE', /^\/rindle\/multipart\/([^/]+)$/, (req, m) => ({
    body: { session_id: m[1], state: 'aborted' },
  }));
  server.storage = (req) => ({ status: 200, headers: { ETag: `"etag-${partOf(req.url)}"` } });
  return server;
}

const putParts = (server) => server.xhrs().map((r) => partOf(r.url));
const stored = (file) => JSON.parse(localStorage.getItem(resumeKey('avatar', file)) || 'null');

describe('S3 multipart', () => {
  beforeEach(() => {
    clearOptionsCache();
    localStorage.clear();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('signs in batches, sends at most 4 parts at once, completes with the ETags', async () => {
    const server = multipartServer();
    server.storage = async (req) => {
      await new Promise((r) => setTimeout(r, 2));
      return { status: 200, headers: { ETag: `"etag-${partOf(req.url)}"` } };
    };
    const file = makeFile(38); // 10 parts: 9 x 4 bytes + 2
    const progress = [];
    const result = await upload(file, { profile: 'avatar', onProgress: (p) => progress.push(p),
      multipart: { signBatch: 3 } });

    expect(result).toEqual({ assetId: 'ast_mp', sessionId: 'mp_1', asset: assetJson('ast_mp') });
    expect(server.maxInflight).toBe(4);
    expect(putParts(server).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const create = server.calls('POST', /multipart$/)[0];
    expect(create.body).toEqual({ profile: 'avatar', filename: 'me.png', content_type: 'image/png',
      byte_size: 38 });
    const signed = server.calls('POST', /parts$/).map((r) => r.body.part_numbers);
    expect(signed.every((batch) => batch.length <= 3)).toBe(true);
    expect(signed.flat().sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const sizes = Object.fromEntries(server.xhrs().map((r) => [partOf(r.url), r.body.size]));
    expect(sizes[1]).toBe(4);
    expect(sizes[10]).toBe(2);
    const complete = server.calls('POST', /complete$/)[0];
    expect(complete.url).toBe('/rindle/multipart/mp_1/complete');
    expect(complete.body.parts).toEqual(Array.from({ length: 10 }, (_, i) => ({
      part_number: i + 1, etag: `"etag-${i + 1}"` })));
    expect(progress.at(-1)).toEqual({ loaded: 38, total: 38, percent: 100 });
    const loaded = progress.map((p) => p.loaded);
    expect(loaded).toEqual([...loaded].sort((a, b) => a - b));
    expect(stored(file)).toBeNull(); // the resume record goes once complete
  });

  it('remembers the session for resuming while parts are in flight', async () => {
    const server = multipartServer();
    const gate = [];
    server.storage = (req) => new Promise((resolve) => {
      gate.push(() => resolve({ status: 200, headers: { ETag: `"etag-${partOf(req.url)}"` } }));
    });
    const file = makeFile(14);
    const done = upload(file, { profile: 'avatar' });
    await vi.waitFor(() => expect(server.inflight).toBe(4));
    expect(stored(file)).toMatchObject({ session_id: 'mp_1', asset_id: 'ast_mp', part_size: 4,
      part_count: 4, endpoint: '/rindle' });
    expect(JSON.stringify(stored(file))).not.toContain('X-Amz');
    gate.forEach((open) => open());
    await done;
  });

  it('retries a failing part with exponential backoff and jitter', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    vi.spyOn(Math, 'random').mockReturnValue(0.5); // jitter: 3/4 of the exponential delay
    const server = multipartServer();
    let failures = 2;
    server.storage = (req) => {
      const n = partOf(req.url);
      if (n === 2 && failures > 0) {
        failures -= 1;
        return { status: 503, text: '<Error><Code>SlowDown</Code></Error>' };
      }
      return { status: 200, headers: { ETag: `"etag-${n}"` } };
    };
    const file = makeFile(14);
    const done = upload(file, { profile: 'avatar' });
    const attemptsOf2 = () => putParts(server).filter((n) => n === 2).length;

    await flush(200); // no timer may run before the first attempt fails
    expect(attemptsOf2()).toBe(1);
    await vi.advanceTimersByTimeAsync(374); // first delay: 500 * 3/4
    expect(attemptsOf2()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attemptsOf2()).toBe(2);
    await vi.advanceTimersByTimeAsync(749); // second delay: 1000 * 3/4
    expect(attemptsOf2()).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(attemptsOf2()).toBe(3);

    const result = await done;
    expect(result.assetId).toBe('ast_mp');
    expect(server.calls('POST', /complete$/)[0].body.parts[1]).toEqual({ part_number: 2,
      etag: '"etag-2"' });
  });

  it('computes the backoff delay with jitter and a cap', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    expect([1, 2, 3, 4].map((a) => backoffDelay(a))).toEqual([250, 500, 1000, 2000]);
    vi.spyOn(Math, 'random').mockReturnValue(0.999999);
    expect(backoffDelay(1)).toBe(500);
    expect(backoffDelay(20)).toBe(MULTIPART_DEFAULTS.maxDelay);
  });

  it('retries network errors and gives up after 4 attempts', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const server = multipartServer();
    server.storage = (req) => (partOf(req.url) === 3 ? { network: true }
      : { status: 200, headers: { ETag: `"etag-${partOf(req.url)}"` } });
    const file = makeFile(14);
    const done = upload(file, { profile: 'avatar' }).catch((e) => e);
    await vi.advanceTimersByTimeAsync(60000);
    const err = await done;
    expect(err).toMatchObject({ code: 'network_error', status: 0 });
    expect(putParts(server).filter((n) => n === 3)).toHaveLength(4);
    expect(server.calls('POST', /complete$/)).toHaveLength(0);
    expect(stored(file)).toMatchObject({ session_id: 'mp_1' }); // kept: choosing again resumes
  });

  it('does not retry a refusal (4xx)', async () => {
    const server = multipartServer();
    server.storage = (req) => (partOf(req.url) === 1
      ? { status: 403, text: '<Error><Code>AccessDenied</Code></Error>' }
      : { status: 200, headers: { ETag: '"x"' } });
    await expect(upload(makeFile(14), { profile: 'avatar' })).rejects.toMatchObject({
      code: 'storage_rejected', status: 403,
    });
    expect(putParts(server).filter((n) => n === 1)).toHaveLength(1);
  });

  it('fails with etag_unreadable when CORS hides the ETag header', async () => {
    const server = multipartServer();
    server.storage = () => ({ status: 200, headers: {} });
    const err = await upload(makeFile(14), { profile: 'avatar' }).catch((e) => e);
    expect(err.code).toBe('etag_unreadable');
    expect(err.message).toMatch(/CORS/);
    expect(err.message).toMatch(/ExposeHeaders/);
    expect(err.message).toMatch(/ETag/);
    expect(err.message).not.toContain('s3.example');
    // not retried: each part that was tried went once
    const tries = putParts(server);
    expect(new Set(tries).size).toBe(tries.length);
    expect(server.calls('POST', /complete$/)).toHaveLength(0);
  });

  it('resumes: uploads only the parts storage does not have', async () => {
    const server = multipartServer({
      listed: [
        { part_number: 1, etag: '"stored-1"', size: 4 },
        { part_number: 3, etag: '"stored-3"', size: 4 },
        { part_number: 4, etag: '"short-4"', size: 1 }, // wrong size: sent again
      ],
    });
    const file = makeFile(14); // parts: 4 + 4 + 4 + 2
    localStorage.setItem(resumeKey('avatar', file), JSON.stringify({
      session_id: 'mp_old', asset_id: 'ast_old', part_size: 4, part_count: 4, endpoint: '/rindle',
      saved_at: Date.now(),
    }));
    const progress = [];
    const result = await upload(file, { profile: 'avatar', onProgress: (p) => progress.push(p) });

    expect(server.calls('POST', /multipart$/)).toHaveLength(0);
    expect(server.calls('GET', /multipart\/mp_old\/parts$/)).toHaveLength(1);
    expect(server.calls('POST', /parts$/).map((r) => r.body.part_numbers)).toEqual([[2, 4]]);
    expect(putParts(server).sort()).toEqual([2, 4]);
    expect(server.calls('POST', /complete$/)[0].url).toBe('/rindle/multipart/mp_old/complete');
    expect(server.calls('POST', /complete$/)[0].body.parts).toEqual([
      { part_number: 1, etag: '"stored-1"' },
      { part_number: 2, etag: '"etag-2"' },
      { part_number: 3, etag: '"stored-3"' },
      { part_number: 4, etag: '"etag-4"' },
    ]);
    expect(progress[0]).toEqual({ loaded: 8, total: 14, percent: 57 });
    expect(result.sessionId).toBe('mp_old');
    expect(stored(file)).toBeNull();
  });

  it('resumes with nothing missing: completes straight away', async () => {
    const server = multipartServer({
      listed: [1, 2, 3].map((n) => ({ part_number: n, etag: `"s${n}"`, size: n < 3 ? 4 : 2 })),
    });
    const file = makeFile(10);
    localStorage.setItem(resumeKey('avatar', file), JSON.stringify({
      session_id: 'mp_old', asset_id: 'ast_old', part_size: 4, part_count: 3, endpoint: '/rindle',
      saved_at: Date.now(),
    }));
    await upload(file, { profile: 'avatar' });
    expect(server.xhrs()).toHaveLength(0);
    expect(server.calls('POST', /complete$/)).toHaveLength(1);
  });

  it('starts afresh when the stored session is gone', async () => {
    const server = multipartServer({ sessionId: 'mp_new' });
    server.on('GET', /^\/rindle\/multipart\/mp_old\/parts$/, () => ({
      status: 410,
      body: { error: { code: 'session_expired', message: 'upload session mp_old has expired' } },
    }));
    const file = makeFile(14);
    localStorage.setItem(resumeKey('avatar', file), JSON.stringify({
      session_id: 'mp_old', asset_id: 'ast_old', part_size: 4, part_count: 4, endpoint: '/rindle',
      saved_at: Date.now(),
    }));
    const result = await upload(file, { profile: 'avatar' });
    expect(server.log().filter((l) => !l.startsWith('PUT') && !l.includes('/parts'))).toEqual([
      'GET /rindle/profiles/avatar/upload-options',
      'POST /rindle/multipart',
      'POST /rindle/multipart/mp_new/complete',
    ]);
    expect(putParts(server).sort()).toEqual([1, 2, 3, 4]);
    expect(result.sessionId).toBe('mp_new');
  });

  it('cancel aborts the in-flight parts, DELETEs the session and forgets it', async () => {
    const server = multipartServer();
    server.storage = () => new Promise(() => {}); // storage never answers
    const file = makeFile(38);
    const controller = new AbortController();
    const done = upload(file, { profile: 'avatar', signal: controller.signal });
    await vi.waitFor(() => expect(server.inflight).toBe(4));
    expect(stored(file)).not.toBeNull();

    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'cancelled' });
    expect(server.aborted).toHaveLength(4);
    expect(server.inflight).toBe(0);
    expect(server.calls('DELETE', /multipart\/mp_1$/)).toHaveLength(1);
    expect(server.calls('POST', /complete$/)).toHaveLength(0);
    expect(putParts(server)).toHaveLength(4); // nothing new started after the cancel
    expect(stored(file)).toBeNull();
  });

  it('keeps the resume record when completion is refused', async () => {
    const server = multipartServer();
    server.on('POST', /complete$/, () => ({
      status: 422,
      body: { error: { code: 'invalid_parts', message: 'part 2 has not been uploaded yet' } },
    }));
    const file = makeFile(14);
    await expect(upload(file, { profile: 'avatar' })).rejects.toMatchObject({
      code: 'invalid_parts', status: 422,
    });
    expect(stored(file)).toMatchObject({ session_id: 'mp_1' });
  });
});
