/**
 * The client core against a scripted socket: what it sends, when, and what it makes of the server's
 * answers. The end-to-end tests run the same client against the real server.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ClientMessageType, 
  decodeClientFrame,
  encodeAck,
  encodeAckWithDrops,
  encodeWelcome,
  type Catalog,
  type Welcome,
} from '../protocol/index.js';
import { ClientCore } from './client-core.js';
import { PendingDeltas } from './pending-deltas.js';
import type { ClientStatus, SocketLike } from './types.js';

const CATALOG: Catalog = {
  version: 9,
  metrics: [{ name: 'usage_total', type: 'counter', labelNames: ['feature'], labelValues: [['a', 'b']], buckets: [] }],
};

class ScriptedSocket implements SocketLike {
  binaryType = 'nodebuffer';
  readyState = 0;
  readonly sent: unknown[] = [];
  closedWith: { code?: number; reason?: string } | null = null;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: Uint8Array): void {
    this.sent.push(decodeClientFrame(data));
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { ...(code === undefined ? {} : { code }), ...(reason === undefined ? {} : { reason }) };
    this.readyState = 2;
    // A real socket reports its close a little later.
    setTimeout(() => this.serverClose(code ?? 1005, reason ?? ''), 0);
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(bytes: Uint8Array): void {
    this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }
  serverClose(code: number, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const welcome = (over: Partial<Omit<Welcome, 'type'>> = {}): Uint8Array =>
  encodeWelcome({
    sessionId: 'S', token: 'T', epoch: 'E', lastAppliedSeq: 0, resumed: false, flushIntervalMs: 60_000, idleTimeoutMs: 30_000, catalog: CATALOG,
    limits: { maxFrameBytes: 32 * 1024, maxSamplesPerFrame: 4096, maxSampleValue: 1e9, maxFramesPerSecond: 20 }, ...over,
  });

function client(recorded?: PendingDeltas, flushTimeout = 2_000, flushInterval?: number) {
  const sockets: ScriptedSocket[] = [];
  const statuses: ClientStatus[] = [];
  const c = new ClientCore(
    {
      url: 'ws://127.0.0.1:1/ws', labels: { app: 'student' }, backoff: { baseMs: 0, capMs: 0 }, onStatus: (s) => statuses.push(s), flushTimeout,
      ...(flushInterval === undefined ? {} : { flushInterval }),
    },
    (url) => {
      const s = new ScriptedSocket(url);
      sockets.push(s);
      return s;
    },
    recorded,
  );
  const last = (): ScriptedSocket => sockets.at(-1)!;
  return { c, sockets, statuses, last };
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

describe('ClientCore', () => {
  it('says hello on open, sends its deltas after the welcome, and flush resolves on the ack', async () => {
    const { c, last } = client();
    const s = last();
    expect(s.url).toMatch(/^ws:\/\/127\.0\.0\.1:1\/ws\?route=[0-9a-f]{24}$/);
    s.open();
    expect(s.sent).toEqual([[ClientMessageType.HELLO, new Map([['app', 'student']]), null]]);
    c.increment('usage_total', { feature: 'b' }, 3);
    const flushed = c.flush();
    s.receive(welcome());
    expect(s.sent.at(-1)).toEqual([ClientMessageType.DELTA, 1, 9, [[0, 1, 3]], new Map()]);
    s.receive(encodeAck(1));
    await flushed;
    await c.close();
  });

  it('resumes after a cut and does not resend a frame the welcome says was applied', async () => {
    const { c, sockets, last } = client();
    last().open();
    last().receive(welcome());
    c.increment('usage_total', { feature: 'a' }, 1);
    const flushed = c.flush();
    expect(last().sent.at(-1)).toEqual([ClientMessageType.DELTA, 1, 9, [[0, 0, 1]], new Map()]);
    last().serverClose(1006); // the ack was lost with the connection
    await tick();
    expect(sockets).toHaveLength(2);
    expect(last().url).toMatch(/&session=S$/);
    last().open();
    expect(last().sent).toEqual([[ClientMessageType.HELLO, new Map([['app', 'student']]), ['S', 'T', 'E']]]);
    last().receive(welcome({ resumed: true, lastAppliedSeq: 1 }));
    await flushed;
    // only the gauges' frame would follow; nothing of the applied delta is sent again
    expect(last().sent).toHaveLength(1);
    await c.close();
  });

  it('parses what the application passes: a bad argument is a counted drop, never an exception', () => {
    const { c, last } = client();
    last().open();
    last().receive(welcome());
    c.record('counter', Symbol('x'), {}, 1);
    c.record('counter', 'usage_total', 'a', 1);
    c.record('counter', 'usage_total', { feature: 'a' }, '1');
    void c.flush();
    expect(last().sent.at(-1)).toEqual([ClientMessageType.DELTA, 1, 9, [], new Map([['unknown_metric', 1], ['label_not_allowed', 1], ['not_a_number', 1]])]);
    void c.close();
  });

  it('reports a bug of its own while recording as client_error, said once, not as bad data (review defect 4)', () => {
    const recorded = new PendingDeltas();
    recorded.record = () => {
      throw new TypeError('a bug in the client');
    };
    const { c, last, statuses } = client(recorded);
    last().open();
    last().receive(welcome());
    c.increment('usage_total', { feature: 'a' }, 1);
    c.increment('usage_total', { feature: 'a' }, 1);
    void c.flush();
    expect(last().sent.at(-1)).toEqual([ClientMessageType.DELTA, 1, 9, [], new Map([['client_error', 2]])]);
    expect(statuses.filter((s) => s.type === 'error')).toEqual([{ type: 'error', message: 'promstream client bug while recording usage_total: a bug in the client' }]);
    void c.close();
  });

  it('paces its frames a tenth below the server\'s frame rate', async () => {
    const { c, last } = client();
    last().open();
    last().receive(welcome({ limits: { maxFrameBytes: 32 * 1024, maxSamplesPerFrame: 4096, maxSampleValue: 1e9, maxFramesPerSecond: 20 } }));
    const sentAt: number[] = [];
    const s = last();
    const send = s.send.bind(s);
    s.send = (data) => {
      sentAt.push(performance.now());
      send(data);
      // the server acks at once
      queueMicrotask(() => s.receive(encodeAck(sentAt.length)));
    };
    for (let i = 0; i < 4; i++) {
      c.increment('usage_total', { feature: 'a' }, 1);
      await c.flush();
    }
    expect(sentAt).toHaveLength(4);
    // 1.1 / 20 s = 55 ms between frames; timers may fire a little late, never early
    for (let i = 1; i < sentAt.length; i++) expect(sentAt[i]! - sentAt[i - 1]!).toBeGreaterThanOrEqual(54);
    await c.close();
  });

  it('reports the samples a v2 ack says the server dropped for the sample rate', async () => {
    const { c, last, statuses } = client();
    last().open();
    last().receive(welcome());
    c.increment('usage_total', { feature: 'a' }, 1);
    const flushed = c.flush();
    last().receive(encodeAckWithDrops(1, 3));
    await flushed;
    expect(statuses.filter((s) => s.type === 'rate-limited')).toEqual([{ type: 'rate-limited', samples: 3 }]);
    await c.close();
  });

  it('stops for good on a close whose policy is never, rejecting flush with PROMSTREAM_CLOSED_BY_SERVER', async () => {
    const { c, last, sockets } = client();
    last().open();
    c.increment('usage_total', { feature: 'a' }, 1);
    const flushed = c.flush();
    last().serverClose(4003, 'session labels missing or not allowed');
    await expect(flushed).rejects.toMatchObject({ code: 'PROMSTREAM_CLOSED_BY_SERVER', closeCode: 4003 });
    await tick();
    expect(sockets).toHaveLength(1);
  });

  it('close() sends a goodbye and closes with 1000; what was never acknowledged then rejects with PROMSTREAM_CLIENT_CLOSED', async () => {
    const { c, last } = client();
    last().open();
    last().receive(welcome());
    const closing = c.close();
    await tick();
    expect(last().sent.at(-1)).toEqual([ClientMessageType.GOODBYE]);
    expect(last().closedWith).toEqual({ code: 1000, reason: 'client closed' });
    await closing;
    // never welcomed: close() waits out its flush, then a later flush says the client is gone
    const unwelcomed = client(undefined, 50);
    unwelcomed.last().open();
    unwelcomed.c.increment('usage_total', { feature: 'a' }, 1);
    await unwelcomed.c.close();
    await expect(unwelcomed.c.flush()).rejects.toMatchObject({ code: 'PROMSTREAM_CLIENT_CLOSED' });
  });

  describe('the ack timeout (4100)', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('applies only to a frame sent on the current, welcomed socket, timed from when it was sent there', async () => {
      vi.useFakeTimers();
      // a flush tick every 100 ms; the server's idle timeout, hence the ack timeout, is 1 s
      const { c, sockets, statuses, last } = client(undefined, 60_000, 100);
      last().open();
      last().receive(welcome({ idleTimeoutMs: 1000 }));
      c.increment('usage_total', { feature: 'a' }, 1);
      let flushed = false;
      void c.flush().then(() => (flushed = true));
      const first = last();
      expect(first.sent.at(-1)).toEqual([ClientMessageType.DELTA, 1, 9, [[0, 0, 1]], new Map()]);
      // the first tick past 1 s gives it up; the reconnect follows after a backoff of 0
      await vi.advanceTimersByTimeAsync(1150);
      expect(first.closedWith).toEqual({ code: 4100, reason: 'no ack in time' });
      expect(sockets).toHaveLength(2);

      // The new socket waits for its welcome (a slow path: several ticks) and is not closed for the old frame.
      const second = last();
      await vi.advanceTimersByTimeAsync(5000);
      expect(second.closedWith).toBeNull();
      expect(sockets).toHaveLength(2);
      second.open();
      await vi.advanceTimersByTimeAsync(5000);
      expect(second.closedWith).toBeNull();
      second.receive(welcome({ idleTimeoutMs: 1000, resumed: true, lastAppliedSeq: 0 }));
      expect(second.sent.at(-1)).toEqual([ClientMessageType.DELTA, 1, 9, [[0, 0, 1]], new Map()]);
      // timed from its send on this socket: 900 ms later it is not late yet
      await vi.advanceTimersByTimeAsync(900);
      expect(second.closedWith).toBeNull();
      second.receive(encodeAck(1));
      await vi.advanceTimersByTimeAsync(0);
      expect(flushed).toBe(true);

      // A frame unacknowledged on a welcomed socket still times out, once.
      c.increment('usage_total', { feature: 'b' }, 1);
      void c.flush().catch(() => {});
      await vi.advanceTimersByTimeAsync(1150);
      expect(second.closedWith).toEqual({ code: 4100, reason: 'no ack in time' });
      expect(statuses.flatMap((st) => (st.type === 'disconnected' ? [st.code] : []))).toEqual([4100, 4100]);
      void c.close();
      await vi.advanceTimersByTimeAsync(60_000);
    });
  });

  it('refuses a url that is not ws:// or wss:// with PROMSTREAM_CLIENT_OPTIONS_INVALID', () => {
    expect(() => new ClientCore({ url: 'http://x' }, () => new ScriptedSocket('x'))).toThrow(expect.objectContaining({ code: 'PROMSTREAM_CLIENT_OPTIONS_INVALID' }));
  });
});
