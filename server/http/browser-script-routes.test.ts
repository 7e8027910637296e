import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { BrowserScript } from './browser-script.js';
import { browserScriptRoutes, loadBrowserScriptRoutes } from './browser-script-routes.js';
import type { HttpRequest } from '../transport/types.js';

const body = Buffer.from('"use strict";(()=>{})();\n');
const script: BrowserScript = {
  manifest: { file: 'promstream.0123456789ab.js', hash: '0123456789ab', integrity: 'sha384-x', bytes: body.length, gzipBytes: 0 },
  body,
  gzipped: gzipSync(body),
};
const route = browserScriptRoutes(script);
const get = (p: string, headers: Record<string, string> = {}, method = 'GET'): ReturnType<typeof route> => route({ method, path: p, query: '', headers } satisfies HttpRequest);

describe('browser script routes', () => {
  it('/promstream.js: short max-age, ETag, CORS and CORP for any page, nosniff', () => {
    const r = get('/promstream.js');
    expect(r).toMatchObject({ status: 200, body });
    expect(r?.headers).toMatchObject({
      'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=300', etag: '"0123456789ab"',
      'access-control-allow-origin': '*', 'cross-origin-resource-policy': 'cross-origin', 'x-content-type-options': 'nosniff',
      vary: 'accept-encoding', 'content-length': String(body.length),
    });
  });

  it('/promstream.<hash>.js: the same bytes, immutable for a year; another hash is not found', () => {
    const r = get('/promstream.0123456789ab.js');
    expect(r).toMatchObject({ status: 200, body });
    expect(r?.headers?.['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(get('/promstream.ffffffffffff.js')).toBeNull();
    expect(get('/other.js')).toBeNull();
  });

  it('gzip when asked for (not with q=0), under its own ETag', () => {
    const r = get('/promstream.js', { 'accept-encoding': 'br, gzip;q=0.8, deflate' });
    expect(r?.headers).toMatchObject({ 'content-encoding': 'gzip', etag: '"0123456789ab-gzip"' });
    expect(gunzipSync(r!.body as Uint8Array)).toEqual(body);
    for (const ae of ['gzip;q=0', 'identity', 'deflate, br', 'x-gzip-not']) {
      expect(get('/promstream.js', { 'accept-encoding': ae })?.headers?.['content-encoding'], ae).toBeUndefined();
    }
  });

  it('answers 304 without a body to a matching If-None-Match (either tag, weak, in a list, or *)', () => {
    for (const inm of ['"0123456789ab"', 'W/"0123456789ab"', '"old", "0123456789ab-gzip"', '*']) {
      const r = get('/promstream.js', { 'if-none-match': inm });
      expect(r?.status, inm).toBe(304);
      expect(r?.body, inm).toBeUndefined();
      expect(r?.headers?.etag).toBe('"0123456789ab"');
      // the length of the 200 it stands for (RFC 9110 §8.6): the uWS transport announces it
      expect(r?.headers?.['content-length']).toBe(String(body.length));
    }
    expect(get('/promstream.js', { 'if-none-match': '"another"' })?.status).toBe(200);
  });

  it('GET and HEAD only', () => {
    expect(get('/promstream.js', {}, 'HEAD')?.status).toBe(200);
    expect(get('/promstream.js', {}, 'POST')).toMatchObject({ status: 405, headers: { allow: 'GET, HEAD' } });
  });

  it('without a build (dist/browser missing) it warns once and answers 404', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'promstream-no-browser-'));
    try {
      const lines: string[] = [];
      const log = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(chunk.toString()), cb()) }));
      const { route: missing, script: none } = loadBrowserScriptRoutes(log, dir);
      expect(none).toBeNull();
      for (let i = 0; i < 3; i++) expect(missing({ method: 'GET', path: '/promstream.js', query: '', headers: {} })).toBeNull();
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: 40, msg: expect.stringContaining('/promstream.js is not available') });
      expect(lines[0]).toContain('npm run build');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
