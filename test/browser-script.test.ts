/**
 * The built browser script (dist/browser, `npm run build`): within budget, its integrity value true,
 * served with the right headers on both transports, and the README snippet the same as `promstream snippet`.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../server/index.js';
import { BROWSER_DIST_DIR, loadBrowserScript } from '../server/http/browser-script.js';
import { renderSnippet } from '../server/http/browser-snippet.js';
import { describeEachTransport, startTestServer } from './support/server-harness.js';
import { REPO_ROOT, runCli } from './support/spawn-cli.js';

/** The budget for the gzipped script, every collector in it. */
const GZIP_BUDGET_BYTES = 16 * 1024;
const manifest = loadBrowserScript().manifest;
const built = readFileSync(path.join(BROWSER_DIST_DIR, manifest.file));
/** What scripts/build-browser.mjs measured: the script, the client alone, and what each collector adds (gzipped bytes). */
const sizes = JSON.parse(readFileSync(path.join(BROWSER_DIST_DIR, 'sizes.json'), 'utf8')) as { script: number; budget: number; client: number; collectors: Record<string, number> };
const COLLECTORS = ['routes', 'page-metrics', 'api', 'errors'] as const;

function request(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the built browser script', () => {
  it(`stays within ${GZIP_BUDGET_BYTES / 1024} KiB gzipped`, () => {
    const gzipBytes = gzipSync(built, { level: 9 }).length;
    console.info(`browser script: ${built.length} bytes, ${gzipBytes} gzipped (budget ${GZIP_BUDGET_BYTES})`);
    expect(gzipBytes).toBeLessThanOrEqual(GZIP_BUDGET_BYTES);
    expect(manifest.gzipBytes).toBe(gzipBytes);
    expect(manifest.bytes).toBe(built.length);
  });

  it("measures each collector, and the README lists what the build measured", () => {
    expect(sizes).toMatchObject({ script: manifest.gzipBytes, budget: GZIP_BUDGET_BYTES });
    expect(Object.keys(sizes.collectors)).toEqual([...COLLECTORS]);
    for (const name of COLLECTORS) expect(sizes.collectors[name], name).toBeGreaterThan(0);
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const rows = [`| the client alone (\`promstream/client\`) | ${sizes.client} B |`, ...COLLECTORS.map((n) => `| \`promstream/collectors/${n}\` | +${sizes.collectors[n]} B |`), `| the script, every collector in it | ${sizes.script} B |`];
    const missing = rows.filter((r) => !readme.includes(r));
    if (missing.length > 0) throw new Error(`README's bundle sizes (section "What is collected") are out of date; the build measured:\n${rows.join('\n')}`);
  });

  it('bundlers take only the collectors a page imports (package exports, sideEffects: false)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'promstream-treeshake-'));
    try {
      mkdirSync(path.join(dir, 'node_modules'));
      symlinkSync(REPO_ROOT, path.join(dir, 'node_modules', 'promstream'), 'dir');
      const bundle = async (imports: string): Promise<string> => {
        const out = await build({
          stdin: { contents: imports, resolveDir: dir, sourcefile: 'page.js' }, bundle: true, format: 'esm', platform: 'browser', minify: true, write: false, logLevel: 'silent',
        });
        return out.outputFiles[0]!.text;
      };
      // The browser build of the codec (package.json's browser field swaps the encoder): no msgpackr.
      const clientOnly = await build({
        stdin: { contents: "export { createClient } from 'promstream/client';\n", resolveDir: dir, sourcefile: 'page.js' }, bundle: true, format: 'esm', platform: 'browser', minify: true, write: false, metafile: true, logLevel: 'silent',
      });
      const inputs = Object.keys(clientOnly.metafile.inputs);
      expect(inputs.filter((f) => /node_modules\/msgpackr/.test(f))).toEqual([]);
      expect(inputs.some((f) => f.endsWith('dist/protocol/msgpack-browser-encoder.js'))).toBe(true);
      const errorsOnly = await bundle("import { createClient } from 'promstream/client';\nimport { startErrorMetrics } from 'promstream/collectors/errors';\nexport const start = (url) => startErrorMetrics(createClient({ url }));\n");
      expect(errorsOnly).toContain('browser_errors_total');
      for (const other of ['page_views_total', 'http_client_request_duration_seconds', 'largest-contentful-paint']) expect(errorsOnly, other).not.toContain(other);
      const all = await bundle(COLLECTORS.map((n) => `export * from 'promstream/collectors/${n}';`).join('\n'));
      for (const name of ['browser_errors_total', 'page_views_total', 'http_client_request_duration_seconds', 'largest-contentful-paint']) expect(all, name).toContain(name);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is one classic script (an IIFE), the same bytes under both names, with a true integrity value and hash', () => {
    expect(readFileSync(path.join(BROWSER_DIST_DIR, 'promstream.js'))).toEqual(built);
    const digest = createHash('sha384').update(built).digest();
    expect(manifest.integrity).toBe(`sha384-${digest.toString('base64')}`);
    expect(manifest.file).toBe(`promstream.${digest.toString('hex').slice(0, 12)}.js`);
    const text = built.toString('utf8');
    expect(text.startsWith('"use strict";(()=>{')).toBe(true);
    expect(text).not.toMatch(/\bimport\s*\(|^\s*(import|export)\s/m);
    // msgpackr is swapped for the compact codec in the bundle
    expect(text).not.toContain('msgpackr');
  });

  it('the README snippet is what `promstream snippet` prints', async () => {
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const expected = renderSnippet(manifest, { baseUrl: 'https://metrics.example.com', labels: { app: 'student' } });
    const cli = await runCli(['snippet', '--url', 'https://metrics.example.com', '--labels', 'app=student']);
    expect(cli).toMatchObject({ code: 0, stdout: expected, stderr: '' });
    if (!readme.includes(`\`\`\`html\n${expected}\`\`\``)) {
      throw new Error(`README's snippet (section Browser) is out of date: the script changed (client/ or protocol/). Paste the output of\n  node bin/promstream.js snippet --url https://metrics.example.com --labels app=student\ninto it:\n\n${expected}`);
    }
  });
});

describeEachTransport('the browser script served over %s', (transport) => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('/promstream.js and /promstream.<hash>.js: bytes, gzip, caching, ETag and 304, CORS, CORP', async () => {
    server = await startTestServer(transport);
    const base = `http://127.0.0.1:${server.port}`;

    const plain = await request(`${base}/promstream.js`);
    expect(plain.status).toBe(200);
    expect(plain.body).toEqual(built);
    expect(plain.headers).toMatchObject({
      'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=300', etag: `"${manifest.hash}"`,
      'access-control-allow-origin': '*', 'cross-origin-resource-policy': 'cross-origin', 'content-length': String(built.length),
    });

    const gz = await request(`${base}/promstream.js`, { 'accept-encoding': 'gzip, deflate' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body)).toEqual(built);

    const revalidated = await request(`${base}/promstream.js`, { 'if-none-match': plain.headers.etag! });
    expect(revalidated.status).toBe(304);
    expect(revalidated.body.length).toBe(0);

    const pinned = await request(`${base}/${manifest.file}`, { 'accept-encoding': 'gzip' });
    expect(pinned.status).toBe(200);
    expect(pinned.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(pinned.headers['access-control-allow-origin']).toBe('*');
    expect(gunzipSync(pinned.body)).toEqual(built);

    expect((await request(`${base}/promstream.000000000000.js`)).status).toBe(404);
    const head = await request(`${base}/promstream.js`, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
  });
});
