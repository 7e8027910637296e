/**
 * Whether the uWS variants of the tests run here, and what they say when they do not.
 *
 * uWebSockets.js is a native binary: where none of the builds loads (Node 24 on glibc < 2.38, say), a
 * uWS test cannot run. The rule, like describeRequiring's for outside tools:
 * - uWS loads: the uWS tests run.
 * - it does not, and PROMSTREAM_TEST_UWS=unavailable:REASON is set: they are skipped with a notice
 *   naming REASON. This is how CI says on purpose that this machine cannot run them (.ci/run runs them
 *   in a container that can).
 * - it does not, nothing is set, CI is set: they run, and fail, naming why uWS does not load.
 * - it does not, nothing is set, no CI: they are skipped with a warning.
 * PROMSTREAM_TEST_UWS=required makes them run (and fail) whatever CI says.
 */
import { describe, it } from 'vitest';
import { formatUwsFailures, loadNativeUws, uwsBinaryName } from '../../server/transport/uws-loader.js';
import { runningInCi } from './prometheus.js';

export const UWS_TEST_ENV = 'PROMSTREAM_TEST_UWS';

export interface UwsTestPolicy {
  /** The uWS tests are defined as tests (they may still fail, which is the point under CI). */
  readonly run: boolean;
  /** Why they do not run, for the notice; null when they run. */
  readonly skipReason: string | null;
  /** What the loader said when no build loads; null when one does. */
  readonly failures: string | null;
}

export function uwsTestPolicy(env: NodeJS.ProcessEnv = process.env, ci: boolean = runningInCi(), load = loadNativeUws): UwsTestPolicy {
  const loaded = load();
  if (loaded.ok) return { run: true, skipReason: null, failures: null };
  const failures = `Node.js ${process.version} needs ${uwsBinaryName()}: ${formatUwsFailures(loaded.failures)}`;
  const setting = env[UWS_TEST_ENV] ?? '';
  if (setting === 'required') return { run: true, skipReason: null, failures };
  const allowed = /^unavailable:(.+)$/s.exec(setting);
  if (allowed !== null) return { run: false, skipReason: `${UWS_TEST_ENV}=unavailable: ${allowed[1]!.trim()}`, failures };
  if (setting !== '') throw new Error(`${UWS_TEST_ENV} must be "required" or "unavailable:REASON", not ${JSON.stringify(setting)}`);
  if (ci) return { run: true, skipReason: null, failures };
  return { run: false, skipReason: `no uWebSockets.js build loads here (not CI, so skipped; set ${UWS_TEST_ENV}=required to fail instead)`, failures };
}

export const uwsTests: UwsTestPolicy = uwsTestPolicy();

let noticed = false;
/** Printed once per test file that has uWS tests, when they do not run. */
function notice(): void {
  if (noticed || uwsTests.skipReason === null) return;
  noticed = true;
  console.warn(`\n!!!! SKIPPED: the uWS variants of these tests do not run: ${uwsTests.skipReason}\n!!!! ${uwsTests.failures}\n`);
}

/** `it` for a test that needs uWS: skipped (with the notice) where the policy says so. */
export function itWithUws(): typeof it | typeof it.skip {
  if (uwsTests.run) return it;
  notice();
  return it.skip;
}

export function describeWithUws(): typeof describe | typeof describe.skip {
  if (uwsTests.run) return describe;
  notice();
  return describe.skip;
}

/** A build promstream installs, as docs/UWS-PROVENANCE.md records it: what it needs to load. */
interface InstalledBuild {
  readonly packageName: string;
  readonly version: string;
  /** Where it sits under node_modules (the trufflesuite one under its alias). */
  readonly dir: string;
  /** linux-x64 Node ABIs it has binaries for. */
  readonly abis: readonly string[];
  /** The newest GLIBC_x.y symbol version its linux-x64 binaries import. */
  readonly glibc: readonly [number, number];
}

/** In the loader's order (uws-loader.ts). */
export const INSTALLED_UWS_BUILDS: readonly InstalledBuild[] = [
  { packageName: '@btc-vision/uwebsockets.js', version: '20.57.0', dir: '@btc-vision/uwebsockets.js', abis: ['115', '127', '137', '141'], glibc: [2, 38] },
  { packageName: '@trufflesuite/uws-js-unofficial', version: '20.30.0-unofficial.0', dir: 'uWebSockets.js', abis: ['93', '108', '115'], glibc: [2, 27] },
];

/** The glibc this process runs on, e.g. [2, 36]; null on another libc. */
export function glibcVersion(): readonly [number, number] | null {
  const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: unknown } }).header;
  const m = typeof header?.glibcVersionRuntime === 'string' ? /^(\d+)\.(\d+)/.exec(header.glibcVersionRuntime) : null;
  return m === null ? null : [Number(m[1]), Number(m[2])];
}

/**
 * The build the loader must pick in this repository (no uWebSockets.js of another project in the
 * way), worked out from the table above rather than by loading anything: the test oracle.
 */
export function expectedUwsBuild(abi: string = process.versions.modules, glibc = glibcVersion()): InstalledBuild | null {
  if (process.platform !== 'linux' || process.arch !== 'x64' || glibc === null) return null;
  const atLeast = (need: readonly [number, number]): boolean => glibc[0] > need[0] || (glibc[0] === need[0] && glibc[1] >= need[1]);
  return INSTALLED_UWS_BUILDS.find((b) => b.abis.includes(abi) && atLeast(b.glibc)) ?? null;
}
