// Copy the pinned htmx 2 and its SSE/WebSocket extensions (minified) into rindle/static with
// their versions in the file names, and name them in manifest.json. `--check` only verifies.
import { readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { STATIC_DIR, packageDir, readManifest, sameContent, updateManifest } from './paths.mjs';

/** logical name -> package, its minified build, the versioned file name, stale-file pattern */
const VENDORED = [
  { logical: 'htmx.js', pkg: 'htmx.org', file: 'dist/htmx.min.js', major: 2,
    name: (v) => `htmx-${v}.min.js`, pattern: /^htmx-\d+\.\d+\.\d+.*\.min\.js$/ },
  { logical: 'htmx-ext-sse.js', pkg: 'htmx-ext-sse', file: 'dist/sse.min.js', major: 2,
    name: (v) => `htmx-ext-sse-${v}.js`, pattern: /^htmx-ext-sse-\d+\.\d+\.\d+.*\.js$/ },
  { logical: 'htmx-ext-ws.js', pkg: 'htmx-ext-ws', file: 'dist/ws.min.js', major: 2,
    name: (v) => `htmx-ext-ws-${v}.js`, pattern: /^htmx-ext-ws-\d+\.\d+\.\d+.*\.js$/ },
];

function plan() {
  return VENDORED.map((item) => {
    const dir = packageDir(item.pkg);
    const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    if (Number(version.split('.')[0]) !== item.major) {
      throw new Error(`${item.pkg} ${version} installed; Rindle vendors ${item.pkg} ${item.major}.x `
        + '(htmx-ext-sse 2.2 / htmx-ext-ws 2.0 need htmx 2)');
    }
    return { ...item, version, target: item.name(version), content: readFileSync(join(dir, item.file)) };
  });
}

function main() {
  const check = process.argv.includes('--check');
  const items = plan();
  const manifest = readManifest();
  if (check) {
    const stale = items.filter((i) => !sameContent(join(STATIC_DIR, i.target), i.content)
      || manifest[i.logical] !== i.target).map((i) => i.target);
    if (stale.length) {
      console.error(`rindle/static is stale (${stale.join(', ')}): run npm run vendor --prefix js`);
      process.exit(1);
    }
    console.log(`vendored files are up to date (${items.map((i) => i.target).join(', ')})`);
    return;
  }
  mkdirSync(STATIC_DIR, { recursive: true });
  const existing = readdirSync(STATIC_DIR);
  for (const item of items) {
    for (const old of existing) {
      if (item.pattern.test(old) && old !== item.target) rmSync(join(STATIC_DIR, old));
    }
    writeFileSync(join(STATIC_DIR, item.target), item.content);
  }
  updateManifest(Object.fromEntries(items.map((i) => [i.logical, i.target])));
  console.log(`vendored ${items.map((i) => `${i.pkg}@${i.version} -> ${i.target}`).join(', ')}`);
}

main();
