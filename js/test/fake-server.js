// A fake Rindle server + storage at the network boundary: it replaces globalThis.fetch and
// globalThis.XMLHttpRequest, records every request and answers with the documented JSON shapes.
import { vi } from 'vitest';

export const OPTIONS = {
  profile: 'avatar',
  strategies: ['presigned_put'],
  max_bytes: 1024 * 1024,
  accept: ['image/png', 'image/jpeg'],
  extensions: ['png', 'jpg', 'jpeg'],
  multipart_threshold: 16 * 1024 * 1024,
  endpoints: { uploads: '/rindle/uploads', multipart: '/rindle/multipart', tus: '/rindle/tus/avatar/' },
};

/** A deferred: a promise plus its resolve/reject. */
export function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

/** Let pending promise callbacks run (n rounds of the microtask queue and one macrotask). */
export async function flush(rounds = 20) {
  for (let i = 0; i < rounds; i += 1) await Promise.resolve();
}

export class FakeServer {
  constructor({ options = {} } = {}) {
    this.options = { ...OPTIONS, ...options };
    /** every request, fetch and XHR, in order: {via, method, url, headers, body} */
    this.requests = [];
    /** [method, RegExp, handler(req, match) -> {status, body, headers} | Promise of it] */
    this.routes = [];
    /** storage handler for XHRs: (req) -> {status, headers, text} | {network: true} | Promise */
    this.storage = () => ({ status: 200, headers: { ETag: '"etag"' } });
    this.inflight = 0;
    this.maxInflight = 0;
    this.aborted = [];
    this.on('GET', /^\/rindle\/profiles\/([^/]+)\/upload-options$/, () => ({ body: this.options }));
    const server = this;
    this.fetch = vi.fn(async (url, init = {}) => server.handleFetch(String(url), init));
    this.XHR = class FakeXHR {
      constructor() {
        this.upload = { onprogress: null };
        this.requestHeaders = {};
        this.responseHeaders = {};
        this.status = 0;
        this.responseText = '';
        this.done = false;
      }

      open(method, url) {
        this.method = method;
        this.url = url;
      }

      setRequestHeader(name, value) {
        this.requestHeaders[name] = value;
      }

      getResponseHeader(name) {
        const key = Object.keys(this.responseHeaders).find((k) => k.toLowerCase() === name.toLowerCase());
        return key === undefined ? null : this.responseHeaders[key];
      }

      send(body) {
        const req = { via: 'xhr', method: this.method, url: this.url, headers: this.requestHeaders,
          body, xhr: this };
        server.requests.push(req);
        server.inflight += 1;
        server.maxInflight = Math.max(server.maxInflight, server.inflight);
        Promise.resolve()
          .then(() => server.storage(req))
          .then((res) => {
            if (this.done) return;
            this.done = true;
            server.inflight -= 1;
            if (res && res.network) {
              this.onerror?.();
              return;
            }
            const size = body && typeof body.size === 'number' ? body.size : 0;
            this.upload.onprogress?.({ loaded: size, total: size, lengthComputable: true });
            this.status = res.status ?? 200;
            this.responseHeaders = res.headers || {};
            this.responseText = res.text || '';
            this.onload?.();
          });
      }

      abort() {
        if (this.done) return;
        this.done = true;
        server.inflight -= 1;
        server.aborted.push(this.url);
        this.onabort?.();
      }
    };
  }

  /** Answer `method` requests whose path matches `pattern` (RegExp) with `handler`. */
  on(method, pattern, handler) {
    this.routes.unshift([method, pattern, handler]);
    return this;
  }

  install() {
    vi.stubGlobal('fetch', this.fetch);
    vi.stubGlobal('XMLHttpRequest', this.XHR);
    return this;
  }

  /** Requests (fetch and XHR) as "METHOD path" strings, query strings dropped. */
  log() {
    return this.requests.map((r) => `${r.method} ${r.url.split('?')[0]}`);
  }

  xhrs() {
    return this.requests.filter((r) => r.via === 'xhr');
  }

  calls(method, pattern) {
    return this.requests.filter((r) => r.via === 'fetch' && r.method === method
      && pattern.test(r.url));
  }

  async handleFetch(url, init) {
    const method = (init.method || 'GET').toUpperCase();
    const body = typeof init.body === 'string' ? JSON.parse(init.body) : init.body;
    const req = { via: 'fetch', method, url, headers: init.headers || {}, body };
    this.requests.push(req);
    if (init.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    const route = this.routes.find(([m, re]) => m === method && re.test(url));
    if (!route) {
      return json(404, { error: { code: 'not_found', message: `no route ${method} ${url}` } });
    }
    const res = await route[2](req, url.match(route[1]));
    if (init.signal?.aborted) throw new DOMException('aborted', 'AbortError');
    return json(res.status ?? 200, res.body, res.headers);
  }
}

function json(status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  return new Response(status === 204 ? null : text, {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}

/** An asset JSON as GET /assets/{id} returns it. */
export function assetJson(id, extra = {}) {
  return { id, profile: 'avatar', state: 'validating', content_type: 'image/png', byte_size: 10,
    variants: {}, ...extra };
}

/** A File of `size` bytes. */
export function makeFile(size, name = 'me.png', type = 'image/png', lastModified = 1700000000000) {
  return new File([new Uint8Array(size).fill(7)], name, { type, lastModified });
}
