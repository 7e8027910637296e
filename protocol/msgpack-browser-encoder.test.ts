import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SERVER_FRAME_GUARD } from './codec.js';
import { encodeMsgpack as browserEncode } from './msgpack-browser-encoder.js';
import { encodeMsgpack as nodeEncode } from './msgpack-node-encoder.js';
import { decodeMsgpackStrict } from './msgpack-strict-decoder.js';
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

const doc = readFileSync(new URL('./PROTOCOL.md', import.meta.url), 'utf8');
const golden = [...doc.matchAll(/```hex ([a-z0-9-]+)\n([\s\S]*?)```/g)].map((m) => [m[1]!, Buffer.from(m[2]!.replace(/\s+/g, ''), 'hex')] as const);

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

describe('the browser encoder against msgpackr (the Node encoder)', () => {
  it('re-encodes every PROTOCOL.md example byte for byte', () => {
    expect(golden.length).toBeGreaterThanOrEqual(6);
    for (const [name, bytes] of golden) expect(hex(browserEncode(decodeMsgpackStrict(bytes, SERVER_FRAME_GUARD))), name).toBe(hex(bytes));
  });

  it('encodes exactly as msgpackr does', () => {
    fc.assert(
      fc.property(wireValue.value, (v) => {
        expect(hex(browserEncode(v))).toBe(hex(nodeEncode(v)));
      }),
      { numRuns: 400 },
    );
  });

  it('picks the same integer and header forms at every boundary', () => {
    const edges = [0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 0.5, -0, 1e300];
    for (const n of edges) expect(hex(browserEncode(n)), String(n)).toBe(hex(nodeEncode(n)));
    for (const len of [0, 15, 16, 31, 32, 255, 256, 65535, 65536]) {
      const s = 'x'.repeat(len);
      const arr = new Array<number>(len).fill(1);
      const map = new Map(arr.map((_, i) => [String(i), 1]));
      expect(hex(browserEncode(s)), `string ${len}`).toBe(hex(nodeEncode(s)));
      expect(hex(browserEncode(arr)), `array ${len}`).toBe(hex(nodeEncode(arr)));
      expect(hex(browserEncode(map)), `map ${len}`).toBe(hex(nodeEncode(map)));
    }
  });

  it('refuses what the protocol never sends instead of guessing', () => {
    expect(() => browserEncode(() => 1)).toThrow(new TypeError('msgpack: cannot encode a function'));
    expect(() => browserEncode(1n)).toThrow(new TypeError('msgpack: cannot encode a bigint'));
  });
});
