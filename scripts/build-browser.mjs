#!/usr/bin/env node
/**
 * Builds the browser script the aggregator serves (part of `npm run build`, after tsc):
 *
 *   dist/browser/promstream.js          the evergreen copy, served with a short max-age and an ETag
 *   dist/browser/promstream.<hash>.js   the same bytes under a content hash, served immutable
 *   dist/browser/manifest.json          { file, hash, integrity (SRI sha384), bytes, gzipBytes }
 *
 *   dist/browser/sizes.json             gzipped bytes of the script, of the client alone, and what each
 *                                       collector adds to it (printed too; the README lists them)
 *
 * One classic script (an IIFE, ES2018), minified, from client/browser-snippet-entry.ts, with every
 * collector. protocol/msgpack-node-encoder.ts (msgpackr) is swapped for protocol/msgpack-browser-encoder.ts
 * (same bytes on the wire, a tenth of the size). The build fails when the gzipped script exceeds the budget.
 *
 * A collector's size is what it adds, minified and gzipped, to a bundle of the browser client alone
 * (`promstream/client`): the bundler's view, where a page imports only the collectors it uses.
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
/** The issue's budget for the gzipped script, every collector included. */
export const GZIP_BUDGET_BYTES = 16 * 1024;

/** `promstream/collectors/<name>` → its module and the function it exports (package.json `exports`). */
const COLLECTORS = {
  routes: ['client/collectors/routes.ts', 'startRoutes'],
  'page-metrics': ['client/page-metrics.ts', 'startPageMetrics'],
  api: ['client/collectors/api.ts', 'startApiMetrics'],
  errors: ['client/collectors/errors.ts', 'startErrorMetrics'],
};

/** codec.ts imports ./msgpack-node-encoder.js; the bundle gets the browser encoder, same exports. */
const browserEncoder = {
  name: 'browser-msgpack-encoder',
  setup(b) {
    b.onResolve({ filter: /\/msgpack-node-encoder\.js$/ }, () => ({ path: BROWSER_ENCODER }));
    // Anything else pulling msgpackr into the bundle is a mistake (28 KB): fail the build.
    b.onResolve({ filter: /^msgpackr$/ }, (args) => ({ errors: [{ text: `msgpackr must not reach the browser bundle (imported by ${args.importer})` }] }));
  },
};

/**
 * The browsers the script is for: those of mid-2021 on (class fields, #private members, `??`, `?.` as written; nothing
 * newer). README "Browser support" says the same.
 */
export const BROWSER_TARGETS = ['chrome91', 'edge91', 'firefox90', 'safari15'];

const common = { bundle: true, platform: 'browser', target: BROWSER_TARGETS, minify: true, write: false, legalComments: 'eof', plugins: [browserEncoder], logLevel: 'warning' };
const result = await build({ ...common, entryPoints: [ENTRY], format: 'iife' });
const code = result.outputFiles[0].contents;

/** Gzipped bytes of an ES module bundle of `source` (imports relative to the repository root). */
const moduleGzipBytes = async (source) => {
  const out = await build({ ...common, stdin: { contents: source, resolveDir: ROOT, sourcefile: 'size-entry.ts', loader: 'ts' }, format: 'esm' });
  return gzipSync(out.outputFiles[0].contents, { level: 9 }).length;
};
const clientOnly = "export { createClient } from './client/browser.ts';\n";
const clientGzipBytes = await moduleGzipBytes(clientOnly);
const collectorGzipBytes = {};
for (const [name, [file, fn]] of Object.entries(COLLECTORS)) {
  collectorGzipBytes[name] = (await moduleGzipBytes(`${clientOnly}export { ${fn} } from './${file}';\n`)) - clientGzipBytes;
}

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
const sizes = { script: gzipBytes, budget: GZIP_BUDGET_BYTES, client: clientGzipBytes, collectors: collectorGzipBytes };
await writeFile(join(OUT_DIR, 'sizes.json'), `${JSON.stringify(sizes, null, 2)}\n`);

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`dist/browser/${file}: ${kib(code.length)}, ${kib(gzipBytes)} gzipped (budget ${kib(GZIP_BUDGET_BYTES)})`);
console.log(`  gzipped, bundled: the client ${clientGzipBytes} B; each collector adds ${Object.entries(collectorGzipBytes).map(([n, b]) => `${n} ${b} B`).join(', ')}`);
if (gzipBytes > GZIP_BUDGET_BYTES) {
  console.error(`build-browser: the gzipped script is ${gzipBytes} bytes, above the budget of ${GZIP_BUDGET_BYTES}`);
  process.exit(1);
}
