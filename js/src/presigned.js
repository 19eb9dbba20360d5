/**
 * The presigned-PUT flow: POST {endpoint}/uploads, send the file with exactly the ticket's
 * method, URL and headers, then POST {endpoint}/uploads/{session_id}/complete.
 */
import { RindleError } from './errors.js';
import { joinUrl, requestJson, sendXhr, storageError } from './http.js';

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
  const res = await sendXhr({
    method: ticket.method || 'PUT',
    url: ticket.url,
    headers: ticket.headers || {},
    body: file,
    signal,
    onProgress: (loaded) => ctx.progress(Math.min(loaded, file.size)),
  });
  if (res.status < 200 || res.status >= 300) throw storageError(res);
  ctx.progress(file.size);
  const done = await requestJson('POST', joinUrl(endpoint, 'uploads', created.session_id, 'complete'),
    { headers, signal });
  const asset = (done && done.asset) || null;
  return {
    assetId: (asset && asset.id) || created.asset_id,
    sessionId: (done && done.session_id) || created.session_id,
    asset,
  };
}
