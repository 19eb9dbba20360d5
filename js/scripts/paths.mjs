// Shared paths and the manifest writer of the build and vendor scripts.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const JS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const STATIC_DIR = join(JS_DIR, '..', 'rindle', 'static');
export const MANIFEST = join(STATIC_DIR, 'manifest.json');

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
