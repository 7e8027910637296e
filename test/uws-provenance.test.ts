/**
 * The installed uWebSockets.js packages are the bytes docs/UWS-PROVENANCE.md records: the version pin in
 * package.json, the sha512 in package-lock.json, and the sha256 of each text file and linux binary. A
 * republished, swapped or locally altered package fails here, loudly, before anything runs on it.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { describeRequiring } from './support/prometheus.js';
import { REPO_ROOT } from './support/spawn-cli.js';

const DOC = path.join(REPO_ROOT, 'docs/UWS-PROVENANCE.md');
const MODULES = path.join(REPO_ROOT, 'node_modules');
const BTC = '@btc-vision/uwebsockets.js';
const TRUFFLE_ALIAS = 'uWebSockets.js';

interface Recorded {
  readonly bytes: number;
  readonly sha256: string;
}

/** The doc's table rows: | `file` | bytes | `sha256` |, keyed by the path under node_modules. */
function recorded(): Map<string, Recorded> {
  const rows = new Map<string, Recorded>();
  for (const m of readFileSync(DOC, 'utf8').matchAll(/^\| `([^`]+)` \| (\d+) \| `([0-9a-f]{64})` \|$/gm)) rows.set(m[1]!, { bytes: Number(m[2]), sha256: m[3]! });
  return rows;
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const json = (file: string): Record<string, unknown> => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

it('package.json pins @btc-vision/uwebsockets.js to exactly 20.57.0 and the lockfile to the sha512 the doc records', () => {
  const manifest = json(path.join(REPO_ROOT, 'package.json')) as { optionalDependencies: Record<string, string>; dependencies: Record<string, string> };
  expect(manifest.optionalDependencies).toEqual({ [BTC]: '20.57.0', [TRUFFLE_ALIAS]: 'npm:@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0' });
  expect(Object.keys(manifest.dependencies)).not.toContain(BTC);
  const lock = json(path.join(REPO_ROOT, 'package-lock.json')) as { packages: Record<string, { version?: string; integrity?: string; optional?: boolean; hasInstallScript?: boolean }> };
  const entry = lock.packages[`node_modules/${BTC}`];
  const integrity = /`(sha512-[A-Za-z0-9+/=]+)`/.exec(readFileSync(DOC, 'utf8').split('\n').find((l) => l.startsWith('| integrity')) ?? '')?.[1];
  expect(integrity).toBe('sha512-SuPpEjSKZ7P58L/27BXXsrGsMwLmPupfYny8oJsOmFZ4+zX7Ca97nBPtZ3ngKbfeDZzTyi7rXri74INGerhugg==');
  expect(entry).toEqual({ version: '20.57.0', integrity, license: 'Apache-2.0', optional: true });
  expect(lock.packages['node_modules/uWebSockets.js']).toMatchObject({ version: '20.30.0-unofficial.0', integrity: 'sha512-r5X0aOQcuT6pLwTRLD+mPnAM/nlKtvIK4Z+My++A8tTOR0qTjNRx8UB8jzRj3D+p9PMAp5LnpCUUGmz7/TppwA==' });
});

const describeInstalled = describeRequiring({
  what: `${BTC} and the @trufflesuite alias in node_modules`,
  available: () => existsSync(path.join(MODULES, BTC, 'package.json')) && existsSync(path.join(MODULES, TRUFFLE_ALIAS, 'package.json')),
  installHint: 'npm ci (without --omit=optional)',
});

describeInstalled('the installed uWebSockets.js packages', () => {
  it('every text file and linux binary of @btc-vision/uwebsockets.js, and the alias\'s linux-x64 binaries, have the recorded size and sha256', () => {
    const rows = recorded();
    expect(rows.size).toBe(15);
    const installed = [
      ...readdirSync(path.join(MODULES, BTC)).filter((f) => !/^uws_(darwin|win32)_/.test(f)).map((f) => `${BTC}/${f}`),
      ...readdirSync(path.join(MODULES, TRUFFLE_ALIAS, 'binaries')).filter((f) => f.startsWith('uws_linux_x64_')).map((f) => `${TRUFFLE_ALIAS}/binaries/${f}`),
    ].sort();
    // Nothing unrecorded, nothing missing.
    expect(installed).toEqual([...rows.keys()].sort());
    const actual = Object.fromEntries(installed.map((f) => [f, { bytes: statSync(path.join(MODULES, f)).size, sha256: sha256(path.join(MODULES, f)) }]));
    expect(actual).toEqual(Object.fromEntries(rows));
  });

  it('@btc-vision/uwebsockets.js 20.57.0 has no install scripts, and its binaries cover the Node ABIs the doc names', () => {
    const manifest = json(path.join(MODULES, BTC, 'package.json'));
    expect(manifest).toMatchObject({ name: BTC, version: '20.57.0', license: 'Apache-2.0' });
    expect(manifest.scripts).toBeUndefined();
    const abis = readdirSync(path.join(MODULES, BTC)).flatMap((f) => /^uws_linux_x64_(\d+)\.node$/.exec(f)?.[1] ?? []).sort();
    expect(abis).toEqual(['115', '127', '137', '141']);
  });
});
