/**
 * The Node.js that runs the ws servers of the *-workers scenarios. ws shares one port between worker
 * threads only from Node.js 22.12 (net's reusePort); on an older bench Node those servers run on
 * another runtime, so that one `npm run bench` measures both transports with workers. The generators
 * and the uWS rows stay on the bench's own Node (the uWS binaries we load exist for Node ≤ 20 only).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../server/package-root.js';
import { nodeSharesPorts } from '../../server/setup/workers-choice.js';

export type WsRuntime =
  /** node: the binary for the ws server processes (null: the bench's own); version as `node --version`. */
  | { readonly ok: true; readonly node: string | null; readonly version: string }
  | { readonly ok: false; readonly why: string };

/** The command that runs the ws servers with workers by hand under Node 24. */
export const WS_WORKERS_COMMAND = 'PATH="$(bash scripts/node-runtime.sh 24):$PATH" npm run bench -- --scenario ingest-workers,connections-workers --transport ws --out /tmp/ws-workers.md';

const NODE_RUNTIME_SCRIPT = join(PACKAGE_ROOT, 'scripts', 'node-runtime.sh');

/**
 * `choice` is --ws-node: 'auto' (scripts/node-runtime.sh 24, whose progress goes to stderr), 'off', or a
 * node binary. `note` hears what is done before a fetch that may take a minute.
 */
export function resolveWsRuntime(choice: string, note: (line: string) => void, own: string = process.version): WsRuntime {
  if (nodeSharesPorts(own.replace(/^v/, ''))) return { ok: true, node: null, version: own };
  const needs = `ws --workers needs Node.js ≥ 22.12 to share a port between threads (this is ${own})`;
  if (choice === 'off') return { ok: false, why: `${needs}; --ws-node auto runs them on Node 24, or by hand: ${WS_WORKERS_COMMAND}` };
  let node = choice;
  if (choice === 'auto') {
    note(`ws with --workers: ${needs}; its servers run on Node 24 from scripts/node-runtime.sh (--ws-node off skips them)`);
    const r = spawnSync('bash', [NODE_RUNTIME_SCRIPT, '24'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
    const bin = r.stdout?.trim() ?? '';
    if (r.status !== 0 || bin === '') {
      const how = r.error !== undefined ? r.error.message : `exit ${r.status ?? r.signal}`;
      return { ok: false, why: `${needs}, and scripts/node-runtime.sh 24 failed (${how}; its message is above): ${WS_WORKERS_COMMAND}` };
    }
    node = join(bin, 'node');
  }
  const v = spawnSync(node, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  const version = v.status === 0 ? v.stdout.trim() : '';
  if (version === '') return { ok: false, why: `${needs}, and --ws-node ${node} does not run (${v.error?.message ?? `exit ${v.status ?? v.signal}`})` };
  if (!nodeSharesPorts(version.replace(/^v/, ''))) return { ok: false, why: `${needs}, and --ws-node ${node} is ${version}, also before 22.12` };
  return { ok: true, node, version };
}
