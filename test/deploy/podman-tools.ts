/**
 * Rootful podman as the container tests use it: the base images and runtime setup of
 * test/container/base-image.sh (made locally: no container registry can be reached here), commands
 * that fail with their output, and long commands that print progress lines while they run.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describeRequiring } from '../support/prometheus.js';
import { REPO_ROOT } from '../support/spawn-cli.js';
import { describeRun, onPath, run, type RunResult } from './deploy-tools.js';

const BASE_IMAGE_SCRIPT = path.join(REPO_ROOT, 'test/container/base-image.sh');

const TOOLS = ['podman', 'buildah', 'runc', 'debootstrap', 'docker-compose', 'jq', 'iptables', 'npm'];
export const describeWithPodman = describeRequiring({
  what: `root and ${TOOLS.join(', ')} (rootful podman)`,
  available: () => process.getuid?.() === 0 && TOOLS.every((tool) => onPath(tool) !== null || existsSync(`/usr/sbin/${tool}`)),
  installHint: 'apt-get install podman buildah runc debootstrap docker-compose jq iptables uidmap netavark aardvark-dns, and run as root (.ci/run does)',
});

/** Progress lines with the seconds since `started`: these tests take minutes on a cold cache. */
export function progressLog(prefix: string): (message: string) => void {
  const started = performance.now();
  return (message) => console.log(`[${prefix} +${((performance.now() - started) / 1000).toFixed(1)}s] ${message}`);
}

let containersConf = '';
/** podman with the setup base-image.sh wrote; sbin on PATH for iptables, which netavark runs. */
export const podmanEnv = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:/usr/sbin:/sbin`, CONTAINERS_CONF: containersConf });

/** Runs a command and throws with its output unless it exits 0. */
export async function must(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const result = await run(command, args, { cwd: REPO_ROOT, env: options.env ?? podmanEnv(), timeoutMs: options.timeoutMs ?? 60_000 });
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} failed\n${describeRun(result)}`);
  return result;
}
export const podman = (args: readonly string[], timeoutMs = 60_000): Promise<RunResult> => must('podman', args, { timeoutMs });
export const tryPodman = (args: readonly string[], timeoutMs = 30_000): Promise<RunResult> => run('podman', args, { cwd: REPO_ROOT, env: podmanEnv(), timeoutMs });

/**
 * Runs a command to its end (SIGKILL at the deadline), printing each line of its output that `show`
 * picks as a progress line while it runs; throws with the output's tail unless it exits 0.
 */
export function streaming(
  command: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; timeoutMs: number; show: (line: string) => boolean; progress: (message: string) => void },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { stdout: '', stderr: '' };
    for (const name of ['stdout', 'stderr'] as const) {
      let partial = '';
      child[name].setEncoding('utf8').on('data', (chunk: string) => {
        output[name] += chunk;
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines) if (options.show(line)) options.progress(`  ${line}`);
      });
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, ...output };
      if (code === 0) resolve(result);
      else reject(new Error(`${command} ${args.join(' ')} failed (deadline ${options.timeoutMs} ms)\n${describeRun({ ...result, stdout: result.stdout.slice(-8000) })}`));
    });
  });
}

/** test/container/base-image.sh: makes (or finds cached) the base images and sets podman up for podmanEnv(). */
export async function prepareBaseImages(progress: (message: string) => void): Promise<void> {
  progress(`test/container/base-image.sh (cache: ${process.env.PROMSTREAM_CACHE_DIR ?? '~/.cache/promstream'})`);
  const base = await streaming('bash', [BASE_IMAGE_SCRIPT], { env: process.env, timeoutMs: 600_000, show: (line) => line.startsWith('[base-image'), progress });
  const conf = /^CONTAINERS_CONF=(.+)$/m.exec(base.stdout);
  if (conf === null) throw new Error(`base-image.sh printed no CONTAINERS_CONF line\n${describeRun(base)}`);
  containersConf = conf[1]!;
}
