import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { checkMsgpack, decodeMsgpackStrict, MsgpackRefusal, type GuardLimits } from './msgpack-strict-decoder.js';

// The options codec.ts encodes with, and the ones it decoded with before the strict decoder took over.
const packr = new Packr({ useRecords: false, structuredClone: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, structuredClone: false, mapsAsObjects: false, int64AsType: 'number' });
const LIMITS: GuardLimits = { maxDepth: 6, maxItems: 10_000, maxStringBytes: 4096 };

/** Buffers and Uint8Arrays compare alike (msgpackr returns views of its input, the decoder copies). */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [plain(k), plain(x)]));
  return v;
}

const scalar = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
  fc.maxSafeInteger(),
  fc.double(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ maxLength: 300 }),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 40 }),
);
const value = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('v'), { maxLength: 6 }),
    fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 12 }), fc.integer()), tie('v')), { maxLength: 4 }).map((pairs) => new Map(pairs)),
  ),
})).v;

describe('strict decoder', () => {
  it("decodes what msgpackr encodes to msgpackr's own values (fast-check)", () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = packr.pack(v);
        if (checkMsgpack(bytes, LIMITS) !== null) return; // deeper or bigger than the limits: refused, tested below
        expect(plain(decodeMsgpackStrict(bytes, LIMITS))).toEqual(plain(unpackr.unpack(bytes)));
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes every integer and float form as msgpackr does', () => {
    const forms = ['cc ff', 'cd ffff', 'ce ffffffff', 'cf 0000000100000000', 'cf ffffffffffffffff', 'd0 80', 'd1 8000', 'd2 80000000', 'd3 ffffffffffffffff', 'd3 8000000000000000', 'ca 3fc00000', 'cb 3ff8000000000000', 'e0', 'ff', '7f'];
    for (const hex of forms) {
      const bytes = Buffer.from(hex.replace(/ /g, ''), 'hex');
      expect(decodeMsgpackStrict(bytes, LIMITS), hex).toEqual(unpackr.unpack(bytes));
    }
  });

  it('arbitrary bytes either decode as msgpackr decodes them or are refused with a reason (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        let decoded: unknown;
        try {
          decoded = decodeMsgpackStrict(bytes, LIMITS);
        } catch (err) {
          expect(err).toBeInstanceOf(MsgpackRefusal);
          return;
        }
        // Invalid UTF-8 is the one place the two may differ (replacement characters or not).
        const text = JSON.stringify(plain(decoded), (_k, x: unknown) => (x instanceof Map ? [...x] : x));
        if (!text.includes('\ufffd')) expect(plain(decoded)).toEqual(plain(unpackr.unpack(bytes)));
      }),
      { numRuns: 5000 },
    );
  });

  it('says why it refuses', () => {
    const why = (hex: string, limits: GuardLimits = LIMITS): string | null => checkMsgpack(Buffer.from(hex, 'hex'), limits);
    expect(why('91'.repeat(7) + 'c0')).toBe('nested too deep');
    expect(why('9'.concat('3', '01', '02'))).toBe('truncated');
    expect(why('dc0003010203', { ...LIMITS, maxItems: 2 })).toBe('too many items');
    expect(why('d90461626364', { ...LIMITS, maxStringBytes: 3 })).toBe('string or binary too long');
    expect(why('c1')).toBe('reserved byte 0xc1');
    expect(why('d60000000000')).toBe('extension types are not allowed');
    expect(why('c0c0')).toBe('trailing bytes');
    expect(why('ddffffffff')).toBe('too many items');
    expect(why('dd0000000501')).toBe('truncated');
    expect(why('cb3ff8')).toBe('truncated');
    expect(why('93010203')).toBeNull();
  });
});
