import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encode } from '../../protocol/index.js';
import type { ClientConnection } from './client-connection.js';
import { handlerFixture } from './handler.fixture.js';

// The transports are tested on real sockets elsewhere; thousands of hostile frames per second need the
// handler alone, behind Peers that record what the handler asked the socket to do.
function setup() {
  const f = handlerFixture({ maxFramesPerSecond: 1e9 });
  const { store, catalog } = f.whitelist.current;
  return { ...f, store, catalog };
}

/** Well-typed but hostile values: the numbers and shapes a hostile page would try. */
const hostileNumber = fc.oneof(
  fc.constantFrom(Number.NaN, Infinity, -Infinity, -0, 0, 1e300, -1e300, Number.MAX_SAFE_INTEGER, 2 ** 64, -1, 0.5),
  fc.integer({ min: -5, max: 50 }),
  fc.double(),
);
const hostileValue = fc.oneof(hostileNumber, fc.string({ maxLength: 8 }), fc.constant(null), fc.boolean(), fc.array(hostileNumber, { maxLength: 3 }));
const sample = fc.array(hostileValue, { maxLength: 8 });
const message = fc.oneof(
  fc.record({ labels: fc.dictionary(fc.constantFrom('app', 'x', '__proto__'), fc.constantFrom('student', 'teacher', 'hacker')), resume: fc.oneof(fc.constant(null), fc.tuple(fc.string(), fc.string(), fc.string())) })
    .map(({ labels, resume }) => encode([1, new Map(Object.entries(labels)), resume])),
  fc.tuple(hostileValue, hostileValue, fc.array(sample, { maxLength: 6 }), fc.dictionary(fc.string({ maxLength: 12 }), hostileNumber))
    .map(([seq, version, samples, drops]) => encode([2, seq, version, samples, new Map(Object.entries(drops))])),
  fc.constant(encode([3])),
  fc.uint8Array({ maxLength: 64 }),
  fc.array(hostileValue, { maxLength: 6 }).map((a) => encode(a)),
);

describe('frame handler under arbitrary and hostile frames (fast-check)', () => {
  it('never throws, keeps every total finite, and leaves nothing behind when all connections go', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: 3 }), message, fc.boolean()), { minLength: 1, maxLength: 40 }), async (script) => {
        const f = setup();
        const { store, metrics, handler, catalog } = f;
        const conns: ClientConnection[] = [];
        // Connection 0 is honest: it says hello properly so hostile deltas reach the apply path too.
        for (let i = 0; i < 4; i++) {
          const c = f.open().conn;
          conns.push(c);
          handler.onMessage(c, encode([1, new Map([['app', 'student']]), null]), true);
        }
        let seq = 0;
        for (const [who, bytes, binary] of script) {
          const conn = conns[who]!;
          handler.onMessage(conn, bytes, binary);
          // keep one stream of valid seqs going on connection 0 with hostile samples
          if (who === 0 && conn.phase === 'active') handler.onMessage(conn, encode([2, ++seq, catalog.wire.version, [[0, 0, 1], [1, 0, 0.1, 1, 0, 0, 0]], new Map()]), true);
        }
        for (const m of store.metrics) for (const v of m.values) expect(Number.isFinite(v)).toBe(true);
        for (const c of conns) f.gone(c);
        const gauge = store.metrics.find((m) => m.entry.type === 'gauge')!;
        expect([...gauge.values]).toEqual([0]);
        expect(handler.live.size).toBe(0);
        const g = await metrics.connectedClients.get();
        expect(g.values.map((v) => v.value)).toEqual([0, 0]);
      }),
      { numRuns: 1000 },
    );
  });
});
