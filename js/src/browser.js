/**
 * The bundle's entry: defines `window.Rindle` (once, even if the script is included twice) and
 * wires uploaders on DOMContentLoaded and on htmx's `htmx:load` (content swapped in).
 */
import * as api from './index.js';

/**
 * @param {Window & typeof globalThis} win
 * @returns {typeof api}
 */
export function install(win) {
  const existing = /** @type {any} */ (win).Rindle;
  if (existing && existing.__installed) return existing;
  const Rindle = Object.freeze({ ...api, __installed: true });
  /** @type {any} */ (win).Rindle = Rindle;
  const doc = win.document;
  const start = () => Rindle.init(doc);
  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', start, { once: true });
  else start();
  doc.addEventListener('htmx:load', (event) => {
    const target = /** @type {any} */ (event).detail?.elt || event.target;
    Rindle.init(target && typeof target.querySelectorAll === 'function' ? target : doc);
  });
  return Rindle;
}

if (typeof window !== 'undefined' && typeof document !== 'undefined') install(window);
