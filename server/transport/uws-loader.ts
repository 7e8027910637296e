/**
 * Finds a native uWebSockets.js and loads its binary directly, never through the package's own
 * JavaScript entry point. Those entry points differ by publisher and misbehave for us when no binary
 * fits: @trufflesuite/uws-js-unofficial prints a warning with a stack trace on stderr and returns a
 * slow ws-based imitation; the authors' build and @btc-vision/uwebsockets.js throw a multi-line error.
 * Loading `uws_<platform>_<arch>_<abi>.node` ourselves gives the same native module (their entry
 * points only require() that file, plus JavaScript helpers promstream does not use) and, when
 * nothing loads, one short reason per candidate for a single log line. This module prints nothing.
 *
 * Candidates, first match wins (README, "Dependencies", says why this order):
 *  1. `uWebSockets.js` as the user's project resolves it (from process.cwd()), when that is another
 *     package directory than promstream's own: e.g. the authors' GitHub build installed by the user
 *     (`npm install uNetworking/uWebSockets.js#v20.57.0`).
 *  2. `@btc-vision/uwebsockets.js` 20.57.0 (a re-publication of the authors' build on npm, binaries in
 *     its root; Node 20/22/24/25, glibc >= 2.38), from promstream's own dependencies or else from the
 *     project's. docs/UWS-PROVENANCE.md records what was checked about it.
 *  3. promstream's `uWebSockets.js` (the npm alias of @trufflesuite/uws-js-unofficial 20.30, binaries
 *     in binaries/; Node 16/18/20 only, older glibc).
 */
import { createRequire } from 'node:module';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type NativeUwsModule = typeof import('uWebSockets.js');

/** Where to look for one package. */
export interface UwsCandidate {
  /** How the candidate is named in a failure: which package, found from where. */
  readonly label: string;
  /** A bare package name, looked up the way require() looks it up from each directory in `from`. */
  readonly specifier: string;
  /** Directories to resolve from, in order; the first one that finds the package is used. */
  readonly from: readonly string[];
  /**
   * The package promstream itself installs under this name (its npm alias). Found under another name,
   * the package was replaced by the user (say, `npm install uNetworking/uWebSockets.js#v20.57.0` in the
   * directory promstream is installed in), and counts as the project's own.
   */
  readonly installs?: string;
}

export interface UwsCandidateFailure {
  readonly candidate: string;
  /** One line, no stack trace. */
  readonly reason: string;
}

/** Which build a loaded uWS is: what the start-up log names. */
export interface UwsBuild {
  /** The name in the package's package.json (an alias shows its real name). */
  readonly packageName: string;
  readonly version: string;
  readonly binaryPath: string;
}

export type UwsLoaderResult =
  | (UwsBuild & {
      readonly ok: true;
      readonly module: NativeUwsModule;
      /** Candidates tried before this one, with why they did not load. */
      readonly passedOver: readonly UwsCandidateFailure[];
    })
  | { readonly ok: false; readonly failures: readonly UwsCandidateFailure[] };

export interface UwsLoaderOptions {
  /** Where the user's project is; process.cwd() by default. */
  readonly cwd?: string;
  /** Replaces the default candidates (see defaultUwsCandidates). */
  readonly candidates?: readonly UwsCandidate[];
}

const ownRequire = createRequire(import.meta.url);
/** Where promstream's own dependencies are resolved from: this file's directory. */
const OWN_DIR = new URL('.', import.meta.url);

/** Subdirectories of a package that hold binaries: the root (authors, @btc-vision), binaries/ (@trufflesuite). */
const BINARY_DIRS = ['', 'binaries'] as const;

const MAX_REASON_CHARS = 240;

/** The file every uWebSockets.js publisher names its binary by. */
export function uwsBinaryName(
  platform: string = process.platform,
  arch: string = process.arch,
  abi: string = process.versions.modules,
): string {
  return `uws_${platform}_${arch}_${abi}.node`;
}

export function defaultUwsCandidates(cwd: string = process.cwd()): UwsCandidate[] {
  const ownDir = realpathSync(OWN_DIR);
  return [
    { label: `uWebSockets.js of the project (${cwd})`, specifier: 'uWebSockets.js', from: [cwd] },
    { label: '@btc-vision/uwebsockets.js', specifier: '@btc-vision/uwebsockets.js', from: [ownDir, cwd] },
    { label: "promstream's uWebSockets.js", specifier: 'uWebSockets.js', from: [ownDir], installs: '@trufflesuite/uws-js-unofficial' },
  ];
}

/** Tries each candidate in order; stops at the first binary that loads and looks like uWS. */
export function loadNativeUws(options: UwsLoaderOptions = {}): UwsLoaderResult {
  const candidates = options.candidates ?? defaultUwsCandidates(options.cwd);
  const dirs = candidates.map(findPackageDir);
  const failures: UwsCandidateFailure[] = [];
  const tried = new Set<string>();
  for (const [index, candidate] of candidates.entries()) {
    const packageDir = dirs[index];
    if (packageDir === undefined) {
      failures.push({ candidate: candidate.label, reason: 'not installed' });
      continue;
    }
    if (tried.has(packageDir)) continue;
    // A package found by a later candidate too is tried once, as that one: the project usually
    // resolves uWebSockets.js to promstream's own, which is then no package of the project's, unless
    // the user put another package there.
    const later = dirs.indexOf(packageDir, index + 1);
    const installs = later === -1 ? undefined : candidates[later]!.installs;
    if (later !== -1 && (installs === undefined || manifestName(packageDir) === installs)) continue;
    tried.add(packageDir);
    const attempt = tryPackage(packageDir);
    if ('reason' in attempt) {
      failures.push({ candidate: candidate.label, reason: oneLine(attempt.reason) });
      continue;
    }
    return { ok: true, ...attempt, passedOver: failures };
  }
  return { ok: false, failures };
}

/** `label: reason; label: reason`, for one log line; a reason that starts with its label stands alone. */
export function formatUwsFailures(failures: readonly UwsCandidateFailure[]): string {
  return failures.map((f) => (f.reason.startsWith(f.candidate) ? f.reason : `${f.candidate}: ${f.reason}`)).join('; ');
}

type Attempt = { module: NativeUwsModule; packageName: string; version: string; binaryPath: string } | { reason: string };

function manifestName(packageDir: string): string | undefined {
  try {
    const manifest: unknown = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
    const name = typeof manifest === 'object' && manifest !== null ? (manifest as Record<string, unknown>).name : undefined;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

function tryPackage(packageDir: string): Attempt {
  let packageName: string;
  let version: string;
  try {
    const manifest: unknown = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
    const fields = typeof manifest === 'object' && manifest !== null ? (manifest as Record<string, unknown>) : {};
    packageName = typeof fields.name === 'string' ? fields.name : '(unnamed)';
    version = typeof fields.version === 'string' ? fields.version : '(no version)';
  } catch (err) {
    return { reason: `${packageDir}/package.json is unreadable (${errorText(err)})` };
  }
  const id = `${packageName}@${version}`;
  const fileName = uwsBinaryName();
  const binaryPath = BINARY_DIRS.map((dir) => join(packageDir, dir, fileName)).find(isFile);
  if (binaryPath === undefined) {
    return { reason: `${id} has no ${fileName} (${binariesFor(packageDir)})` };
  }
  let loaded: unknown;
  try {
    loaded = ownRequire(binaryPath);
  } catch (err) {
    return { reason: `${id}: ${fileName} does not load: ${dlopenReason(errorText(err), binaryPath)}` };
  }
  if (!looksLikeUws(loaded)) return { reason: `${id}: ${fileName} loaded but is no uWS (App, us_listen_socket_close, us_socket_local_port, DISABLED)` };
  return { module: loaded, packageName, version, binaryPath };
}

/** The package directory, symlinks resolved, or undefined when no directory in `from` finds it. */
function findPackageDir(candidate: UwsCandidate): string | undefined {
  for (const from of candidate.from) {
    // The node_modules directories require() would search from there. Resolving the package itself
    // would run into its "exports" (which need not export package.json) and prove nothing more.
    const searched = createRequire(join(from, 'noop.js')).resolve.paths(candidate.specifier) ?? [];
    for (const modules of searched) {
      const dir = join(modules, candidate.specifier);
      if (isFile(join(dir, 'package.json'))) return realpathSync(dir);
    }
  }
  return undefined;
}

/** What the package has for this platform and arch, to say why nothing fits. */
function binariesFor(packageDir: string): string {
  const prefix = `uws_${process.platform}_${process.arch}_`;
  const abis = new Set<string>();
  for (const dir of BINARY_DIRS) {
    let names: string[];
    try {
      names = readdirSync(join(packageDir, dir));
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.startsWith(prefix) && name.endsWith('.node')) abis.add(name.slice(prefix.length, -'.node'.length));
    }
  }
  const here = `this Node.js is ABI ${process.versions.modules}`;
  if (abis.size === 0) return `no ${process.platform}-${process.arch} binaries at all; ${here}`;
  const sorted = [...abis].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  return `${process.platform}-${process.arch} ABIs ${sorted.join(', ')}; ${here}`;
}

/**
 * A dlopen message without the binary's path, which it starts with and may repeat
 * (`(required by /…/x.node)`); a missing glibc symbol version becomes `GLIBC_2.38 not found` with the
 * glibc this process runs on. Exported for its test.
 */
export function dlopenReason(message: string, binaryPath: string, glibcVersion: () => string | undefined = glibcRuntime): string {
  const missing = /`(GLIBC_[0-9.]+)' not found/.exec(message);
  if (missing !== null) {
    const glibc = glibcVersion();
    return `${missing[1]} not found${glibc === undefined ? '' : ` (this system has glibc ${glibc})`}`;
  }
  return message.split(`${binaryPath}: `).join('').split(` (required by ${binaryPath})`).join('');
}

function glibcRuntime(): string | undefined {
  try {
    const header = (process.report.getReport() as { header?: { glibcVersionRuntime?: unknown } }).header;
    return typeof header?.glibcVersionRuntime === 'string' ? header.glibcVersionRuntime : undefined;
  } catch {
    return undefined;
  }
}

/** What the transport calls besides App(): a binary without them is no uWS it can run on. */
function looksLikeUws(loaded: unknown): loaded is NativeUwsModule {
  if (typeof loaded !== 'object' || loaded === null) return false;
  const fields = loaded as Record<string, unknown>;
  return (
    typeof fields.App === 'function' &&
    typeof fields.us_listen_socket_close === 'function' &&
    typeof fields.us_socket_local_port === 'function' &&
    typeof fields.DISABLED === 'number'
  );
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function oneLine(text: string): string {
  const flat = text.replace(/\s*\n\s*/g, ' ').trim();
  return flat.length <= MAX_REASON_CHARS ? flat : `${flat.slice(0, MAX_REASON_CHARS - 1)}…`;
}
