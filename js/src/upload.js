/**
 * `upload(file, {profile, endpoint, ...})`: the programmatic API. Fetches the profile's upload
 * options, refuses what is obviously not allowed, picks a flow and runs it.
 */
import { RindleError, cancelledError, toRindleError } from './errors.js';
import { multipartUpload } from './multipart.js';
import { checkFile, chooseStrategy, getUploadOptions } from './options.js';
import { presignedUpload } from './presigned.js';
import { resumableUpload } from './resumable.js';
import { tusUpload } from './tus.js';

/**
 * Page-wide settings the DOM uploaders use (and `upload()` when not given).
 * @type {{endpoint: string, headers: import('./http.js').HeadersOption}}
 */
export const defaults = {
  endpoint: '/rindle',
  headers: undefined,
};

/**
 * @typedef {object} Progress
 * @property {number} loaded bytes sent
 * @property {number} total the file's size
 * @property {number} percent whole percent, 0-100 (100 only when everything is sent)
 */

/**
 * @typedef {object} UploadInit
 * @property {string} profile the Rindle profile name, e.g. "avatar"
 * @property {string} [endpoint] where Rindle's router is mounted (default "/rindle")
 * @property {(progress: Progress) => void} [onProgress]
 * @property {(start: {file: File, strategy: import('./options.js').Strategy}) => void} [onStart]
 *   called once the flow is chosen, before any byte is sent
 * @property {AbortSignal} [signal] aborting cancels the upload (multipart: its session is
 *   DELETEd; tus: terminated; resumable: DELETEd); the promise rejects with code "cancelled"
 * @property {import('./http.js').HeadersOption} [headers] extra headers for Rindle's endpoints
 *   (e.g. a CSRF token), never sent to storage
 * @property {import('./options.js').Strategy} [strategy] force a flow the profile offers
 * @property {Partial<import('./multipart.js').MultipartSettings>} [multipart]
 * @property {Partial<import('./tus.js').TusSettings>} [tus]
 * @property {Partial<import('./resumable.js').ResumableSettings>} [resumable] GCS resumable
 *   sessions: chunk size, retries, whether to resume after a reload (sessionStorage)
 */

/** @type {Record<import('./options.js').Strategy, (ctx: any) => Promise<import('./presigned.js').UploadResult>>} */
const FLOWS = {
  presigned_put: presignedUpload,
  multipart: multipartUpload,
  tus: tusUpload,
  resumable: resumableUpload,
};

/**
 * Upload one file to a Rindle profile.
 *
 * @param {File} file
 * @param {UploadInit} init
 * @returns {Promise<import('./presigned.js').UploadResult>} `{assetId, sessionId, asset}`;
 *   rejects with a RindleError (`code` is the server's when it sent one)
 */
export async function upload(file, init) {
  if (!file || typeof file.size !== 'number') {
    throw new RindleError('no_file', 'Choose a file to upload.');
  }
  if (!init || !init.profile) {
    throw new RindleError('missing_profile', 'Which Rindle profile to upload to is not set.');
  }
  const endpoint = init.endpoint || defaults.endpoint;
  const headers = init.headers !== undefined ? init.headers : defaults.headers;
  const signal = init.signal || new AbortController().signal;
  try {
    const options = await getUploadOptions(endpoint, init.profile, { headers, signal });
    const refusal = checkFile(file, options);
    if (refusal) throw refusal;
    let strategy = init.strategy;
    if (strategy && !(options.strategies || []).includes(strategy)) {
      throw new RindleError('strategy_not_offered', `Profile ${init.profile} does not offer `
        + `${strategy} uploads.`);
    }
    strategy = strategy || chooseStrategy(file, options);
    if (signal.aborted) throw cancelledError();
    if (init.onStart) init.onStart({ file, strategy });

    const total = file.size;
    let last = -1;
    /** @param {number} loaded */
    const progress = (loaded) => {
      if (loaded === last) return;
      last = loaded;
      const percent = total > 0 ? Math.floor((loaded * 100) / total) : 100;
      if (init.onProgress) init.onProgress({ loaded, total, percent });
    };
    return await FLOWS[strategy]({
      file,
      profile: init.profile,
      endpoint,
      options,
      headers,
      signal,
      progress,
      multipart: init.multipart,
      tus: init.tus,
      resumable: init.resumable,
    });
  } catch (err) {
    if (signal.aborted) throw cancelledError();
    throw toRindleError(err);
  }
}
