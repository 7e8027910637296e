import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PACKAGE_ROOT } from '../package-root.js';

/** Where `npm run build` (scripts/build-browser.mjs) puts the browser script. */
export const BROWSER_DIST_DIR = join(PACKAGE_ROOT, 'dist', 'browser');

/** dist/browser/manifest.json, written by scripts/build-browser.mjs. */
export interface BrowserScriptManifest {
  /** `promstream.<hash>.js` */
  readonly file: string;
  readonly hash: string;
  /** Subresource Integrity value: `sha384-<base64>`. */
  readonly integrity: string;
  readonly bytes: number;
  readonly gzipBytes: number;
}

/** The built script in memory, as the aggregator serves it. */
export interface BrowserScript {
  readonly manifest: BrowserScriptManifest;
  readonly body: Uint8Array;
  readonly gzipped: Uint8Array;
}

export class BrowserScriptMissing extends Error {
  readonly code = 'BROWSER_SCRIPT_MISSING';
}

function isManifest(v: unknown): v is BrowserScriptManifest {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  return typeof m.file === 'string' && /^promstream\.[0-9a-f]+\.js$/.test(m.file) && typeof m.hash === 'string' && m.file === `promstream.${m.hash}.js`
    && typeof m.integrity === 'string' && m.integrity.startsWith('sha384-') && typeof m.bytes === 'number' && typeof m.gzipBytes === 'number';
}

/** Reads dist/browser; throws BrowserScriptMissing naming what is missing (run `npm run build`). */
export function loadBrowserScript(dir: string = BROWSER_DIST_DIR): BrowserScript {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new BrowserScriptMissing(`${manifestPath} is missing; run npm run build`);
  const manifest: unknown = JSON.parse(readFileSync(manifestPath, 'utf8'));
  if (!isManifest(manifest)) throw new BrowserScriptMissing(`${manifestPath} is not a promstream browser manifest; run npm run build`);
  const scriptPath = join(dir, manifest.file);
  if (!existsSync(scriptPath)) throw new BrowserScriptMissing(`${scriptPath} is missing; run npm run build`);
  const body = readFileSync(scriptPath);
  return { manifest, body, gzipped: gzipSync(body, { level: 9 }) };
}
