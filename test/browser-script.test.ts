/**
 * The built browser script (dist/browser, `npm run build`): within budget, its integrity value true,
 * served with the right headers on both transports, and the README snippet the same as `promstream snippet`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../server/index.js';
import { BROWSER_DIST_DIR, loadBrowserScript } from '../server/http/browser-script.js';
import { renderSnippet } from '../server/http/browser-snippet.js';
import { describeEachTransport, startTestServer } from './support/server-harness.js';
import { REPO_ROOT, runCli } from './support/spawn-cli.js';

/** The budget for the gzipped script. */
const GZIP_BUDGET_BYTES = 20 * 1024;
const manifest = loadBrowserScript().manifest;
const built = readFileSync(path.join(BROWSER_DIST_DIR, manifest.file));

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
