import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { Packr as FullPackr, Unpackr as FullUnpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { Packr, Unpackr } from './msgpack-compact.js';
import { CLIENT_FRAME_GUARD, SERVER_FRAME_GUARD } from './codec.js';
import { checkMsgpack } from './msgpack-guard.js';

// The options codec.ts gives msgpackr: the compact codec must behave the same under them.
const full = {
  packr: new FullPackr({ useRecords: false, structuredClone: false, variableMapSize: true }),
  unpackr: new FullUnpackr({ useRecords: false, structuredClone: false, mapsAsObjects: false, int64AsType: 'number' }),
};
const compact = { packr: new Packr(), unpackr: new Unpackr() };
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

const doc = readFileSync(new URL('./PROTOCOL.md', import.meta.url), 'utf8');
const golden = [...doc.matchAll(/```hex ([a-z-]+)\n([\s\S]*?)```/g)].map((m) => [m[1]!, Buffer.from(m[2]!.replace(/\s+/g, ''), 'hex')] as const);

/** The values the protocol carries: arrays, string-keyed maps, strings, integers, floats, booleans, nil. */
const wireValue = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
    fc.integer({ min: -200, max: 70_000 }),
    fc.double({ noNaN: true }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'grapheme-ascii', minLength: 30, maxLength: 300 }),
    fc.boolean(),
    fc.constant(null),
  ),
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('array'), tie('map')),
  array: fc.array(tie('value'), { maxLength: 20 }),
  map: fc.array(fc.tuple(fc.string({ maxLength: 8 }), tie('value')), { maxLength: 18 }).map((entries) => new Map(entries)),
}));

describe('msgpack-compact (the browser bundle codec) against msgpackr', () => {
  it('decodes and re-encodes every PROTOCOL.md example byte for byte', () => {
    expect(golden.length).toBeGreaterThanOrEqual(6);
    for (const [name, bytes] of golden) {
      const value = compact.unpackr.unpack(bytes);
      expect(value, name).toEqual(full.unpackr.unpack(bytes));
      expect(hex(compact.packr.pack(value)), name).toBe(hex(bytes));
    }
  });

  it('encodes exactly as msgpackr does, and each decodes the other', () => {
    fc.assert(
      fc.property(wireValue.value, (v) => {
        const mine = compact.packr.pack(v);
        const theirs = full.packr.pack(v);
        expect(hex(mine)).toBe(hex(theirs));
        expect(compact.unpackr.unpack(theirs)).toEqual(full.unpackr.unpack(theirs));
      }),
      { numRuns: 400 },
    );
  });

  it('picks the same integer and header forms at every boundary', () => {
    const edges = [0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 0.5, -0, 1e300];
    for (const n of edges) expect(hex(compact.packr.pack(n)), String(n)).toBe(hex(full.packr.pack(n)));
    for (const len of [0, 15, 16, 31, 32, 255, 256, 65535, 65536]) {
      const s = 'x'.repeat(len);
      const arr = new Array<number>(len).fill(1);
      const map = new Map(arr.map((_, i) => [String(i), 1]));
      expect(hex(compact.packr.pack(s)), `string ${len}`).toBe(hex(full.packr.pack(s)));
      expect(hex(compact.packr.pack(arr)), `array ${len}`).toBe(hex(full.packr.pack(arr)));
      expect(hex(compact.packr.pack(map)), `map ${len}`).toBe(hex(full.packr.pack(map)));
    }
  });

  it('reads the 64-bit and float32 forms msgpackr reads as numbers', () => {
    for (const h of ['cf0000000100000000', 'cf001fffffffffffff', 'd3ffffffffffffffff', 'd3fffffffeffffffff', 'ca3fc00000', 'c403010203']) {
      const bytes = Buffer.from(h, 'hex');
      expect(compact.unpackr.unpack(bytes), h).toEqual(full.unpackr.unpack(bytes));
    }
  });

  it('refuses truncated input, trailing bytes and extension types instead of guessing', () => {
    for (const h of ['92 01', '93 01 02 03 04', 'd4 00 00', 'a3 61 62']) {
      const bytes = Buffer.from(h.replace(/ /g, ''), 'hex');
      expect(() => compact.unpackr.unpack(bytes), h).toThrow(RangeError);
    }
  });

  it('agrees with the guard on what is one well-formed value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        if (checkMsgpack(bytes, SERVER_FRAME_GUARD) !== null || checkMsgpack(bytes, CLIENT_FRAME_GUARD) !== null) return;
        const mine = compact.unpackr.unpack(bytes);
        // Invalid UTF-8 decodes differently (leniently in both): compare everything else.
        if (JSON.stringify(mine, (_k, v: unknown) => (v instanceof Map ? [...v] : v))?.includes('\ufffd')) return;
        expect(mine).toEqual(full.unpackr.unpack(bytes));
      }),
      { numRuns: 2000 },
    );
  });
});
