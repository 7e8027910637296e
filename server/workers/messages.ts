import type { TransportName } from '../transport/types.js';
import type { Whitelist } from '../config/types.js';
import type { ServerOptions } from '../setup/options.js';

/** What a worker thread is started with (structured-cloned; the buffers are shared, not copied). */
export interface WorkerData {
  readonly index: number;
  readonly workers: number;
  /** Every option but the logger; the whitelist is the one in force now. */
  readonly options: Omit<ServerOptions, 'logger'>;
  readonly logLevel: string;
  readonly transport: TransportName;
  /** The one public port every worker listens on (SO_REUSEPORT). */
  readonly port: number;
  /** The admission cap the main thread derived from the open-files limit. */
  readonly maxConnections: number;
  /** Sockets the host may hold, upgraded or not, counted in `sockets` by every worker. */
  readonly maxSockets: number;
  readonly epoch: string;
  /** performance.timeOrigin + performance.now() of the main thread at start: the host's clock starts there. */
  readonly clockZeroMs: number;
  readonly slots: SharedArrayBuffer;
  readonly counts: SharedArrayBuffer;
  readonly sockets: SharedArrayBuffer;
  readonly block: SharedArrayBuffer;
  readonly region: SharedArrayBuffer;
  /** Test hooks (PROMSTREAM_TEST_HOOKS=1 only): a 'crash' message makes the worker throw. */
  readonly testHooks: boolean;
}

/** Main thread → worker. */
export type ToWorker =
  | { readonly t: 'release'; readonly id: number; readonly slot: number }
  | { readonly t: 'released'; readonly id: number; readonly ok: boolean }
  | { readonly t: 'drain'; readonly windowMs: number }
  | { readonly t: 'reload'; readonly whitelist: Whitelist; readonly region: SharedArrayBuffer; readonly windowMs: number }
  | { readonly t: 'accepting'; readonly state: 'stop' | 'pause' | 'resume' }
  | { readonly t: 'close' }
  | { readonly t: 'crash' };

/** Worker → main thread. */
export type FromWorker =
  | { readonly t: 'listening'; readonly port: number }
  | { readonly t: 'askRelease'; readonly id: number; readonly owner: number; readonly slot: number }
  | { readonly t: 'released'; readonly id: number }
  | { readonly t: 'drained' }
  | { readonly t: 'swapped' }
  | { readonly t: 'reloaded'; readonly seriesKept: number }
  | { readonly t: 'closed' }
  | { readonly t: 'log'; readonly line: string };

/**
 * The host's clock: the same origin in every thread (performance.now() alone starts with each thread).
 * Read twice per frame, so the thread's offset is taken once: `performance.timeOrigin` is an accessor
 * that costs a third of a `performance.now()` on every read.
 */
export const hostClock = (zeroMs: number): (() => number) => {
  const offsetMs = performance.timeOrigin - zeroMs;
  return () => offsetMs + performance.now();
};
