import { describe, expect, it } from 'vitest';
import { install } from '../src/browser.js';
import { getUploader } from '../src/uploader.js';

const MARKUP = `<div class="rindle-uploader" data-rindle-uploader data-profile="avatar" data-endpoint="/rindle" data-name="avatar_asset_id">
  <input type="file" accept="image/png,image/jpeg" data-rindle-file>
  <progress max="100" value="0" data-rindle-progress hidden></progress>
  <span data-rindle-status aria-live="polite"></span>
  <button type="button" data-rindle-cancel hidden>Cancel</button>
  <input type="hidden" name="avatar_asset_id" data-rindle-asset-id>
</div>`;

describe('window.Rindle', () => {
  it('is installed once with the public API', () => {
    const { Rindle } = window;
    expect(install(window)).toBe(Rindle);
    for (const name of ['init', 'upload', 'getUploader', 'Uploader', 'RindleError',
      'chooseStrategy', 'checkFile', 'getUploadOptions', 'clearOptionsCache', 'defaults',
      'version']) {
      expect(Rindle[name], name).toBeDefined();
    }
  });

  it('wires uploaders that htmx swaps in (htmx:load)', () => {
    const box = document.createElement('div');
    box.innerHTML = MARKUP;
    document.body.append(box);
    const el = box.querySelector('[data-rindle-uploader]');
    expect(getUploader(el)).toBeUndefined();
    // htmx fires htmx:load on the new content, bubbling
    box.dispatchEvent(new CustomEvent('htmx:load', { bubbles: true, detail: { elt: box } }));
    expect(getUploader(el)).toBeDefined();
    expect(el.dataset.rindleState).toBe('idle');
  });
});
