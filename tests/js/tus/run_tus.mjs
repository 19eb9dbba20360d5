// Upload one file to Rindle's tus endpoint with the real tus-js-client, as a browser app
// would, and print one JSON line: what the client saw. Driven by tests/web/test_tus_clients.py.
//
//   node run_tus.mjs '{"endpoint": "...", "file": "/path", "chunkSize": 8388608,
//                      "parallelUploads": 1, "stopAfter": 0, "uploadUrl": null,
//                      "metadata": {...}}'
//
// stopAfter > 0 aborts the upload (like a dropped connection) once that many bytes were
// sent; the test then runs this again with uploadUrl to resume it. {"terminate": url}
// ends an upload with the client's own tus.Upload.terminate (a DELETE) and prints the
// outcome instead.
import fs from 'node:fs';
import * as tus from 'tus-js-client';

const opts = JSON.parse(process.argv[2]);
if (opts.terminate) {
  let outcome = { ok: true };
  try {
    await tus.Upload.terminate(opts.terminate, { headers: opts.headers || {} });
  } catch (err) {
    const res = err.originalResponse;
    outcome = { ok: false, error: String(err.message || err).slice(0, 300),
                status: res ? res.getStatus() : null };
  }
  process.stdout.write(JSON.stringify(outcome) + '\n');
  process.exit(0);
}

const data = fs.readFileSync(opts.file);
const seen = { sessionId: null, assetId: null, statuses: [], offsets: [] };

function capture(res) {
  if (!res) return;
  seen.statuses.push(res.getStatus());
  const offset = res.getHeader('Upload-Offset');
  if (offset) seen.offsets.push(Number(offset));
  const session = res.getHeader('Rindle-Session-Id');
  if (session) seen.sessionId = session;
  const asset = res.getHeader('Rindle-Asset-Id');
  if (asset) seen.assetId = asset;
}

const done = new Promise((resolve) => {
  let stopped = false;
  const upload = new tus.Upload(data, {
    endpoint: opts.endpoint,
    uploadUrl: opts.uploadUrl || null,
    chunkSize: opts.chunkSize || Infinity,
    parallelUploads: opts.parallelUploads || 1,
    retryDelays: opts.retryDelays || [],
    metadata: opts.metadata || {},
    headers: opts.headers || {},
    uploadDataDuringCreation: Boolean(opts.uploadDataDuringCreation),
    uploadLengthDeferred: Boolean(opts.uploadLengthDeferred),
    removeFingerprintOnSuccess: true,
    onAfterResponse: (_req, res) => capture(res),
    onProgress: (sent) => {
      if (opts.stopAfter && !stopped && sent >= opts.stopAfter) {
        stopped = true;
        upload.abort(false).then(() => resolve({ ok: false, aborted: true, url: upload.url }));
      }
    },
    onSuccess: () => resolve({ ok: true, url: upload.url }),
    onError: (err) => {
      const res = err.originalResponse;
      resolve({ ok: false, error: String(err.message || err).slice(0, 300),
                status: res ? res.getStatus() : null, url: upload.url });
    },
  });
  upload.start();
});

const result = await done;
process.stdout.write(JSON.stringify({ ...result, ...seen }) + '\n');
