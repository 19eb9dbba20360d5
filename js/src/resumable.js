/**
 * The native resumable flow (GCS resumable sessions): POST {endpoint}/resumable for the
 * store's session URI, PUT the file straight to it in chunks of a multiple of 256 KiB with
 * `Content-Range`, and after a failure ask Rindle (GET {endpoint}/resumable/{id}) how far it
 * got before going on. Rindle's GET verifies the upload once the store holds every byte.
 * Cancel aborts the chunk and DELETEs the session. Resumes after a reload of the same tab from
 * a sessionStorage record (see `remember` below for why there and not localStorage).
 */
import { RindleError, cancelledError, toRindleError } from './errors.js';
import { joinUrl, requestJson, sendXhr, sleep, storageError } from './http.js';
import { MULTIPART_DEFAULTS, backoffDelay } from './multipart.js';
import { recordStore } from './resume.js';

/** GCS takes every chunk but the last in multiples of this. */
export const CHUNK_QUANTUM = 256 * 1024;

/**
 * @typedef {object} ResumableSettings
 * @property {number} chunkSize bytes per PUT, rounded down to a multiple of 256 KiB (at least
 *   256 KiB)
 * @property {number} attempts tries without progress before giving up, the first included
 * @property {number} baseDelay ms before the first retry (doubled each time, then jittered)
 * @property {number} maxDelay ms cap of one backoff delay
 * @property {boolean} remember keep the session in sessionStorage so that choosing the same
 *   file again after a reload of this tab resumes it; false keeps it in memory only
 */

/** @type {ResumableSettings} */
export const RESUMABLE_DEFAULTS = Object.freeze({
  chunkSize: 8 * 1024 * 1024,
  attempts: MULTIPART_DEFAULTS.attempts,
  baseDelay: MULTIPART_DEFAULTS.baseDelay,
  maxDelay: MULTIPART_DEFAULTS.maxDelay,
  remember: true,
});

/**
 * Resume records. Key: `rindle:resumable:<profile>:<size>:<lastModified>:<file name>`.
 *
 * Why sessionStorage: resuming after a reload needs the store's session URI, and that URI is a
 * bearer credential (whoever holds it may write this upload's bytes for a week; it reads
 * nothing, and Rindle still sniffs what arrives). sessionStorage keeps it to this tab and
 * drops it when the tab closes, so it is not left on disk for days, shared with other tabs or
 * found by the next user of the browser, as localStorage would leave it. It covers the common
 * case (an accidental reload, a crash-restored tab); a closed tab starts afresh. Script on the
 * page can read it either way, as it could read the URI in memory while the upload runs.
 * Records go on completion, on cancel and when the session is gone, and lapse with the
 * session. `remember: false` keeps the URI in memory only (no resume after a reload).
 */
export const PREFIX = 'rindle:resumable:';
/** GCS keeps a resumable session for a week. */
const MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/** Codes meaning the server no longer has a usable session: start afresh. */
const SESSION_GONE = new Set(['session_not_found', 'not_found', 'session_expired',
  'session_closed', 'session_not_signable', 'upload_unsupported']);

/**
 * @typedef {object} ResumableRecord
 * @property {string} session_id
 * @property {string} asset_id
 * @property {string} upload_url the store's session URI (a credential: never logged or shown)
 * @property {number} byte_size
 * @property {string} [endpoint]
 * @property {number} [saved_at]
 */

/**
 * @typedef {object} ResumableStatus GET {endpoint}/resumable/{session_id}
 * @property {string} session_id
 * @property {string} state "signed", "uploading", ... "completed" once verified
 * @property {number} committed bytes the store holds
 * @property {number} byte_size
 * @property {string} asset_id
 */

/**
 * @param {string} profile
 * @param {{name: string, size: number, lastModified?: number}} file
 * @returns {string}
 */
export function resumableKey(profile, file) {
  return `${PREFIX}${profile}:${file.size}:${file.lastModified ?? 0}:${file.name}`;
}

/**
 * @param {import('./presigned.js').FlowContext & {resumable?: Partial<ResumableSettings>}} ctx
 * @returns {Promise<import('./presigned.js').UploadResult>}
 */
export async function resumableUpload(ctx) {
  const { file, profile, endpoint, headers, signal } = ctx;
  /** @type {ResumableSettings} */
  const cfg = { ...RESUMABLE_DEFAULTS, ...(ctx.resumable || {}) };
  cfg.attempts = Math.max(1, Math.floor(cfg.attempts));
  cfg.chunkSize = Math.max(1, Math.floor(cfg.chunkSize / CHUNK_QUANTUM)) * CHUNK_QUANTUM;
  const store = cfg.remember ? records() : null;
  const key = resumableKey(profile, file);
  const base = resumableEndpoint(ctx);

  /** @type {ResumableRecord | null} */
  let session = null;
  let committed = 0;
  const previous = store ? store.load(key, file.size, endpoint) : null;
  if (previous) {
    const found = await resumeStatus(ctx, base, previous, () => store?.remove(key));
    if (found && found.state === 'completed') {
      store?.remove(key);
      ctx.progress(file.size);
      return result(found, previous);
    }
    if (found) {
      session = previous;
      committed = clamp(found.committed, file.size);
    }
  }
  if (!session) {
    const created = await requestJson('POST', base, {
      body: { profile, filename: file.name, content_type: file.type || '', byte_size: file.size },
      headers,
      signal,
    });
    const ticket = created && created.upload;
    if (!created || typeof created.session_id !== 'string' || !ticket
        || typeof ticket.url !== 'string' || !ticket.url) {
      throw new RindleError('invalid_response', 'The server did not open a resumable session.');
    }
    session = {
      session_id: created.session_id,
      asset_id: created.asset_id,
      upload_url: ticket.url,
      byte_size: file.size,
      endpoint,
    };
    store?.save(key, session);
  }
  const sessionUrl = joinUrl(base, session.session_id);

  try {
    const done = await sendChunks(ctx, cfg, session, sessionUrl, committed);
    store?.remove(key);
    return result(done, session);
  } catch (err) {
    if (signal.aborted) {
      store?.remove(key);
      await cancelSession(sessionUrl, headers);
      throw cancelledError();
    }
    const e = toRindleError(err);
    if (SESSION_GONE.has(e.code)) store?.remove(key);
    // Otherwise keep the record: choosing the same file again asks how far it got and resumes.
    throw e;
  }
}

/**
 * Where the resumable endpoints are: `endpoints.resumable` from the upload options (made
 * absolute against an absolute `endpoint`, as in Node), else `{endpoint}/resumable`.
 * @param {import('./presigned.js').FlowContext} ctx
 * @returns {string}
 */
function resumableEndpoint(ctx) {
  const listed = ctx.options && ctx.options.endpoints && ctx.options.endpoints.resumable;
  if (!listed) return joinUrl(ctx.endpoint, 'resumable');
  if (/^[a-z][a-z0-9+.-]*:/i.test(ctx.endpoint)) {
    try {
      return new URL(listed, ctx.endpoint).href;
    } catch {
      // fall through: use it as given
    }
  }
  return listed;
}

/**
 * @param {ResumableStatus} status
 * @param {ResumableRecord} session
 * @returns {import('./presigned.js').UploadResult}
 */
function result(status, session) {
  return {
    assetId: (status && status.asset_id) || session.asset_id,
    sessionId: (status && status.session_id) || session.session_id,
    asset: null,
  };
}

/**
 * @param {unknown} n
 * @param {number} size
 * @returns {number}
 */
function clamp(n, size) {
  return typeof n === 'number' && Number.isFinite(n) ? Math.max(0, Math.min(Math.floor(n), size))
    : 0;
}

/**
 * The stored session's status, when Rindle still has it; null means "start a new session".
 * @param {import('./presigned.js').FlowContext} ctx
 * @param {string} base
 * @param {ResumableRecord} rec
 * @param {() => void} forget
 * @returns {Promise<ResumableStatus | null>}
 */
async function resumeStatus(ctx, base, rec, forget) {
  const { headers, signal } = ctx;
  const sessionUrl = joinUrl(base, rec.session_id);
  try {
    const found = await requestJson('GET', sessionUrl, { headers, signal });
    if (!found || typeof found.state !== 'string') {
      throw new RindleError('invalid_response', 'The server did not say how far the upload got.');
    }
    return found;
  } catch (err) {
    if (signal.aborted) {
      // Cancelling a resumed upload abandons it, as for a new one.
      forget();
      await cancelSession(sessionUrl, headers);
      throw cancelledError();
    }
    const e = toRindleError(err);
    if (e.status !== undefined && e.status >= 400 && e.status < 500) {
      forget(); // gone, expired, closed or refused: start afresh
      return null;
    }
    throw e;
  }
}

/**
 * PUT the bytes from `committed` on, chunk by chunk; after a failure wait (backoff), ask Rindle
 * how far the store got and go on from there. Resolves with Rindle's `completed` status.
 *
 * @param {import('./presigned.js').FlowContext} ctx
 * @param {ResumableSettings} cfg
 * @param {ResumableRecord} session
 * @param {string} sessionUrl GET/DELETE {endpoint}/resumable/{session_id}
 * @param {number} committed bytes the store already holds
 * @returns {Promise<ResumableStatus>}
 */
async function sendChunks(ctx, cfg, session, sessionUrl, committed) {
  const { file, headers, signal } = ctx;
  const size = file.size;
  let held = committed;
  /** tries in a row without progress */
  let failures = 0;
  /** whether to ask Rindle how far the store got before the next PUT */
  let ask = false;
  /** @type {'advance' | 'complete' | null} what that answer must show, else it is a failure */
  let expect = null;
  /** @param {string} message */
  const stalled = (message) => new RindleError('storage_rejected', message,
    { status: 308, retryable: true });

  ctx.progress(held);
  for (;;) {
    try {
      if (ask) {
        ask = false;
        const wanted = expect;
        expect = null;
        /** @type {ResumableStatus} */
        const found = await requestJson('GET', sessionUrl, { headers, signal });
        if (!found || typeof found.state !== 'string') {
          throw new RindleError('invalid_response', 'The server did not say how far the '
            + 'upload got.');
        }
        if (found.state === 'completed') {
          ctx.progress(size);
          return found;
        }
        const now = clamp(found.committed, size);
        const advanced = now > held;
        held = now;
        ctx.progress(held);
        if (wanted === 'complete') throw stalled('Storage finished the upload but the server '
          + 'does not see it yet.');
        if (advanced) failures = 0;
        else if (wanted === 'advance') throw stalled('Storage kept none of the chunk.');
      }
      /** @type {import('./http.js').XhrResult} */
      let res;
      let end = size;
      const start = held;
      if (start >= size) {
        // Every byte is in but the store has not said "complete": the empty PUT
        // (`bytes */<total>`) asks it to finish.
        res = await sendChunk(session.upload_url, null, `bytes */${size}`, signal);
      } else {
        end = Math.min(start + cfg.chunkSize, size);
        res = await sendChunk(session.upload_url, file.slice(start, end),
          `bytes ${start}-${end - 1}/${end === size ? size : '*'}`, signal,
          (sent) => ctx.progress(start + Math.min(sent, end - start)));
      }
      if (res.status === 200 || res.status === 201) {
        // The store holds the whole object; Rindle's status call verifies the upload.
        held = size;
        ctx.progress(size);
        ask = true;
        expect = 'complete';
        continue;
      }
      if (res.status !== 308) throw chunkError(res);
      const range = rangeEnd(res.header('Range'));
      if (range !== null && range > start && range <= end) {
        held = range;
        failures = 0;
        ctx.progress(held);
        continue;
      }
      // No readable Range (a bucket's CORS may hide it) or no progress: ask Rindle.
      ask = true;
      expect = 'advance';
    } catch (err) {
      if (signal.aborted) throw cancelledError();
      const e = toRindleError(err);
      if (!e.retryable) throw e;
      failures += 1;
      if (failures >= cfg.attempts) throw e;
      await sleep(backoffDelay(failures, { ...MULTIPART_DEFAULTS, ...cfg }), signal);
      ask = true; // how far did it get?
      expect = null;
    }
  }
}

/**
 * `bytes=0-<last>` (GCS's 308 answer) as the number of bytes held; null when absent or
 * unreadable. `bytes=0-0` is what gcp-storage-emulator says before any byte arrived; GCS never
 * holds exactly one byte of an unfinished upload, so it reads as none (null: ask Rindle).
 * @param {string | null} header
 * @returns {number | null}
 */
export function rangeEnd(header) {
  const m = /^\s*bytes=0-(\d+)\s*$/.exec(header || '');
  if (!m) return null;
  const last = Number(m[1]);
  return last === 0 ? null : last + 1;
}

/**
 * @param {import('./http.js').XhrResult} res a non-308, non-2xx chunk answer
 * @returns {RindleError}
 */
function chunkError(res) {
  if (res.status === 404 || res.status === 410) {
    return new RindleError('session_expired', 'The storage upload session expired or was '
      + 'cancelled; choose the file again to start over.', { status: res.status });
  }
  return storageError(res);
}

/**
 * One PUT to the session URI: XMLHttpRequest in a browser (upload progress), fetch where
 * there is none (Node, workers). Never sends Rindle's headers or cookies to the store; the URI
 * never appears in an error.
 * @param {string} url
 * @param {Blob | null} body
 * @param {string} range Content-Range
 * @param {AbortSignal} signal
 * @param {(sent: number) => void} [onProgress]
 * @returns {Promise<import('./http.js').XhrResult>}
 */
function sendChunk(url, body, range, signal, onProgress) {
  const headers = { 'Content-Range': range };
  if (typeof globalThis.XMLHttpRequest === 'function') {
    return sendXhr({ method: 'PUT', url, headers, body: body || new Blob([]), signal,
      onProgress });
  }
  return sendFetch(url, body, headers, signal);
}

/**
 * @param {string} url
 * @param {Blob | null} body
 * @param {Record<string, string>} headers
 * @param {AbortSignal} signal
 * @returns {Promise<import('./http.js').XhrResult>}
 */
async function sendFetch(url, body, headers, signal) {
  if (signal.aborted) throw cancelledError();
  let res;
  try {
    res = await globalThis.fetch(url, { method: 'PUT', headers, body: body || '', signal,
      credentials: 'omit', redirect: 'follow' });
  } catch {
    if (signal.aborted) throw cancelledError();
    throw new RindleError('network_error', 'The upload was interrupted (network error, or '
      + 'storage refused the request because of its CORS rules).', { status: 0, retryable: true });
  }
  let text = '';
  try {
    text = await res.text();
  } catch {
    if (signal.aborted) throw cancelledError();
  }
  const answer = res;
  return { status: answer.status, header: (name) => answer.headers.get(name), text };
}

/**
 * @param {string} sessionUrl
 * @param {import('./http.js').HeadersOption} headers
 */
async function cancelSession(sessionUrl, headers) {
  const signal = typeof AbortSignal !== 'undefined' && typeof AbortSignal.timeout === 'function'
    ? AbortSignal.timeout(10000) : undefined;
  try {
    await requestJson('DELETE', sessionUrl, { headers, signal });
  } catch {
    // Best effort: an unreachable server lets the session expire; it makes no object unless
    // its last byte arrives.
  }
}

const sessionRecords = recordStore('sessionStorage', PREFIX, MAX_AGE_MS);

/**
 * The sessionStorage records (see PREFIX for why sessionStorage).
 * @returns {{load(key: string, size: number, endpoint: string): ResumableRecord | null,
 *   save(key: string, rec: ResumableRecord): void, remove(key: string): void} | null}
 */
function records() {
  if (!sessionRecords.available) return null;
  return {
    load(key, size, endpoint) {
      const rec = sessionRecords.load(key, (r) => typeof r.session_id === 'string'
        && typeof r.upload_url === 'string' && r.byte_size === size
        && Date.now() - (r.saved_at || 0) < MAX_AGE_MS);
      // Another endpoint's record is left for it, not removed.
      return rec && (!rec.endpoint || rec.endpoint === endpoint) ? rec : null;
    },
    save: (key, rec) => sessionRecords.save(key, rec),
    remove: (key) => sessionRecords.remove(key),
  };
}
