/**
 * The outside tools the deployment tests run, found on PATH, and the `describe`s that skip loudly
 * without them (and fail under CI: .ci/run installs them all).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describeRequiring } from '../support/prometheus.js';

/** The absolute path of an executable on PATH, or null. */
export function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

export const promtoolBin: string = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool';
const executable = (file: string) => (): boolean => {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
};

export const describeWithPromtool = describeRequiring({
  what: 'promtool binary',
  available: executable(promtoolBin),
  installHint: `apt-get install prometheus, which ships promtool (looked at ${promtoolBin}; set PROMTOOL_BIN to override)`,
});

export const describeWithDockerCompose = describeRequiring({
  what: 'docker-compose command',
  available: () => onPath('docker-compose') !== null,
  installHint: "apt-get install docker-compose (Debian's Compose v1 validates files without a Docker engine)",
});

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (SIGKILL at the deadline) and returns its exit and whole output. */
export function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const { cwd, env = process.env, timeoutMs = 60_000 } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** For messages: a command's exit and output. */
export const describeRun = (r: RunResult): string => `exit ${r.code ?? r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

/** A free TCP port on 127.0.0.1 (free until someone binds it: the callers start their server at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (address !== null && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
