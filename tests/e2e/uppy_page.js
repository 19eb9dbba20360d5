// The test page's script (bundled by uppy_flow.mjs with esbuild): @uppy/core + @uppy/tus
// uploading the chosen file to the demo's tus endpoint, same origin. Everything it sees is
// kept in window.__uppy for the driver to read.
import Uppy from '@uppy/core';
import Tus from '@uppy/tus';

const state = { progress: [], responses: [], metadata: null, afterResponseAssetId: null,
  success: null, error: null, result: null };
window.__uppy = state;

const uppy = new Uppy({ autoProceed: false });
uppy.use(Tus, {
  endpoint: '/rindle/tus/avatar/',
  chunkSize: 1024 * 1024,
  retryDelays: [0, 1000, 3000],
  allowedMetaFields: ['filename', 'filetype'],
  removeFingerprintOnSuccess: true,
  onBeforeRequest: (req) => {
    if (req.getMethod() === 'POST') state.metadata = req.getHeader('Upload-Metadata') || null;
  },
  onAfterResponse: (req, res) => {
    state.responses.push({ method: req.getMethod(), status: res.getStatus(),
      offset: res.getHeader('Upload-Offset') || null });
    const id = res.getHeader('Rindle-Asset-Id');
    if (id) state.afterResponseAssetId = id;
  },
});
uppy.on('upload-progress', (_file, p) => state.progress.push(p.bytesUploaded));
uppy.on('upload-success', (_file, response) => {
  const xhr = response.body && response.body.xhr;
  state.success = {
    uploadURL: response.uploadURL || null,
    assetId: xhr ? xhr.getResponseHeader('Rindle-Asset-Id') : null,
    sessionId: xhr ? xhr.getResponseHeader('Rindle-Session-Id') : null,
  };
});
uppy.on('upload-error', (_file, err, response) => {
  state.error = { message: String((err && err.message) || err),
    status: response ? response.status : null };
});

document.getElementById('file').addEventListener('change', (event) => {
  const file = event.target.files[0];
  uppy.addFile({ name: file.name, type: file.type, data: file,
    meta: { filename: file.name, filetype: file.type } });
  uppy.upload().then(
    (r) => { state.result = { successful: r.successful.length, failed: r.failed.length }; },
    (err) => { state.error = { message: String((err && err.message) || err) }; },
  );
});
