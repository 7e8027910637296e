import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { 
  CloseReasons,
  DecodeError, 
  decodeClientFrame, decodeServerFrame,
  encode,
  encodeAck,
  encodeAckWithDrops,
  encodeDelta,
  encodeGoodbye,
  encodeHello,
  encodeWelcome,
  parseClientMessage,
  parseServerMessage,
  type Welcome,
} from './index.js';

const doc = readFileSync(new URL('./PROTOCOL.md', import.meta.url), 'utf8');
const golden = new Map([...doc.matchAll(/```hex ([a-z0-9-]+)\n([\s\S]*?)```/g)].map((m) => [m[1]!, Buffer.from(m[2]!.replace(/\s+/g, ''), 'hex')]));
const hexOf = (name: string): Buffer => {
  const b = golden.get(name);
  if (b === undefined) throw new Error(`PROTOCOL.md has no hex example "${name}"`);
  return b;
};
/** Hex, so msgpackr's extra Buffer properties do not take part in the comparison. */
const bytes = (u: Uint8Array): string => Buffer.from(u).toString('hex');

describe('PROTOCOL.md examples, byte-exact', () => {
  it('lists every example the tests use', () => {
    expect([...golden.keys()].sort()).toEqual(['ack', 'ack-rate-limited', 'delta', 'goodbye', 'hello', 'hello-resume', 'welcome', 'welcome-v1']);
  });

  it('hello', () => {
    const msg = parseClientMessage(decodeClientFrame(hexOf('hello')));
    expect(msg).toEqual({ type: 1, labels: new Map([['app', 'student']]), resume: null });
    expect(bytes(encodeHello({ app: 'student' }, null))).toEqual(hexOf('hello').toString('hex'));
  });

  it('hello with resume', () => {
    const msg = parseClientMessage(decodeClientFrame(hexOf('hello-resume')));
    expect(msg).toEqual({ type: 1, labels: new Map([['app', 'student']]), resume: { sessionId: 'S1', token: 'T1', epoch: 'E1' } });
    expect(bytes(encodeHello({ app: 'student' }, { sessionId: 'S1', token: 'T1', epoch: 'E1' }))).toEqual(hexOf('hello-resume').toString('hex'));
  });

  it('delta', () => {
    const msg = parseClientMessage(decodeClientFrame(hexOf('delta')));
    const samples = [[0, 0, 3], [1, 1, 0.5, 0, 1, 0], [2, 2]];
    const drops = new Map([['unknown_metric', 1]]);
    expect(msg).toEqual({ type: 2, seq: 1, catalogVersion: 7, samples, drops });
    expect(bytes(encodeDelta(1, 7, samples, drops))).toEqual(hexOf('delta').toString('hex'));
  });

  it('goodbye', () => {
    expect(parseClientMessage(decodeClientFrame(hexOf('goodbye')))).toEqual({ type: 3 });
    expect(bytes(encodeGoodbye())).toEqual(hexOf('goodbye').toString('hex'));
  });

  it('welcome', () => {
    const welcome: Welcome = {
      type: 1, sessionId: 'S1', token: 'T1', epoch: 'E1', lastAppliedSeq: 0, resumed: false, flushIntervalMs: 10_000, idleTimeoutMs: 30_000,
      catalog: {
        version: 7,
        metrics: [
          { name: 'usage_total', type: 'counter', labelNames: ['feature'], labelValues: [['a', 'b']], buckets: [] },
          { name: 'rt', type: 'histogram', labelNames: [], labelValues: [], buckets: [0.5, 1] },
          { name: 'g', type: 'gauge', labelNames: [], labelValues: [], buckets: [] },
        ],
      },
      limits: { maxFrameBytes: 32768, maxSamplesPerFrame: 4096, maxSampleValue: 1e9, maxFramesPerSecond: 20 },
    };
    expect(parseServerMessage(decodeServerFrame(hexOf('welcome')))).toEqual(welcome);
    expect(bytes(encodeWelcome(welcome))).toEqual(hexOf('welcome').toString('hex'));
    // v1 spells the same welcome without maxFramesPerSecond; a v2 client reads it as "not said".
    expect(parseServerMessage(decodeServerFrame(hexOf('welcome-v1')))).toEqual({ ...welcome, limits: { ...welcome.limits, maxFramesPerSecond: null } });
    expect(bytes(encodeWelcome(welcome, undefined, 1))).toEqual(hexOf('welcome-v1').toString('hex'));
  });

  it('ack', () => {
    expect(parseServerMessage(decodeServerFrame(hexOf('ack')))).toEqual({ type: 2, lastAppliedSeq: 42, rateLimitedSamples: 0 });
    expect(bytes(encodeAck(42))).toEqual(hexOf('ack').toString('hex'));
  });

  it('ack with samples dropped for the sample rate (v2)', () => {
    expect(parseServerMessage(decodeServerFrame(hexOf('ack-rate-limited')))).toEqual({ type: 2, lastAppliedSeq: 42, rateLimitedSamples: 5 });
    expect(bytes(encodeAckWithDrops(42, 5))).toEqual(hexOf('ack-rate-limited').toString('hex'));
  });

  it('ack, written by hand, has the bytes msgpackr gives for every integer form', () => {
    for (const n of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      expect(bytes(encodeAck(n)), String(n)).toEqual(bytes(encode([2, n])));
    }
    // Each ack owns its bytes: a later one does not overwrite one still queued at a transport.
    const first = encodeAck(7);
    for (let i = 0; i < 5000; i++) encodeAck(i);
    expect(bytes(first)).toBe('920207');
  });
});

const notMsgpack = (hex: string): void => {
  let caught: unknown;
  try {
    decodeClientFrame(Buffer.from(hex, 'hex'));
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(DecodeError);
  expect((caught as DecodeError).close).toBe(CloseReasons.notMsgpack);
};

describe('hostile bytes', () => {
  it('refuses an array header announcing 4 billion entries without allocating', () => notMsgpack('ddffffffff01'));
  it('refuses a map header announcing 4 billion entries', () => notMsgpack('dfffffffff'));
  it('refuses a str32 header longer than the frame', () => notMsgpack('dbffffffff6161'));
  it('refuses nesting deeper than the guard allows (10 000 levels)', () => notMsgpack('91'.repeat(10_000) + 'c0'));
  it('refuses extension types (msgpackr records, timestamps)', () => {
    notMsgpack('d6ff00000001'); // timestamp ext -1
    notMsgpack('d47201'); // msgpackr record ext
    notMsgpack('c70100ff');
  });
  it('refuses the reserved byte 0xc1, trailing bytes and truncation', () => {
    notMsgpack('c1');
    notMsgpack('9103c0');
    notMsgpack('93010203'.slice(0, 6));
    notMsgpack('');
  });
  it('parses "__proto__" as a plain map key', () => {
    const value = decodeClientFrame(Buffer.from('9301' + '81a95f5f70726f746f5f5fa178' + 'c0', 'hex'));
    const msg = parseClientMessage(value);
    expect(msg).toEqual({ type: 1, labels: new Map([['__proto__', 'x']]), resume: null });
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });
  it('gives bad_shape for well-formed msgpack of the wrong shape', () => {
    for (const value of [42, [], ['x'], [2, 0, 1, [], new Map()], [2, 1.5, 1, [], new Map()], [2, 1, -1, [], new Map()], [1, new Map([['a', 1]]), null], [1, new Map(), [1, 2, 3]], [3, 1], [9]]) {
      expect(() => parseClientMessage(value), JSON.stringify(value)).toThrow(DecodeError);
    }
  });

  it('arbitrary bytes never crash or hang the decoder (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (input) => {
        try {
          parseClientMessage(decodeClientFrame(input));
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
        }
      }),
      { numRuns: 20_000 },
    );
  });

  it('mutated valid frames never crash the decoder (fast-check)', () => {
    const base = [...golden.values()];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: base.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (which, edits) => {
        const frame = Buffer.from(base[which]!);
        for (const [at, byte] of edits) frame[at % frame.length] = byte;
        try {
          parseClientMessage(decodeClientFrame(frame));
        } catch (err) {
          if (!(err instanceof DecodeError)) throw err;
        }
      }),
      { numRuns: 20_000 },
    );
  });
});
