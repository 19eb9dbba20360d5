/**
 * The DOM layer: wires each `[data-rindle-uploader]` element (the Jinja `uploader` macro's
 * markup) to `upload()`, keeps its progress bar, status text, cancel button, hidden asset-id
 * input and `data-rindle-state` in step, and dispatches `rindle:*` events on it.
 */
import { toRindleError } from './errors.js';
import { defaults, upload } from './upload.js';

/** @typedef {'idle' | 'uploading' | 'complete' | 'error'} UploaderState */

/** @type {WeakMap<Element, Uploader>} */
const wired = new WeakMap();

export const SELECTOR = '[data-rindle-uploader]';

/**
 * @param {Element} el
 * @param {string} name
 * @param {Record<string, unknown>} detail
 * @returns {boolean}
 */
function emit(el, name, detail) {
  return el.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, composed: true }));
}

/**
 * @param {HTMLElement | null} el
 * @param {boolean} hidden
 */
function setHidden(el, hidden) {
  if (el) el.hidden = hidden;
}

export class Uploader {
  /** @param {HTMLElement} root an element carrying `data-rindle-uploader` */
  constructor(root) {
    this.root = root;
    /** @type {HTMLInputElement | null} */
    this.fileInput = root.querySelector('[data-rindle-file]');
    /** @type {HTMLProgressElement | null} */
    this.progressEl = root.querySelector('[data-rindle-progress]');
    /** @type {HTMLElement | null} */
    this.statusEl = root.querySelector('[data-rindle-status]');
    /** @type {HTMLButtonElement | null} */
    this.cancelButton = root.querySelector('[data-rindle-cancel]');
    /** @type {HTMLInputElement | null} */
    this.assetInput = root.querySelector('[data-rindle-asset-id]');
    /** @type {AbortController | null} */
    this.controller = null;
    /** @type {File | null} */
    this.file = null;
    /** @type {number} bumped on every start and cancel; stale runs stay silent */
    this.run = 0;

    this.fileInput?.addEventListener('change', () => {
      const file = this.fileInput?.files?.[0];
      if (file) this.start(file);
    });
    this.cancelButton?.addEventListener('click', (event) => {
      event.preventDefault();
      this.cancel();
    });
    if (!root.dataset.rindleState) root.dataset.rindleState = 'idle';
  }

  /** @returns {UploaderState} */
  get state() {
    return /** @type {UploaderState} */ (this.root.dataset.rindleState || 'idle');
  }

  /** @returns {boolean} */
  get uploading() {
    return this.controller !== null;
  }

  /**
   * Upload `file` (what choosing a file does). A running upload is cancelled first.
   * Never rejects: the outcome is in the events and the markup.
   *
   * @param {File} file
   * @returns {Promise<import('./presigned.js').UploadResult | null>} null unless it completed
   */
  async start(file) {
    if (this.controller) this.cancel();
    this.run += 1;
    const run = this.run;
    const controller = new AbortController();
    this.controller = controller;
    this.file = file;
    const { root } = this;
    this.setState('uploading');
    this.setProgress(0, true);
    setHidden(this.cancelButton, false);
    this.setStatus(`Preparing ${file.name}…`);
    try {
      const result = await upload(file, {
        profile: root.dataset.profile || '',
        endpoint: root.dataset.endpoint || defaults.endpoint,
        signal: controller.signal,
        onStart: ({ strategy }) => {
          if (run !== this.run) return;
          this.setStatus(`Uploading ${file.name}…`);
          emit(root, 'rindle:start', { file, strategy });
        },
        onProgress: (progress) => {
          if (run !== this.run) return;
          this.setProgress(progress.percent, true);
          emit(root, 'rindle:progress', { ...progress });
        },
      });
      if (run !== this.run) return null;
      this.controller = null;
      if (this.assetInput) {
        this.assetInput.value = result.assetId;
        this.assetInput.dispatchEvent(new Event('change', { bubbles: true }));
      }
      this.setProgress(100, false);
      setHidden(this.cancelButton, true);
      this.setStatus(`Uploaded ${file.name}.`);
      this.setState('complete');
      emit(root, 'rindle:complete', {
        assetId: result.assetId,
        sessionId: result.sessionId,
        asset: result.asset,
      });
      return result;
    } catch (err) {
      if (run !== this.run) return null;
      this.controller = null;
      const error = toRindleError(err);
      this.setProgress(0, false);
      setHidden(this.cancelButton, true);
      this.setStatus(error.message);
      this.setState('error');
      this.clearFileInput();
      emit(root, 'rindle:error', { code: error.code, message: error.message });
      return null;
    }
  }

  /**
   * Cancel the running upload: in-flight requests are aborted; a multipart session is DELETEd
   * and its resume record forgotten; a tus upload is terminated.
   * @returns {boolean} whether there was an upload to cancel
   */
  cancel() {
    const { controller } = this;
    if (!controller) return false;
    this.controller = null;
    this.run += 1;
    controller.abort();
    this.setProgress(0, false);
    setHidden(this.cancelButton, true);
    this.setStatus('Upload cancelled.');
    this.setState('idle');
    this.clearFileInput();
    emit(this.root, 'rindle:cancel', { file: this.file });
    return true;
  }

  /** @param {UploaderState} state */
  setState(state) {
    this.root.dataset.rindleState = state;
  }

  /** @param {string} text */
  setStatus(text) {
    if (this.statusEl) this.statusEl.textContent = text;
  }

  /**
   * @param {number} percent
   * @param {boolean} visible
   */
  setProgress(percent, visible) {
    const el = this.progressEl;
    if (!el) return;
    el.value = percent;
    el.hidden = !visible;
  }

  /** Let choosing the same file again fire `change` (and so resume a multipart upload). */
  clearFileInput() {
    if (!this.fileInput) return;
    try {
      this.fileInput.value = '';
    } catch {
      // some environments refuse; harmless
    }
  }
}

/**
 * Wire every `[data-rindle-uploader]` in `root` (and `root` itself) not wired yet. Safe to call
 * again: already wired elements are left alone.
 *
 * @param {ParentNode | Element | null} [root]
 * @returns {Uploader[]} the uploaders wired by this call
 */
export function init(root = globalThis.document) {
  if (!root) return [];
  /** @type {HTMLElement[]} */
  const found = [];
  if (root instanceof Element && root.matches(SELECTOR)) found.push(/** @type {HTMLElement} */ (root));
  if (typeof root.querySelectorAll === 'function') {
    root.querySelectorAll(SELECTOR).forEach((el) => found.push(/** @type {HTMLElement} */ (el)));
  }
  /** @type {Uploader[]} */
  const created = [];
  for (const el of found) {
    if (wired.has(el)) continue;
    const uploader = new Uploader(el);
    wired.set(el, uploader);
    created.push(uploader);
  }
  return created;
}

/**
 * @param {Element} el an uploader root
 * @returns {Uploader | undefined} its Uploader, once `init` wired it
 */
export function getUploader(el) {
  return wired.get(el);
}
