/** What the figures were measured on, for the report header, and how the CPUs are shared out. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { loadNativeUws } from '../../server/transport/uws-loader.js';

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
  readonly os: string;
  readonly node: string;
  readonly uwsVersion: string | null;
  readonly wsVersion: string;
  readonly openFiles: string;
  readonly pinning: string;
  readonly loadAverage: string;
  durationS: number | null;
}

/** The CPUs the server and the generators run on (taskset lists), or undefined when not pinned. */
export interface CpuPlan {
  readonly server: string | undefined;
  readonly generators: string | undefined;
}

export function planCpus(pin: boolean): CpuPlan {
  const n = os.availableParallelism();
  const taskset = process.platform === 'linux' && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  if (!pin || n < 2 || !taskset) return { server: undefined, generators: undefined };
  return { server: '0', generators: n === 2 ? '1' : `1-${n - 1}` };
}

/**
 * Connections the kernel dropped because a listener's accept queue was full (TcpExt ListenOverflows,
 * machine-wide), or null where /proc/net/netstat is not there. uWS listens with a backlog of 512.
 */
export function listenOverflows(): number | null {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    const i = names.indexOf('ListenOverflows');
    return i > 0 ? Number(values[i]) : null;
  } catch {
    return null;
  }
}

/** The hard limit of open files a child can raise itself to (the connections scenario is bounded by it). */
export function openFileLimits(): { soft: number; hard: number } {
  const read = (flag: string): number => {
    const r = spawnSync('/bin/sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' });
    const v = r.stdout.trim();
    return v === 'unlimited' ? Infinity : Number(v) || 1024;
  };
  return { soft: read('-Sn'), hard: read('-Hn') };
}

function packageVersion(name: string): string | null {
  try {
    const require = createRequire(import.meta.url);
    const path = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return null;
  }
}

/** The uWS build the server under test loads (the same loader): package and version, or null. */
function uwsBuild(): string | null {
  const loaded = loadNativeUws();
  return loaded.ok ? `${loaded.packageName} ${loaded.version}` : null;
}

export function machineInfo(cpus: CpuPlan): MachineInfo {
  const limits = openFileLimits();
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    uwsVersion: uwsBuild(),
    wsVersion: packageVersion('ws') ?? 'unknown',
    openFiles: `${limits.soft} soft / ${limits.hard} hard (children raise theirs to the hard limit)`,
    pinning: cpus.server === undefined ? 'none (the scheduler places the server and the generators)' : `server on CPU ${cpus.server}, generators on CPU ${cpus.generators}`,
    loadAverage: os.loadavg().map((l) => l.toFixed(2)).join(' '),
    durationS: null,
  };
}
