import { beforeEach, describe, expect, it, vi } from 'vitest';
import { clearOptionsCache } from '../src/options.js';
import { upload } from '../src/upload.js';
import { FakeServer, makeFile } from './fake-server.js';

// tus-js-client replaced by a stand-in that plays scripted server responses.
const tus = vi.hoisted(() => {
  const state = { instances: [], previous: [], script: null };
  class Upload {
    constructor(file, options) {
      this.file = file;
      this.options = options;
      this.url = null;
      state.instances.push(this);
    }

    findPreviousUploads() {
      return Promise.resolve(state.previous);
    }

    resumeFromPreviousUpload(previous) {
      this.resumedFrom = previous;
      this.url = previous.uploadUrl;
    }

    start() {
      this.started = true;
      state.script?.(this);
    }

    abort(terminate) {
      this.terminated = terminate;
      return Promise.resolve();
    }
  }
  return { state, Upload };
});
vi.mock('tus-js-client', () => ({ Upload: tus.Upload }));

const response = (status, headers = {}, body = '') => ({
  getStatus: () => status,
  getHeader: (name) => headers[name],
  getBody: () => body,
});

function tusServer() {
  return new FakeServer({ options: { strategies: ['tus'] } }).install();
}

describe('tus', () => {
  beforeEach(() => {
    clearOptionsCache();
    tus.state.instances = [];
    tus.state.previous = [];
    tus.state.script = null;
  });

  it('uploads with tus-js-client and takes the asset id from the final PATCH', async () => {
    tusServer();
    tus.state.script = (up) => {
      up.url = 'https://app.example/rindle/tus/avatar/t1';
      up.options.onAfterResponse({}, response(201, { Location: up.url }));
      up.options.onProgress(5, 10);
      up.options.onAfterResponse({}, response(204, { 'Rindle-Asset-Id': 'ast_tus',
        'Rindle-Session-Id': 'ses_tus' }));
      up.options.onProgress(10, 10);
      up.options.onSuccess({ lastResponse: response(204) });
    };
    const file = makeFile(10);
    const progress = [];
    const result = await upload(file, { profile: 'avatar', onProgress: (p) => progress.push(p) });
    expect(result).toEqual({ assetId: 'ast_tus', sessionId: 'ses_tus', asset: null });
    const [up] = tus.state.instances;
    expect(up.file).toBe(file);
    expect(up.options).toMatchObject({
      endpoint: 'https://app.example/rindle/tus/avatar/',
      metadata: { filename: 'me.png', filetype: 'image/png', profile: 'avatar' },
      chunkSize: 8 * 1024 * 1024,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
    });
    expect(up.options.retryDelays.length).toBeGreaterThan(0);
    expect(progress.map((p) => p.percent)).toEqual([50, 100]);
  });

  it('resumes a previous upload of the same file', async () => {
    tusServer();
    tus.state.previous = [{ uploadUrl: 'https://app.example/rindle/tus/avatar/old' }];
    tus.state.script = (up) => {
      up.options.onAfterResponse({}, response(204, { 'Rindle-Asset-Id': 'ast_old' }));
      up.options.onSuccess({ lastResponse: response(204) });
    };
    const result = await upload(makeFile(10), { profile: 'avatar' });
    expect(tus.state.instances[0].resumedFrom).toEqual(tus.state.previous[0]);
    expect(result.assetId).toBe('ast_old');
  });

  it('falls back to a HEAD of the upload URL for the asset id', async () => {
    const server = tusServer();
    server.on('HEAD', /\/rindle\/tus\/avatar\/t2$/, () => ({
      status: 200, headers: { 'Rindle-Asset-Id': 'ast_head', 'Upload-Offset': '10' },
    }));
    tus.state.script = (up) => {
      up.url = 'https://app.example/rindle/tus/avatar/t2';
      up.options.onSuccess({ lastResponse: response(204) });
    };
    const result = await upload(makeFile(10), { profile: 'avatar' });
    expect(result.assetId).toBe('ast_head');
    const head = server.calls('HEAD', /t2$/)[0];
    expect(head.headers['Tus-Resumable']).toBe('1.0.0');
  });

  it('fails clearly when no asset id can be found', async () => {
    tusServer();
    tus.state.script = (up) => {
      up.url = 'https://app.example/rindle/tus/avatar/t3';
      up.options.onSuccess({ lastResponse: response(204) });
    };
    await expect(upload(makeFile(10), { profile: 'avatar' })).rejects.toMatchObject({
      code: 'asset_id_missing',
    });
  });

  it("passes on the server's error code but never tus-js-client's message (it names the URL)",
    async () => {
      tusServer();
      tus.state.script = (up) => {
        const err = new Error('tus: unexpected response, url: https://app.example/rindle/tus/avatar/secret');
        err.originalRequest = {};
        err.originalResponse = response(413, {}, JSON.stringify({
          error: { code: 'max_bytes_exceeded', message: 'the file is too large' } }));
        up.options.onError(err);
      };
      const err = await upload(makeFile(10), { profile: 'avatar' }).catch((e) => e);
      expect(err).toMatchObject({ code: 'max_bytes_exceeded', status: 413,
        message: 'the file is too large' });
    });

  it('waits while the browser is offline, then resumes the same upload', async () => {
    tusServer();
    let online = true;
    const onLine = vi.spyOn(globalThis.navigator, 'onLine', 'get').mockImplementation(() => online);
    let starts = 0;
    tus.state.script = (up) => {
      starts += 1;
      if (starts === 1) {
        up.url = 'https://app.example/rindle/tus/avatar/t9';
        up.options.onProgress(4, 10);
        online = false;
        const err = new Error('tus: failed to upload chunk');
        err.originalRequest = {};
        up.options.onError(err);  // the network dropped: no response at all
        return;
      }
      up.options.onAfterResponse({}, response(204, { 'Rindle-Asset-Id': 'ast_back' }));
      up.options.onSuccess({ lastResponse: response(204) });
    };
    const progress = [];
    const done = upload(makeFile(10), { profile: 'avatar', onProgress: (p) => progress.push(p) });
    await vi.waitFor(() => expect(starts).toBe(1));
    await new Promise((r) => setTimeout(r, 20));
    expect(starts).toBe(1);  // nothing is tried while offline
    online = true;
    window.dispatchEvent(new Event('online'));
    await expect(done).resolves.toMatchObject({ assetId: 'ast_back' });
    expect(starts).toBe(2);
    expect(tus.state.instances).toHaveLength(1);  // the same upload, not a new one
    onLine.mockRestore();
  });

  it('a network error while online fails as before', async () => {
    tusServer();
    tus.state.script = (up) => {
      const err = new Error('tus: failed');
      err.originalRequest = {};
      up.options.onError(err);
    };
    await expect(upload(makeFile(10), { profile: 'avatar' })).rejects.toMatchObject(
      { code: 'network_error' });
  });

  it('cancel terminates the tus upload', async () => {
    tusServer();
    const controller = new AbortController();
    const done = upload(makeFile(10), { profile: 'avatar', signal: controller.signal });
    await vi.waitFor(() => expect(tus.state.instances[0]?.started).toBe(true));
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'cancelled' });
    await vi.waitFor(() => expect(tus.state.instances[0].terminated).toBe(true));
  });
});
