/**
 * API latency (init `apiMetrics: true`; bundlers: `promstream/collectors/api`): every `fetch` and
 * `XMLHttpRequest` of the page, timed into `http_client_request_duration_seconds{host, method,
 * status_class}` (and `route`, the page view's at the request's start, when the whitelist gives the
 * metric one). Only the host (`api.example.com`, with a port when not the default) can leave the page,
 * and only when the whitelist lists it (else it counts under the label's fallback): never a path or a
 * query. Requests to the aggregator's own host are not counted.
 *
 * What is measured, from the call (fetch, or XHR's send) to:
 * - XHR: its `loadend` event, which comes after the last byte of the body (or the failure).
 * - fetch with a 2xx response: the Resource Timing entry's `responseEnd` (the last byte of the body;
 *   engines give it whether or not the server sent Timing-Allow-Origin, which hides only the phases),
 *   matched by URL. Where no entry arrives within 10 s of the response headers (a body still streaming,
 *   one the page never reads), or the page is hidden first, it is the time to the headers: when fetch's
 *   promise resolved.
 * - fetch with another status (3xx without redirect, 4xx, 5xx, opaque): the headers, at once. Chromium
 *   gives such responses no Resource Timing entry, and an error's body is small.
 * - a failure: when fetch rejected or XHR fired `error` (`status_class="error"`), or the page gave up,
 *   fetch's AbortError/TimeoutError and XHR's `abort`/`timeout` (`"aborted"`).
 *
 * `status_class` is `1xx` … `5xx`, `opaque` (a no-cors fetch's response, whose status the page cannot
 * see), `error` or `aborted`. The wrappers are transparent: the page's function is called with the same
 * `this` and arguments, fetch's result settles with the same response or the same error (one tick
 * later), and our part runs in try/catch.
 */
import { claim, hook, release, type CollectorClient } from './hooks.js';
import type { PageViews } from './routes.js';

export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'opaque' | 'error' | 'aborted';

export interface ApiMetricsOptions {
  readonly views?: PageViews | undefined;
  /** The aggregator's URL (ws:// or wss://): requests to its host are not counted. */
  readonly aggregatorUrl?: string;
}

/** After the headers, how long to wait for the body's Resource Timing entry before taking the headers' time. */
const ENTRY_WAIT_MS = 10_000;
/** Requests measured at once; more (requests that never end, say) go unmeasured. */
const MAX_PENDING = 100;

/** A response's class: its status's hundreds, or what fetch's response type says instead. Pure. */
export function statusClass(status: number, type?: string): StatusClass {
  if (type === 'opaqueredirect') return '3xx';
  if (type === 'opaque') return 'opaque';
  return status >= 100 && status < 600 ? (`${Math.floor(status / 100)}xx` as StatusClass) : 'error';
}

/** A fetch rejection's class: the page gave up (abort, timeout), or the request failed. Pure. */
export function failureClass(error: unknown): StatusClass {
  try {
    const name: unknown = (error as { name?: unknown } | null)?.name;
    return name === 'AbortError' || name === 'TimeoutError' ? 'aborted' : 'error';
  } catch {
    return 'error';
  }
}

interface Measured {
  readonly host: string;
  readonly method: string;
  readonly route: string | undefined;
  /** The URL without its fragment, as Resource Timing names it. */
  readonly href: string;
  readonly start: number;
}

interface Pending {
  readonly req: Measured;
  cls?: StatusClass;
  headersAt?: number;
  /** The body's responseEnd, when its entry came first. */
  end?: number;
  timer?: ReturnType<typeof setTimeout>;
}

type FetchHandler = (args: IArguments) => ((response: Response | undefined, error?: unknown) => void) | undefined;
interface XhrHandler {
  open(xhr: XMLHttpRequest, method: unknown, url: unknown): void;
  send(xhr: XMLHttpRequest): void;
}

export function startApiMetrics(client: CollectorClient, { views, aggregatorUrl }: ApiMetricsOptions = {}): () => void {
  const own = aggregatorUrl === undefined ? '' : new URL(aggregatorUrl).host;
  const pending: Pending[] = [];

  const request = (url: unknown, method: unknown): Measured | null => {
    const u = new URL(String(url), location.href);
    if (!/^https?:$/.test(u.protocol) || u.host === own || pending.length >= MAX_PENDING) return null;
    const m = typeof method === 'string' ? method.toUpperCase().slice(0, 16) : 'GET';
    return { host: u.host, method: m, route: views?.current().route, href: u.href.split('#')[0]!, start: performance.now() };
  };
  const record = (req: Measured, cls: StatusClass, end: number): void => {
    const labels: Record<string, string> = { host: req.host, method: req.method, status_class: cls };
    if (req.route !== undefined) labels.route = req.route;
    client.record('histogram', 'http_client_request_duration_seconds', labels, Math.max(0, end - req.start) / 1000, true);
  };
  const settle = (p: Pending, cls: StatusClass, end: number): void => {
    const i = pending.indexOf(p);
    if (i < 0) return;
    pending.splice(i, 1);
    clearTimeout(p.timer);
    record(p.req, cls, end);
  };

  // fetch's body end: the Resource Timing entry, matched to the oldest request of that URL still waiting.
  const observer = typeof PerformanceObserver === 'function' ? new PerformanceObserver((list) => {
    for (const e of list.getEntries() as PerformanceResourceTiming[]) {
      if (e.initiatorType !== 'fetch') continue;
      const href = e.name.split('#')[0];
      const p = pending.find((x) => x.end === undefined && x.req.href === href && e.startTime >= x.req.start - 1);
      if (p === undefined) continue;
      p.end = e.responseEnd > 0 ? e.responseEnd : performance.now();
      if (p.cls !== undefined) settle(p, p.cls, p.end);
    }
  }) : null;
  try {
    observer?.observe({ type: 'resource' });
  } catch {
    // no Resource Timing here: fetch is timed to its headers
  }
  // Hidden: the page may never run again, so what waits for a body end is recorded now (before the flush).
  const onHidden = (): void => {
    if (document.visibilityState !== 'hidden') return;
    for (const p of pending.slice()) if (p.cls !== undefined) settle(p, p.cls, p.headersAt!);
  };
  addEventListener('visibilitychange', onHidden, true);

  const onFetch: FetchHandler = (args) => {
    const input: unknown = args[0];
    const init = args[1] as { method?: unknown } | undefined;
    const isRequest = typeof Request === 'function' && input instanceof Request;
    const req = request(isRequest ? input.url : input, init?.method ?? (isRequest ? input.method : undefined));
    if (req === null) return undefined;
    const p: Pending = { req };
    pending.push(p);
    return (response, error) => {
      const now = performance.now();
      if (response === undefined) return settle(p, failureClass(error), now);
      p.cls = statusClass(response.status, response.type);
      p.headersAt = now;
      if (p.end !== undefined) return settle(p, p.cls, p.end);
      // Chromium has no entry for an error status or an opaque response: those are timed to the headers.
      if (!response.ok) return settle(p, p.cls, now);
      p.timer = setTimeout(() => settle(p, p.cls!, now), ENTRY_WAIT_MS);
    };
  };

  const xhrs = new WeakMap<XMLHttpRequest, { method: unknown; url: unknown; req?: Measured | null; outcome?: StatusClass | undefined; listening?: boolean }>();
  const onXhr: XhrHandler = {
    open(xhr, method, url) {
      xhrs.set(xhr, { method, url });
    },
    send(xhr) {
      const s = xhrs.get(xhr);
      if (s === undefined) return;
      s.req = request(s.url, s.method);
      s.outcome = undefined;
      if (s.req === null || s.listening === true) return;
      s.listening = true;
      const outcome = (cls: StatusClass) => (): void => void (s.outcome = cls);
      xhr.addEventListener('abort', outcome('aborted'));
      xhr.addEventListener('timeout', outcome('aborted'));
      xhr.addEventListener('error', outcome('error'));
      xhr.addEventListener('loadend', () => {
        try {
          const req = s.req;
          s.req = null;
          if (req) record(req, s.outcome ?? statusClass(xhr.status), performance.now());
        } catch {
          // ours: never the page's problem
        }
      });
    },
  };

  const fetchSlot = hook<FetchHandler>(globalThis, 'fetch', (original, slot) =>
    function fetch(this: unknown, _input: unknown) {
      let done: ReturnType<FetchHandler>;
      try {
        // eslint-disable-next-line prefer-rest-params -- the page's own arguments
        done = slot.on?.(arguments);
      } catch {
        done = undefined;
      }
      let result: unknown;
      try {
        // eslint-disable-next-line prefer-rest-params -- passed on untouched
        result = Reflect.apply(original, this, arguments);
      } catch (error) {
        // Not a native fetch (those reject instead): the same error, after ours has noted it.
        try {
          done?.(undefined, error);
        } catch {
          // ours
        }
        throw error;
      }
      if (done === undefined || typeof (result as Promise<Response> | null)?.then !== 'function') return result;
      const finish = done;
      return (result as Promise<Response>).then(
        (response) => {
          try {
            finish(response);
          } catch {
            // ours
          }
          return response;
        },
        (error: unknown) => {
          try {
            finish(undefined, error);
          } catch {
            // ours
          }
          throw error;
        },
      );
    });
  const proto = typeof XMLHttpRequest === 'function' ? XMLHttpRequest.prototype : null;
  const xhrSlots = proto === null ? [] : [
    hook<XhrHandler>(proto, 'open', (original, slot) =>
      function open(this: XMLHttpRequest, method: unknown, url: unknown) {
        try {
          slot.on?.open(this, method, url);
        } catch {
          // ours
        }
        // eslint-disable-next-line prefer-rest-params -- passed on untouched
        return Reflect.apply(original, this, arguments) as unknown;
      }),
    hook<XhrHandler>(proto, 'send', (original, slot) =>
      function send(this: XMLHttpRequest) {
        try {
          slot.on?.send(this);
        } catch {
          // ours
        }
        // eslint-disable-next-line prefer-rest-params -- passed on untouched
        return Reflect.apply(original, this, arguments) as unknown;
      }),
  ];
  claim(fetchSlot, onFetch);
  for (const s of xhrSlots) claim(s, onXhr);

  return () => {
    release(fetchSlot, onFetch);
    for (const s of xhrSlots) release(s, onXhr);
    observer?.disconnect();
    removeEventListener('visibilitychange', onHidden, true);
  };
}
