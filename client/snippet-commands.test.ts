import { describe, expect, it } from 'vitest';
import type { MetricType } from '../protocol/index.js';
import type { PendingDeltas } from './pending-deltas.js';
import { installSnippet, parseInitOptions, type Collectors, type SnippetClient, type SnippetHost, type SnippetScope } from './snippet-commands.js';
import type { ClientOptions, Labels } from './types.js';

const COMMAND: Record<MetricType, string> = { counter: 'increment', histogram: 'observe', gauge: 'set' };

/** A client that writes down what it is asked, in order. */
class RecordingClient implements SnippetClient {
  readonly calls: unknown[][] = [];
  flushResult: 'ok' | 'timeout' = 'ok';
  sessionId = null;
  constructor(
    readonly options: ClientOptions,
    readonly recorded: PendingDeltas,
  ) {}
  increment(name: string, labels?: Labels, value?: number): void {
    this.calls.push(['increment', name, labels, value]);
  }
  observe(name: string, labels: Labels, value: number): void {
    this.calls.push(['observe', name, labels, value]);
  }
  set(name: string, labels: Labels, value: number): void {
    this.calls.push(['set', name, labels, value]);
  }
  record(type: MetricType, name: unknown, labels: unknown, value: unknown): void {
    this.calls.push([COMMAND[type], name, labels, value]);
  }
  flush(): Promise<void> {
    this.calls.push(['flush']);
    return this.flushResult === 'ok' ? Promise.resolve() : Promise.reject(new Error('not acknowledged'));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function harness() {
  const clients: RecordingClient[] = [];
  const warnings: string[] = [];
  const pageMetrics: boolean[] = [];
  const started: Collectors[] = [];
  const host: SnippetHost = {
    start(options, collectors, recorded) {
      if (!/^wss?:\/\//.test(options.url)) throw new TypeError(`createClient: url must be a ws:// or wss:// URL (got ${String(options.url)})`);
      const c = new RecordingClient(options, recorded);
      clients.push(c);
      pageMetrics.push(collectors.pageMetrics);
      started.push(collectors);
      return c;
    },
    warn: (m) => warnings.push(m),
  };
  // The documented stub, verbatim in spirit: it queues `arguments` objects.
  const scope: SnippetScope & { promstream?: ((...a: unknown[]) => unknown) & { q?: unknown[] } } = {};
  scope.promstream = function (this: unknown) {
    // eslint-disable-next-line prefer-rest-params
    (scope.promstream!.q = scope.promstream!.q ?? []).push(arguments);
  };
  const call = (...args: unknown[]): unknown => scope.promstream!(...args);
  return { host, scope, call, clients, warnings, pageMetrics, started };
}

describe('the snippet queue', () => {
  it('replays queued calls in order, exactly once, then runs calls directly', () => {
    const h = harness();
    const stub = h.scope.promstream!;
    h.call('init', { url: 'ws://127.0.0.1:1/ws', labels: { app: 'student' }, flushInterval: 500 });
    h.call('increment', 'usage_total', { feature: 'a' });
    h.call('observe', 'rt_seconds', { host: 'x' }, 0.2);
    h.call('set', 'presenting', {}, 1);
    h.call('increment', 'usage_total', { feature: 'b' }, 5);
    expect(stub.q).toHaveLength(5);

    installSnippet(h.scope, h.host);
    expect(h.clients).toHaveLength(1);
    const [client] = h.clients;
    expect(client!.options).toEqual({ url: 'ws://127.0.0.1:1/ws', labels: { app: 'student' }, flushInterval: 500 });
    expect(client!.calls).toEqual([
      ['increment', 'usage_total', { feature: 'a' }, 1],
      ['observe', 'rt_seconds', { host: 'x' }, 0.2],
      ['set', 'presenting', {}, 1],
      ['increment', 'usage_total', { feature: 'b' }, 5],
    ]);
    // the stub's queue is emptied: a second look cannot replay it
    expect(stub.q).toHaveLength(0);
    expect(h.scope.promstream).not.toBe(stub);

    h.call('increment', 'usage_total', { feature: 'c' }, 2);
    expect(client!.calls.at(-1)).toEqual(['increment', 'usage_total', { feature: 'c' }, 2]);
    expect(client!.calls).toHaveLength(5);
    expect(h.warnings).toEqual([]);
  });

  it('keeps the order when a replayed call makes the page call promstream (onStatus, say)', () => {
    const h = harness();
    const order: string[] = [];
    h.call('init', {
      url: 'ws://127.0.0.1:1/ws',
      onStatus: () => {},
    });
    h.call('increment', 'first', {});
    h.call('increment', 'second', {});
    const host: SnippetHost = {
      ...h.host,
      start(options, pm, recorded) {
        const c = h.host.start(options, pm, recorded) as RecordingClient;
        // the page reacts to the client starting by calling promstream while the replay is running
        h.call('increment', 'from-callback', {});
        const record = c.record.bind(c);
        c.record = (type, name, labels, value) => {
          order.push(String(name));
          record(type, name, labels, value);
        };
        return c;
      },
    };
    installSnippet(h.scope, host);
    expect(order).toEqual(['first', 'second', 'from-callback']);
  });

  it('aggregates what is recorded before init and hands it to the client; nothing is started before init', () => {
    const h = harness();
    for (let i = 0; i < 1000; i++) h.call('increment', 'usage_total', { feature: 'a' });
    h.call('set', 'presenting', {}, 3);
    h.call('set', 'presenting', {}, 4);
    h.call('observe', 'rt_seconds', { host: 'x' }, 0.25);
    installSnippet(h.scope, h.host);
    for (let i = 0; i < 1000; i++) h.call('increment', 'usage_total', { feature: 'a' }, 2);
    expect(h.clients).toHaveLength(0);

    h.call('init', { url: 'ws://127.0.0.1:1/ws' });
    expect(h.clients).toHaveLength(1);
    const recorded = h.clients[0]!.recorded;
    // one aggregated entry per series, not a queue of 2000 calls
    const entries = [...recorded.entries.values()].map((e) => [e.type, e.name, e.value, e.sum, e.raw]);
    expect(entries).toEqual(
      expect.arrayContaining([
        ['counter', 'usage_total', 3000, 0, null],
        ['gauge', 'presenting', 4, 0, null],
        ['histogram', 'rt_seconds', 0, 0.25, [0.25]],
      ]),
    );
    expect(recorded.entries.size).toBe(3);
    expect(h.clients[0]!.calls).toEqual([]);
  });

  it('a second init is a no-op with a warning; the first connection stays', () => {
    const h = harness();
    installSnippet(h.scope, h.host);
    h.call('init', { url: 'ws://127.0.0.1:1/ws', labels: { app: 'a' } });
    h.call('init', { url: 'ws://127.0.0.1:2/ws', labels: { app: 'b' } });
    expect(h.clients).toHaveLength(1);
    expect(h.clients[0]!.options.url).toBe('ws://127.0.0.1:1/ws');
    expect(h.warnings).toEqual(['promstream: init called again; ignored (one connection per page: the first init stays)']);
  });

  it('parses init options into typed values: a wrong type gets a warning and a safe default (review defect 9)', () => {
    const status = (): void => {};
    const good = parseInitOptions({
      url: 'ws://h/ws', labels: { app: 'a' }, flushInterval: 500, flushTimeout: 2000, onStatus: status,
      pageMetrics: true, apiMetrics: true, errorMetrics: false, route: '/courses/:id',
    });
    expect(good).toMatchObject({
      options: { url: 'ws://h/ws', labels: { app: 'a' }, flushInterval: 500, flushTimeout: 2000 },
      collectors: { pageMetrics: true, apiMetrics: true, errorMetrics: false, route: '/courses/:id' },
      warnings: [],
    });
    const bad = parseInitOptions({
      url: 42, labels: { app: 7 }, flushInterval: '1s', flushTimeout: -1, onStatus: 'log',
      pageMetrics: 'yes', apiMetrics: 1, errorMetrics: {}, route: 42,
    });
    expect(bad.options).toEqual({ url: '42' });
    expect(bad.collectors).toEqual({ pageMetrics: false, apiMetrics: false, errorMetrics: false });
    expect(bad.warnings).toEqual([
      'init: labels must be an object of strings, e.g. { app: "student" }; sending none',
      "init: flushInterval is milliseconds ≥ 100; using the server's",
      'init: flushTimeout is milliseconds > 0; using 30000',
      'init: onStatus must be a function; ignored',
      'init: route must be a string or a function of the URL returning one; routes and page views off',
      'init: pageMetrics must be true or false; off',
      'init: apiMetrics must be true or false; off',
      'init: errorMetrics must be true or false; off',
    ]);
    // a route function is called with the URL and no `this` of ours
    const seen: unknown[] = [];
    const fn = function (this: unknown, u: URL): string {
      seen.push(this, u.pathname);
      return '/r';
    };
    const routed = parseInitOptions({ url: 'ws://h/ws', route: fn }).collectors.route;
    expect(typeof routed === 'function' ? routed(new URL('http://127.0.0.1/x?y')) : routed).toBe('/r');
    expect(seen).toEqual([undefined, '/x']);
    // labels are copied: the page changing its object later does not reach the client
    const labels = { app: 'a' };
    const parsed = parseInitOptions({ url: 'ws://h/ws', labels });
    labels.app = 'b';
    expect(parsed.options.labels).toEqual({ app: 'a' });
  });

  it('pageMetrics is passed on only when true', () => {
    const h = harness();
    installSnippet(h.scope, h.host);
    h.call('init', { url: 'ws://127.0.0.1:1/ws', pageMetrics: 'yes' });
    const g = harness();
    installSnippet(g.scope, g.host);
    g.call('init', { url: 'ws://127.0.0.1:1/ws', pageMetrics: true });
    expect([...h.pageMetrics, ...g.pageMetrics]).toEqual([false, true]);
  });

  it('never throws into the page, whatever it calls; warns once per kind of mistake', () => {
    const h = harness();
    installSnippet(h.scope, h.host);
    const hostile: unknown[][] = [
      [], [undefined], [42], ['nope'], ['nope'], [Symbol('x')], ['init'], ['init', 'ws://x'], ['init', { url: 'http://not-ws' }],
      ['increment', Symbol('name')], ['increment', 'x', 'labels', 'NaN'], ['observe', 'x', null, Infinity], ['set', {}, [], {}],
      ['flush', 'not a function'],
    ];
    for (const args of hostile) expect(() => h.call(...args)).not.toThrow();
    expect(h.clients).toHaveLength(0);
    expect(h.warnings).toContain('promstream: unknown command "nope"; use init, increment, observe, set or flush');
    expect(h.warnings.filter((w) => w.includes('"nope"'))).toHaveLength(1);
    expect(h.warnings.some((w) => w.includes('url must be a ws:// or wss:// URL'))).toBe(true);
    // after a failed init a good one still works
    h.call('init', { url: 'ws://127.0.0.1:1/ws', flushInterval: 0 });
    expect(h.clients).toHaveLength(1);
    expect(h.clients[0]!.options).toEqual({ url: 'ws://127.0.0.1:1/ws' });
    expect(h.warnings.some((w) => w.includes('flushInterval is milliseconds'))).toBe(true);
  });

  it('flush resolves true once acknowledged, false before init or when not acknowledged, and calls back', async () => {
    const h = harness();
    const seen: boolean[] = [];
    h.call('flush', (ok: boolean) => seen.push(ok)); // queued before load and before init
    installSnippet(h.scope, h.host);
    await expect(h.call('flush')).resolves.toBe(false);
    h.call('init', { url: 'ws://127.0.0.1:1/ws' });
    await expect(h.call('flush', (ok: boolean) => seen.push(ok))).resolves.toBe(true);
    h.clients[0]!.flushResult = 'timeout';
    await expect(h.call('flush')).resolves.toBe(false);
    expect(seen).toEqual([false, true]);
    // a throwing callback is reported, not thrown
    await h.call('flush', () => {
      throw new Error('page bug');
    });
    await Promise.resolve();
    expect(h.warnings.at(-1)).toBe('promstream: the flush callback threw: page bug');
  });

  it('a second copy of the script leaves the first in place', () => {
    const h = harness();
    installSnippet(h.scope, h.host);
    const first = h.scope.promstream;
    installSnippet(h.scope, h.host);
    expect(h.scope.promstream).toBe(first);
    expect(h.warnings).toEqual(['promstream: the script is loaded twice; the second copy does nothing']);
  });

  it('works when the script arrives before any stub (calls go straight through)', () => {
    const scope: SnippetScope = {};
    const h = harness();
    installSnippet(scope, h.host);
    (scope.promstream as (...a: unknown[]) => unknown)('init', { url: 'wss://example.test/ws' });
    expect(h.clients).toHaveLength(1);
  });
});
