/**
 * The Dockerfile, without a Docker engine. First a lint of our own (hadolint is not packaged for
 * Debian; when one is on PATH it runs too). Then the build replayed outside Docker: the context copied
 * as `docker build` sends it (.dockerignore), every COPY done into a directory per stage, every npm
 * RUN run as written, and the final stage's ENTRYPOINT + CMD started as a non-root user with the
 * image's ENV. The server must answer the image's HEALTHCHECK, accept a client, and exit 0 on SIGTERM
 * sent to tini. What the replay cannot do (apt-get, the base image itself) is listed and checked apart.
 * The replay runs the host's Node, not the image's: container.test.ts builds the real image with podman.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, statSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULTS } from '../../server/setup/options.js';
import { describeRequiring } from '../support/prometheus.js';
import { REPO_ROOT } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';
import { expectedUwsBuild, uwsTests } from '../support/uws-availability.js';
import { describeRun, freePort, onPath, run } from './deploy-tools.js';
import { envPairs, parseDockerfile, type Instruction, type Stage } from './dockerfile.js';
import { copyBuildContext } from './dockerignore.js';

const dockerfileText = await readFile(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
const dockerfile = parseDockerfile(dockerfileText);
const finalStage = dockerfile.stages.at(-1)!;
const all = (stage: Stage, keyword: string): Instruction[] => stage.instructions.filter((i) => i.keyword === keyword);
const one = (stage: Stage, keyword: string): Instruction => {
  const found = all(stage, keyword);
  if (found.length !== 1) throw new Error(`expected one ${keyword} in the stage FROM ${stage.from}, found ${found.length}`);
  return found[0]!;
};

describe('Dockerfile lint (our own rules: hadolint is not packaged for Debian)', () => {
  it('builds in a named stage and runs from the same node:24-trixie-slim (glibc 2.41, for uWebSockets.js)', () => {
    expect(dockerfile.stages).toHaveLength(2);
    expect(dockerfile.stages[0]!.name).toBe('build');
    for (const stage of dockerfile.stages) expect(stage.from).toBe('node:24-trixie-slim');
  });

  it('installs with npm ci from the lock file: everything to build, production only and no scripts to run', () => {
    const npmRuns = dockerfile.stages.map((s) => all(s, 'RUN').map((r) => r.args).filter((a) => /\bnpm\b/.test(a)));
    expect(npmRuns.flat().some((a) => /\bnpm (install|i)\b/.test(a))).toBe(false);
    expect(npmRuns[0]).toContain('npm ci --ignore-scripts');
    expect(npmRuns[0]).toContain('npm run build');
    expect(npmRuns[1]).toEqual(['npm ci --omit=dev --ignore-scripts']);
    // npm's cache stays out of the layers.
    for (const r of dockerfile.stages.flatMap((s) => all(s, 'RUN')).filter((r) => r.args.startsWith('npm ci'))) {
      expect(r.flags.get('mount')).toBe('type=cache,target=/root/.npm');
    }
    // The final stage takes the build output from the build stage, not from the context.
    expect(all(finalStage, 'COPY').filter((c) => c.flags.get('from') === 'build').map((c) => c.args)).toEqual(['/app/dist ./dist']);
  });

  it('runs as a non-root user, exposes 3000 and 9102, checks health with promstream health, and lets tini pass signals on', () => {
    const user = one(finalStage, 'USER').args;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const instructions = finalStage.instructions.map((i) => i.keyword);
    // Everything after USER runs as that user: only metadata may follow it.
    expect(instructions.slice(instructions.indexOf('USER') + 1).every((k) => ['EXPOSE', 'HEALTHCHECK', 'ENTRYPOINT', 'CMD', 'ENV', 'LABEL'].includes(k))).toBe(true);
    expect(one(finalStage, 'EXPOSE').args.split(/\s+/).sort()).toEqual([String(DEFAULTS.port), String(DEFAULTS.metricsPort)].sort());
    // Exec form, no shell and no inline script: `promstream health` asks /healthz on PROMSTREAM_METRICS_PORT.
    const health = one(finalStage, 'HEALTHCHECK');
    expect(health.args).toBe('CMD ["promstream", "health"]');
    // Its own deadline (2 s) ends before Docker's --timeout would kill it.
    expect(health.flags.get('timeout')).toBe('3s');
    // Exec form: a shell form ENTRYPOINT or CMD would put /bin/sh between tini and node.
    expect(one(finalStage, 'ENTRYPOINT').exec).toEqual(['/usr/bin/tini', '--']);
    expect(one(finalStage, 'CMD').exec).toEqual(['promstream', 'serve', '--demo']);
  });

  it('keeps apt lean and uses COPY, never ADD', () => {
    for (const stage of dockerfile.stages) {
      expect(all(stage, 'ADD')).toEqual([]);
      for (const r of all(stage, 'RUN').filter((r) => /apt-get install/.test(r.args))) {
        expect(r.args).toMatch(/apt-get update && apt-get install -y --no-install-recommends /);
        expect(r.args).toMatch(/&& rm -rf \/var\/lib\/apt\/lists\/\*$/);
      }
      for (const w of all(stage, 'WORKDIR')) expect(w.args.startsWith('/')).toBe(true);
    }
  });

  it('passes hadolint when one is installed', async (context) => {
    const hadolint = onPath('hadolint');
    if (hadolint === null) {
      console.warn('hadolint not on PATH (not packaged for Debian): only the checks above ran');
      context.skip();
      return;
    }
    const result = await run(hadolint, ['Dockerfile'], { cwd: REPO_ROOT });
    expect(result.code, describeRun(result)).toBe(0);
  });
});

const TINI = one(finalStage, 'ENTRYPOINT').exec?.[0] ?? '/usr/bin/tini';
const isRoot = process.getuid?.() === 0;
/** As root, the server runs as `nobody` through setpriv; otherwise as the (non-root) user running the tests. */
const dropPrivileges: readonly string[] = isRoot ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', '--'] : [];

/** `command` as the unprivileged user: the program to spawn and its arguments. */
function unprivileged(command: readonly string[]): { bin: string; args: string[] } {
  const [bin, ...args] = [...dropPrivileges, ...command];
  if (bin === undefined) throw new Error('no command');
  return { bin, args };
}

const describeWithTini = describeRequiring({
  what: `tini at ${TINI} (the image's ENTRYPOINT) and setpriv`,
  available: () => {
    try {
      accessSync(TINI, fsConstants.X_OK);
    } catch {
      return false;
    }
    return !isRoot || onPath('setpriv') !== null;
  },
  installHint: "apt-get install tini (the same Debian package the image installs); setpriv is in util-linux",
});

interface Replayed {
  /** Where each stage's filesystem root is, by stage index. */
  readonly roots: string[];
  /** The final stage's working directory (WORKDIR), mapped. */
  readonly workdir: string;
  /** The final stage's environment (ENV), mapped, over the host's PATH. */
  readonly env: Record<string, string>;
  /** RUN lines not replayed (they change the system, not the app). */
  readonly skipped: string[];
  /** The build context, as copied. */
  readonly contextFiles: string[];
}

/** Replays every stage into `dir`: COPY, WORKDIR, ENV and the npm RUN lines, in order. */
async function replayBuild(dir: string): Promise<Replayed> {
  const context = path.join(dir, 'context');
  const contextFiles = await copyBuildContext(REPO_ROOT, context);
  const roots: string[] = [];
  const skipped: string[] = [];
  let workdir = '/';
  let env: Record<string, string> = {};
  for (const [index, stage] of dockerfile.stages.entries()) {
    const root = path.join(dir, `stage-${index}`);
    roots.push(root);
    await mkdir(root, { recursive: true });
    const inRoot = (containerPath: string): string => path.join(root, containerPath);
    // The base image's PATH, with the stage's /usr/local/bin first (where the image links its bin);
    // node and npm come from the host's PATH, as from the base image.
    env = { PATH: `${inRoot('/usr/local/bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: process.env.HOME ?? '/root' };
    workdir = '/';
    for (const instruction of stage.instructions) {
      switch (instruction.keyword) {
        case 'WORKDIR':
          workdir = path.posix.resolve(workdir, instruction.args);
          await mkdir(inRoot(workdir), { recursive: true });
          break;
        case 'ENV':
          for (const [name, value] of envPairs(instruction.args, env)) {
            // Container paths in a value (PATH=/app/bin:$PATH) point into the stage's directory.
            env[name] = value.split(':').map((part) => (part.startsWith(`${workdir}/`) || part === workdir ? inRoot(part) : part)).join(':');
          }
          break;
        case 'COPY': {
          const words = instruction.args.split(/\s+/);
          const dest = path.posix.resolve(workdir, words.at(-1)!);
          const from = instruction.flags.get('from');
          const sourceRoot = from === undefined ? context : roots[dockerfile.stages.findIndex((s) => s.name === from)]!;
          for (const source of words.slice(0, -1)) {
            const src = path.join(sourceRoot, source);
            if (!existsSync(src)) throw new Error(`Dockerfile line ${instruction.line}: COPY ${source}: not in the ${from === undefined ? 'build context (see .dockerignore)' : `stage ${from}`}`);
            const target = statSync(src).isDirectory() || !words.at(-1)!.endsWith('/') ? inRoot(dest) : inRoot(path.posix.join(dest, path.basename(source)));
            await cp(src, target, { recursive: true });
          }
          break;
        }
        case 'RUN': {
          const link = /^ln -s (\S+) (\S+)$/.exec(instruction.args);
          if (link !== null) {
            // A symlink in the image's filesystem: made in the stage's directory, pointing into it.
            await mkdir(path.dirname(inRoot(link[2]!)), { recursive: true });
            await symlink(inRoot(link[1]!), inRoot(link[2]!));
            break;
          }
          if (!/^npm (ci|run)\b/.test(instruction.args)) {
            skipped.push(instruction.args);
            break;
          }
          const result = await run('sh', ['-c', instruction.args], { cwd: inRoot(workdir), env, timeoutMs: 150_000 });
          if (result.code !== 0) throw new Error(`Dockerfile line ${instruction.line}: RUN ${instruction.args} failed\n${describeRun(result)}`);
          break;
        }
        default:
          break;
      }
    }
  }
  return { roots, workdir: path.join(roots.at(-1)!, workdir), env, skipped, contextFiles };
}

describeWithTini('the Dockerfile replayed in a clean directory: build, then run the image command as a non-root user', () => {
  let dir = '';
  let image: Replayed;
  let server: ChildProcess | undefined;
  let stdout = '';
  let stderr = '';
  let exit: Promise<number | null>;
  let port = 0;
  let metricsPort = 0;
  let runEnv: Record<string, string> = {};

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'promstream-image-'));
    // mkdtemp makes the directory private to us: the unprivileged user must be able to read the app.
    await chmod(dir, 0o755);
    image = await replayBuild(dir);
    [port, metricsPort] = [await freePort(), await freePort()];
    // `docker run -e PROMSTREAM_PORT=… -e PROMSTREAM_METRICS_PORT=…`: free ports instead of 3000/9102.
    runEnv = { ...image.env, PROMSTREAM_PORT: String(port), PROMSTREAM_METRICS_PORT: String(metricsPort) };
    const command = [...one(finalStage, 'ENTRYPOINT').exec!, ...one(finalStage, 'CMD').exec!];
    const { bin, args } = unprivileged(command);
    server = spawn(bin, args, { cwd: image.workdir, env: runEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    server.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    exit = new Promise((resolve) => server!.once('exit', (code) => resolve(code)));
  }, 240_000);

  afterAll(async () => {
    if (server !== undefined && server.exitCode === null) {
      server.kill('SIGKILL');
      await exit;
    }
    await rm(dir, { recursive: true, force: true });
  });

  const logs = (): Record<string, unknown>[] =>
    stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const output = (): string => `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;

  it('sends only the sources as build context, and replays every step but the system ones', () => {
    expect(image.contextFiles).toContain('package-lock.json');
    expect(image.contextFiles).toContain('bin/promstream.js');
    expect(image.contextFiles.filter((f) => /^(node_modules|dist|test|\.git|bench|deploy)\/|\.test\.ts$/.test(f))).toEqual([]);
    // What the replay leaves out: installing tini from Debian (its binary is the one the test runs).
    expect(image.skipped).toEqual(['apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*']);
  });

  it('ends with production dependencies only, uWebSockets.js included, and `promstream` on PATH', () => {
    const app = image.workdir;
    for (const present of ['ws', 'prom-client', 'msgpackr', 'pino', 'uWebSockets.js', '@btc-vision/uwebsockets.js']) expect(existsSync(path.join(app, 'node_modules', present)), present).toBe(true);
    for (const absent of ['typescript', 'vitest', 'esbuild', 'eslint', 'playwright-core']) expect(existsSync(path.join(app, 'node_modules', absent)), absent).toBe(false);
    expect(existsSync(path.join(app, 'dist/server/setup/cli.js'))).toBe(true);
    expect(statSync(path.join(app, 'bin/promstream.js')).mode & 0o111).not.toBe(0);
    expect(statSync(path.join(image.roots.at(-1)!, 'usr/local/bin/promstream')).isFile()).toBe(true);
  });

  it("starts the CMD through tini as a non-root user, on uWebSockets.js where this host's Node and glibc can load a build", async () => {
    const listening = await waitFor(() => logs().find((l) => l.msg === 'promstream listening') ?? (server!.exitCode !== null ? { exited: server!.exitCode } : undefined), {
      what: 'the promstream listening line',
      timeoutMs: 20_000,
    });
    // The replay runs this host's Node (the image's own, Node 24 on glibc 2.41, is test/deploy/container.test.ts's).
    const build = expectedUwsBuild();
    if (uwsTests.run) {
      expect(listening, output()).toMatchObject({ port, metricsPort, transport: 'uws', transportLibrary: { package: build?.packageName, version: build?.version } });
    } else {
      console.warn(`NOTICE: the replayed image runs on ws here: ${uwsTests.skipReason ?? ''}`);
      expect(listening, output()).toMatchObject({ port, metricsPort, transport: 'ws' });
    }
    const status = await readFile(`/proc/${String(listening.pid)}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    expect(uid).not.toBe(0);
    if (isRoot) expect(uid).toBe(65534);
  });

  it("answers the image's HEALTHCHECK (exit 0), and the check fails when nothing answers", async () => {
    const check = one(finalStage, 'HEALTHCHECK').args.replace(/^CMD\s+/, '');
    const { bin, args } = unprivileged(JSON.parse(check) as string[]);
    const healthy = await run(bin, args, { env: runEnv, timeoutMs: 10_000 });
    expect(healthy.code, describeRun(healthy)).toBe(0);
    const nobodyThere = await run(bin, args, { env: { ...runEnv, PROMSTREAM_METRICS_PORT: String(await freePort()) }, timeoutMs: 10_000 });
    expect(nobodyThere.code).not.toBe(0);
    // docker-compose.yml's check of the aggregator (/readyz), with the image's environment.
    const compose = parse(await readFile(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: { aggregator: { healthcheck: { test: string[] } } } };
    const [kind, ...composeCheck] = compose.services.aggregator.healthcheck.test;
    expect(kind).toBe('CMD');
    const composeRun = unprivileged(composeCheck);
    const ready = await run(composeRun.bin, composeRun.args, { env: runEnv, timeoutMs: 10_000 });
    expect(ready.code, describeRun(ready)).toBe(0);
    expect(ready.stdout).toBe(`ok: GET http://127.0.0.1:${metricsPort}/readyz: 200 ready\n`);
  });

  it("accepts a client of the image's own package (promstream/client, as the load generator imports it)", async () => {
    // Run from the image's directory as the unprivileged user, so that `promstream/client` resolves
    // through the package's own exports map, as for examples/loadgen.mjs in the image.
    const script = [
      "import { createClient } from 'promstream/client';",
      `const client = createClient({ url: 'ws://127.0.0.1:${port}/ws', labels: { app: 'demo' }, flushInterval: 100, flushTimeout: 10000 });`,
      "client.increment('demo_clicks_total', { button: 'red' }, 3);",
      'await client.flush();',
      `const text = await (await fetch('http://127.0.0.1:${metricsPort}/metrics')).text();`,
      "process.stdout.write(text.split('\\n').filter((l) => /^(connected_clients|demo_clicks_total)\\{/.test(l)).join('\\n'));",
      'await client.close();',
    ].join('\n');
    const { bin, args } = unprivileged([process.execPath, '--input-type=module', '-e', script]);
    const result = await run(bin, args, { cwd: image.workdir, env: runEnv, timeoutMs: 20_000 });
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toMatch(/^connected_clients\{app="demo"\} 1$/m);
    expect(result.stdout).toMatch(/^demo_clicks_total\{button="red"\} 3$/m);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    // The browser script, built by the build stage's esbuild step and copied with dist/.
    const browserScript = await fetch(`http://127.0.0.1:${port}/promstream.js`);
    expect(browserScript.status).toBe(200);
    expect((await browserScript.text()).length).toBeGreaterThan(1000);
  });

  it("runs the compose loadgen's script from the image", async () => {
    const { bin, args } = unprivileged([process.execPath, 'examples/loadgen.mjs', '--help']);
    const result = await run(bin, args, { cwd: image.workdir, env: runEnv });
    expect(result.code, describeRun(result)).toBe(0);
  });

  it('SIGHUP to tini reaches node: it re-reads the whitelist (how deploy/k8s/configmap.yaml says to reload)', async () => {
    server!.kill('SIGHUP');
    await waitFor(() => logs().some((l) => l.msg === 'whitelist unchanged'), { what: "the 'whitelist unchanged' log line", timeoutMs: 10_000 });
  });

  it('SIGTERM to tini reaches node: it drains and exits 0', async () => {
    server!.kill('SIGTERM');
    expect(await exit, output()).toBe(0);
    expect(logs().map((l) => l.msg)).toContain('stopped cleanly');
  });
});
