import { beforeEach, describe, expect, it } from 'vitest';
import { checkFile, chooseStrategy, clearOptionsCache, getUploadOptions } from '../src/options.js';
import { upload } from '../src/upload.js';
import { FakeServer, OPTIONS, makeFile } from './fake-server.js';

const MiB = 1024 * 1024;

describe('chooseStrategy', () => {
  const opts = (strategies, threshold = 16 * MiB) => ({ ...OPTIONS, strategies,
    multipart_threshold: threshold });

  it('takes the first resumable flow the server lists, only over the threshold', () => {
    expect(chooseStrategy({ size: 16 * MiB + 1 }, opts(['multipart', 'tus', 'presigned_put'])))
      .toBe('multipart');
    expect(chooseStrategy({ size: 16 * MiB + 1 }, opts(['tus', 'multipart', 'presigned_put'])))
      .toBe('tus');
    expect(chooseStrategy({ size: 16 * MiB }, opts(['tus', 'multipart', 'presigned_put'])))
      .toBe('presigned_put');
  });

  it('prefers a presigned PUT for files under the threshold', () => {
    expect(chooseStrategy({ size: 10 }, opts(['multipart', 'presigned_put']))).toBe('presigned_put');
    expect(chooseStrategy({ size: 10 }, opts(['tus', 'presigned_put']))).toBe('presigned_put');
    expect(chooseStrategy({ size: 20 * MiB }, opts(['tus', 'presigned_put']))).toBe('tus');
    expect(chooseStrategy({ size: 20 * MiB }, opts(['presigned_put']))).toBe('presigned_put');
    expect(chooseStrategy({ size: 10 }, opts(['tus']))).toBe('tus');
  });

  it('falls back to multipart when it is all the storage offers', () => {
    expect(chooseStrategy({ size: 10 }, opts(['multipart']))).toBe('multipart');
  });

  it('uses GCS resumable sessions for large files and a presigned PUT for small ones', () => {
    const gcs = opts(['resumable', 'presigned_put']);
    expect(chooseStrategy({ size: 16 * MiB + 1 }, gcs)).toBe('resumable');
    expect(chooseStrategy({ size: 16 * MiB }, gcs)).toBe('presigned_put');
    expect(chooseStrategy({ size: 10 }, gcs)).toBe('presigned_put');
    expect(chooseStrategy({ size: 10 }, opts(['resumable']))).toBe('resumable');
  });

  it('treats resumable as one of the resumable flows, in the server\'s order', () => {
    expect(chooseStrategy({ size: 20 * MiB }, opts(['tus', 'resumable', 'presigned_put'])))
      .toBe('tus');
    expect(chooseStrategy({ size: 20 * MiB }, opts(['resumable', 'tus', 'presigned_put'])))
      .toBe('resumable');
    expect(chooseStrategy({ size: 10 }, opts(['resumable', 'tus']))).toBe('resumable');
  });

  it('refuses when nothing is offered', () => {
    expect(() => chooseStrategy({ size: 10 }, opts([]))).toThrow(
      expect.objectContaining({ code: 'no_upload_strategy' }),
    );
  });
});

describe('checkFile', () => {
  it('accepts an allowed file', () => {
    expect(checkFile({ name: 'me.png', size: 10, type: 'image/png' }, OPTIONS)).toBeNull();
  });

  it('refuses a file over max_bytes', () => {
    const err = checkFile({ name: 'me.png', size: OPTIONS.max_bytes + 1, type: 'image/png' }, OPTIONS);
    expect(err.code).toBe('max_bytes_exceeded');
  });

  it('refuses a type outside accept', () => {
    expect(checkFile({ name: 'me.gif', size: 10, type: 'image/gif' }, OPTIONS).code)
      .toBe('mime_not_allowed');
  });

  it('leaves an unknown type to the server, but checks the extension', () => {
    expect(checkFile({ name: 'me.PNG', size: 10, type: '' }, OPTIONS)).toBeNull();
    expect(checkFile({ name: 'me.exe', size: 10, type: '' }, OPTIONS).code)
      .toBe('extension_not_allowed');
  });

  it('refuses an empty file', () => {
    expect(checkFile({ name: 'me.png', size: 0, type: 'image/png' }, OPTIONS).code).toBe('empty_file');
  });
});

describe('getUploadOptions', () => {
  beforeEach(() => clearOptionsCache());

  it('asks once per endpoint and profile', async () => {
    const server = new FakeServer().install();
    const [a, b] = await Promise.all([
      getUploadOptions('/rindle', 'avatar'),
      getUploadOptions('/rindle/', 'avatar'.toString()),
    ]);
    await getUploadOptions('/rindle', 'avatar');
    expect(a.profile).toBe('avatar');
    expect(b.profile).toBe('avatar');
    const gets = server.calls('GET', /upload-options/);
    expect(gets.map((r) => r.url)).toEqual([
      '/rindle/profiles/avatar/upload-options',
      '/rindle/profiles/avatar/upload-options', // "/rindle/" is another cache key, same URL
    ]);
  });

  it('does not cache a failure', async () => {
    const server = new FakeServer().install();
    let fail = true;
    server.on('GET', /upload-options$/, () => (fail
      ? { status: 403, body: { error: { code: 'forbidden', message: 'upload is not allowed here' } } }
      : { body: OPTIONS }));
    await expect(getUploadOptions('/rindle', 'avatar')).rejects.toMatchObject({
      code: 'forbidden', status: 403, message: 'upload is not allowed here',
    });
    fail = false;
    await expect(getUploadOptions('/rindle', 'avatar')).resolves.toMatchObject({ profile: 'avatar' });
  });

  it('refuses client-side before anything is created', async () => {
    const server = new FakeServer().install();
    const big = makeFile(OPTIONS.max_bytes + 1);
    await expect(upload(big, { profile: 'avatar' })).rejects.toMatchObject({
      code: 'max_bytes_exceeded',
    });
    const gif = makeFile(10, 'a.gif', 'image/gif');
    await expect(upload(gif, { profile: 'avatar' })).rejects.toMatchObject({
      code: 'mime_not_allowed',
    });
    expect(server.log()).toEqual(['GET /rindle/profiles/avatar/upload-options']);
  });
});
