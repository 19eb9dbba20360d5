/**
 * Rindle's browser uploader: the public API (ESM). The built file rindle/static/rindle.js
 * exposes the same names as `window.Rindle` (see browser.js).
 */
export { RindleError } from './errors.js';
export { checkFile, chooseStrategy, clearOptionsCache, getUploadOptions } from './options.js';
export { defaults, upload } from './upload.js';
export { Uploader, getUploader, init } from './uploader.js';

/** Keep in step with js/package.json (a test checks). */
export const version = '0.1.0';
