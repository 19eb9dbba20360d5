// The built rindle/static/rindle.js, loaded like a <script>, defines window.Rindle and uploads.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeServer, assetJson, makeFile } from './fake-server.js';

const STATIC = join(import.meta.dirname, '..', '..', 'rindle', 'static');

describe('rindle/static/rindle.js', () => {
  beforeAll(() => {
    document.body.innerHTML = `<div class="rindle-uploader" data-rindle-uploader data-profile="avatar" data-endpoint="/rindle" data-name="avatar_asset_id">
  <input type="file" accept="image/png,image/jpeg" data-rindle-file>
  <progress max="100" value="0" data-rindle-progress hidden></progress>
  <span data-rindle-status aria-live="polite"></span>
  <button type="button" data-rindle-cancel hidden>Cancel</button>
  <input type="hidden" name="avatar_asset_id" data-rindle-asset-id>
</div>`;
    (0, eval)(readFileSync(join(STATIC, 'rindle.js'), 'utf8'));
  });

  it('defines window.Rindle and wires the page', () => {
    expect(typeof window.Rindle.upload).toBe('function');
    expect(typeof window.Rindle.init).toBe('function');
    const root = document.querySelector('[data-rindle-uploader]');
    expect(window.Rindle.getUploader(root)).toBeDefined();
    expect(root.dataset.rindleState).toBe('idle');
    expect(window.Rindle.init()).toEqual([]);
  });

  it('uploads through the bundle', async () => {
    const server = new FakeServer().install();
    server.on('POST', /^\/rindle\/uploads$/, () => ({ status: 201, body: { session_id: 's1',
      asset_id: 'a1', upload: { method: 'PUT', url: '/rindle/local/tok', headers: {
        'Content-Type': 'image/png' } } } }));
    server.on('POST', /^\/rindle\/uploads\/s1\/complete$/, () => ({ body: { session_id: 's1',
      asset: assetJson('a1') } }));
    const root = document.querySelector('[data-rindle-uploader]');
    const complete = new Promise((resolve) => root.addEventListener('rindle:complete', resolve));
    const input = root.querySelector('[data-rindle-file]');
    Object.defineProperty(input, 'files', { value: [makeFile(10)], configurable: true });
    input.dispatchEvent(new Event('change', { bubbles: true }));
    const event = await complete;
    expect(event.detail.assetId).toBe('a1');
    expect(root.querySelector('[data-rindle-asset-id]').value).toBe('a1');
    expect(server.log()).toEqual(['GET /rindle/profiles/avatar/upload-options',
      'POST /rindle/uploads', 'PUT /rindle/local/tok', 'POST /rindle/uploads/s1/complete']);
  });
});
