import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { ErrorCode, PromstreamError } from '../errors.js';
import type { TransportName } from '../transport/types.js';
import type { ResolvedServerOptions } from './options.js';

/** Node ≥ 22.12 lets threads share a listening port (`listen({ reusePort })`); older Nodes ignore the option. */
export function nodeSharesPorts(version: string = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 22 || (major === 22 && minor >= 12);
}

/** Running from the TypeScript sources (tests): worker threads need the built JavaScript. */
const FROM_SOURCES = import.meta.url.endsWith('.ts');

/**
 * How many event loops serve clients. `auto`: one per CPU (os.availableParallelism(), at most 64) where
 * the transport can share the public port between threads, else 1, logged. A number above 1 where that
 * cannot work is refused with the reason.
 */
export function resolveWorkers(o: Pick<ResolvedServerOptions, 'workers' | 'demoStats'>, transport: TransportName, log: Logger, cpus: number = availableParallelism()): number {
  const canShare = transport === 'uws' || nodeSharesPorts();
  const why = o.demoStats
    ? 'the demo (--demo) runs in one event loop'
    : !canShare
      ? `the ws transport shares a port between threads from Node.js 22.12 on (this is ${process.version}); uWebSockets.js does on any`
      : FROM_SOURCES
        ? 'worker threads run the built package (npm run build), not the TypeScript sources'
        : null;
  if (o.workers === 'auto') {
    const n = Math.max(1, Math.min(cpus, 64));
    if (n > 1 && why !== null) {
      log.info({ cpus }, `--workers auto: one worker, as ${why}`);
      return 1;
    }
    return n;
  }
  if (o.workers > 1 && why !== null) throw new PromstreamError(ErrorCode.WORKERS_UNAVAILABLE, `--workers ${o.workers}: not here, as ${why}; use --workers 1${!canShare ? ', Node.js 22.12 or later, or the uWS transport' : ''}`);
  return o.workers;
}
