/**
 * Runs `bin/promstream.js` as a real child process (the very file `npm install -g` puts on PATH) and
 * watches its output line by line. Waits are event driven with deadlines, never sleeps: a line that
 * does not come, or a process that exits first, fails with what the process did print.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * The command under test. PROMSTREAM_TEST_BIN points the process tests at another build (say, an older
 * checkout's bin/promstream.js) to show that a regression test fails there.
 */
export const BIN = process.env['PROMSTREAM_TEST_BIN'] ?? path.join(REPO_ROOT, 'bin', 'promstream.js');

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One pino line from stdout. */
export type LogRecord = Record<string, unknown> & { msg?: string; level?: number; pid?: number };

export interface CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdoutLines: readonly string[];
  readonly stderrLines: readonly string[];
  stdout(): string;
  stderr(): string;
  /** stdout lines that are JSON objects (the server's pino log). */
  logs(): LogRecord[];
  /** Set once the process has exited and its output streams have closed. */
  readonly exit: Exit | null;
  /** Resolves with the first stdout (or stderr) line for which `pred` holds, also one printed before the call. */
  waitForLine(pred: (line: string) => boolean, options?: { what?: string; stream?: 'stdout' | 'stderr'; timeoutMs?: number }): Promise<string>;
  /** Resolves with the first log record for which `pred` holds. */
  waitForLog(pred: (rec: LogRecord) => boolean, options?: { what?: string; timeoutMs?: number }): Promise<LogRecord>;
  /** Resolves once the process has exited and stdout/stderr are drained. */
  waitForExit(timeoutMs?: number): Promise<Exit>;
  signal(sig: NodeJS.Signals): void;
}

const live = new Set<CliProcess>();

const parseLog = (line: string): LogRecord | null => {
  if (!line.startsWith('{')) return null;
  try {
    const v: unknown = JSON.parse(line);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as LogRecord) : null;
  } catch {
    return null;
  }
};

/** The environment without any PROMSTREAM_* of the developer's shell, plus `env`. */
function cleanEnv(env: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PROMSTREAM_')) out[k] = v;
  return { ...out, ...env };
}

export interface SpawnOptions {
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** The child's open-files limit (`ulimit -n`, set by a shell that then execs node: same PID). */
  readonly openFiles?: number;
  /**
   * A file descriptor to give the child as its stdout (a FIFO the test reads or stalls) instead of a
   * pipe this helper reads; stdoutLines and logs() then stay empty.
   */
  readonly stdoutFd?: number;
  /** The node binary to run it with (another Node.js line); the one running the tests by default. */
  readonly node?: string;
}

export function spawnCli(args: readonly string[], { env = {}, cwd = REPO_ROOT, openFiles, stdoutFd, node = process.execPath }: SpawnOptions = {}): CliProcess {
  const command = openFiles === undefined ? [node, BIN, ...args] : ['/bin/sh', '-c', `ulimit -n ${openFiles} && exec "$0" "$@"`, node, BIN, ...args];
  const child = spawn(command[0]!, command.slice(1), { cwd, env: cleanEnv(env), stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not spawn ${BIN}`);
  const stdoutLines: string[] = [];
  const stderrLines: string[] = [];
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of [...listeners]) l();
  };
  let exit: Exit | null = null;

  const collect = (stream: NodeJS.ReadableStream, lines: string[]): void => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
      notify();
    });
    stream.on('end', () => {
      if (partial !== '') lines.push(partial);
      partial = '';
      notify();
    });
  };
  if (child.stdout !== null) collect(child.stdout, stdoutLines);
  collect(child.stderr!, stderrLines);

  const exited = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      exit = { code, signal };
      live.delete(proc);
      notify();
      resolve(exit);
    });
  });

  const describeOutput = (): string =>
    `exit: ${exit === null ? 'still running' : JSON.stringify(exit)}\n--- stdout ---\n${stdoutLines.join('\n')}\n--- stderr ---\n${stderrLines.join('\n')}`;

  /** Resolves with check()'s first non-undefined result; rejects at the deadline or when the process exits first. */
  const until = <T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const onChange = (): void => {
        const found = check();
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (exit !== null) {
          done();
          reject(new Error(`promstream ${args.join(' ')} exited before ${what}\n${describeOutput()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${describeOutput()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        listeners.delete(onChange);
      };
      listeners.add(onChange);
      onChange();
    });

  const proc: CliProcess = {
    child,
    pid: child.pid,
    stdoutLines,
    stderrLines,
    stdout: () => stdoutLines.map((l) => `${l}\n`).join(''),
    stderr: () => stderrLines.map((l) => `${l}\n`).join(''),
    logs: () => stdoutLines.map(parseLog).filter((r): r is LogRecord => r !== null),
    get exit() {
      return exit;
    },
    waitForLine: (pred, { what = 'a matching line', stream = 'stdout', timeoutMs = 15_000 } = {}) => {
      const lines = stream === 'stdout' ? stdoutLines : stderrLines;
      return until(() => lines.find(pred), what, timeoutMs);
    },
    waitForLog: (pred, { what = 'a matching log line', timeoutMs = 15_000 } = {}) =>
      until(() => proc.logs().find(pred), what, timeoutMs),
    waitForExit: (timeoutMs = 15_000) =>
      Promise.race([
        exited,
        new Promise<never>((_, reject) => {
          const t = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for exit\n${describeOutput()}`)), timeoutMs);
          void exited.then(() => clearTimeout(t));
        }),
      ]),
    signal: (sig) => {
      if (exit === null) child.kill(sig);
    },
  };
  live.add(proc);
  return proc;
}

/** Runs a command that is expected to end by itself and returns its exit code and whole output. */
export async function runCli(args: readonly string[], options: { env?: Readonly<Record<string, string>>; cwd?: string; timeoutMs?: number; node?: string } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const proc = spawnCli(args, options);
  const { code, signal } = await proc.waitForExit(options.timeoutMs);
  return { code, signal, stdout: proc.stdout(), stderr: proc.stderr() };
}

/** For afterEach: SIGKILLs every child still running and waits until each is gone. */
export async function killAllClis(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.signal('SIGKILL');
  await Promise.all(procs.map((p) => p.waitForExit(10_000).catch(() => undefined)));
}

export interface ServingCli {
  readonly proc: CliProcess;
  readonly port: number;
  readonly metricsPort: number;
  readonly listening: LogRecord;
}

/** Loopback, free ports: the arguments every test server gets. */
export const LOOPBACK_ARGS: readonly string[] = ['--port', '0', '--metrics-port', '0', '--host', '127.0.0.1', '--metrics-host', '127.0.0.1'];

/** `promstream serve ARGS` on free loopback ports; resolves once the 'promstream listening' line is out. */
export async function startServe(args: readonly string[], options: Pick<SpawnOptions, 'env' | 'openFiles' | 'node'> = {}): Promise<ServingCli> {
  const proc = spawnCli(['serve', ...LOOPBACK_ARGS, ...args], options);
  const listening = await proc.waitForLog((r) => r.msg === 'promstream listening', { what: "the 'promstream listening' log line" });
  const { port, metricsPort } = listening;
  if (typeof port !== 'number' || typeof metricsPort !== 'number') throw new Error(`listening line without ports: ${JSON.stringify(listening)}`);
  return { proc, port, metricsPort, listening };
}

export interface HttpResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** GET on a fresh connection (no keep-alive pool), so that a refused port shows as ECONNREFUSED. */
export function httpGet(url: string, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
