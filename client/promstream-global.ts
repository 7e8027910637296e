/**
 * Types of `window.promstream`, the snippet's global (README "Browser"). For TypeScript pages:
 * `import type {} from 'promstream/browser-global'` (or a triple-slash reference) types the global.
 */
import type { ClientStatus, Labels } from './types.js';

export type { ClientStatus, Labels };

/** The options of `promstream('init', options)`. */
export interface SnippetInitOptions {
  /** ws:// or wss:// URL of the aggregator's /ws endpoint. */
  readonly url: string;
  /** Session labels (the whitelist's sessionLabels); they label connected_clients only. */
  readonly labels?: Labels;
  /** Milliseconds between frames; default: what the server says (--flush-interval). */
  readonly flushInterval?: number;
  /** Milliseconds a 'flush' waits for the acknowledgement; default 30000. */
  readonly flushTimeout?: number;
  /** Observe navigation timing and Core Web Vitals into the page-metrics histograms (opt-in). */
  readonly pageMetrics?: boolean;
  /** Time fetch and XMLHttpRequest into http_client_request_duration_seconds (opt-in). */
  readonly apiMetrics?: boolean;
  /** Count uncaught errors, unhandled rejections and failed resource loads into browser_errors_total (opt-in). */
  readonly errorMetrics?: boolean;
  /**
   * The page's route, or a function of its URL called at each page view: turns on page_views_total and
   * the `route` label of the other collectors' metrics (where the whitelist gives them one).
   */
  readonly route?: string | ((url: URL) => string);
  /** Called with connecting / connected / disconnected / error. */
  readonly onStatus?: (status: ClientStatus) => void;
}

/** The snippet's function. Before the script has loaded it is the queue stub and returns nothing. */
export interface PromstreamSnippet {
  (command: 'init', options: SnippetInitOptions): void;
  (command: 'increment', name: string, labels?: Labels, value?: number): void;
  (command: 'observe', name: string, labels: Labels, value: number): void;
  (command: 'set', name: string, labels: Labels, value: number): void;
  /**
   * Sends what is pending; `done(true)` once the aggregator acknowledged everything recorded before the
   * call, `done(false)` when not within flushTimeout (or before init). Once the script has loaded it
   * also returns that as a promise, which never rejects.
   */
  (command: 'flush', done?: (acknowledged: boolean) => void): Promise<boolean> | undefined;
  /** The stub's queue of calls made before the script loaded; replayed (in order, once) and emptied. */
  q?: ArrayLike<unknown>[];
}

declare global {
  interface Window {
    promstream: PromstreamSnippet;
  }
  // The snippet calls it bare, `promstream('increment', …)`: a global `var` is what makes that typed.
  var promstream: PromstreamSnippet;
}
