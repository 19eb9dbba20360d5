/**
 * Rindle's client-side error: a stable machine-readable `code` (the server's when it sent one)
 * and a message safe to show. Messages never contain a signed URL or a tus upload URL.
 */
export class RindleError extends Error {
  /**
   * @param {string} code stable code, e.g. "max_bytes_exceeded", "etag_unreadable", "cancelled"
   * @param {string} message human-readable, safe to display
   * @param {{status?: number, retryable?: boolean, details?: Record<string, unknown>}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'RindleError';
    /** @type {string} */
    this.code = code;
    /** @type {number | undefined} HTTP status, 0 for a network failure */
    this.status = extra.status;
    /** @type {boolean} whether sending the same request again may succeed */
    this.retryable = Boolean(extra.retryable);
    /** @type {Record<string, unknown> | undefined} */
    this.details = extra.details;
  }
}

/** @returns {RindleError} the error every cancelled upload rejects with */
export function cancelledError() {
  return new RindleError('cancelled', 'The upload was cancelled.');
}

/**
 * @param {unknown} err
 * @returns {boolean} whether `err` means "cancelled" (ours, or a DOM AbortError)
 */
export function isCancelled(err) {
  if (!err || typeof err !== 'object') return false;
  const e = /** @type {{code?: string, name?: string}} */ (err);
  return e.code === 'cancelled' || e.name === 'AbortError';
}

/**
 * Turn anything thrown into a RindleError without leaking its message when it might carry a URL.
 * @param {unknown} err
 * @returns {RindleError}
 */
export function toRindleError(err) {
  if (err instanceof RindleError) return err;
  if (isCancelled(err)) return cancelledError();
  return new RindleError('upload_failed', 'The upload failed unexpectedly.');
}
