// Upload one file with the REAL @uppy/core + @uppy/aws-s3 6.x (Companion mode) in Node 20.
//
//   node run_uppy.mjs <companion-endpoint> <file> <mode> [profile]
//
// <companion-endpoint> is Rindle's router URL (e.g. http://127.0.0.1:8000/rindle); Uppy appends
// /s3/... itself. <mode>:
//   single     Uppy's default single-request path (GET /s3/params + S3 POST policy), plus the
//              documented one-line `upload-success` hook that calls /s3/params/complete
//   multipart  `shouldUseMultipart: true`, nothing else: the plain, hook-free configuration
//   abort      like multipart, but the file is removed after its first part (Uppy aborts)
//
// Prints one JSON line: {successful, failed, completion, requests}.
//
// Node has fetch, Blob, File and FormData, but no XMLHttpRequest, which @uppy/core's `fetcher`
// uses for the bytes sent to S3. The small shim below provides it on top of fetch. It reports
// upload progress once, when the body is sent. Node also has no CORS: in a browser the bucket's
// CORS must expose ETag (see docs/guides/uppy.md).
import { readFile } from 'node:fs/promises'
import { basename, extname } from 'node:path'
import AwsS3 from '@uppy/aws-s3'
import Uppy from '@uppy/core'

const [endpoint, path, mode = 'multipart', profile = 'clip'] = process.argv.slice(2)
if (!endpoint || !path || !['single', 'multipart', 'abort'].includes(mode)) {
  console.error('usage: node run_uppy.mjs <companion-endpoint> <file> single|multipart|abort [profile]')
  process.exit(2)
}

// --- every request, recorded and awaited before exit -------------------------------------------

const requests = []
const pending = new Set()
const nativeFetch = globalThis.fetch

function track(promise) {
  pending.add(promise)
  promise.finally(() => pending.delete(promise)).catch(() => {})
  return promise
}

globalThis.fetch = (input, init = {}) => {
  const url = String(input instanceof Request ? input.url : input)
  const entry = { method: init.method || 'GET', url: url.split('?')[0], via: 'fetch' }
  requests.push(entry)
  return track(
    nativeFetch(input, init).then((res) => {
      entry.status = res.status
      return res
    }),
  )
}

function bodySize(body) {
  if (body == null) return 0
  if (typeof body === 'string') return Buffer.byteLength(body)
  if (body instanceof Blob) return body.size
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength
  if (body instanceof FormData) {
    let n = 0
    for (const [, v] of body) n += typeof v === 'string' ? Buffer.byteLength(v) : v.size
    return n
  }
  return 0
}

class FetchXMLHttpRequest {
  constructor() {
    this.readyState = 0
    this.status = 0
    this.statusText = ''
    this.responseText = ''
    this.response = ''
    this.responseType = ''
    this.withCredentials = false
    this.upload = { onprogress: null }
    this.onload = null
    this.onerror = null
    this.onabort = null
    this._headers = {}
    this._controller = new AbortController()
    this._response = null
  }

  open(method, url) {
    this._method = method
    this._url = url
    this.readyState = 1
  }

  setRequestHeader(name, value) {
    this._headers[name] = value
  }

  getResponseHeader(name) {
    return this._response ? this._response.headers.get(name) : null
  }

  getAllResponseHeaders() {
    if (!this._response) return ''
    return [...this._response.headers].map(([k, v]) => `${k}: ${v}\r\n`).join('')
  }

  abort() {
    this._controller.abort()
  }

  send(body) {
    const entry = { method: this._method, url: String(this._url).split('?')[0], via: 'xhr' }
    requests.push(entry)
    track(this.#run(body ?? undefined, entry))
  }

  async #run(body, entry) {
    try {
      const res = await nativeFetch(this._url, {
        method: this._method,
        headers: this._headers,
        body,
        signal: this._controller.signal,
      })
      const text = await res.text()
      const total = bodySize(body)
      this.upload.onprogress?.({ lengthComputable: true, loaded: total, total })
      this._response = res
      this.status = res.status
      this.statusText = res.statusText
      this.responseText = text
      this.response = text
      this.readyState = 4
      entry.status = res.status
      this.onload?.()
    } catch (err) {
      this.readyState = 4
      entry.error = String(err && err.name)
      if (this._controller.signal.aborted) this.onabort?.()
      else this.onerror?.(err)
    }
  }
}

globalThis.XMLHttpRequest = FetchXMLHttpRequest

// --- the adopter's Uppy configuration (docs/guides/uppy.md) --------------------------------------

const uppy = new Uppy({
  meta: { profile },
  // Companion's protocol carries no file size; Rindle needs it to bind part sizes and limits.
  onBeforeFileAdded: (file) => ({ ...file, meta: { ...file.meta, size: file.size } }),
})
uppy.use(AwsS3, { companionEndpoint: endpoint, shouldUseMultipart: mode !== 'single' })

let completion = null
if (mode === 'single') {
  // The one line for Uppy's single-request path: it has no completion call of its own.
  uppy.on('upload-success', (file, res) => {
    completion = fetch(`${endpoint}/s3/params/complete?key=${encodeURIComponent(res.body.key)}`, { method: 'POST' })
  })
}

// --- the file ------------------------------------------------------------------------------------

const TYPES = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.bin': 'application/octet-stream' }
const data = await readFile(path)
const file = new File([data], basename(path), { type: TYPES[extname(path).toLowerCase()] || '' })
const fileId = uppy.addFile(file)

if (mode === 'abort') {
  uppy.on('s3-multipart:part-uploaded', (f, part) => {
    if (part.PartNumber === 1) uppy.removeFile(fileId)
  })
}

const errors = []
uppy.on('upload-error', (f, err) => errors.push({ name: f.name, error: String(err && err.message) }))

const result = await uppy.upload()
let completed = null
if (completion) {
  const res = await completion
  completed = { status: res.status, body: await res.json() }
}
// Uppy's abort of an S3 multipart upload is fire-and-forget: wait for it (and anything else).
while (pending.size) await Promise.allSettled([...pending])

const out = {
  successful: (result?.successful ?? []).map((f) => ({
    name: f.name,
    key: f.response?.body?.key,
    location: f.response?.uploadURL,
  })),
  failed: (result?.failed ?? []).map((f) => ({ name: f.name, error: String(f.error) })),
  errors,
  completion: completed,
  requests,
}
uppy.destroy()
process.stdout.write(`${JSON.stringify(out)}\n`)
process.exit(0)
