import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RejectReason } from '../../protocol/index.js';
import { ServerCatalog } from './catalog.js';
import type { MetricSpec, Whitelist } from '../config/types.js';
import { SeriesLayout, SeriesStore, type GaugeParts } from './series-store.js';
import { SHARED_PAD_BYTES } from './shared-memory.js';

const MAX = 1000;

const metrics: MetricSpec[] = [
  {
    name: 'usage_total', help: 'usage', type: 'counter', file: 't.json', buckets: [],
    labels: [
      { name: 'feature', allowedValues: ['a', 'b', 'c'] },
      { name: 'browser', allowedValues: ['x', 'y'] },
    ],
  },
  {
    name: 'rt', help: 'response time', type: 'histogram', file: 't.json', buckets: [0.1, 0.5, 1],
    labels: [{ name: 'host', allowedValues: ['h0', 'h1'] }],
  },
  { name: 'presenting', help: 'presenting', type: 'gauge', file: 't.json', buckets: [], labels: [] },
  {
    name: 'open_tabs', help: 'tabs', type: 'gauge', file: 't.json', buckets: [],
    labels: [{ name: 'kind', allowedValues: ['p', 'q', 'r'] }],
  },
];
const whitelist: Whitelist = { metrics, sessionLabels: [], files: ['t.json'] };
const COUNTER = 0;
const HIST = 1;
const GAUGE = 2;
const LGAUGE = 3;

const newStore = (): SeriesStore => new SeriesStore(new ServerCatalog(whitelist), MAX);
const snapshot = (s: SeriesStore): { values: number[][]; sums: number[][]; holders: number[][] } => ({
  values: s.metrics.map((m) => Array.from(m.values)),
  sums: s.metrics.map((m) => Array.from(m.sums)),
  holders: s.metrics.map((m) => Array.from(m.holders)),
});

describe('ServerCatalog', () => {
  it('precomputes radices, series counts, value and bucket counts', () => {
    const c = new ServerCatalog(whitelist);
    expect(c.entries.map((e) => [e.type, Array.from(e.radices), e.seriesCount, e.valueCount, e.bucketCount])).toEqual([
      ['counter', [3, 2], 6, 1, 0],
      ['histogram', [2], 2, 5, 4],
      ['gauge', [], 1, 1, 0],
      ['gauge', [3], 3, 1, 0],
    ]);
  });

  it('gives the same version for the same whitelist and another for a changed one', () => {
    const a = new ServerCatalog(whitelist).wire.version;
    expect(new ServerCatalog({ ...whitelist, files: ['other.json'] }).wire.version).toBe(a);
    const changed = { ...whitelist, metrics: [{ ...metrics[0]!, help: 'x', name: 'usage2_total' }, ...metrics.slice(1)] };
    expect(new ServerCatalog(changed).wire.version).not.toBe(a);
  });
});

describe('SeriesStore: label fallbacks', () => {
  const withFallback: Whitelist = {
    files: ['t.json'], sessionLabels: [],
    metrics: [
      {
        name: 'views_total', help: 'views', type: 'counter', file: 't.json', buckets: [],
        labels: [{ name: 'route', allowedValues: ['/', 'other', '/a'], fallback: 'other' }, { name: 'kind', allowedValues: ['k', 'j'] }],
      },
    ],
  };
  const gauges: GaugeParts = new Map();

  it('counts the index one past the last under the fallback, and rejects it where there is none', () => {
    const store = new SeriesStore(new ServerCatalog(withFallback), MAX);
    expect(store.apply([0, 3, 0, 2], gauges)).toBeNull();
    expect(store.apply([0, 1, 1, 5], gauges)).toBeNull();
    // series = route * 2 + kind: other/k and other/j
    expect(Array.from(store.metrics[0]!.values)).toEqual([0, 0, 2, 5, 0, 0]);
    expect(store.apply([0, 0, 2, 1], gauges)).toBe(RejectReason.LABEL_NOT_ALLOWED);
    expect(store.apply([0, 4, 0, 1], gauges)).toBe(RejectReason.LABEL_NOT_ALLOWED);
    expect(new ServerCatalog(withFallback).entries[0]!.fallbacks).toEqual(Int32Array.from([1, -1]));
  });
});

describe('SeriesStore: counters', () => {
  it('starts every series at zero', () => {
    const s = newStore();
    expect(snapshot(s).values).toEqual([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [0], [0, 0, 0]]);
  });

  it('applies to the mixed-radix series, first label most significant', () => {
    const s = newStore();
    const g: GaugeParts = new Map();
    // feature index f (radix 3), browser index b (radix 2): series = f * 2 + b
    for (let f = 0; f < 3; f++) {
      for (let b = 0; b < 2; b++) expect(s.apply([COUNTER, f, b, 10 * f + b + 1], g)).toBeNull();
    }
    expect(Array.from(s.metrics[COUNTER]!.values)).toEqual([1, 2, 11, 12, 21, 22]);
    expect(s.apply([COUNTER, 2, 0, 0.5], g)).toBeNull();
    expect(s.metrics[COUNTER]!.values[4]).toBe(21.5);
    expect(g.size).toBe(0);
  });

  it('accepts -0 and 0 and leaves the total at +0', () => {
    const s = newStore();
    expect(s.apply([COUNTER, 0, 0, -0], new Map())).toBeNull();
    expect(s.apply([COUNTER, 0, 0, 0], new Map())).toBeNull();
    expect(Object.is(s.metrics[COUNTER]!.values[0], 0)).toBe(true);
  });

  it('accepts exactly maxSampleValue', () => {
    const s = newStore();
    expect(s.apply([COUNTER, 1, 1, MAX], new Map())).toBeNull();
    expect(s.metrics[COUNTER]!.values[3]).toBe(MAX);
  });
});

describe('SeriesStore: rejected samples write nothing', () => {
  const cases: [string, unknown, RejectReason][] = [
    ['number', 5, RejectReason.NOT_ARRAY],
    ['object', { 0: 0 }, RejectReason.NOT_ARRAY],
    ['null', null, RejectReason.NOT_ARRAY],
    ['string', 'abc', RejectReason.NOT_ARRAY],
    ['metric index past the catalogue', [4, 0], RejectReason.UNKNOWN_METRIC],
    ['negative metric index', [-1, 0, 0, 1], RejectReason.UNKNOWN_METRIC],
    ['non-integer metric index', [0.5, 0, 0, 1], RejectReason.UNKNOWN_METRIC],
    ['string metric index', ['0', 0, 0, 1], RejectReason.UNKNOWN_METRIC],
    ['NaN metric index', [NaN, 0, 0, 1], RejectReason.UNKNOWN_METRIC],
    ['empty array', [], RejectReason.UNKNOWN_METRIC],
    ['label index out of range', [COUNTER, 3, 0, 1], RejectReason.LABEL_NOT_ALLOWED],
    ['second label out of range', [COUNTER, 0, 2, 1], RejectReason.LABEL_NOT_ALLOWED],
    ['negative label index', [COUNTER, -1, 0, 1], RejectReason.LABEL_NOT_ALLOWED],
    ['non-integer label index', [COUNTER, 0.5, 0, 1], RejectReason.LABEL_NOT_ALLOWED],
    ['string label index', [COUNTER, '0', 0, 1], RejectReason.LABEL_NOT_ALLOWED],
    ['label value by name', [COUNTER, 'a', 0, 1], RejectReason.LABEL_NOT_ALLOWED],
    ['null label index', [COUNTER, null, 0, 1], RejectReason.LABEL_NOT_ALLOWED],
    ['histogram label out of range', [HIST, 2, 0, 0, 0, 0, 0], RejectReason.LABEL_NOT_ALLOWED],
    ['counter too short', [COUNTER, 0, 0], RejectReason.WRONG_LENGTH],
    ['counter too long', [COUNTER, 0, 0, 1, 1], RejectReason.WRONG_LENGTH],
    ['gauge too short', [GAUGE], RejectReason.WRONG_LENGTH],
    ['gauge too long', [GAUGE, 1, 1], RejectReason.WRONG_LENGTH],
    ['histogram one bucket short', [HIST, 0, 0.2, 0, 1, 0], RejectReason.BAD_BUCKET_COUNT],
    ['histogram one bucket too many', [HIST, 0, 0.2, 0, 1, 0, 0, 0], RejectReason.BAD_BUCKET_COUNT],
    ['histogram without values', [HIST, 0], RejectReason.BAD_BUCKET_COUNT],
    ['counter string', [COUNTER, 0, 0, '1'], RejectReason.NOT_A_NUMBER],
    ['counter null', [COUNTER, 0, 0, null], RejectReason.NOT_A_NUMBER],
    ['counter bigint', [COUNTER, 0, 0, 1n], RejectReason.NOT_A_NUMBER],
    ['counter boolean', [COUNTER, 0, 0, true], RejectReason.NOT_A_NUMBER],
    ['counter array', [COUNTER, 0, 0, [1]], RejectReason.NOT_A_NUMBER],
    ['gauge string', [GAUGE, '1'], RejectReason.NOT_A_NUMBER],
    ['gauge null', [GAUGE, null], RejectReason.NOT_A_NUMBER],
    ['gauge bigint', [GAUGE, 1n], RejectReason.NOT_A_NUMBER],
    ['histogram string sum', [HIST, 0, '0.2', 0, 1, 0, 0], RejectReason.NOT_A_NUMBER],
    ['histogram null sum', [HIST, 0, null, 0, 1, 0, 0], RejectReason.NOT_A_NUMBER],
    ['histogram string bucket', [HIST, 0, 0.2, 0, '1', 0, 0], RejectReason.NOT_A_NUMBER],
    ['histogram bigint bucket', [HIST, 0, 0.2, 0, 1n, 0, 0], RejectReason.NOT_A_NUMBER],
    ['histogram null +Inf bucket', [HIST, 0, 0.2, 0, 1, 0, null], RejectReason.NOT_A_NUMBER],
    ['counter NaN', [COUNTER, 0, 0, NaN], RejectReason.NON_FINITE],
    ['counter +Infinity', [COUNTER, 0, 0, Infinity], RejectReason.NON_FINITE],
    ['counter -Infinity', [COUNTER, 0, 0, -Infinity], RejectReason.NON_FINITE],
    ['gauge NaN', [GAUGE, NaN], RejectReason.NON_FINITE],
    ['gauge +Infinity', [GAUGE, Infinity], RejectReason.NON_FINITE],
    ['gauge -Infinity', [GAUGE, -Infinity], RejectReason.NON_FINITE],
    ['histogram NaN sum', [HIST, 0, NaN, 0, 1, 0, 0], RejectReason.NON_FINITE],
    ['histogram +Infinity sum', [HIST, 0, Infinity, 0, 1, 0, 0], RejectReason.NON_FINITE],
    ['histogram -Infinity sum', [HIST, 0, -Infinity, 0, 1, 0, 0], RejectReason.NON_FINITE],
    ['histogram NaN bucket', [HIST, 0, 0.2, 0, NaN, 0, 0], RejectReason.NON_FINITE],
    ['histogram Infinity bucket', [HIST, 0, 0.2, 0, 0, 0, Infinity], RejectReason.NON_FINITE],
    ['negative counter', [COUNTER, 0, 0, -1], RejectReason.NEGATIVE],
    ['tiny negative counter', [COUNTER, 0, 0, -Number.MIN_VALUE], RejectReason.NEGATIVE],
    ['negative bucket', [HIST, 0, 0.2, 0, 2, -1, 0], RejectReason.NEGATIVE],
    ['fractional bucket', [HIST, 0, 0.2, 0, 1.5, 0, 0], RejectReason.NOT_INTEGER],
    ['counter above max', [COUNTER, 0, 0, MAX + 0.5], RejectReason.TOO_LARGE],
    ['huge counter', [COUNTER, 0, 0, Number.MAX_VALUE], RejectReason.TOO_LARGE],
    ['gauge above max', [GAUGE, MAX + 1], RejectReason.TOO_LARGE],
    ['gauge below -max', [GAUGE, -MAX - 1], RejectReason.TOO_LARGE],
    ['bucket count above max', [HIST, 0, 0.2, 0, MAX + 1, 0, 0], RejectReason.TOO_LARGE],
    // sum bound is maxSampleValue × count
    ['histogram sum above max × 1', [HIST, 0, MAX + 1, 0, 0, 0, 1], RejectReason.TOO_LARGE],
    ['histogram sum above max × 3', [HIST, 1, 3 * MAX + 1, 1, 1, 0, 1], RejectReason.TOO_LARGE],
    ['histogram sum below -max × 3', [HIST, 1, -3 * MAX - 1, 1, 1, 0, 1], RejectReason.TOO_LARGE],
    ['histogram sum with no observations', [HIST, 0, 0.5, 0, 0, 0, 0], RejectReason.TOO_LARGE],
  ];

  for (const [what, sample, reason] of cases) {
    it(`${what} → ${reason}`, () => {
      const s = newStore();
      const g: GaugeParts = new Map();
      // some state to prove it stays untouched
      expect(s.apply([COUNTER, 1, 1, 7], g)).toBeNull();
      expect(s.apply([HIST, 0, 0.75, 1, 0, 1, 0], g)).toBeNull();
      expect(s.apply([GAUGE, 3], g)).toBeNull();
      const before = snapshot(s);
      const gaugesBefore = [...g];
      expect(s.apply(sample, g)).toBe(reason);
      expect(snapshot(s)).toEqual(before);
      expect([...g]).toEqual(gaugesBefore);
    });
  }

  it('a histogram whose last bucket is bad writes none of its earlier buckets', () => {
    const s = newStore();
    const before = snapshot(s);
    expect(s.apply([HIST, 1, 0.3, 1, 1, 1, -1], new Map())).toBe(RejectReason.NEGATIVE);
    expect(snapshot(s)).toEqual(before);
    // and the scratch buffer does not leak into the next good sample
    expect(s.apply([HIST, 1, 0.3, 0, 0, 0, 1], new Map())).toBeNull();
    expect(Array.from(s.metrics[HIST]!.values)).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
  });
});

describe('SeriesStore: histograms', () => {
  it('adds per-bucket counts and sums to the labelled series', () => {
    const s = newStore();
    const g: GaugeParts = new Map();
    expect(s.apply([HIST, 1, 2.5, 1, 0, 2, 1], g)).toBeNull();
    expect(s.apply([HIST, 1, 0.25, 0, 1, 0, 0], g)).toBeNull();
    expect(s.apply([HIST, 0, 0.05, 1, 0, 0, 0], g)).toBeNull();
    expect(Array.from(s.metrics[HIST]!.values)).toEqual([1, 0, 0, 0, 1, 1, 2, 1]);
    expect(Array.from(s.metrics[HIST]!.sums)).toEqual([0.05, 2.75]);
  });

  it('accepts a sum of exactly maxSampleValue × count, negative sums, and an empty sample with sum 0', () => {
    const s = newStore();
    expect(s.apply([HIST, 0, 2 * MAX, 0, 0, 0, 2], new Map())).toBeNull();
    expect(s.apply([HIST, 0, -2 * MAX, 2, 0, 0, 0], new Map())).toBeNull();
    expect(s.apply([HIST, 0, 0, 0, 0, 0, 0], new Map())).toBeNull();
    expect(Array.from(s.metrics[HIST]!.values.subarray(0, 4))).toEqual([2, 0, 0, 2]);
    expect(s.metrics[HIST]!.sums[0]).toBe(0);
  });
});

describe('SeriesStore: gauges', () => {
  it('sums the parts of two sessions; a session overwriting replaces only its own part', () => {
    const s = newStore();
    const a: GaugeParts = new Map();
    const b: GaugeParts = new Map();
    expect(s.apply([GAUGE, 2], a)).toBeNull();
    expect(s.apply([GAUGE, 5], b)).toBeNull();
    expect(s.metrics[GAUGE]!.values[0]).toBe(7);
    expect(s.apply([GAUGE, -1], a)).toBeNull();
    expect(s.metrics[GAUGE]!.values[0]).toBe(4);
    expect(s.metrics[GAUGE]!.holders[0]).toBe(2);
    expect([...a]).toEqual([[GAUGE * 2 ** 32, -1]]);
    expect([...b]).toEqual([[GAUGE * 2 ** 32, 5]]);
  });

  it('keys labelled gauge series by metric and series number', () => {
    const s = newStore();
    const a: GaugeParts = new Map();
    expect(s.apply([LGAUGE, 2, 4], a)).toBeNull();
    expect(s.apply([LGAUGE, 0, 1], a)).toBeNull();
    expect([...a].sort()).toEqual([[LGAUGE * 2 ** 32, 1], [LGAUGE * 2 ** 32 + 2, 4]].sort());
    expect(Array.from(s.metrics[LGAUGE]!.values)).toEqual([1, 0, 4]);
  });

  it('removeGaugeParts takes out only that session and snaps to exactly 0 when the last holder leaves', () => {
    const s = newStore();
    const a: GaugeParts = new Map();
    const b: GaugeParts = new Map();
    expect(s.apply([GAUGE, 0.1], a)).toBeNull();
    expect(s.apply([GAUGE, 0.2], b)).toBeNull();
    expect(s.apply([LGAUGE, 1, 0.7], a)).toBeNull();
    expect(s.metrics[GAUGE]!.values[0]).toBe(0.1 + 0.2);
    s.removeGaugeParts(a);
    expect(a.size).toBe(0);
    // (0.1 + 0.2) - 0.1 is 0.20000000000000004: float dust while b still holds it
    expect(s.metrics[GAUGE]!.values[0]).toBe(0.1 + 0.2 - 0.1);
    expect(s.metrics[GAUGE]!.holders[0]).toBe(1);
    expect(Array.from(s.metrics[LGAUGE]!.values)).toEqual([0, 0, 0]);
    expect(Array.from(s.metrics[LGAUGE]!.holders)).toEqual([0, 0, 0]);
    s.removeGaugeParts(b);
    expect(Object.is(s.metrics[GAUGE]!.values[0], 0)).toBe(true);
    expect(s.metrics[GAUGE]!.holders[0]).toBe(0);
    // removing an already emptied session is a no-op
    s.removeGaugeParts(a);
    expect(Object.is(s.metrics[GAUGE]!.values[0], 0)).toBe(true);
  });

  it('snaps to 0 after many float updates by one session', () => {
    const s = newStore();
    const a: GaugeParts = new Map();
    const b: GaugeParts = new Map();
    for (const v of [0.1, 0.7, 0.3, 0.9]) expect(s.apply([GAUGE, v], a)).toBeNull();
    for (const v of [0.2, 0.6]) expect(s.apply([GAUGE, v], b)).toBeNull();
    s.removeGaugeParts(b);
    s.removeGaugeParts(a);
    expect(Object.is(s.metrics[GAUGE]!.values[0], 0)).toBe(true);
  });
});

// ---- property: the store equals an independent reference sum ----

interface Op {
  readonly session: number;
  readonly sample: unknown[];
}

const counterSample = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 50 }))
  .map(([f, b, inc]) => [COUNTER, f, b, inc]);
const histSample = fc.tuple(
  fc.integer({ min: 0, max: 1 }),
  fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 4, maxLength: 4 }),
  fc.integer({ min: -40, max: 40 }),
).map(([h, counts, quarters]) => {
  const count = counts.reduce((x, y) => x + y, 0);
  // dyadic rationals keep float sums exact; the sum must stay within maxSampleValue × count
  const sum = count === 0 ? 0 : quarters / 4;
  return [HIST, h, sum, ...counts];
});
const gaugeSample = fc.oneof(
  fc.integer({ min: -40, max: 40 }).map((q) => [GAUGE, q / 4]),
  fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: -40, max: 40 })).map(([k, q]) => [LGAUGE, k, q / 8]),
);
const SESSIONS = 4;
const opArb: fc.Arbitrary<Op | { readonly remove: number }> = fc.oneof(
  { arbitrary: fc.record({ session: fc.integer({ min: 0, max: SESSIONS - 1 }), sample: fc.oneof(counterSample, histSample, gaugeSample) }), weight: 8 },
  { arbitrary: fc.record({ remove: fc.integer({ min: 0, max: SESSIONS - 1 }) }), weight: 1 },
);

describe('SeriesStore: property', () => {
  it('totals equal a reference sum for any interleaving of sessions and removals', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 120 }), (ops) => {
        const s = newStore();
        const parts: GaugeParts[] = Array.from({ length: SESSIONS }, () => new Map());
        // reference: plain objects keyed by readable strings, computed without the store's layout
        const counters = new Map<string, number>();
        const buckets = new Map<string, number>();
        const sums = new Map<string, number>();
        const lastGauge: Map<string, number>[] = Array.from({ length: SESSIONS }, () => new Map());
        const add = (m: Map<string, number>, k: string, v: number): void => void m.set(k, (m.get(k) ?? 0) + v);

        for (const op of ops) {
          if ('remove' in op) {
            s.removeGaugeParts(parts[op.remove]!);
            lastGauge[op.remove]!.clear();
            continue;
          }
          expect(s.apply(op.sample, parts[op.session]!)).toBeNull();
          const x = op.sample as number[];
          if (x[0] === COUNTER) add(counters, `${metrics[0]!.labels[0]!.allowedValues[x[1]!]}/${metrics[0]!.labels[1]!.allowedValues[x[2]!]}`, x[3]!);
          else if (x[0] === HIST) {
            const host = metrics[1]!.labels[0]!.allowedValues[x[1]!]!;
            add(sums, host, x[2]!);
            x.slice(3).forEach((c, i) => add(buckets, `${host}/${i}`, c));
          } else if (x[0] === GAUGE) lastGauge[op.session]!.set('presenting', x[1]!);
          else lastGauge[op.session]!.set(`open_tabs/${metrics[3]!.labels[0]!.allowedValues[x[1]!]}`, x[2]!);
        }

        const c = s.metrics[COUNTER]!.values;
        ['a', 'b', 'c'].forEach((f, fi) => ['x', 'y'].forEach((b, bi) => {
          expect(c[fi * 2 + bi]).toBe(counters.get(`${f}/${b}`) ?? 0);
        }));
        const h = s.metrics[HIST]!;
        ['h0', 'h1'].forEach((host, hi) => {
          expect(h.sums[hi]).toBe(sums.get(host) ?? 0);
          for (let i = 0; i < 4; i++) expect(h.values[hi * 4 + i]).toBe(buckets.get(`${host}/${i}`) ?? 0);
        });
        const gaugeTotal = (key: string): number => lastGauge.reduce((t, m) => t + (m.get(key) ?? 0), 0);
        const holders = (key: string): number => lastGauge.filter((m) => m.has(key)).length;
        expect(s.metrics[GAUGE]!.values[0]).toBe(gaugeTotal('presenting'));
        expect(s.metrics[GAUGE]!.holders[0]).toBe(holders('presenting'));
        ['p', 'q', 'r'].forEach((k, ki) => {
          expect(s.metrics[LGAUGE]!.values[ki]).toBe(gaugeTotal(`open_tabs/${k}`));
          expect(s.metrics[LGAUGE]!.holders[ki]).toBe(holders(`open_tabs/${k}`));
        });

        // when every session leaves, every gauge is exactly +0
        for (const p of parts) s.removeGaugeParts(p);
        for (const v of [...s.metrics[GAUGE]!.values, ...s.metrics[LGAUGE]!.values]) expect(Object.is(v, 0)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('with arbitrary float gauge values, the last holder leaving always snaps to exactly 0', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ session: fc.integer({ min: 0, max: 2 }), value: fc.double({ min: -MAX, max: MAX, noNaN: true }) }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 3, maxLength: 3 }),
        (sets, order) => {
          const s = newStore();
          const parts: GaugeParts[] = [new Map(), new Map(), new Map()];
          for (const { session, value } of sets) expect(s.apply([GAUGE, value], parts[session]!)).toBeNull();
          for (const i of [...order, 0, 1, 2]) s.removeGaugeParts(parts[i]!);
          expect(Object.is(s.metrics[GAUGE]!.values[0], 0)).toBe(true);
          expect(s.metrics[GAUGE]!.holders[0]).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('the frame journal (a worker that dies in the middle of a frame)', () => {
  const catalog = new ServerCatalog(whitelist);
  const regionStore = (): SeriesStore => {
    const layout = new SeriesLayout(catalog, 1024);
    return new SeriesStore(catalog, MAX, { layout, buffer: new SharedArrayBuffer(layout.bytes) });
  };
  const SLOT = 7;

  it('takes back a frame cut halfway when the slot does not say it was applied', () => {
    const s = regionStore();
    s.frameStart(SLOT, 1);
    expect(s.apply([COUNTER, 0, 0, 5], new Map())).toBeNull();
    s.frameDone();
    const before = snapshot(s);
    // frame 2 writes a counter, a histogram bucket and its sum, then the worker dies before frameDone
    s.frameStart(SLOT, 2);
    expect(s.apply([COUNTER, 0, 0, 3], new Map())).toBeNull();
    expect(s.apply([COUNTER, 1, 1, 4], new Map())).toBeNull();
    expect(s.apply([HIST, 1, 0.3, 0, 1, 0, 0], new Map())).toBeNull();
    expect(snapshot(s)).not.toEqual(before);
    expect(s.settleCutFrame((slot) => (slot === SLOT ? 1 : 99))).toBe('undone');
    expect(snapshot(s)).toEqual(before);
    // settled once: a second look finds nothing to do
    expect(s.settleCutFrame(() => 1)).toBe('none');
  });

  it('keeps a frame whose seq reached the slot before the worker died (between setSeq and frameDone)', () => {
    const s = regionStore();
    s.frameStart(SLOT, 1);
    expect(s.apply([COUNTER, 2, 1, 6], new Map())).toBeNull();
    const applied = snapshot(s);
    expect(s.settleCutFrame(() => 1)).toBe('kept');
    expect(snapshot(s)).toEqual(applied);
  });

  it('has nothing to settle after a finished frame', () => {
    const s = regionStore();
    s.frameStart(SLOT, 1);
    expect(s.apply([COUNTER, 0, 1, 2], new Map())).toBeNull();
    s.frameDone();
    expect(s.settleCutFrame(() => 0)).toBe('none');
    expect(s.metrics[COUNTER]!.values[1]).toBe(2);
  });
});

describe('a worker\'s region in shared memory', () => {
  it('keeps SHARED_PAD_BYTES free at both ends: its first and last numbers share no cache line with the next buffer', () => {
    const catalog = new ServerCatalog(whitelist);
    const layout = new SeriesLayout(catalog, 64);
    expect(layout.bytes).toBe(SHARED_PAD_BYTES + (layout.numbers + layout.journal) * 8 + layout.holders * 4 + SHARED_PAD_BYTES);
    const buffer = new SharedArrayBuffer(layout.bytes);
    const s = new SeriesStore(catalog, MAX, { layout, buffer });
    // The region's first number (usage_total's first series) and its last (open_tabs' last holder count), journaled.
    s.frameStart(3, 1);
    expect(s.apply([COUNTER, 0, 0, 5], new Map())).toBeNull();
    expect(s.apply([LGAUGE, 2, 4], new Map())).toBeNull();
    expect(new Float64Array(buffer, SHARED_PAD_BYTES, 1)[0]).toBe(5);
    expect(new Uint32Array(buffer, layout.bytes - SHARED_PAD_BYTES - 4, 1)[0]).toBe(1);
    const bytes = new Uint8Array(buffer);
    const zeros = new Array<number>(SHARED_PAD_BYTES).fill(0);
    expect(Array.from(bytes.subarray(0, SHARED_PAD_BYTES))).toEqual(zeros);
    expect(Array.from(bytes.subarray(layout.bytes - SHARED_PAD_BYTES))).toEqual(zeros);
    // The main thread's view of the same region reads what the worker wrote.
    const main = new SeriesStore(catalog, MAX, { layout, buffer });
    expect(snapshot(main)).toEqual(snapshot(s));
  });
});
