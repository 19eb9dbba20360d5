/**
 * The two network boundaries: `requestJson` (fetch, Rindle's own JSON endpoints) and `sendXhr`
 * (XMLHttpRequest, bytes to storage, for upload progress). Plus `sleep` and `joinUrl`.
 */
import { RindleError, cancelledError } from './errors.js';

/**
 * @typedef {Record<string, string>} Headers
 * @typedef {Headers | (() => Headers) | undefined} HeadersOption extra headers for Rindle's
 *   JSON endpoints (e.g. a CSRF token); a function is called before every request
 */

/**
 * `base` + path segments, each segment URL-encoded: joinUrl("/rindle/", "multipart", id, "parts").
 * @param {string} base
 * @param {...(string | number)} segments
 * @returns {string}
 */
export function joinUrl(base, ...segments) {
  const root = String(base).replace(/\/+$/, '');
  return [root, ...segments.map((s) => encodeURIComponent(String(s)))].join('/');
}

/**
 * @param {HeadersOption} headers
 * @returns {Headers}
 */
export function resolveHeaders(headers) {
  const value = typeof headers === 'function' ? headers() : headers;
  return { ...(value || {}) };
}

/**
 * Call one of Rindle's JSON endpoints. A non-2xx answer rejects with a RindleError carrying the
 * server's `{"error": {"code", "message"}}` when there is one.
 *
 * @param {string} method
 * @param {string} url
 * @param {{body?: unknown, headers?: HeadersOption, signal?: AbortSignal}} [init]
 * @returns {Promise<any>} the parsed JSON body (null when empty)
 */
export async function requestJson(method, url, init = {}) {
  /** @type {Headers} */
  const headers = { Accept: 'application/json', ...resolveHeaders(init.headers) };
  /** @type {RequestInit} */
  const req = { method, headers, credentials: 'same-origin', signal: init.signal };
  if (init.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    req.body = JSON.stringify(init.body);
  }
  if (init.signal?.aborted) throw cancelledError();
  let res;
  try {
    res = await globalThis.fetch(url, req);
  } catch (err) {
    if (init.signal?.aborted) throw cancelledError();
    throw new RindleError('network_error', 'Could not reach the server; check the connection '
      + 'and try again.', { status: 0, retryable: true });
  }
  let text = '';
  try {
    text = await res.text();
  } catch (err) {
    if (init.signal?.aborted) throw cancelledError();
    throw new RindleError('network_error', 'The connection dropped while reading the answer.',
      { status: 0, retryable: true });
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!res.ok) throw errorFromBody(data, res.status);
  if (data === undefined) {
    throw new RindleError('invalid_response', `The server answered ${method} with something `
      + 'other than JSON.', { status: res.status });
  }
  return data;
}

/**
 * @param {any} data a parsed body, maybe `{"error": {"code", "message"}}`
 * @param {number} status
 * @param {string} [fallbackCode]
 * @returns {RindleError}
 */
export function errorFromBody(data, status, fallbackCode = 'server_error') {
  const error = data && typeof data === 'object' ? data.error : undefined;
  const retryable = status === 0 || status === 408 || status === 429 || status >= 500;
  if (error && typeof error.code === 'string') {
    const message = typeof error.message === 'string' ? error.message : error.code;
    return new RindleError(error.code, message, { status, retryable, details: error.details });
  }
  return new RindleError(fallbackCode, `The server answered with HTTP ${status}.`,
    { status, retryable });
}

/** Headers a browser refuses to let script set; the ticket may still name them. */
const FORBIDDEN = new Set(['content-length', 'host', 'connection', 'accept-encoding',
  'cookie', 'origin', 'referer', 'expect', 'transfer-encoding']);

/**
 * @typedef {object} XhrResult
 * @property {number} status
 * @property {(name: string) => string | null} header a response header (null when unreadable)
 * @property {string} text
 */

/**
 * Send a body with XMLHttpRequest (for upload progress). Resolves on any HTTP status; rejects
 * with `network_error` (retryable) or `cancelled`. The URL never appears in an error.
 *
 * @param {{method: string, url: string, headers?: Headers, body: Blob,
 *          onProgress?: (loaded: number, total: number) => void, signal?: AbortSignal}} req
 * @returns {Promise<XhrResult>}
 */
export function sendXhr(req) {
  return new Promise((resolve, reject) => {
    const { signal } = req;
    if (signal?.aborted) {
      reject(cancelledError());
      return;
    }
    const xhr = new globalThis.XMLHttpRequest();
    const onAbort = () => xhr.abort();
    const done = () => signal?.removeEventListener('abort', onAbort);
    xhr.open(req.method || 'PUT', req.url, true);
    for (const [name, value] of Object.entries(req.headers || {})) {
      if (!FORBIDDEN.has(name.toLowerCase())) xhr.setRequestHeader(name, String(value));
    }
    if (req.onProgress && xhr.upload) {
      const onProgress = req.onProgress;
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    }
    xhr.onload = () => {
      done();
      resolve({
        status: xhr.status,
        header: (name) => xhr.getResponseHeader(name),
        text: typeof xhr.responseText === 'string' ? xhr.responseText : '',
      });
    };
    xhr.onerror = () => {
      done();
      reject(new RindleError('network_error', 'The upload was interrupted (network error, or '
        + 'storage refused the request because of its CORS rules).',
      { status: 0, retryable: true }));
    };
    xhr.ontimeout = () => {
      done();
      reject(new RindleError('network_error', 'The upload timed out.', { status: 0, retryable: true }));
    };
    xhr.onabort = () => {
      done();
      reject(cancelledError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    xhr.send(req.body);
  });
}

/**
 * A storage answer that is not 2xx, as a RindleError. Rindle's own Local PUT answers JSON with
 * a code; S3 answers XML, which is not shown (it may echo the request).
 * @param {XhrResult} res
 * @returns {RindleError}
 */
export function storageError(res) {
  let data;
  try {
    data = JSON.parse(res.text);
  } catch {
    data = undefined;
  }
  const err = errorFromBody(data, res.status, 'storage_rejected');
  if (err.code === 'storage_rejected') {
    err.message = `Storage refused the upload (HTTP ${res.status}).`;
  }
  return err;
}

/**
 * Wait `ms` milliseconds; rejects with `cancelled` as soon as `signal` aborts.
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(cancelledError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelledError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `promise`, but rejecting with `cancelled` as soon as `signal` aborts (the work goes on).
 * @template T
 * @param {Promise<T>} promise
 * @param {AbortSignal} [signal]
 * @returns {Promise<T>}
 */
export function untilAborted(promise, signal) {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(cancelledError());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(cancelledError());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}

/**
 * DELETE an upload session the client gives up on (a cancel), best effort: an unreachable
 * server expires the session later, and a storage lifecycle rule removes what it left.
 * @param {string} sessionUrl
 * @param {HeadersOption} headers
 */
export async function abandonSession(sessionUrl, headers) {
  const signal = typeof AbortSignal !== 'undefined' && typeof AbortSignal.timeout === 'function'
    ? AbortSignal.timeout(10000) : undefined;
  try {
    await requestJson('DELETE', sessionUrl, { headers, signal });
  } catch {
    // Best effort (see above).
  }
}
