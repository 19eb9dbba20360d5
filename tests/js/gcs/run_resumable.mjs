// Upload one file through Rindle's uploader (js/src, the GCS resumable flow) in Node, against
// a live Rindle on gcp-storage-emulator, and print one JSON line: what happened. Driven by
// tests/upload/test_resumable_js.py.
//
// Node rather than chromium: gcp-storage-emulator answers a CORS preflight with 501 and sends
// no Access-Control-* headers, so a page could not PUT to its session URIs; Node's fetch has
// no CORS. With no XMLHttpRequest here the flow
// sends its chunks with fetch (as it would in a worker).
//
//   node run_resumable.mjs '{"endpoint": "http://127.0.0.1:PORT/rindle", "profile": "lessons",
//     "file": "/path", "type": "image/png", "chunkSize": 262144, "attempts": 4,
//     "baseDelay": 50, "storage": "/path/session.json", "loseAnswer": 1, "failAfter": 0}'
//
// storage: a file standing in for the tab's sessionStorage (read at start, written on every
// change), so a second run is a reload of the same tab. loseAnswer: the 1-based chunk PUT
// whose answer is lost after the store took it (a dropped connection). failAfter > 0: every
// chunk PUT after that many fails with a network error (the tab "crashes"; run again to
// resume).
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

const opts = JSON.parse(process.argv[2]);
const root = new URL('../../../js/src/', import.meta.url);

// --- a file-backed sessionStorage (what survives a reload of the tab) --------------------------
const saved = opts.storage && existsSync(opts.storage)
  ? JSON.parse(readFileSync(opts.storage, 'utf8')) : {};
const items = new Map(Object.entries(saved));
const persist = () => {
  if (opts.storage) writeFileSync(opts.storage, JSON.stringify(Object.fromEntries(items)));
};
globalThis.sessionStorage = {
  get length() { return items.size; },
  key: (i) => [...items.keys()][i] ?? null,
  getItem: (k) => (items.has(k) ? items.get(k) : null),
  setItem: (k, v) => { items.set(k, String(v)); persist(); },
  removeItem: (k) => { items.delete(k); persist(); },
  clear: () => { items.clear(); persist(); },
};

// --- record every request; lose or fail chunk PUTs on request --------------------------------
const seen = { puts: [], statuses: [], rindle: [], progress: [] };
const realFetch = globalThis.fetch;
let chunkPuts = 0;
globalThis.fetch = async (url, init = {}) => {
  const method = (init.method || 'GET').toUpperCase();
  const href = String(url);
  if (!href.startsWith(opts.endpoint)) {
    const range = (init.headers || {})['Content-Range'];
    seen.puts.push({ method, range, credentials: init.credentials,
      rindleHeader: Object.keys(init.headers || {}).some((h) => h.toLowerCase() === 'x-test') });
    chunkPuts += 1;
    if (opts.failAfter && chunkPuts > opts.failAfter) throw new TypeError('fetch failed');
    const res = await realFetch(url, init);
    seen.statuses.push(res.status);
    if (opts.loseAnswer === chunkPuts) throw new TypeError('fetch failed'); // taken, answer lost
    return res;
  }
  seen.rindle.push(`${method} ${new URL(href).pathname}`);
  return realFetch(url, init);
};

const { upload } = await import(new URL('upload.js', root));
const data = readFileSync(opts.file);
const file = new File([data], basename(opts.file), { type: opts.type || 'image/png',
  lastModified: 1700000000000 });
let result;
try {
  const done = await upload(file, {
    profile: opts.profile,
    endpoint: opts.endpoint,
    headers: { 'X-Test': 'rindle-only' },
    resumable: { chunkSize: opts.chunkSize, attempts: opts.attempts ?? 4,
      baseDelay: opts.baseDelay ?? 50, maxDelay: 1000 },
    onStart: ({ strategy }) => { seen.strategy = strategy; },
    onProgress: ({ loaded }) => seen.progress.push(loaded),
  });
  result = { ok: true, ...done };
} catch (err) {
  result = { ok: false, code: err.code, message: err.message, status: err.status };
}
process.stdout.write(`${JSON.stringify({ ...result, ...seen, stored: [...items.keys()] })}\n`);
