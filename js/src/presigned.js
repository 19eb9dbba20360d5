/**
 * The presigned-PUT flow: POST {endpoint}/uploads, send the file with exactly the ticket's
 * method, URL and headers, then POST {endpoint}/uploads/{session_id}/complete.
 */
import { abandonSession, joinUrl, requestJson, sendXhr, sleep, storageError } from './http.js';
import { RindleError, cancelledError, toRindleError } from './errors.js';

/**
 * @typedef {object} FlowContext what every flow gets from `upload()`
 * @property {File} file
 * @property {string} profile
 * @property {string} endpoint
 * @property {import('./options.js').UploadOptions} options
 * @property {import('./http.js').HeadersOption} headers
 * @property {AbortSignal} signal
 * @property {(loaded: number) => void} progress bytes sent so far (of file.size)
 */

/**
 * @typedef {object} UploadResult
 * @property {string} assetId
 * @property {string | null} sessionId
 * @property {Record<string, any> | null} asset the asset JSON (as GET /assets/{id}), when known
 */

/**
 * @param {FlowContext} ctx
 * @returns {Promise<UploadResult>}
 */
export async function presignedUpload(ctx) {
  const { file, endpoint, headers, signal } = ctx;
  const created = await requestJson('POST', joinUrl(endpoint, 'uploads'), {
    body: { profile: ctx.profile, filename: file.name, content_type: file.type || '',
      byte_size: file.size },
    headers,
    signal,
  });
  const ticket = created && created.upload;
  if (!ticket || typeof ticket.url !== 'string') {
    throw new RindleError('invalid_response', 'The server did not say where to send the file.');
  }
  const sessionUrl = joinUrl(endpoint, 'uploads', created.session_id);
  let res;
  try {
    res = await sendXhr({
      method: ticket.method || 'PUT',
      url: ticket.url,
      headers: ticket.headers || {},
      body: file,
      signal,
      onProgress: (loaded) => ctx.progress(Math.min(loaded, file.size)),
    });
  } catch (err) {
    // A cancel ends the session on the server too: what already landed is purged, and a
    // streaming provider's upload (Mux direct upload) is cancelled there.
    if (signal.aborted) {
      await abandonSession(sessionUrl, headers);
      throw cancelledError();
    }
    throw err;
  }
  if (res.status < 200 || res.status >= 300) throw storageError(res);
  ctx.progress(file.size);
  const done = await complete(`${sessionUrl}/complete`, headers, signal);
  const asset = (done && done.asset) || null;
  return {
    assetId: (asset && asset.id) || created.asset_id,
    sessionId: (done && done.session_id) || created.session_id,
    asset,
  };
}

/**
 * POST .../complete, asking again while the server answers `upload_incomplete`: a streaming
 * provider (Mux) may take a moment after the PUT before it reports the file as received.
 * @param {string} url
 * @param {import('./http.js').HeadersOption} headers
 * @param {AbortSignal} signal
 */
async function complete(url, headers, signal) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await requestJson('POST', url, { headers, signal });
    } catch (err) {
      const e = toRindleError(err);
      if (e.code !== 'upload_incomplete' || attempt >= 5 || signal.aborted) throw e;
      await sleep(250 * 2 ** attempt, signal);
    }
  }
}
