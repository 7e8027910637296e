/**
 * The transport tests on Node 24 LTS with uWebSockets.js 20.57, inside Debian 13: this CI host (Debian 12,
 * glibc 2.36) cannot load that build (it needs glibc 2.38), so `npm test` on its Node 24 runs them on ws
 * only (PROMSTREAM_TEST_UWS=unavailable:…, set by .ci/run) and they run here instead.
 *
 * The image (test/container/node24-ci.Containerfile) is the test base image node:24-trixie-slim of
 * test/container/base-image.sh plus openssl. The working tree goes in as a tarball; inside,
 * test/container/run-transport-tests.sh runs `npm ci` (the lockfile's pinned packages, npm's cache
 * kept between runs), says which uWS build loads, and runs the files below under CI=true and
 * PROMSTREAM_TEST_UWS=required, so that a uWS that does not load fails them instead of skipping.
 * `npm run test:container` (vitest.container.config.ts), as root with podman.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/spawn-cli.js';
import { describeWithPodman, podman, podmanEnv, prepareBaseImages, progressLog, streaming, tryPodman } from './podman-tools.js';

const IMAGE = 'localhost/promstream-test/node24-ci:trixie';
const CONTAINER = 'promstream-uws-trixie';
const CACHE = process.env.PROMSTREAM_CACHE_DIR ?? path.join(process.env.HOME ?? '/root', '.cache/promstream');

/** The tests that run each transport and need no browser, in the order they run. */
export const TRANSPORT_TEST_FILES = [
  'server/transport/uws-loader.test.ts',
  'server/transport/transport.test.ts',
  'test/e2e/aggregate.test.ts',
  'test/e2e/bad-input.test.ts',
  'test/e2e/drain.test.ts',
  'test/e2e/hostile.test.ts',
  'test/e2e/latency.test.ts',
  'test/e2e/limits.test.ts',
  'test/e2e/resume.test.ts',
  'test/e2e/tls.test.ts',
  'test/e2e/http-abuse.test.ts',
  'test/e2e/workers.test.ts',
  'test/cli.test.ts',
  'test/browser-script.test.ts',
] as const;

/**
 * Files with uWS variants that do not run here, and why. Every file that has uWS tests is in one list
 * or the other (checked below), so a new one cannot be forgotten.
 */
const NOT_HERE: Readonly<Record<string, string>> = {
  'test/e2e/browser.test.ts': 'needs Chromium',
  'test/soak/soak.test.ts': 'minutes of load; runs in npm test on the host (Node 20, uWS 20.30)',
  'test/soak/storm.test.ts': 'minutes of load; runs in npm test on the host (Node 20, uWS 20.30)',
  'test/soak/sessions.test.ts': '19 000 sockets (ulimit -n 20 000); runs in npm test on the host (Node 20, uWS 20.30)',
  'bench/bench.test.ts': 'the bench smoke run, minutes; runs in npm test on the host',
  'test/deploy/dockerfile.test.ts': 'replays the Dockerfile on the host; the real image is container.test.ts',
  'test/node-lines.test.ts': "fetches Node 24 for the host's CLI; here Node 24 is the image's own",
};

/**
 * Tests that cannot apply on Node 24 and are skipped there by design, by file and test title, and why.
 * Every other skipped test fails the run.
 */
const SKIPPED_ON_NODE_24: ReadonlyArray<readonly [file: string, title: string, why: string]> = [
  [
    'test/e2e/workers.test.ts',
    '--workers 2 is refused with the reason; auto runs one worker and says why',
    'Node ≥ 22.12 shares a port between threads (nodeSharesPorts), so nothing is refused; it runs on the host (Node 20)',
  ],
];

const progress = progressLog('uws-trixie');

/** Files that define uWS variants of tests (through the helpers of test/support). */
function filesWithUwsTests(): string[] {
  const listed = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '*.test.ts'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim().split('\n');
  return listed.filter((file) => {
    const text = readFileSync(path.join(REPO_ROOT, file), 'utf8');
    return /\b(describeEachTransport|itEachTransport|itWithUws|describeWithUws)\b/.test(text) && !file.startsWith('test/support/') && file !== 'test/deploy/uws-trixie.test.ts';
  });
}

it('every test file with uWS variants runs in the container, or is listed with the reason it does not', () => {
  const covered = new Set<string>([...TRANSPORT_TEST_FILES, ...Object.keys(NOT_HERE)]);
  expect(filesWithUwsTests().filter((f) => !covered.has(f))).toEqual([]);
});

interface VitestReport {
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numPassedTests: number;
  testResults: { name: string; status: string; assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[];
}

describeWithPodman('the transport tests on Node 24 + uWebSockets.js 20.57 in Debian 13 (podman)', () => {
  let dir = '';
  let preflight: Record<string, unknown> = {};
  let report: VitestReport | undefined;
  let output = '';

  beforeAll(async () => {
    await prepareBaseImages(progress);
    progress(`podman build ${IMAGE} (test/container/node24-ci.Containerfile)`);
    await podman(['build', '--pull=never', '--layers', '-t', IMAGE, '-f', 'test/container/node24-ci.Containerfile', 'test/container'], 600_000);
    await tryPodman(['rm', '--force', '--time', '0', CONTAINER]);

    dir = await mkdtemp(path.join(tmpdir(), 'promstream-uws-trixie-'));
    await mkdir(path.join(dir, 'in'));
    await mkdir(path.join(dir, 'out'));
    // The working tree as git sees it (tracked and new files, nothing ignored: no node_modules, no dist).
    const files = execFileSync('git', ['ls-files', '-z', '-co', '--exclude-standard'], { cwd: REPO_ROOT });
    execFileSync('tar', ['--null', '-T', '-', '-cf', path.join(dir, 'in/src.tar')], { cwd: REPO_ROOT, input: files });
    const npmCache = path.join(CACHE, 'npm-node24-ci');
    await mkdir(npmCache, { recursive: true });

    progress(`podman run ${IMAGE}: npm ci, then vitest run (${TRANSPORT_TEST_FILES.length} files; a few minutes)`);
    const t0 = performance.now();
    const result = await streaming(
      'podman',
      [
        'run', '--rm', '--name', CONTAINER,
        '-v', `${path.join(dir, 'in')}:/in:ro`, '-v', `${path.join(dir, 'out')}:/out`, '-v', `${npmCache}:/root/.npm`,
        '-v', `${path.join(REPO_ROOT, 'test/container/run-transport-tests.sh')}:/usr/local/bin/run-transport-tests:ro`,
        '-e', 'CI=true', '-e', 'PROMSTREAM_TEST_UWS=required',
        IMAGE, 'run-transport-tests', ...TRANSPORT_TEST_FILES,
      ],
      {
        env: podmanEnv(),
        timeoutMs: 1_500_000,
        // Per file, as vitest reports it, and the script's own lines.
        show: (line) => line.startsWith('[in-container]') || /^\s*(✓|❯|×|FAIL)\s+\S+\.test\.ts/.test(stripVTControlCharacters(line)) || /Test Files|Tests\s/.test(stripVTControlCharacters(line)),
        progress,
      },
    ).catch((err: unknown) => ({ code: 1, signal: null, stdout: String(err), stderr: '' }));
    output = `${result.stdout}\n${result.stderr}`;
    progress(`container done in ${((performance.now() - t0) / 1000).toFixed(0)}s (exit ${String(result.code)})`);
    const out = await readdir(path.join(dir, 'out'));
    if (out.includes('preflight.json')) preflight = JSON.parse(await readFile(path.join(dir, 'out/preflight.json'), 'utf8')) as Record<string, unknown>;
    if (out.includes('report.json')) report = JSON.parse(await readFile(path.join(dir, 'out/report.json'), 'utf8')) as VitestReport;
  }, 1_800_000);

  afterAll(async () => {
    await tryPodman(['rm', '--force', '--time', '0', CONTAINER]);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('loads @btc-vision/uwebsockets.js 20.57.0 for Node 24 (ABI 137) on glibc 2.41', () => {
    expect(preflight, output.slice(-6000)).toMatchObject({
      ok: true,
      packageName: '@btc-vision/uwebsockets.js',
      version: '20.57.0',
      binaryPath: '/app/node_modules/@btc-vision/uwebsockets.js/uws_linux_x64_137.node',
      glibc: '2.41',
    });
    expect(String(preflight.node)).toMatch(/^v24\./);
  });

  it('passes every test of every file, none skipped, the uWS variants included', () => {
    expect(report, `no vitest report\n${output.slice(-6000)}`).toBeDefined();
    const r = report!;
    const failed = r.testResults.flatMap((f) => f.assertionResults.filter((t) => t.status === 'failed').map((t) => `${path.relative('/app', f.name)} > ${[...t.ancestorTitles, t.title].join(' > ')}`));
    expect(failed, output.slice(-6000)).toEqual([]);
    expect(r.numFailedTests).toBe(0);
    const skipped = r.testResults.flatMap((f) =>
      f.assertionResults
        .filter((t) => t.status !== 'passed' && t.status !== 'failed')
        .filter((t) => !SKIPPED_ON_NODE_24.some(([file, title]) => path.relative('/app', f.name) === file && t.title === title))
        .map((t) => `${path.relative('/app', f.name)} > ${[...t.ancestorTitles, t.title].join(' > ')} (${t.status})`),
    );
    expect(skipped, 'skipped tests not in SKIPPED_ON_NODE_24').toEqual([]);
    expect(r.testResults.map((f) => path.relative('/app', f.name)).sort()).toEqual([...TRANSPORT_TEST_FILES].sort());
    // Each file with transport variants ran its uWS ones (the names carry the transport).
    const uwsPassed = new Map<string, number>();
    for (const f of r.testResults) {
      const file = path.relative('/app', f.name);
      uwsPassed.set(file, f.assertionResults.filter((t) => t.status === 'passed' && /\buws\b/i.test([...t.ancestorTitles, t.title].join(' '))).length);
    }
    const withoutUws = [...uwsPassed].filter(([file, n]) => n === 0 && file !== 'server/transport/uws-loader.test.ts').map(([file]) => file);
    expect(withoutUws).toEqual([]);
    progress(`passed: ${r.numPassedTests} tests, of which uWS variants: ${[...uwsPassed.values()].reduce((a, b) => a + b, 0)}`);
  });
});
