// Bundle js/src into rindle/static/rindle.js (one IIFE defining window.Rindle, tus-js-client
// included), its source map, and a content-hashed copy rindle.<hash>.js named in manifest.json.
// `--check` builds in memory and fails when the committed files are stale.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { JS_DIR, STATIC_DIR, packageDir, readManifest, sameContent, updateManifest } from './paths.mjs';

const HASHED = /^rindle\.[0-9a-f]{8}\.js$/;

/** Build in memory: {js, map, hash, name}. */
export async function bundle() {
  const pkg = JSON.parse(readFileSync(join(JS_DIR, 'package.json'), 'utf8'));
  const tusVersion = JSON.parse(readFileSync(
    join(packageDir('tus-js-client'), 'package.json'), 'utf8')).version;
  const outfile = join(STATIC_DIR, 'rindle.js');
  const result = await esbuild.build({
    absWorkingDir: JS_DIR,
    entryPoints: [join(JS_DIR, 'src', 'browser.js')],
    outfile,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    minify: true,
    sourcemap: true,
    sourcesContent: true,
    legalComments: 'none',
    banner: {
      js: `/*! Rindle uploader ${pkg.version} (MIT) | bundles tus-js-client ${tusVersion} (MIT) | `
        + 'source: js/ in the rindle repository */',
    },
    write: false,
    logLevel: 'warning',
  });
  const byName = Object.fromEntries(result.outputFiles.map((f) => [relative(STATIC_DIR, f.path), f]));
  const js = byName['rindle.js'].text;
  const map = byName['rindle.js.map'].text;
  const hash = createHash('sha256').update(js).digest('hex').slice(0, 8);
  return { js, map, hash, name: `rindle.${hash}.js` };
}

async function main() {
  const check = process.argv.includes('--check');
  const { js, map, name } = await bundle();
  const files = { 'rindle.js': js, 'rindle.js.map': map, [name]: js };
  if (check) {
    const stale = Object.entries(files)
      .filter(([file, content]) => !sameContent(join(STATIC_DIR, file), content))
      .map(([file]) => file);
    if (readManifest()['rindle.js'] !== name) stale.push('manifest.json');
    if (stale.length) {
      console.error(`rindle/static is stale (${stale.join(', ')}): run npm run build --prefix js`);
      process.exit(1);
    }
    console.log(`rindle/static/rindle.js is up to date (${name})`);
    return;
  }
  mkdirSync(STATIC_DIR, { recursive: true });
  for (const old of readdirSync(STATIC_DIR)) {
    if (HASHED.test(old) && old !== name) rmSync(join(STATIC_DIR, old));
  }
  for (const [file, content] of Object.entries(files)) writeFileSync(join(STATIC_DIR, file), content);
  updateManifest({ 'rindle.js': name });
  console.log(`wrote rindle/static/rindle.js, rindle.js.map and ${name} (${js.length} bytes)`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
