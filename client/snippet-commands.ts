/**
 * The snippet contract (DESIGN.md, README "Browser"): the page defines `window.promstream` as a queue
 * stub and calls it before and after the script arrives; the script replaces the stub with the real
 * function and replays the queued calls, in order, exactly once. Nothing is sent before `init` (a page
 * calls it after consent): what is recorded before is aggregated locally, bounded like the client's own
 * pending deltas, and goes out with the first frame. No call ever throws into the page.
 */
import { RejectReason, type MetricType } from '../protocol/index.js';
import { PendingDeltas } from './pending-deltas.js';
import type { PromstreamSnippet } from './promstream-global.js';
import { parseLabels, parseRecordInput } from './record-input.js';
import type { ClientOptions, ClientStatus, PromstreamClient } from './types.js';

/** The client the snippet drives: the public API plus recording from the page's untrusted arguments. */
export interface SnippetClient extends PromstreamClient {
  /** Parses, records, or drops and counts; never throws (ClientCore.record). */
  record(type: MetricType, name: unknown, labels: unknown, value: unknown): void;
}

/** The collectors `init` turns on (README "What is collected"), parsed. */
export interface Collectors {
  readonly pageMetrics: boolean;
  readonly apiMetrics: boolean;
  readonly errorMetrics: boolean;
  /** Routes and page views: the page's route, or a function of its URL; undefined: off. */
  readonly route?: string | ((url: URL) => unknown);
}

export interface SnippetHost {
  /** Creates the client at `init`; `recorded` holds what was recorded before. May throw (a bad url). */
  start(options: ClientOptions, collectors: Collectors, recorded: PendingDeltas): SnippetClient;
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

const isRecord = (v: unknown): v is Readonly<Record<string, unknown>> => typeof v === 'object' && v !== null;

/** `init`'s options, parsed: what is usable, plus a warning for each part that was not. */
export function parseInitOptions(raw: Readonly<Record<string, unknown>>): { options: ClientOptions; collectors: Collectors; warnings: string[] } {
  const { url, labels, flushInterval, flushTimeout, onStatus, pageMetrics, apiMetrics, errorMetrics, route } = raw;
  const warnings: string[] = [];
  const parsedLabels = parseLabels(labels);
  if (parsedLabels === null) warnings.push('init: labels must be an object of strings, e.g. { app: "student" }; sending none');
  const interval = typeof flushInterval === 'number' && flushInterval >= MIN_FLUSH_INTERVAL_MS ? flushInterval : undefined;
  if (flushInterval !== undefined && interval === undefined) warnings.push(`init: flushInterval is milliseconds ≥ ${MIN_FLUSH_INTERVAL_MS}; using the server's`);
  const timeout = typeof flushTimeout === 'number' && flushTimeout > 0 ? flushTimeout : undefined;
  if (flushTimeout !== undefined && timeout === undefined) warnings.push('init: flushTimeout is milliseconds > 0; using 30000');
  const status = typeof onStatus === 'function' ? onStatus : undefined;
  if (onStatus !== undefined && status === undefined) warnings.push('init: onStatus must be a function; ignored');
  const flag = (name: string, value: unknown): boolean => {
    if (value !== undefined && typeof value !== 'boolean') warnings.push(`init: ${name} must be true or false; off`);
    return value === true;
  };
  const routeOption = typeof route === 'string' ? route : typeof route === 'function' ? (u: URL): unknown => Reflect.apply(route, undefined, [u]) : undefined;
  if (route !== undefined && routeOption === undefined) warnings.push('init: route must be a string or a function of the URL returning one; routes and page views off');
  const options: ClientOptions = {
    // Not a string: the client refuses it with an error naming it (the caller warns with that).
    url: typeof url === 'string' ? url : String(url),
    ...(parsedLabels === null || labels === undefined ? {} : { labels: parsedLabels }),
    ...(interval === undefined ? {} : { flushInterval: interval }),
    ...(timeout === undefined ? {} : { flushTimeout: timeout }),
    ...(status === undefined ? {} : { onStatus: (s: ClientStatus) => void Reflect.apply(status, undefined, [s]) }),
  };
  const collectors: Collectors = {
    pageMetrics: flag('pageMetrics', pageMetrics),
    apiMetrics: flag('apiMetrics', apiMetrics),
    errorMetrics: flag('errorMetrics', errorMetrics),
    ...(routeOption === undefined ? {} : { route: routeOption }),
  };
  return { options, collectors, warnings };
}

export class SnippetCommands {
  #client: SnippetClient | null = null;
  #recorded: PendingDeltas | null = new PendingDeltas();
  readonly #warned = new Set<string>();

  readonly #host: SnippetHost;

  constructor(host: SnippetHost) {
    this.#host = host;
  }

  /** Runs one call (`arguments` of the global function). Never throws. */
  run(args: ArrayLike<unknown>): Promise<boolean> | undefined {
    try {
      const command = args[0];
      switch (command) {
        case 'init':
          this.#init(args[1]);
          return undefined;
        case 'increment':
          this.#record('counter', args[1], args[2], args[3] === undefined ? 1 : args[3]);
          return undefined;
        case 'observe':
          this.#record('histogram', args[1], args[2], args[3]);
          return undefined;
        case 'set':
          this.#record('gauge', args[1], args[2], args[3]);
          return undefined;
        case 'flush':
          return this.#flush(args[1]);
        default:
          this.#warnOnce(`unknown command ${JSON.stringify(String(command)).slice(0, 40)}; use init, increment, observe, set or flush`);
          return undefined;
      }
    } catch (err) {
      this.#warnOnce(`${String(args[0]).slice(0, 20)} failed: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  #init(raw: unknown): void {
    if (this.#client !== null || this.#recorded === null) {
      this.#host.warn('promstream: init called again; ignored (one connection per page: the first init stays)');
      return;
    }
    if (!isRecord(raw)) {
      this.#warnOnce('init needs an options object: { url, labels }');
      return;
    }
    const { options, collectors, warnings } = parseInitOptions(raw);
    for (const w of warnings) this.#warnOnce(w);
    this.#client = this.#host.start(options, collectors, this.#recorded);
    this.#recorded = null; // the client owns it now
  }

  #record(type: MetricType, name: unknown, labels: unknown, value: unknown): void {
    if (this.#client !== null) {
      this.#client.record(type, name, labels, value);
      return;
    }
    const recorded = this.#recorded!;
    // Before init there is no catalogue yet: checked against it when it arrives, as the client does.
    const input = parseRecordInput(name, labels, value);
    if (typeof input === 'string') {
      recorded.drop(input);
      return;
    }
    try {
      recorded.record(type, input.name, input.labels, input.value, null, Number.MAX_VALUE);
    } catch (err) {
      // Typed input by now: a bug of ours, counted apart from bad data (run() warns about it once).
      recorded.drop(RejectReason.CLIENT_ERROR);
      throw err;
    }
  }

  #flush(done: unknown): Promise<boolean> {
    const acknowledged = this.#client === null ? Promise.resolve(false) : this.#client.flush().then(() => true, () => false);
    if (typeof done === 'function') {
      void acknowledged.then((ok) => {
        try {
          Reflect.apply(done, undefined, [ok]);
        } catch (err) {
          this.#host.warn(`promstream: the flush callback threw: ${err instanceof Error ? err.message : String(err)}`);
        }
      });
    }
    return acknowledged;
  }

  #warnOnce(message: string): void {
    if (this.#warned.has(message) || this.#warned.size >= MAX_WARNINGS) return;
    this.#warned.add(message);
    this.#host.warn(`promstream: ${message}`);
  }
}

/**
 * Replaces the queue stub on `scope` with the real function and replays the stub's queue in order,
 * exactly once. Calls made while replaying (from an onStatus callback, say) join the end of the queue,
 * so the order holds. A second copy of the script leaves the first in place.
 */
export function installSnippet(scope: SnippetScope, host: SnippetHost): void {
  // The page's stub, read field by field: it is the page's object, not ours.
  const existing: unknown = scope.promstream;
  const stub = typeof existing === 'function' ? existing : null;
  if (stub !== null && Reflect.get(stub, 'loaded') === true) {
    host.warn('promstream: the script is loaded twice; the second copy does nothing');
    return;
  }
  const q: unknown = stub === null ? undefined : Reflect.get(stub, 'q');
  const stubQueue: unknown[] = Array.isArray(q) ? q : [];
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
