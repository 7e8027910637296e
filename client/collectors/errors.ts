/**
 * Errors (init `errorMetrics: true`; bundlers: `promstream/collectors/errors`):
 * `browser_errors_total{kind}` (and `route` when the whitelist gives the metric one), from
 *
 * - `error`: an uncaught exception (the window's `error` event),
 * - `unhandledrejection`: a promise rejected with nobody to handle it,
 * - `resource`: an element's script, stylesheet, image or media that failed to load (an `error` event
 *   on the element, heard in the capture phase on window).
 *
 * An error that repeats (a loop, every re-render) counts once per page view and message: the messages
 * seen are kept in the page, at most 64 per page view and 200 characters each, and a message beyond
 * those 64 is not counted. Nothing of the message leaves the page: it is no label, only the count is.
 * Errors before `init` are not counted.
 */
import type { CollectorClient } from './hooks.js';
import type { PageViews } from './routes.js';

export type ErrorKind = 'error' | 'unhandledrejection' | 'resource';

export interface ErrorMetricsOptions {
  readonly views?: PageViews | undefined;
}

const MAX_MESSAGES = 64;
const MAX_MESSAGE_LENGTH = 200;

/**
 * Remembers which (page view, message) pairs were counted: `add` is true the first time, false for a
 * repeat or once the page view has `max` messages. Pure, unit-tested.
 */
export class ErrorDedupe {
  #view = -1;
  readonly #seen = new Set<string>();

  readonly #max;

  constructor(max = MAX_MESSAGES) {
    this.#max = max;
  }

  add(view: number, kind: ErrorKind, message: string): boolean {
    if (view !== this.#view) {
      this.#view = view;
      this.#seen.clear();
    }
    const key = `${kind}:${message.slice(0, MAX_MESSAGE_LENGTH)}`;
    if (this.#seen.has(key) || this.#seen.size >= this.#max) return false;
    this.#seen.add(key);
    return true;
  }
}

/** A rejection reason or thrown value as a short text, whatever it is (a getter or toString may throw). */
export function describeReason(reason: unknown): string {
  try {
    if (reason instanceof Error) return `${reason.name}: ${reason.message}`;
    return String(reason);
  } catch {
    return typeof reason;
  }
}

export function startErrorMetrics(client: CollectorClient, { views }: ErrorMetricsOptions = {}): () => void {
  const dedupe = new ErrorDedupe();
  const count = (kind: ErrorKind, message: string): void => {
    const view = views?.current();
    if (!dedupe.add(view?.id ?? 0, kind, message)) return;
    client.record('counter', 'browser_errors_total', view?.route === undefined ? { kind } : { kind, route: view.route }, 1, true);
  };
  const onError = (e: Event): void => {
    try {
      const t = e.target as Partial<HTMLImageElement & HTMLLinkElement> | null;
      if (t !== null && t !== window && typeof t.tagName === 'string') count('resource', `${t.tagName} ${t.src ?? t.href ?? ''}`);
      else count('error', describeReason((e as ErrorEvent).message));
    } catch {
      // ours: never the page's problem
    }
  };
  const onRejection = (e: PromiseRejectionEvent): void => {
    try {
      count('unhandledrejection', describeReason(e.reason));
    } catch {
      // ours: never the page's problem
    }
  };
  addEventListener('error', onError, true);
  addEventListener('unhandledrejection', onRejection);
  return () => {
    removeEventListener('error', onError, true);
    removeEventListener('unhandledrejection', onRejection);
  };
}
