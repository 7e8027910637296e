import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Catalog } from '../protocol/index.js';
import { CLIENT_LIMITS, KnownCatalog, PendingDeltas } from './pending-deltas.js';

const MAX = 1000;
const catalogObject: Catalog = {
  version: 7,
  metrics: [
    { name: 'usage_total', type: 'counter', labelNames: ['feature', 'browser'], labelValues: [['a', 'b'], ['x', 'y']], buckets: [] },
    { name: 'rt', type: 'histogram', labelNames: ['host'], labelValues: [['h0', 'h1']], buckets: [0.1, 0.5, 1] },
    { name: 'presenting', type: 'gauge', labelNames: [], labelValues: [], buckets: [] },
    { name: 'tabs', type: 'gauge', labelNames: ['kind'], labelValues: [['p', 'q']], buckets: [] },
  ],
};
const catalog = new KnownCatalog(catalogObject);
const COUNTER = 0;
const HIST = 1;
const GAUGE = 2;
const TABS = 3;

const dropsOf = (m: ReadonlyMap<string, number>): Record<string, number> => Object.fromEntries([...m].sort());
const sortSamples = (samples: unknown[]): unknown[] => [...samples].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe('KnownCatalog.locate', () => {
  it('gives [metricIndex, ...labelIndexes] in catalogue label order, whatever the key order', () => {
    expect(catalog.locate('usage_total', 'counter', { feature: 'b', browser: 'x' })).toEqual([COUNTER, 1, 0]);
    expect(catalog.locate('usage_total', 'counter', { browser: 'y', feature: 'a' })).toEqual([COUNTER, 0, 1]);
    expect(catalog.locate('presenting', 'gauge', {})).toEqual([GAUGE]);
    expect(catalog.locate('rt', 'histogram', { host: 'h1' })).toEqual([HIST, 1]);
  });
});

describe('KnownCatalog: values outside the list and loose labels', () => {
  it('sends a value outside the list as the index one past the last, and aggregates all such values into one series', () => {
    expect(catalog.locate('usage_total', 'counter', { feature: 'zzz', browser: 'x' })).toEqual([COUNTER, 2, 0]);
    const p = new PendingDeltas();
    for (let i = 0; i < 100; i++) p.record('counter', 'usage_total', { feature: `f${i}`, browser: 'y' }, 1, catalog, MAX);
    p.record('counter', 'usage_total', { feature: 'nope' }, 1, null, MAX);
    expect(p.entries.size).toBe(2);
    const { samples, drops } = p.take(catalog, 100, false);
    expect(samples).toEqual([[COUNTER, 2, 1, 100]]);
    // a label missing is still the page's mistake: dropped, counted
    expect(dropsOf(drops)).toEqual({ label_not_allowed: 1 });
  });

  it("loose (a collector's sample): leaves out labels the metric lacks; one it has but was not given is not listed", () => {
    expect(catalog.resolve('rt', 'histogram', { host: 'h1', route: '/a', method: 'GET' }, true)).toEqual({ host: 'h1' });
    expect(catalog.resolve('rt', 'histogram', { route: '/a' }, true)).toEqual({ host: '\u0000' });
    expect(catalog.locate('rt', 'histogram', { route: '/a' }, true)).toEqual([HIST, 2]);
    expect(catalog.resolve('rt', 'histogram', { host: 'h1', route: '/a' }, false)).toBe('label_not_allowed');
    expect(catalog.resolve('rt', 'counter', { host: 'h1' }, true)).toBe('unknown_metric');
    // an inherited property is not a label
    expect(catalog.resolve('tabs', 'gauge', Object.create({ kind: 'p' }) as Record<string, string>, true)).toEqual({ kind: '\u0000' });
    const p = new PendingDeltas();
    p.record('histogram', 'rt', { host: 'h0', route: '/x' }, 0.2, null, MAX, true);
    p.record('histogram', 'rt', { host: 'h0', route: '/y' }, 0.3, catalog, MAX, true);
    p.record('histogram', 'rt', { host: 'elsewhere', route: '/y' }, 2, catalog, MAX, true);
    p.record('histogram', 'rt', { host: 'another', route: '/z' }, 2, catalog, MAX, true);
    // before the catalogue: one entry per label set as given; after it: one per series
    expect(p.entries.size).toBe(3);
    const { samples, drops } = p.take(catalog, 100, false);
    expect(drops.size).toBe(0);
    expect(sortSamples(samples)).toEqual(sortSamples([[HIST, 0, 0.2, 0, 1, 0, 0], [HIST, 0, 0.3, 0, 1, 0, 0], [HIST, 2, 4, 0, 0, 0, 2]]));
  });
});

describe('PendingDeltas: counters', () => {
  it('aggregates per series; labels in any key order are the same series', () => {
    const p = new PendingDeltas();
    p.record('counter', 'usage_total', { feature: 'a', browser: 'x' }, 1, catalog, MAX);
    p.record('counter', 'usage_total', { browser: 'x', feature: 'a' }, 2, catalog, MAX);
    p.record('counter', 'usage_total', { browser: 'y', feature: 'b' }, 0.5, catalog, MAX);
    p.record('counter', 'usage_total', { feature: 'a', browser: 'x' }, 0, catalog, MAX);
    expect(p.entries.size).toBe(2);
    const { samples, drops, entries } = p.take(catalog, 100, false);
    expect(sortSamples(samples)).toEqual([[COUNTER, 0, 0, 3], [COUNTER, 1, 1, 0.5]]);
    expect(drops.size).toBe(0);
    expect(entries).toHaveLength(2);
    expect(p.isEmpty).toBe(true);
  });

  it('aggregates before the catalogue too, and encodes at take', () => {
    const p = new PendingDeltas();
    p.record('counter', 'usage_total', { feature: 'b', browser: 'y' }, 4, null, MAX);
    p.record('counter', 'usage_total', { browser: 'y', feature: 'b' }, 6, null, MAX);
    expect(p.take(catalog, 100, false).samples).toEqual([[COUNTER, 1, 1, 10]]);
  });

  it('does not alias the caller’s labels object', () => {
    const p = new PendingDeltas();
    const labels: Record<string, string> = { feature: 'a', browser: 'x' };
    p.record('counter', 'usage_total', labels, 1, catalog, MAX);
    labels['feature'] = 'b';
    expect(p.take(catalog, 100, false).samples).toEqual([[COUNTER, 0, 0, 1]]);
  });
});

describe('PendingDeltas: drops by reason', () => {
  it('counts each kind of bad record once under its reason and keeps nothing of it', () => {
    const p = new PendingDeltas();
    const ok = { feature: 'a', browser: 'x' };
    p.record('counter', 'nope_total', {}, 1, catalog, MAX); // unknown_metric
    p.record('gauge', 'usage_total', ok, 1, catalog, MAX); // unknown_metric: wrong type for the name
    p.record('histogram', 'presenting', {}, 1, catalog, MAX); // unknown_metric
    p.record('counter', 'usage_total', { feature: 'a' }, 1, catalog, MAX); // label missing
    p.record('counter', 'usage_total', { ...ok, extra: 'e' }, 1, catalog, MAX); // label extra
    p.record('counter', 'usage_total', { feature: 'a', other: 'x' }, 1, catalog, MAX); // wrong label name
    p.record('gauge', 'presenting', { any: 'x' }, 1, catalog, MAX); // label on an unlabelled metric
    p.record('counter', 'usage_total', ok, NaN, catalog, MAX); // non_finite
    p.record('counter', 'usage_total', ok, Infinity, catalog, MAX); // non_finite
    p.record('gauge', 'presenting', {}, -Infinity, catalog, MAX); // non_finite
    p.record('counter', 'usage_total', ok, '5' as unknown as number, catalog, MAX); // not_a_number
    p.record('counter', 'usage_total', ok, null as unknown as number, catalog, MAX); // not_a_number
    p.record('counter', 'usage_total', ok, 1n as unknown as number, catalog, MAX); // not_a_number
    p.record('counter', 'usage_total', ok, -1, catalog, MAX); // negative
    p.record('counter', 'usage_total', ok, MAX + 1, catalog, MAX); // too_large
    p.record('gauge', 'presenting', {}, -MAX - 1, catalog, MAX); // too_large
    p.record('histogram', 'rt', { host: 'h0' }, MAX * 2, catalog, MAX); // too_large
    expect(p.entries.size).toBe(0);
    expect(p.gauges.size).toBe(0);
    expect(p.isEmpty).toBe(false);
    const { samples, drops } = p.take(catalog, 100, false);
    expect(samples).toEqual([]);
    expect(dropsOf(drops)).toEqual({
      label_not_allowed: 4, negative: 1, non_finite: 3, not_a_number: 3, too_large: 3, unknown_metric: 3,
    });
    // drops go out once
    expect(p.take(catalog, 100, false).drops.size).toBe(0);
    expect(p.isEmpty).toBe(true);
  });

  it('accepts the bounds: 0, -0, exactly maxValue, negative gauges and observations', () => {
    const p = new PendingDeltas();
    p.record('counter', 'usage_total', { feature: 'a', browser: 'x' }, MAX, catalog, MAX);
    p.record('counter', 'usage_total', { feature: 'a', browser: 'y' }, -0, catalog, MAX);
    p.record('gauge', 'presenting', {}, -MAX, catalog, MAX);
    p.record('histogram', 'rt', { host: 'h0' }, -MAX, catalog, MAX);
    const { samples, drops } = p.take(catalog, 100, false);
    expect(drops.size).toBe(0);
    expect(sortSamples(samples)).toEqual(sortSamples([
      [COUNTER, 0, 0, MAX], [COUNTER, 0, 1, 0], [GAUGE, -MAX], [HIST, 0, -MAX, 1, 0, 0, 0],
    ]));
  });

  it('drops at take what was kept before the catalogue and turns out not to be allowed', () => {
    const p = new PendingDeltas();
    p.record('counter', 'nope_total', {}, 1, null, MAX);
    p.record('counter', 'usage_total', { feature: 'zzz' }, 1, null, MAX);
    p.record('gauge', 'usage_total', { feature: 'a', browser: 'x' }, 1, null, MAX);
    p.record('counter', 'usage_total', { feature: 'a', browser: 'x' }, 2, null, MAX);
    expect(p.gauges.size).toBe(1);
    const { samples, drops } = p.take(catalog, 100, true);
    expect(samples).toEqual([[COUNTER, 0, 0, 2]]);
    expect(dropsOf(drops)).toEqual({ label_not_allowed: 1, unknown_metric: 2 });
    // the disallowed gauge is forgotten, not resent on every reconnect
    expect(p.gauges.size).toBe(0);
  });

  it('a name used as counter and gauge before the catalogue stays two series: the gauge never adds to the counter', () => {
    const p = new PendingDeltas();
    const ax = { feature: 'a', browser: 'x' };
    p.record('counter', 'usage_total', ax, 5, null, MAX);
    p.record('gauge', 'usage_total', ax, 1, null, MAX);
    p.record('counter', 'usage_total', ax, 2, null, MAX);
    expect(p.entries.size).toBe(2);
    const first = p.take(catalog, 100, true);
    expect(first.samples).toEqual([[COUNTER, 0, 0, 7]]);
    expect(dropsOf(first.drops)).toEqual({ unknown_metric: 1 });
    // after a reconnect the misused gauge is not resent (as a counter increment or otherwise)
    const second = p.take(catalog, 100, true);
    expect(second.samples).toEqual([]);
    expect(second.drops.size).toBe(0);
  });
});

describe('PendingDeltas: histograms', () => {
  it('buckets with le semantics: a value equal to a bound goes in that bucket, above the last in +Inf', () => {
    const p = new PendingDeltas();
    for (const v of [0.1, 0.05, -3, 0.5, 0.50001, 1, 1.5, 1000]) p.record('histogram', 'rt', { host: 'h1' }, v, catalog, MAX);
    const { samples } = p.take(catalog, 100, false);
    expect(samples).toEqual([[HIST, 1, 0.1 + 0.05 - 3 + 0.5 + 0.50001 + 1 + 1.5 + 1000, 3, 1, 2, 2]]);
  });

  it('before the catalogue keeps observations raw and buckets them at take', () => {
    const p = new PendingDeltas();
    for (const v of [0.1, 0.05, 0.5, 0.7, 1, 1.5]) p.record('histogram', 'rt', { host: 'h0' }, v, null, MAX);
    const entry = [...p.entries.values()][0]!;
    expect(entry.raw).toEqual([0.1, 0.05, 0.5, 0.7, 1, 1.5]);
    expect(entry.counts).toBeNull();
    const { samples, drops } = p.take(catalog, 100, false);
    expect(drops.size).toBe(0);
    expect(samples).toEqual([[HIST, 0, 0.1 + 0.05 + 0.5 + 0.7 + 1 + 1.5, 2, 1, 2, 1]]);
  });

  it('folds raw observations and ones recorded after the catalogue into one sample', () => {
    const p = new PendingDeltas();
    p.record('histogram', 'rt', { host: 'h0' }, 0.2, null, MAX);
    p.record('histogram', 'rt', { host: 'h0' }, 2, catalog, MAX);
    expect(p.take(catalog, 100, false).samples).toEqual([[HIST, 0, 2.2, 0, 1, 0, 1]]);
  });

  it('keeps at most maxRawObservations raw and counts the rest as client_buffer_full', () => {
    const p = new PendingDeltas();
    const n = CLIENT_LIMITS.maxRawObservations;
    for (let i = 0; i < n + 5; i++) p.record('histogram', 'rt', { host: 'h0' }, 0.25, null, MAX);
    expect([...p.entries.values()][0]!.raw).toHaveLength(n);
    const { samples, drops } = p.take(catalog, 100, false);
    expect(samples).toEqual([[HIST, 0, 0.25 * n, 0, n, 0, 0]]);
    expect(dropsOf(drops)).toEqual({ client_buffer_full: 5 });
    // the budget is free again after take
    p.record('histogram', 'rt', { host: 'h0' }, 0.25, null, MAX);
    expect([...p.entries.values()][0]!.raw).toEqual([0.25]);
  });

  it('an observation refused for a full raw buffer leaves no empty series behind', () => {
    const p = new PendingDeltas();
    const n = CLIENT_LIMITS.maxRawObservations;
    for (let i = 0; i < n; i++) p.record('histogram', 'rt', { host: 'h0' }, 1, null, MAX);
    p.record('histogram', 'rt', { host: 'h1' }, 0.3, null, MAX);
    expect(p.entries.size).toBe(1);
    const { samples, drops } = p.take(catalog, 100, false);
    expect(samples).toEqual([[HIST, 0, n, 0, 0, n, 0]]);
    expect(dropsOf(drops)).toEqual({ client_buffer_full: 1 });
  });

  it('drops a histogram bucketed against buckets the catalogue no longer has as stale_catalog', () => {
    const p = new PendingDeltas();
    p.record('histogram', 'rt', { host: 'h0' }, 0.3, catalog, MAX);
    const changed = new KnownCatalog({
      version: 8,
      metrics: catalogObject.metrics.map((m) => (m.name === 'rt' ? { ...m, buckets: [0.2, 2] } : m)),
    });
    const { samples, drops } = p.take(changed, 100, false);
    expect(samples).toEqual([]);
    expect(dropsOf(drops)).toEqual({ stale_catalog: 1 });
  });
});

describe('PendingDeltas: take', () => {
  it('takes at most maxSamples and leaves the rest for the next frame', () => {
    const p = new PendingDeltas();
    for (const feature of ['a', 'b']) for (const browser of ['x', 'y']) p.record('counter', 'usage_total', { feature, browser }, 1, catalog, MAX);
    p.record('gauge', 'presenting', {}, 3, catalog, MAX);
    const first = p.take(catalog, 2, false);
    expect(first.samples).toHaveLength(2);
    expect(first.entries).toHaveLength(2);
    expect(p.entries.size).toBe(3);
    const second = p.take(catalog, 2, false);
    expect(second.samples).toHaveLength(2);
    const third = p.take(catalog, 2, false);
    expect(third.samples).toHaveLength(1);
    expect(sortSamples([...first.samples, ...second.samples, ...third.samples])).toEqual(sortSamples([
      [COUNTER, 0, 0, 1], [COUNTER, 0, 1, 1], [COUNTER, 1, 0, 1], [COUNTER, 1, 1, 1], [GAUGE, 3],
    ]));
    expect(p.isEmpty).toBe(true);
  });

  it('maxSamples counts samples sent, not entries dropped on the way', () => {
    const p = new PendingDeltas();
    p.record('counter', 'nope_total', {}, 1, null, MAX);
    p.record('counter', 'usage_total', { feature: 'a', browser: 'x' }, 1, null, MAX);
    const { samples, drops } = p.take(catalog, 1, false);
    expect(samples).toEqual([[COUNTER, 0, 0, 1]]);
    expect(dropsOf(drops)).toEqual({ unknown_metric: 1 });
  });

  it('with withAllGauges includes the latest value of every gauge ever set', () => {
    const p = new PendingDeltas();
    p.record('gauge', 'presenting', {}, 1, catalog, MAX);
    p.record('gauge', 'presenting', {}, 2, catalog, MAX);
    p.record('gauge', 'tabs', { kind: 'q' }, 5, catalog, MAX);
    expect(sortSamples(p.take(catalog, 100, false).samples)).toEqual(sortSamples([[GAUGE, 2], [TABS, 1, 5]]));
    p.record('counter', 'usage_total', { feature: 'a', browser: 'x' }, 1, catalog, MAX);
    p.record('gauge', 'tabs', { kind: 'q' }, 6, catalog, MAX);
    expect(sortSamples(p.take(catalog, 100, false).samples)).toEqual(sortSamples([[COUNTER, 0, 0, 1], [TABS, 1, 6]]));
    expect(p.take(catalog, 100, false).samples).toEqual([]);
    expect(sortSamples(p.take(catalog, 100, true).samples)).toEqual(sortSamples([[GAUGE, 2], [TABS, 1, 6]]));
    // a gauge set and then reset is not sent twice in one frame
    p.record('gauge', 'presenting', {}, 9, catalog, MAX);
    expect(sortSamples(p.take(catalog, 100, true).samples)).toEqual(sortSamples([[GAUGE, 9], [TABS, 1, 6]]));
  });

  it('taken entries are snapshots: later gauge records do not change them', () => {
    const p = new PendingDeltas();
    p.record('gauge', 'presenting', {}, 1, catalog, MAX);
    const { entries } = p.take(catalog, 100, true);
    p.record('gauge', 'presenting', {}, 2, catalog, MAX);
    expect(entries.map((e) => e.value)).toEqual([1]);
  });
});

describe('PendingDeltas: restore', () => {
  it('adds counters and histograms back, keeps the newer gauge value, adds drops', () => {
    const p = new PendingDeltas();
    const ax = { feature: 'a', browser: 'x' };
    p.record('counter', 'usage_total', ax, 2, catalog, MAX);
    p.record('counter', 'usage_total', { feature: 'b', browser: 'y' }, 7, catalog, MAX);
    p.record('histogram', 'rt', { host: 'h0' }, 0.25, catalog, MAX);
    p.record('histogram', 'rt', { host: 'h0' }, 2, catalog, MAX);
    p.record('gauge', 'presenting', {}, 1, catalog, MAX);
    p.record('gauge', 'tabs', { kind: 'p' }, 4, catalog, MAX);
    p.record('counter', 'nope_total', {}, 1, catalog, MAX);
    const taken = p.take(catalog, 100, false);
    expect(taken.samples).toHaveLength(5);

    // recorded while the frame was in flight
    p.record('counter', 'usage_total', ax, 3, catalog, MAX);
    p.record('histogram', 'rt', { host: 'h0' }, 0.5, catalog, MAX);
    p.record('histogram', 'rt', { host: 'h0' }, 0.05, catalog, MAX);
    p.record('gauge', 'presenting', {}, 8, catalog, MAX);
    p.record('counter', 'nope_total', {}, 1, catalog, MAX);
    p.restore(taken.entries, taken.drops);

    const again = p.take(catalog, 100, false);
    expect(sortSamples(again.samples)).toEqual(sortSamples([
      [COUNTER, 0, 0, 5],
      [COUNTER, 1, 1, 7],
      [HIST, 0, (0.5 + 0.05) + (0.25 + 2), 1, 2, 0, 1], // newer (0.05, 0.5) plus restored (0.25, 2)
      [GAUGE, 8],
      [TABS, 0, 4],
    ]));
    expect(dropsOf(again.drops)).toEqual({ unknown_metric: 2 });
  });

  it('restoring into an empty buffer gives back the same frame', () => {
    const p = new PendingDeltas();
    p.record('counter', 'usage_total', { feature: 'a', browser: 'y' }, 2, catalog, MAX);
    p.record('histogram', 'rt', { host: 'h1' }, 0.75, catalog, MAX);
    p.record('counter', 'usage_total', { feature: 'a', browser: 'x' }, -1, catalog, MAX);
    const taken = p.take(catalog, 100, false);
    p.restore(taken.entries, taken.drops);
    const again = p.take(catalog, 100, false);
    expect(sortSamples(again.samples)).toEqual(sortSamples(taken.samples));
    expect(dropsOf(again.drops)).toEqual({ negative: 1 });
  });

  it('property: take + restore + take sends what one take would have (counters, histograms)', () => {
    const rec = fc.oneof(
      fc.record({ kind: fc.constant('c' as const), f: fc.constantFrom('a', 'b'), b: fc.constantFrom('x', 'y'), v: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ kind: fc.constant('h' as const), h: fc.constantFrom('h0', 'h1'), q: fc.integer({ min: -8, max: 16 }) }),
    );
    fc.assert(
      fc.property(fc.array(rec, { maxLength: 30 }), fc.array(rec, { maxLength: 30 }), (before, during) => {
        const apply = (p: PendingDeltas, recs: typeof before): void => {
          for (const r of recs) {
            if (r.kind === 'c') p.record('counter', 'usage_total', { feature: r.f, browser: r.b }, r.v, catalog, MAX);
            else p.record('histogram', 'rt', { host: r.h }, r.q / 8, catalog, MAX);
          }
        };
        const once = new PendingDeltas();
        apply(once, [...before, ...during]);
        const split = new PendingDeltas();
        apply(split, before);
        const taken = split.take(catalog, 1000, false);
        apply(split, during);
        split.restore(taken.entries, taken.drops);
        expect(sortSamples(split.take(catalog, 1000, false).samples)).toEqual(sortSamples(once.take(catalog, 1000, false).samples));
      }),
      { numRuns: 200 },
    );
  });
});

describe('PendingDeltas: bounded memory', () => {
  it(`holds at most maxPendingSeries (${CLIENT_LIMITS.maxPendingSeries}) series before the catalogue and counts the rest exactly`, () => {
    const p = new PendingDeltas();
    const n = 100_000;
    let peak = 0;
    for (let i = 0; i < n; i++) {
      p.record('counter', `m${i}_total`, {}, 1, null, MAX);
      if (i % 3 === 0) p.record('counter', `bad${i}_total`, {}, NaN, null, MAX);
      if (i % 1000 === 0) peak = Math.max(peak, p.entries.size);
    }
    peak = Math.max(peak, p.entries.size);
    expect(peak).toBe(CLIENT_LIMITS.maxPendingSeries);
    expect(dropsOf(p.drops)).toEqual({ client_buffer_full: n - CLIENT_LIMITS.maxPendingSeries, non_finite: Math.ceil(n / 3) });
    // an existing series still aggregates when the buffer is full
    p.record('counter', 'm0_total', {}, 1, null, MAX);
    expect(p.entries.size).toBe(CLIENT_LIMITS.maxPendingSeries);
    expect(p.drops.get('client_buffer_full')).toBe(n - CLIENT_LIMITS.maxPendingSeries);
  });

  it('with a catalogue, invalid series take no room and valid ones stop at the limit', () => {
    const n = 100_000;
    const ids = Array.from({ length: n }, (_, i) => `id${i}`);
    const big = new KnownCatalog({
      version: 1,
      metrics: [{ name: 'big_total', type: 'counter', labelNames: ['id'], labelValues: [ids], buckets: [] }],
    });
    const p = new PendingDeltas();
    for (let i = 0; i < n; i++) {
      p.record('counter', 'big_total', { id: `id${i}` }, 1, big, MAX);
      p.record('counter', 'big_total', { id: `nope${i}` }, 1, big, MAX);
      p.record('counter', `other${i}_total`, {}, 1, big, MAX);
    }
    expect(p.entries.size).toBe(CLIENT_LIMITS.maxPendingSeries);
    // The n values outside the list are one series (not in the list): it came first, so it is held.
    expect(dropsOf(p.drops)).toEqual({
      client_buffer_full: n + 1 - CLIENT_LIMITS.maxPendingSeries, unknown_metric: n,
    });
    const { samples } = p.take(big, n, false);
    expect(samples).toHaveLength(CLIENT_LIMITS.maxPendingSeries);
    expect(samples.slice(0, 2)).toEqual([[0, 0, 1], [0, n, n]]);
  });
});
