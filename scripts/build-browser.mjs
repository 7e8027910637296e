#!/usr/bin/env node
/**
 * Builds the browser script the aggregator serves (part of `npm run build`, after tsc):
 *
 *   dist/browser/promstream.js          the evergreen copy, served with a short max-age and an ETag
 *   dist/browser/promstream.<hash>.js   the same bytes under a content hash, served immutable
 *   dist/browser/manifest.json          { file, hash, integrity (SRI sha384), bytes, gzipBytes }
 *
 * One classic script (an IIFE, ES2018), minified, from client/browser-snippet-entry.ts.
 * protocol/msgpack-node-encoder.ts (msgpackr) is swapped for protocol/msgpack-browser-encoder.ts (same
 * bytes on the wire, a tenth of the size). The build fails when the gzipped script exceeds the budget.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT_DIR = join(ROOT, 'dist', 'browser');
const ENTRY = join(ROOT, 'client', 'browser-snippet-entry.ts');
const BROWSER_ENCODER = join(ROOT, 'protocol', 'msgpack-browser-encoder.ts');
/** The budget for the gzipped script. */
export const GZIP_BUDGET_BYTES = 20 * 1024;

/** codec.ts imports ./msgpack-node-encoder.js; the bundle gets the browser encoder, same exports. */
const browserEncoder = {
  name: 'browser-msgpack-encoder',
  setup(b) {
    b.onResolve({ filter: /\/msgpack-node-encoder\.js$/ }, () => ({ path: BROWSER_ENCODER }));
    // Anything else pulling msgpackr into the bundle is a mistake (28 KB): fail the build.
    b.onResolve({ filter: /^msgpackr$/ }, (args) => ({ errors: [{ text: `msgpackr must not reach the browser bundle (imported by ${args.importer})` }] }));
  },
};

const result = await build({
  entryPoints: [ENTRY],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2018',
  minify: true,
  write: false,
  legalComments: 'eof',
  plugins: [browserEncoder],
  logLevel: 'warning',
});
const code = result.outputFiles[0].contents;

const sha384 = createHash('sha384').update(code).digest();
const hash = sha384.toString('hex').slice(0, 12);
const file = `promstream.${hash}.js`;
const gzipBytes = gzipSync(code, { level: 9 }).length;
const manifest = { file, hash, integrity: `sha384-${sha384.toString('base64')}`, bytes: code.length, gzipBytes };

await mkdir(OUT_DIR, { recursive: true });
// Only the current hash is served: an older one left here would be served as if it were current.
for (const old of await readdir(OUT_DIR)) if (/^promstream\.[0-9a-f]+\.js$/.test(old)) await rm(join(OUT_DIR, old));
await writeFile(join(OUT_DIR, 'promstream.js'), code);
await writeFile(join(OUT_DIR, file), code);
await writeFile(join(OUT_DIR, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`dist/browser/${file}: ${kib(code.length)}, ${kib(gzipBytes)} gzipped (budget ${kib(GZIP_BUDGET_BYTES)})`);
if (gzipBytes > GZIP_BUDGET_BYTES) {
  console.error(`build-browser: the gzipped script is ${gzipBytes} bytes, above the budget of ${GZIP_BUDGET_BYTES}`);
  process.exit(1);
}
