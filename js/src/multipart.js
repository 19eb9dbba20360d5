/**
 * The S3 multipart flow: create the session, sign parts in batches, PUT the parts (at most
 * `concurrency` at once, each retried with exponential backoff and jitter), read each part's
 * ETag, complete. Resumes after a reload from a localStorage record; cancel aborts everything
 * and DELETEs the session.
 */
import { RindleError, cancelledError, toRindleError } from './errors.js';
import { abandonSession, joinUrl, requestJson, sendXhr, sleep, storageError } from './http.js';
import { loadRecord, removeRecord, resumeKey, saveRecord } from './resume.js';

/**
 * @typedef {object} MultipartSettings
 * @property {number} concurrency parts in flight at once (at most 4 by default)
 * @property {number} attempts tries per part, the first included
 * @property {number} baseDelay ms before the first retry (doubled each time, then jittered)
 * @property {number} maxDelay ms cap of one backoff delay
 * @property {number} signBatch part URLs asked for per signing request
 */

/** @type {MultipartSettings} */
export const MULTIPART_DEFAULTS = Object.freeze({
  concurrency: 4,
  attempts: 4,
  baseDelay: 500,
  maxDelay: 15000,
  signBatch: 20,
});

/** Codes meaning the server no longer has a usable session: start afresh. */
const SESSION_GONE = new Set(['session_not_found', 'not_found', 'session_expired',
  'session_closed', 'session_not_signable', 'upload_unsupported']);

/**
 * The delay before retry number `attempt` (1 = first retry): exponential, capped, with "equal
 * jitter" (between half and all of it) so parallel parts do not retry in lockstep.
 * @param {number} attempt
 * @param {MultipartSettings} cfg
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, cfg = MULTIPART_DEFAULTS) {
  const exp = Math.min(cfg.maxDelay, cfg.baseDelay * 2 ** (attempt - 1));
  return Math.round(exp / 2 + (Math.random() * exp) / 2);
}

/**
 * @param {import('./presigned.js').FlowContext & {multipart?: Partial<MultipartSettings>}} ctx
 * @returns {Promise<import('./presigned.js').UploadResult>}
 */
export async function multipartUpload(ctx) {
  const { file, profile, endpoint, headers, signal } = ctx;
  /** @type {MultipartSettings} */
  const cfg = { ...MULTIPART_DEFAULTS, ...(ctx.multipart || {}) };
  cfg.concurrency = Math.max(1, Math.floor(cfg.concurrency));
  cfg.attempts = Math.max(1, Math.floor(cfg.attempts));
  const key = resumeKey(profile, file);
  /** @type {Map<number, string>} part number -> ETag */
  const etags = new Map();

  let session = await resumable(ctx, key, etags);
  if (!session) {
    const created = await requestJson('POST', joinUrl(endpoint, 'multipart'), {
      body: { profile, filename: file.name, content_type: file.type || '', byte_size: file.size },
      headers,
      signal,
    });
    if (!created || typeof created.session_id !== 'string' || !(created.part_size > 0)
        || !(created.part_count > 0)) {
      throw new RindleError('invalid_response', 'The server did not plan the multipart upload.');
    }
    session = {
      session_id: created.session_id,
      asset_id: created.asset_id,
      part_size: created.part_size,
      part_count: created.part_count,
      endpoint,
    };
    saveRecord(key, session);
  }
  const sessionUrl = joinUrl(endpoint, 'multipart', session.session_id);

  try {
    await uploadMissingParts(ctx, cfg, session, sessionUrl, etags);
    const parts = [...etags.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([number, etag]) => ({ part_number: number, etag }));
    const done = await requestJson('POST', `${sessionUrl}/complete`, {
      body: { parts },
      headers,
      signal,
    });
    removeRecord(key);
    const asset = (done && done.asset) || null;
    return {
      assetId: (asset && asset.id) || session.asset_id,
      sessionId: (done && done.session_id) || session.session_id,
      asset,
    };
  } catch (err) {
    if (signal.aborted) {
      removeRecord(key);
      await abandonSession(sessionUrl, headers);
      throw cancelledError();
    }
    const e = toRindleError(err);
    if (SESSION_GONE.has(e.code)) removeRecord(key);
    // Otherwise keep the record: choosing the same file again resumes this session.
    throw e;
  }
}

/**
 * The stored session for this file, when the server still has it; fills `etags` with the parts
 * storage already holds (at their exact size). Null means "start a new session".
 *
 * @param {import('./presigned.js').FlowContext} ctx
 * @param {string} key
 * @param {Map<number, string>} etags
 * @returns {Promise<import('./resume.js').ResumeRecord | null>}
 */
async function resumable(ctx, key, etags) {
  const { file, endpoint, headers, signal } = ctx;
  const rec = loadRecord(key);
  if (!rec) return null;
  if (rec.endpoint && rec.endpoint !== endpoint) return null;
  if (Math.ceil(file.size / rec.part_size) !== rec.part_count) {
    removeRecord(key);
    return null;
  }
  const sessionUrl = joinUrl(endpoint, 'multipart', rec.session_id);
  let listed;
  try {
    listed = await requestJson('GET', `${sessionUrl}/parts`, { headers, signal });
  } catch (err) {
    if (signal.aborted) {
      // Cancelling a resumed upload abandons it, as for a new one.
      removeRecord(key);
      await abandonSession(sessionUrl, headers);
      throw cancelledError();
    }
    const e = toRindleError(err);
    if (e.status !== undefined && e.status >= 400 && e.status < 500) {
      removeRecord(key); // gone, expired, closed or refused: start afresh
      return null;
    }
    throw e;
  }
  for (const part of (listed && listed.parts) || []) {
    const n = part && part.part_number;
    if (Number.isInteger(n) && n >= 1 && n <= rec.part_count && typeof part.etag === 'string'
        && part.etag && part.size === partLength(file.size, rec, n)) {
      etags.set(n, part.etag);
    }
  }
  return rec;
}

/**
 * @param {number} fileSize
 * @param {{part_size: number, part_count: number}} plan
 * @param {number} n 1-based part number
 * @returns {number}
 */
export function partLength(fileSize, plan, n) {
  return n < plan.part_count ? plan.part_size : fileSize - plan.part_size * (plan.part_count - 1);
}

/**
 * @param {import('./presigned.js').FlowContext} ctx
 * @param {MultipartSettings} cfg
 * @param {import('./resume.js').ResumeRecord} session
 * @param {string} sessionUrl
 * @param {Map<number, string>} etags parts already stored; filled as parts arrive
 */
async function uploadMissingParts(ctx, cfg, session, sessionUrl, etags) {
  const { file, headers, signal } = ctx;
  /** @type {number[]} */
  const missing = [];
  /** @type {Map<number, number>} part -> bytes sent so far */
  const loaded = new Map();
  let base = 0;
  for (let n = 1; n <= session.part_count; n += 1) {
    if (etags.has(n)) base += partLength(file.size, session, n);
    else missing.push(n);
  }
  const report = () => {
    let sum = base;
    loaded.forEach((v) => { sum += v; });
    ctx.progress(Math.min(sum, file.size));
  };
  report();
  if (!missing.length) return;

  // One controller for this run: the first failure (or the caller's cancel) stops every part.
  const inner = new AbortController();
  const stop = () => inner.abort();
  if (signal.aborted) inner.abort();
  signal.addEventListener('abort', stop, { once: true });
  const ticketFor = signer(`${sessionUrl}/parts`, headers, inner.signal, missing, cfg.signBatch);

  /** @param {number} n */
  const sendPart = async (n) => {
    const length = partLength(file.size, session, n);
    const start = (n - 1) * session.part_size;
    for (let attempt = 1; ; attempt += 1) {
      try {
        const ticket = await ticketFor(n);
        const res = await sendXhr({
          method: ticket.method || 'PUT',
          url: ticket.url,
          headers: ticket.headers || {},
          body: file.slice(start, start + length),
          signal: inner.signal,
          onProgress: (sent) => {
            loaded.set(n, Math.min(sent, length));
            report();
          },
        });
        if (res.status < 200 || res.status >= 300) throw storageError(res);
        const etag = res.header('ETag');
        if (!etag) {
          throw new RindleError('etag_unreadable', `Storage took part ${n} but the browser `
            + 'cannot read its ETag response header. The bucket\'s CORS configuration must '
            + 'expose it (ExposeHeaders: ["ETag"]); see Rindle\'s storage guide.',
          { details: { part_number: n } });
        }
        etags.set(n, etag);
        loaded.delete(n);
        base += length;
        report();
        return;
      } catch (err) {
        if (inner.signal.aborted) throw cancelledError();
        const e = toRindleError(err);
        if (!e.retryable || attempt >= cfg.attempts) throw e;
        loaded.delete(n);
        report();
        await sleep(backoffDelay(attempt, cfg), inner.signal);
      }
    }
  };

  const queue = missing.slice();
  /** @type {unknown} */
  let failure = null;
  const worker = async () => {
    while (queue.length && !inner.signal.aborted) {
      const n = /** @type {number} */ (queue.shift());
      try {
        await sendPart(n);
      } catch (err) {
        if (failure === null) failure = err;
        inner.abort();
        return;
      }
    }
  };
  try {
    const workers = Array.from({ length: Math.min(cfg.concurrency, missing.length) }, worker);
    await Promise.all(workers);
  } finally {
    signal.removeEventListener('abort', stop);
  }
  if (signal.aborted) throw cancelledError();
  if (failure !== null) throw failure;
}

/**
 * A part-URL source that asks the server for `batch` URLs at a time, in upload order.
 *
 * @param {string} url POST {endpoint}/multipart/{id}/parts
 * @param {import('./http.js').HeadersOption} headers
 * @param {AbortSignal} signal
 * @param {number[]} order the parts to send, in the order they will be sent
 * @param {number} batch
 * @returns {(n: number) => Promise<{method?: string, url: string, headers?: Record<string, string>}>}
 */
function signer(url, headers, signal, order, batch) {
  /** @type {Map<number, any>} */
  const tickets = new Map();
  /** @type {Map<number, Promise<void>>} */
  const pending = new Map();
  return async (n) => {
    if (!tickets.has(n) && !pending.has(n)) {
      const numbers = [n];
      for (let i = order.indexOf(n) + 1; i < order.length && numbers.length < batch; i += 1) {
        const m = order[i];
        if (!tickets.has(m) && !pending.has(m)) numbers.push(m);
      }
      const request = requestJson('POST', url, { body: { part_numbers: numbers }, headers, signal })
        .then((res) => {
          const parts = (res && res.parts) || {};
          for (const m of numbers) {
            const t = parts[String(m)];
            if (t && typeof t.url === 'string') tickets.set(m, t);
          }
        })
        .finally(() => numbers.forEach((m) => pending.delete(m)));
      request.catch(() => {}); // every waiting part sees the error; none is left unhandled
      numbers.forEach((m) => pending.set(m, request));
    }
    const waiting = pending.get(n);
    if (waiting) await waiting;
    const ticket = tickets.get(n);
    if (!ticket) {
      throw new RindleError('invalid_response', `The server did not sign part ${n}.`);
    }
    return ticket;
  };
}
