import { beforeEach, describe, expect, it, vi } from 'vitest';
import { clearOptionsCache } from '../src/options.js';
import { upload } from '../src/upload.js';
import { FakeServer, assetJson, makeFile } from './fake-server.js';

const SIGNED = 'https://bucket.s3.example/media/abc?X-Amz-Signature=secret&X-Amz-Expires=900';

function presignedServer() {
  const server = new FakeServer().install();
  server.on('POST', /^\/rindle\/uploads$/, () => ({
    status: 201,
    body: {
      session_id: 'ses_1',
      asset_id: 'ast_1',
      upload: { method: 'PUT', url: SIGNED, headers: { 'Content-Type': 'image/png' },
        expires_at: '2026-11-27T18:00:00+00:00' },
    },
  }));
  server.on('POST', /^\/rindle\/uploads\/ses_1\/complete$/, () => ({
    body: { session_id: 'ses_1', asset: assetJson('ast_1') },
  }));
  return server;
}

describe('presigned PUT', () => {
  beforeEach(() => clearOptionsCache());

  it('creates, sends with exactly the ticket, completes', async () => {
    const server = presignedServer();
    const file = makeFile(10);
    const progress = [];
    const starts = [];
    const result = await upload(file, {
      profile: 'avatar',
      endpoint: '/rindle',
      onProgress: (p) => progress.push(p),
      onStart: (s) => starts.push(s),
    });
    expect(result).toEqual({ assetId: 'ast_1', sessionId: 'ses_1', asset: assetJson('ast_1') });
    expect(server.log()).toEqual([
      'GET /rindle/profiles/avatar/upload-options',
      'POST /rindle/uploads',
      'PUT https://bucket.s3.example/media/abc',
      'POST /rindle/uploads/ses_1/complete',
    ]);
    const [, create, put] = server.requests;
    expect(create.body).toEqual({ profile: 'avatar', filename: 'me.png', content_type: 'image/png',
      byte_size: 10 });
    expect(put.url).toBe(SIGNED);
    expect(put.headers).toEqual({ 'Content-Type': 'image/png' });
    expect(put.body).toBe(file);
    expect(starts).toEqual([{ file, strategy: 'presigned_put' }]);
    expect(progress.at(-1)).toEqual({ loaded: 10, total: 10, percent: 100 });
  });

  it('passes on the server error code', async () => {
    const server = presignedServer();
    server.on('POST', /^\/rindle\/uploads$/, () => ({
      status: 415,
      body: { error: { code: 'mime_not_allowed', message: 'image/png is not accepted' } },
    }));
    await expect(upload(makeFile(10), { profile: 'avatar' })).rejects.toMatchObject({
      name: 'RindleError', code: 'mime_not_allowed', status: 415,
      message: 'image/png is not accepted',
    });
  });

  it("reports storage's refusal without the signed URL", async () => {
    const server = presignedServer();
    server.storage = () => ({ status: 403,
      text: `<Error><Code>SignatureDoesNotMatch</Code><URL>${SIGNED}</URL></Error>` });
    const err = await upload(makeFile(10), { profile: 'avatar' }).catch((e) => e);
    expect(err.code).toBe('storage_rejected');
    expect(err.status).toBe(403);
    expect(err.message).not.toContain('X-Amz-Signature');
    expect(err.message).not.toContain('s3.example');
    expect(server.calls('POST', /complete$/)).toHaveLength(0);
  });

  it("uses Rindle's Local PUT error code", async () => {
    const server = presignedServer();
    server.storage = () => ({ status: 413,
      text: JSON.stringify({ error: { code: 'size_mismatch', message: 'the body is larger' } }) });
    await expect(upload(makeFile(10), { profile: 'avatar' })).rejects.toMatchObject({
      code: 'size_mismatch', status: 413,
    });
  });

  it('sends extra headers to Rindle but never to storage', async () => {
    const server = presignedServer();
    await upload(makeFile(10), { profile: 'avatar', headers: () => ({ 'X-CSRF-Token': 't0k' }) });
    const create = server.calls('POST', /uploads$/)[0];
    expect(create.headers['X-CSRF-Token']).toBe('t0k');
    expect(server.xhrs()[0].headers['X-CSRF-Token']).toBeUndefined();
  });

  it('cancel aborts the PUT and DELETEs the session', async () => {
    const server = presignedServer();
    server.on('DELETE', /^\/rindle\/uploads\/ses_1$/, () => ({
      body: { session_id: 'ses_1', state: 'aborted' },
    }));
    server.storage = () => new Promise(() => {}); // never answers
    const controller = new AbortController();
    const done = upload(makeFile(10), { profile: 'avatar', signal: controller.signal });
    await vi.waitFor(() => expect(server.inflight).toBe(1));
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'cancelled' });
    expect(server.aborted).toEqual([SIGNED]);
    expect(server.calls('DELETE', /\/uploads\/ses_1$/)).toHaveLength(1);
    expect(server.calls('POST', /complete$/)).toHaveLength(0);
  });

  it('asks again while the server says the upload is incomplete (a streaming provider)', async () => {
    const server = presignedServer();
    let asked = 0;
    server.on('POST', /^\/rindle\/uploads\/ses_1\/complete$/, () => {
      asked += 1;
      return asked < 3
        ? { status: 409, body: { error: { code: 'upload_incomplete', message: 'not yet' } } }
        : { body: { session_id: 'ses_1', asset: assetJson('ast_1') } };
    });
    const result = await upload(makeFile(10), { profile: 'avatar' });
    expect(result.assetId).toBe('ast_1');
    expect(asked).toBe(3);
  });

  it('gives up on an upload that stays incomplete', async () => {
    vi.useFakeTimers();
    try {
      const server = presignedServer();
      server.on('POST', /^\/rindle\/uploads\/ses_1\/complete$/, () => ({
        status: 409, body: { error: { code: 'upload_incomplete', message: 'not yet' } } }));
      const done = upload(makeFile(10), { profile: 'avatar' }).catch((e) => e);
      await vi.runAllTimersAsync();
      expect((await done).code).toBe('upload_incomplete');
      expect(server.calls('POST', /complete$/)).toHaveLength(6);
    } finally {
      vi.useRealTimers();
    }
  });
});
