// @vitest-environment node
// The committed outputs in rindle/static match the sources and the pinned packages.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundle } from '../scripts/build.mjs';
import { JS_DIR, STATIC_DIR, packageDir } from '../scripts/paths.mjs';
import { version } from '../src/index.js';

const pkg = JSON.parse(readFileSync(join(JS_DIR, 'package.json'), 'utf8'));
const manifest = JSON.parse(readFileSync(join(STATIC_DIR, 'manifest.json'), 'utf8'));
const installed = (name) => JSON.parse(readFileSync(join(packageDir(name), 'package.json'),
  'utf8')).version;

describe('rindle/static', () => {
  it('holds the bundle built from js/src (run `npm run build --prefix js` if this fails)', async () => {
    const built = await bundle();
    expect(readFileSync(join(STATIC_DIR, 'rindle.js'), 'utf8') === built.js).toBe(true);
    expect(readFileSync(join(STATIC_DIR, 'rindle.js.map'), 'utf8') === built.map).toBe(true);
    expect(manifest['rindle.js']).toBe(built.name);
    expect(readFileSync(join(STATIC_DIR, built.name), 'utf8') === built.js).toBe(true);
  });

  it('pins htmx 2.0.x, htmx-ext-sse 2.2.x and htmx-ext-ws 2.0.x exactly', () => {
    expect(pkg.dependencies['htmx.org']).toMatch(/^2\.0\.\d+$/);
    expect(pkg.dependencies['htmx-ext-sse']).toMatch(/^2\.2\.\d+$/);
    expect(pkg.dependencies['htmx-ext-ws']).toMatch(/^2\.0\.\d+$/);
    expect(installed('htmx.org')).toBe(pkg.dependencies['htmx.org']);
  });

  it('names the vendored files with their versions in manifest.json', () => {
    expect(manifest).toEqual({
      'htmx.js': `htmx-${installed('htmx.org')}.min.js`,
      'htmx-ext-sse.js': `htmx-ext-sse-${installed('htmx-ext-sse')}.js`,
      'htmx-ext-ws.js': `htmx-ext-ws-${installed('htmx-ext-ws')}.js`,
      'rindle.js': expect.stringMatching(/^rindle\.[0-9a-f]{8}\.js$/),
    });
    const sources = {
      'htmx.js': ['htmx.org', 'dist/htmx.min.js'],
      'htmx-ext-sse.js': ['htmx-ext-sse', 'dist/sse.min.js'],
      'htmx-ext-ws.js': ['htmx-ext-ws', 'dist/ws.min.js'],
    };
    for (const [logical, [name, source]] of Object.entries(sources)) {
      const file = join(STATIC_DIR, manifest[logical]);
      expect(existsSync(file), manifest[logical]).toBe(true);
      expect(readFileSync(file).equals(readFileSync(join(packageDir(name), source)))).toBe(true);
    }
  });

  it('keeps version in src/index.js in step with package.json', () => {
    expect(version).toBe(pkg.version);
  });
});
