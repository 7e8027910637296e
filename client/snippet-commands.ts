/**
 * The snippet contract (DESIGN.md, README "Browser"): the page defines `window.promstream` as a queue
 * stub and calls it before and after the script arrives; the script replaces the stub with the real
 * function and replays the queued calls, in order, exactly once. Nothing is sent before `init` (a page
 * calls it after consent): what is recorded before is aggregated locally, bounded like the client's own
 * pending deltas, and goes out with the first frame. No call ever throws into the page.
 */
import { PendingDeltas } from './pending-deltas.js';
import type { PromstreamSnippet } from './promstream-global.js';
import type { ClientOptions, ClientStatus, Labels, PromstreamClient } from './types.js';

export interface SnippetHost {
  /** Creates the client at `init`; `recorded` holds what was recorded before. May throw (a bad url). */
  start(options: ClientOptions, pageMetrics: boolean, recorded: PendingDeltas): PromstreamClient;
  warn(message: string): void;
}

/** The global the snippet lives on (window in a page). */
export interface SnippetScope {
  promstream?: unknown;
}

/** Below this a flush interval is a busy loop, not a choice. */
const MIN_FLUSH_INTERVAL_MS = 100;
/** Distinct warnings kept, so that a page calling nonsense in a loop cannot grow the set. */
const MAX_WARNINGS = 32;

type MetricKind = 'counter' | 'gauge' | 'histogram';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export class SnippetCommands {
  private client: PromstreamClient | null = null;
  private recorded: PendingDeltas | null = new PendingDeltas();
  private readonly warned = new Set<string>();

  constructor(private readonly host: SnippetHost) {}

  /** Runs one call (`arguments` of the global function). Never throws. */
  run(args: ArrayLike<unknown>): Promise<boolean> | undefined {
    try {
      const command = args[0];
      switch (command) {
        case 'init':
          this.init(args[1]);
          return undefined;
        case 'increment':
          this.record('counter', args[1], args[2], args[3] === undefined ? 1 : args[3]);
          return undefined;
        case 'observe':
          this.record('histogram', args[1], args[2], args[3]);
          return undefined;
        case 'set':
          this.record('gauge', args[1], args[2], args[3]);
          return undefined;
        case 'flush':
          return this.flush(args[1]);
        default:
          this.warnOnce(`unknown command ${JSON.stringify(String(command)).slice(0, 40)}; use init, increment, observe, set or flush`);
          return undefined;
      }
    } catch (err) {
      this.warnOnce(`${String(args[0]).slice(0, 20)} failed: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  private init(raw: unknown): void {
    if (this.client !== null || this.recorded === null) {
      this.host.warn('promstream: init called again; ignored (one connection per page: the first init stays)');
      return;
    }
    if (!isRecord(raw)) {
      this.warnOnce('init needs an options object: { url, labels }');
      return;
    }
    const { url, labels, flushInterval, flushTimeout, onStatus, pageMetrics } = raw;
    if (flushInterval !== undefined && !(typeof flushInterval === 'number' && flushInterval >= MIN_FLUSH_INTERVAL_MS)) {
      this.warnOnce(`init: flushInterval is milliseconds ≥ ${MIN_FLUSH_INTERVAL_MS}; using the server's`);
    }
    const options: ClientOptions = {
      url: url as string, // the client checks it and throws a TypeError naming it
      ...(isRecord(labels) ? { labels: labels as Labels } : {}),
      ...(typeof flushInterval === 'number' && flushInterval >= MIN_FLUSH_INTERVAL_MS ? { flushInterval } : {}),
      ...(typeof flushTimeout === 'number' && flushTimeout > 0 ? { flushTimeout } : {}),
      ...(typeof onStatus === 'function' ? { onStatus: onStatus as (s: ClientStatus) => void } : {}),
    };
    this.client = this.host.start(options, pageMetrics === true, this.recorded);
    this.recorded = null; // the client owns it now
  }

  private record(kind: MetricKind, name: unknown, labels: unknown, value: unknown): void {
    const safeLabels = (isRecord(labels) ? labels : {}) as Labels;
    const client = this.client;
    if (client !== null) {
      // The client checks names, labels and values, drops and counts what is not allowed.
      if (kind === 'counter') client.increment(name as string, safeLabels, value as number);
      else if (kind === 'histogram') client.observe(name as string, safeLabels, value as number);
      else client.set(name as string, safeLabels, value as number);
      return;
    }
    const recorded = this.recorded!;
    try {
      // Before init there is no catalogue yet: checked against it when it arrives, as the client does.
      recorded.record(kind, String(name), safeLabels, value as number, null, Number.MAX_VALUE);
    } catch {
      recorded.drop('not_a_number');
    }
  }

  private flush(done: unknown): Promise<boolean> {
    const acknowledged = this.client === null ? Promise.resolve(false) : this.client.flush().then(() => true, () => false);
    if (typeof done === 'function') {
      void acknowledged.then((ok) => {
        try {
          (done as (ok: boolean) => void)(ok);
        } catch (err) {
          this.host.warn(`promstream: the flush callback threw: ${err instanceof Error ? err.message : String(err)}`);
        }
      });
    }
    return acknowledged;
  }

  private warnOnce(message: string): void {
    if (this.warned.has(message) || this.warned.size >= MAX_WARNINGS) return;
    this.warned.add(message);
    this.host.warn(`promstream: ${message}`);
  }
}

/**
 * Replaces the queue stub on `scope` with the real function and replays the stub's queue in order,
 * exactly once. Calls made while replaying (from an onStatus callback, say) join the end of the queue,
 * so the order holds. A second copy of the script leaves the first in place.
 */
export function installSnippet(scope: SnippetScope, host: SnippetHost): void {
  const existing = typeof scope.promstream === 'function' ? (scope.promstream as { loaded?: unknown; q?: unknown }) : null;
  if (existing?.loaded === true) {
    host.warn('promstream: the script is loaded twice; the second copy does nothing');
    return;
  }
  const stubQueue: unknown[] = Array.isArray(existing?.q) ? existing.q : [];
  const queue = stubQueue.filter((call): call is ArrayLike<unknown> => typeof call === 'object' && call !== null && 'length' in call);
  // Emptied, so that whoever holds the stub cannot have the same calls replayed twice.
  stubQueue.length = 0;
  const commands = new SnippetCommands(host);
  let replaying = true;
  const promstream = function promstream(): Promise<boolean> | undefined {
    // eslint-disable-next-line prefer-rest-params -- the stub queues `arguments`; the same shape here
    const args = arguments;
    if (replaying) {
      queue.push(args);
      return undefined;
    }
    return commands.run(args);
  };
  scope.promstream = Object.assign(promstream as PromstreamSnippet, { loaded: true as const });
  for (let i = 0; i < queue.length; i++) commands.run(queue[i]!);
  queue.length = 0;
  replaying = false;
}
