/**
 * The bench's child processes (server under test, load generators) and the request/response protocol
 * they speak over Node's IPC channel. Every child is pinned to its CPUs (taskset, when present) and gets
 * its open-file limit raised to the hard limit in a shell before node starts, so each process may hold
 * as many sockets as the machine allows.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface IpcRequest {
  readonly id: number;
  readonly type: string;
  readonly [key: string]: unknown;
}

type IpcReply = { readonly id: number; readonly ok: true; readonly result: unknown } | { readonly id: number; readonly ok: false; readonly error: string };

export interface BenchChild {
  readonly pid: number;
  readonly name: string;
  /** Sends a request and resolves with the child's answer (rejects on its error or its exit). */
  request<T>(type: string, body?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Last lines of the child's stderr, for error messages. */
  stderrTail(): string;
  /** Ends the child (SIGTERM, then SIGKILL after a grace period) and waits for its exit. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
// A bench interrupted by an error or ^C must not leave servers and generators behind.
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

let tasksetAvailable: boolean | undefined;
function hasTaskset(): boolean {
  tasksetAvailable ??= process.platform === 'linux' && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  return tasksetAvailable;
}

export interface SpawnOptions {
  /** CPU list for taskset, e.g. '0' or '1-3'; undefined: not pinned. */
  readonly cpus?: string | undefined;
  readonly nodeFlags?: readonly string[];
  /** The node binary; default: the one running the bench. */
  readonly node?: string | undefined;
}

/** Starts `script` (a file next to this one in dist/bench/) as a child with an IPC channel. */
export function spawnBenchChild(name: string, script: string, { cpus, nodeFlags = [], node = process.execPath }: SpawnOptions = {}): BenchChild {
  const file = fileURLToPath(new URL(script, import.meta.url));
  const command = [node, ...nodeFlags, file];
  if (cpus !== undefined && hasTaskset()) command.unshift('taskset', '-c', cpus);
  // `ulimit -n` of the hard limit, as far as the shell may; exec keeps the IPC descriptor.
  const child = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'bench-child', ...command], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  live.add(child);
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr.push(chunk);
    if (stderr.length > 50) stderr.shift();
  });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  let nextId = 1;
  let exited: Error | null = null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      exited = new Error(`${name} exited (${signal ?? code})${stderrTail() === '' ? '' : `:\n${stderrTail()}`}`);
      for (const p of pending.values()) {
        clearTimeout(p.timer);
        p.reject(exited);
      }
      pending.clear();
      resolve();
    });
  });
  child.on('message', (raw) => {
    const reply = raw as IpcReply;
    const p = pending.get(reply.id);
    if (p === undefined) return;
    pending.delete(reply.id);
    clearTimeout(p.timer);
    if (reply.ok) p.resolve(reply.result);
    else p.reject(new Error(`${name}: ${reply.error}`));
  });
  const stderrTail = (): string => stderr.join('').split('\n').slice(-15).join('\n').trim();

  return {
    pid: child.pid ?? -1,
    name,
    request<T>(type: string, body: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
      if (exited !== null) return Promise.reject(exited);
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: no answer to ${type} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
        child.send({ ...body, id, type });
      });
    },
    stderrTail,
    async stop() {
      if (exited !== null) return;
      child.kill('SIGTERM');
      const grace = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(grace);
    },
  };
}

/** In a child: answers the parent's requests with `handlers[type](request)`. */
export function serveParent(handlers: Readonly<Record<string, (req: IpcRequest) => unknown>>): void {
  if (process.send === undefined) throw new Error('this script is a bench child process: start it through npm run bench');
  const send = process.send.bind(process);
  process.on('message', (raw) => {
    const req = raw as IpcRequest;
    const handler = handlers[req.type];
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown request ${req.type}`);
        return handler(req);
      })
      .then(
        (result) => send({ id: req.id, ok: true, result: result ?? null }),
        (err: unknown) => send({ id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  // The parent went away (^C, crash) or asks us to stop: exit normally, so that --cpu-prof writes its profile.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}

/** CPU time of this process in seconds (user + system). */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
