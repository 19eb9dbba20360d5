/**
 * The tus flow, through tus-js-client (bundled). Resume after a reload uses tus-js-client's
 * fingerprint + localStorage URL storage. The asset id comes from the `Rindle-Asset-Id`
 * response header of the final PATCH, else from a HEAD of the upload URL (see js/README.md).
 */
import * as tusClient from 'tus-js-client';
import { RindleError, cancelledError } from './errors.js';
import { errorFromBody, joinUrl, resolveHeaders } from './http.js';

/**
 * @typedef {object} TusSettings
 * @property {number} chunkSize bytes per PATCH
 * @property {number[]} retryDelays ms between tus-js-client's retries of a failed request
 */

/** @type {TusSettings} */
export const TUS_DEFAULTS = Object.freeze({
  chunkSize: 8 * 1024 * 1024,
  // 39 s in all: longer than the server's 30 s PATCH lease, so an upload whose server
  // died mid-PATCH (423 until that lease lapses) resumes instead of failing.
  retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
});

export const ASSET_ID_HEADER = 'Rindle-Asset-Id';
export const SESSION_ID_HEADER = 'Rindle-Session-Id';

/**
 * @param {string} url
 * @returns {string} `url` made absolute against the page (tus-js-client resolves Location
 *   headers against its endpoint)
 */
function absolute(url) {
  try {
    return new URL(url, globalThis.location ? globalThis.location.href : undefined).href;
  } catch {
    return url;
  }
}

/** @returns {boolean} whether the browser says it has no network */
function offline() {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

/**
 * Call `fn` once the browser is back online (or at once, where there is no window).
 * @param {() => void} fn
 * @param {AbortSignal} signal
 */
function whenOnline(fn, signal) {
  const target = globalThis.window || globalThis;
  if (typeof target.addEventListener !== 'function') {
    fn();
    return;
  }
  const onOnline = () => {
    signal.removeEventListener('abort', stop);
    fn();
  };
  const stop = () => target.removeEventListener('online', onOnline);
  target.addEventListener('online', onOnline, { once: true });
  signal.addEventListener('abort', stop, { once: true });
}

/**
 * @param {import('./presigned.js').FlowContext & {tus?: Partial<TusSettings>}} ctx
 * @param {{Upload: any}} [lib] tus-js-client (a stand-in in tests)
 * @returns {Promise<import('./presigned.js').UploadResult>}
 */
export function tusUpload(ctx, lib = tusClient) {
  const { file, profile, signal } = ctx;
  const cfg = { ...TUS_DEFAULTS, ...(ctx.tus || {}) };
  const endpoint = absolute((ctx.options.endpoints && ctx.options.endpoints.tus)
    || `${joinUrl(ctx.endpoint, 'tus', profile)}/`);
  const headers = resolveHeaders(ctx.headers);
  /** @type {string | null} */
  let assetId = null;
  /** @type {string | null} */
  let sessionId = null;
  /** @param {{getHeader(name: string): string | undefined | null} | null | undefined} res */
  const capture = (res) => {
    if (!res || typeof res.getHeader !== 'function') return;
    const asset = res.getHeader(ASSET_ID_HEADER);
    if (asset) assetId = asset;
    const session = res.getHeader(SESSION_ID_HEADER);
    if (session) sessionId = session;
  };

  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(cancelledError());
      return;
    }
    let settled = false;
    /** @param {() => void} fn */
    const settle = (fn) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      fn();
    };
    const upload = new lib.Upload(file, {
      endpoint,
      metadata: { filename: file.name, filetype: file.type || '', profile },
      headers,
      chunkSize: cfg.chunkSize,
      retryDelays: cfg.retryDelays,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: (/** @type {number} */ sent) => ctx.progress(Math.min(sent, file.size)),
      onAfterResponse: (/** @type {any} */ _req, /** @type {any} */ res) => capture(res),
      onSuccess: (/** @type {{lastResponse?: any} | undefined} */ payload) => {
        if (!assetId && payload) capture(payload.lastResponse);
        ctx.progress(file.size);
        const found = assetId
          ? Promise.resolve(assetId)
          : headAssetId(upload.url, headers);
        found.then(
          (id) => settle(() => resolve({ assetId: id, sessionId, asset: null })),
          (err) => settle(() => reject(err)),
        );
      },
      onError: (/** @type {any} */ err) => {
        // tus-js-client never retries while the browser is offline: it gives up at once.
        // A dropped connection is what tus is for, so wait for the network and resume
        // (start() again asks the server how far it got, then sends the rest).
        if (!settled && !signal.aborted && err && err.originalRequest && !err.originalResponse
            && offline()) {
          whenOnline(() => { if (!settled && !signal.aborted) upload.start(); }, signal);
          return;
        }
        settle(() => reject(tusError(err)));
      },
    });
    const onAbort = () => {
      // Terminate (DELETE) the tus upload and forget its fingerprint, in the background.
      Promise.resolve()
        .then(() => upload.abort(true))
        .catch(() => {});
      settle(() => reject(cancelledError()));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve()
      .then(() => upload.findPreviousUploads())
      .then((previous) => {
        if (previous && previous.length) upload.resumeFromPreviousUpload(previous[0]);
      })
      .catch(() => {})
      .then(() => {
        if (!settled) upload.start();
      });
  });
}

/**
 * The asset id from a HEAD of the finished upload (tus servers answer HEAD with Upload-Offset;
 * Rindle's adds `Rindle-Asset-Id` once the upload is complete).
 * @param {string | null} url
 * @param {Record<string, string>} headers
 * @returns {Promise<string>}
 */
async function headAssetId(url, headers) {
  const missing = new RindleError('asset_id_missing', 'The upload finished but the server did '
    + `not say which asset it became (no ${ASSET_ID_HEADER} header).`);
  if (!url) throw missing;
  let res;
  try {
    res = await globalThis.fetch(url, {
      method: 'HEAD',
      headers: { ...headers, 'Tus-Resumable': '1.0.0' },
      credentials: 'same-origin',
    });
  } catch {
    throw new RindleError('network_error', 'Could not reach the server to finish the upload.',
      { status: 0, retryable: true });
  }
  const id = res.ok ? res.headers.get(ASSET_ID_HEADER) : null;
  if (!id) throw missing;
  return id;
}

/**
 * A tus-js-client error as a RindleError. Its own message names the upload URL, so it is never
 * passed on; the server's JSON error code is, when the response carried one.
 * @param {any} err
 * @returns {RindleError}
 */
export function tusError(err) {
  const res = err && err.originalResponse;
  if (res && typeof res.getStatus === 'function') {
    const status = res.getStatus();
    let data;
    try {
      data = JSON.parse(res.getBody() || '');
    } catch {
      data = undefined;
    }
    const e = errorFromBody(data, status, 'tus_error');
    if (e.code === 'tus_error') e.message = `The tus server refused the upload (HTTP ${status}).`;
    return e;
  }
  if (err && err.originalRequest) {
    return new RindleError('network_error', 'The upload was interrupted by a network error.',
      { status: 0, retryable: true });
  }
  return new RindleError('tus_error', 'The tus client could not upload the file.');
}
