/**
 * The collectors' pure parts, without a browser: route normalisation, the error dedupe set, status
 * classes, the navigation-timing computation (with the entries the engines gave, docs/BFCACHE-FINDINGS.md),
 * the Web Vitals thresholds against the example whitelist's buckets, and the page-function wrappers'
 * transparency. The browser behaviour itself is test/e2e/collectors.test.ts, in every engine.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KnownCatalog, PendingDeltas } from '../pending-deltas.js';
import { NAVIGATION_TIMING_FIELDS, WEB_VITALS, navigationTimingSeconds, type NavigationTimingField } from '../page-metrics.js';
import { failureClass, statusClass } from './api.js';
import { ErrorDedupe, describeReason } from './errors.js';
import { claim, hook, release, type Slot } from './hooks.js';
import { normaliseRoute } from './routes.js';

const EXAMPLES = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../examples');

describe('normaliseRoute', () => {
  it('keeps a string up to a query or fragment and at most 128 characters; anything else is no route', () => {
    expect(normaliseRoute('/courses/:id')).toBe('/courses/:id');
    expect(normaliseRoute('/search?q=secret')).toBe('/search');
    expect(normaliseRoute('/a#section?x')).toBe('/a');
    expect(normaliseRoute('')).toBe('');
    expect(normaliseRoute('x'.repeat(500))).toBe('x'.repeat(128));
    for (const v of [undefined, null, 42, {}, ['/'], () => '/', Symbol('r')]) expect(normaliseRoute(v)).toBeUndefined();
  });
});

describe('ErrorDedupe', () => {
  it('counts a message once per page view and kind; a new page view starts afresh', () => {
    const d = new ErrorDedupe();
    expect(d.add(1, 'error', 'x is not defined')).toBe(true);
    for (let i = 0; i < 1000; i++) expect(d.add(1, 'error', 'x is not defined')).toBe(false);
    expect(d.add(1, 'unhandledrejection', 'x is not defined')).toBe(true);
    expect(d.add(2, 'error', 'x is not defined')).toBe(true);
    expect(d.add(2, 'error', 'x is not defined')).toBe(false);
  });

  it('holds at most 64 messages of 200 characters per page view: more distinct messages are not counted', () => {
    const d = new ErrorDedupe();
    let counted = 0;
    for (let i = 0; i < 10_000; i++) if (d.add(1, 'error', `failed at ${i}`)) counted++;
    expect(counted).toBe(64);
    const long = 'y'.repeat(200);
    const e = new ErrorDedupe();
    expect(e.add(1, 'error', `${long}a`)).toBe(true);
    expect(e.add(1, 'error', `${long}b`)).toBe(false); // the same first 200 characters
  });

  it('describes any rejection reason without throwing', () => {
    expect(describeReason(new TypeError('bad'))).toBe('TypeError: bad');
    expect(describeReason('plain')).toBe('plain');
    expect(describeReason(undefined)).toBe('undefined');
    expect(describeReason(Symbol('s'))).toBe('Symbol(s)');
    expect(describeReason({ toString: () => { throw new Error('no'); } })).toBe('object');
    expect(describeReason(Object.create(null))).toBe('object');
  });
});

describe('status classes', () => {
  it('by hundreds, opaque and opaque redirects by response type, anything else an error', () => {
    expect([200, 204, 301, 304, 404, 499, 500, 599].map((s) => statusClass(s))).toEqual(['2xx', '2xx', '3xx', '3xx', '4xx', '4xx', '5xx', '5xx']);
    expect(statusClass(101)).toBe('1xx');
    expect(statusClass(0, 'opaque')).toBe('opaque');
    expect(statusClass(0, 'opaqueredirect')).toBe('3xx');
    expect(statusClass(0)).toBe('error'); // an XHR that failed
    expect(statusClass(600)).toBe('error');
  });

  it("a fetch rejection: the page's abort or timeout, else an error", () => {
    expect(failureClass(new DOMException('aborted', 'AbortError'))).toBe('aborted');
    expect(failureClass(new DOMException('timed out', 'TimeoutError'))).toBe('aborted');
    expect(failureClass(new TypeError('Failed to fetch'))).toBe('error');
    expect(failureClass(undefined)).toBe('error');
    expect(failureClass({ get name(): string { throw new Error('hostile'); } })).toBe('error');
  });
});

type RawEntry = Record<NavigationTimingField | 'startTime', number>;
/** A navigation entry: `startTime` 0, no previous document to unload, the rest as given (ms). */
const entry = (fields: Partial<RawEntry>): RawEntry => ({
  startTime: 0, navigationStart: 0, unloadEventStart: 0, unloadEventEnd: 0, fetchStart: 2, domainLookupStart: 2, domainLookupEnd: 2,
  connectStart: 2, connectEnd: 2, requestStart: 5, responseStart: 8, responseEnd: 9, domInteractive: 30, domContentLoadedEventStart: 31,
  domContentLoadedEventEnd: 32, domComplete: 40, loadEventStart: 41, loadEventEnd: 42, ...fields,
});

describe('navigationTimingSeconds', () => {
  it("Firefox's first page of a new tab (fetchStart before the time origin): measured from fetchStart, nothing dropped", () => {
    const s = navigationTimingSeconds(entry({ fetchStart: -12, domainLookupStart: 18, domainLookupEnd: 19, connectStart: 19, connectEnd: 20, requestStart: 20, responseStart: 22 }));
    expect(s.navigationStart).toBe(0);
    expect(s.fetchStart).toBe(0);
    expect(s.domainLookupStart).toBeCloseTo(0.03, 12);
    // phases keep their length: fetchStart → domainLookupStart is 30 ms, not the 18 a clamp to 0 would leave
    expect(s.domainLookupStart! - s.fetchStart!).toBeCloseTo(0.03, 12);
    expect(s.loadEventEnd).toBeCloseTo(0.054, 12);
    expect(Object.keys(s).sort()).toEqual(NAVIGATION_TIMING_FIELDS.filter((f) => !f.startsWith('unload')).sort());
  });

  it("a reused connection in Firefox (domainLookup*, connect* = fetchStart < 0) and WebKit's exact zeros are reported, as 0", () => {
    const firefox = navigationTimingSeconds(entry({ fetchStart: -2, domainLookupStart: -2, domainLookupEnd: -2, connectStart: -2, connectEnd: -2 }));
    for (const f of ['fetchStart', 'domainLookupStart', 'domainLookupEnd', 'connectStart', 'connectEnd'] as const) expect(firefox[f]).toBe(0);
    const webkit = navigationTimingSeconds(entry({ fetchStart: 0, domainLookupStart: 0, domainLookupEnd: 0, connectStart: 0, connectEnd: 0 }));
    for (const f of ['fetchStart', 'domainLookupStart', 'domainLookupEnd', 'connectStart', 'connectEnd'] as const) expect(webkit[f]).toBe(0);
    expect(webkit.requestStart).toBe(0.005);
  });

  it('skips only the optional unloadEvent* at 0, and reports them when there was a document to unload', () => {
    expect(navigationTimingSeconds(entry({})).unloadEventStart).toBeUndefined();
    const s = navigationTimingSeconds(entry({ unloadEventStart: 10, unloadEventEnd: 11 }));
    expect([s.unloadEventStart, s.unloadEventEnd]).toEqual([0.01, 0.011]);
  });
});

describe('Web Vitals against the example whitelist', () => {
  const whitelist = JSON.parse(readFileSync(path.join(EXAMPLES, 'page-metrics-whitelist.json'), 'utf8')) as {
    allowedMetrics: { name: string; type: 'histogram'; buckets: number[]; labels: { name: string; allowedValues: string[]; fallback?: string }[] }[];
  };
  const catalog = new KnownCatalog({
    version: 1,
    metrics: whitelist.allowedMetrics.map((m) => ({
      name: m.name, type: m.type, buckets: m.buckets, labelNames: m.labels.map((l) => l.name),
      labelValues: m.labels.map((l) => (l.fallback === undefined || l.allowedValues.includes(l.fallback) ? l.allowedValues : [...l.allowedValues, l.fallback])),
    })),
  });
  // good ≤ first, poor > second (web.dev); web-vitals reports milliseconds, CLS unitless
  const THRESHOLDS = { LCP: [2500, 4000], INP: [200, 500], FCP: [1800, 3000], TTFB: [800, 1800], CLS: [0.1, 0.25] } as const;

  it('a value exactly at a threshold lands in the bucket of that bound, just above it in the next: the shares are exact', () => {
    for (const [name, [good, poor]] of Object.entries(THRESHOLDS)) {
      const { metric, divisor } = WEB_VITALS[name as keyof typeof WEB_VITALS];
      const buckets = catalog.byName.get(metric)!.buckets;
      for (const bound of [good, poor]) {
        const i = buckets.indexOf(bound / divisor);
        expect(i, `${metric} has a bucket at ${bound / divisor}`).toBeGreaterThanOrEqual(0);
        const p = new PendingDeltas();
        const step = name === 'CLS' ? 0.0001 : 1;
        for (const v of [bound, bound + step]) p.record('histogram', metric, { route: '/' }, v / divisor, catalog, Number.MAX_VALUE, true);
        const [sample] = p.take(catalog, 10, false).samples as number[][];
        const counts = sample!.slice(-(buckets.length + 1));
        expect(counts[i], `${metric} = ${bound / divisor}`).toBe(1);
        expect(counts[i + 1], `${metric} just above ${bound / divisor}`).toBe(1);
      }
    }
  });
});

describe('hook: wrapping a page function', () => {
  type H = (args: IArguments) => void;
  const wrapWith = (owner: object, key: string): Slot<H> | null =>
    hook<H>(owner, key, (original, slot) =>
      function (this: unknown) {
        try {
          // eslint-disable-next-line prefer-rest-params
          slot.on?.(arguments);
        } catch {
          // ours
        }
        // eslint-disable-next-line prefer-rest-params
        return Reflect.apply(original, this, arguments) as unknown;
      });

  it('is transparent: same this, arguments, return value and exception; our handler throwing changes nothing', () => {
    const owner = {
      base: 10,
      add(this: { base: number }, a: number, b: number): number {
        if (a < 0) throw new RangeError('negative');
        return this.base + a + b;
      },
    };
    const seen: unknown[][] = [];
    const slot = wrapWith(owner, 'add');
    expect(claim(slot, (args: IArguments) => void seen.push([...args]))).toBe(true);
    expect(owner.add(1, 2)).toBe(13);
    expect(owner.add.call({ base: 100 }, 1, 2)).toBe(103);
    expect(() => owner.add(-1, 0)).toThrow(new RangeError('negative'));
    expect(seen).toEqual([[1, 2], [1, 2], [-1, 0]]);
    slot!.on = () => {
      throw new Error('a bug of ours');
    };
    expect(owner.add(1, 1)).toBe(12);
  });

  it('wraps once per page: a second install shares the slot, a second claim is refused, a release frees it', () => {
    const owner = { f: (): string => 'page' };
    const first = wrapWith(owner, 'f');
    const wrapped = owner.f;
    const second = wrapWith(owner, 'f');
    expect(second).toBe(first);
    expect(owner.f).toBe(wrapped);
    const a: H = () => {};
    const b: H = () => {};
    expect(claim(first, a)).toBe(true);
    expect(claim(second, b)).toBe(false);
    release(second, b); // not its slot to give back
    expect(first!.on).toBe(a);
    release(first, a);
    expect(claim(second, b)).toBe(true);
    expect(owner.f()).toBe('page');
    expect(wrapWith({ f: 42 }, 'f')).toBeNull();
  });
});
