// The client of bench/tus_throughput.py: sends one file to one server and prints one JSON
// line (what it sent, how long it took, its own CPU). The file is streamed from disk, never
// held in memory: tus-js-client reads an fs.ReadStream that has a path slice by slice
// (a fresh ReadStream per PATCH), with or without a finite chunkSize.
//
//   node tus_client.mjs '{"mode": "tus", "endpoint": "http://127.0.0.1:8000/files/",
//                         "file": "/path", "chunkSize": 8388608, "metadata": {...}}'
//   node tus_client.mjs '{"mode": "put", "endpoint": "http://127.0.0.1:8000/put/x",
//                         "file": "/path", "chunkSize": 0}'
//
// chunkSize 0 means one request for the whole file (tus: chunkSize Infinity, one PATCH).
// mode "put" is the ceiling: plain HTTP PUTs of the same slices (`?offset=N`), one after
// the other on one keep-alive connection, the way tus-js-client sends its PATCHes.
import fs from 'node:fs';
import http from 'node:http';
import * as tus from 'tus-js-client';

const opts = JSON.parse(process.argv[2]);
const size = fs.statSync(opts.file).size;
const chunk = opts.chunkSize > 0 ? opts.chunkSize : Infinity;

function tusUpload() {
  return new Promise((resolve) => {
    let requests = 0;
    const upload = new tus.Upload(fs.createReadStream(opts.file), {
      endpoint: opts.endpoint,
      chunkSize: chunk,
      retryDelays: [],
      metadata: opts.metadata || {},
      storeFingerprintForResuming: false,
      onAfterResponse: () => { requests += 1; },
      onSuccess: () => resolve({ ok: true, requests, url: upload.url }),
      onError: (err) => {
        const res = err.originalResponse;
        resolve({ ok: false, requests, error: String(err.message || err).slice(0, 400),
                  status: res ? res.getStatus() : null });
      },
    });
    upload.start();
  });
}

async function putUpload() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const step = Number.isFinite(chunk) ? chunk : size;
  let requests = 0;
  for (let start = 0; start < size; start += step) {
    const end = Math.min(size, start + step);
    const status = await new Promise((resolve, reject) => {
      const url = new URL(opts.endpoint);
      url.searchParams.set('offset', String(start));
      const req = http.request(url, {
        method: 'PUT', agent,
        headers: { 'Content-Length': end - start, 'Content-Type': 'application/octet-stream' },
      }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
      req.on('error', reject);
      fs.createReadStream(opts.file, { start, end: end - 1 }).pipe(req);
    });
    requests += 1;
    if (status >= 300) return { ok: false, requests, status, error: `PUT answered ${status}` };
  }
  agent.destroy();
  return { ok: true, requests };
}

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
let result;
try {
  result = opts.mode === 'put' ? await putUpload() : await tusUpload();
} catch (err) {
  result = { ok: false, error: String(err && err.message || err).slice(0, 400) };
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ ...result, bytes: size, seconds,
                                      clientCpu: (cpu.user + cpu.system) / 1e6 }) + '\n');
