/**
 * Upload options of a profile (GET {endpoint}/profiles/{profile}/upload-options, cached per
 * endpoint + profile), the client-side pre-check of a file, and the choice of upload flow.
 */
import { RindleError } from './errors.js';
import { joinUrl, requestJson, untilAborted } from './http.js';

/**
 * @typedef {object} UploadOptions what the server says about a profile
 * @property {string} profile
 * @property {Strategy[]} strategies
 * @property {number} max_bytes
 * @property {string[]} accept allowed MIME types (full types, lower case)
 * @property {string[]} extensions allowed extensions (lower case, no dot)
 * @property {number} multipart_threshold files larger than this go multipart when offered
 * @property {{uploads?: string, multipart?: string, tus?: string, resumable?: string}} endpoints
 */

/**
 * @typedef {'multipart' | 'tus' | 'resumable' | 'presigned_put'} Strategy `resumable` is the
 *   store's own resumable session (GCS)
 */

/** @type {Strategy[]} the flows that can resume (chosen for files over the threshold) */
const RESUMABLE_FLOWS = ['tus', 'multipart', 'resumable'];

/** @type {Map<string, Promise<UploadOptions>>} */
const cache = new Map();

/**
 * The profile's upload options; one request per endpoint + profile per page (a failed request
 * is not cached).
 *
 * @param {string} endpoint where Rindle's router is mounted, e.g. "/rindle"
 * @param {string} profile
 * @param {{headers?: import('./http.js').HeadersOption, signal?: AbortSignal}} [init]
 * @returns {Promise<UploadOptions>}
 */
export function getUploadOptions(endpoint, profile, init = {}) {
  const key = `${endpoint}\n${profile}`;
  let pending = cache.get(key);
  if (!pending) {
    // Not tied to the caller's signal: another uploader may be waiting for the same answer.
    pending = requestJson('GET', joinUrl(endpoint, 'profiles', profile, 'upload-options'),
      { headers: init.headers });
    cache.set(key, pending);
    pending.catch(() => cache.delete(key));
  }
  return untilAborted(pending, init.signal);
}

/** Forget every cached upload-options answer (e.g. after the user signed in). */
export function clearOptionsCache() {
  cache.clear();
}

/**
 * @param {string} name
 * @returns {string} the lower-case extension without the dot ('' when none)
 */
export function extensionOf(name) {
  const base = String(name || '').split(/[\\/]/).pop() || '';
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
}

/**
 * Refuse what is obviously outside the profile's options. The server still decides: it sniffs
 * the bytes; this only spares the user a doomed upload.
 *
 * @param {{name: string, size: number, type?: string}} file
 * @param {UploadOptions} options
 * @returns {RindleError | null}
 */
export function checkFile(file, options) {
  if (file.size === 0) {
    return new RindleError('empty_file', 'The file is empty.');
  }
  if (typeof options.max_bytes === 'number' && file.size > options.max_bytes) {
    return new RindleError('max_bytes_exceeded', `The file is ${formatBytes(file.size)}; `
      + `at most ${formatBytes(options.max_bytes)} is accepted.`,
    { details: { max_bytes: options.max_bytes } });
  }
  const type = (file.type || '').split(';')[0].trim().toLowerCase();
  const accept = (options.accept || []).map((t) => t.toLowerCase());
  if (type && accept.length && !accept.includes(type)) {
    return new RindleError('mime_not_allowed', `${type} files are not accepted here; allowed: `
      + `${accept.join(', ')}.`);
  }
  const ext = extensionOf(file.name);
  const extensions = (options.extensions || []).map((e) => e.toLowerCase().replace(/^\./, ''));
  if (ext && extensions.length && !extensions.includes(ext)) {
    return new RindleError('extension_not_allowed', `.${ext} files are not accepted here.`);
  }
  return null;
}

/**
 * The flow for this file. Over the threshold: the first resumable flow (tus, multipart or GCS's
 * resumable sessions) in the order the server lists them; at or under it: a presigned PUT when
 * offered. Otherwise whatever the storage can do, in the server's order.
 *
 * @param {{size: number}} file
 * @param {UploadOptions} options
 * @returns {Strategy}
 */
export function chooseStrategy(file, options) {
  const offered = options.strategies || [];
  const threshold = typeof options.multipart_threshold === 'number'
    ? options.multipart_threshold : 16 * 1024 * 1024;
  const resumable = offered.filter((s) => RESUMABLE_FLOWS.includes(s));
  if (file.size > threshold && resumable.length) return resumable[0];
  if (offered.includes('presigned_put')) return 'presigned_put';
  if (resumable.length) return resumable[0];
  throw new RindleError('no_upload_strategy', `Profile ${options.profile || ''} offers no upload `
    + 'flow this browser uploader knows.');
}

/**
 * @param {number} n
 * @returns {string}
 */
export function formatBytes(n) {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let i = 0;
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000;
    i += 1;
  }
  return i === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}
