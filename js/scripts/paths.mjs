// Shared paths and the manifest writer of the build and vendor scripts.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const JS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const STATIC_DIR = join(JS_DIR, '..', 'rindle', 'static');
export const MANIFEST = join(STATIC_DIR, 'manifest.json');

/** The folder of the installed package `name`, searched where Node looks from js/: js/node_modules,
 *  then the workspace root's node_modules, where `npm ci` at the repository root hoists it. */
export function packageDir(name) {
  const lookup = createRequire(join(JS_DIR, 'package.json')).resolve.paths(name) ?? [];
  const found = lookup.map((dir) => join(dir, name))
    .find((dir) => existsSync(join(dir, 'package.json')));
  if (!found) throw new Error(`${name} is not installed: run npm ci at the repository root`);
  return found;
}

/** The manifest ({logical name: versioned file name}), {} when there is none. */
export function readManifest() {
  if (!existsSync(MANIFEST)) return {};
  return JSON.parse(readFileSync(MANIFEST, 'utf8'));
}

/** Merge `entries` into the manifest and write it with sorted keys. */
export function updateManifest(entries) {
  const merged = { ...readManifest(), ...entries };
  const sorted = Object.fromEntries(Object.keys(merged).sort().map((k) => [k, merged[k]]));
  writeFileSync(MANIFEST, `${JSON.stringify(sorted, null, 2)}\n`);
  return sorted;
}

/** Whether `path` exists and holds exactly `content`. */
export function sameContent(path, content) {
  if (!existsSync(path)) return false;
  const have = readFileSync(path);
  return Buffer.compare(have, Buffer.from(content)) === 0;
}
