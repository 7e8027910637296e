import { Packr } from 'msgpackr';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createClient, type PromstreamClient } from '../../client/node.js';
import { CloseReasons, encode, encodeDelta, encodeHello, type ServerCloseReason, type Welcome } from '../../protocol/index.js';
import type { RunningServer } from '../../server/index.js';
import { scrape, valueOf } from '../support/scrape.js';
import { describeEachTransport, rawClient, startTestServer, type RawClient } from '../support/server-harness.js';
import { waitFor } from '../support/wait-for.js';

// Floats for NaN/Infinity must go over the wire as float64; msgpackr writes them so.
const packFloat = new Packr({ useRecords: false });

describeEachTransport('bad input over %s: a close code for the offender, nothing disturbed', (transport) => {
  let server: RunningServer;
  let honest: PromstreamClient;

  beforeEach(async () => {
    server = await startTestServer(transport, { handshakeTimeoutMs: 300, maxFrameBytes: 2048, maxPayloadBytes: 64 * 1024 });
    honest = createClient({ url: `ws://127.0.0.1:${server.port}/ws`, labels: { app: 'teacher' }, flushInterval: 20 });
    honest.increment('usage_total', { feature: 'c' }, 5);
    await honest.flush();
  });
  afterEach(async () => {
    await honest.close();
    await server.close();
  });

  /** After every bad peer: the honest client still counts, exactly once, and is still connected. */
  async function honestUndisturbed(): Promise<Map<string, number>> {
    honest.increment('usage_total', { feature: 'c' }, 1);
    await honest.flush();
    const m = await scrape(server.metricsPort);
    expect(valueOf(m, 'usage_total{feature="c"}')).toBe(6);
    expect(valueOf(m, 'connected_clients{app="teacher"}')).toBe(1);
    return m;
  }

  async function expectClosedWith(c: RawClient, reason: ServerCloseReason): Promise<void> {
    const closed = await c.closed;
    expect(closed).toEqual({ code: reason.code, reason: reason.reason });
    const m = await honestUndisturbed();
    if (reason.metric !== null) expect(valueOf(m, `promstream_protocol_errors_total{reason="${reason.metric}"}`)).toBe(1);
    expect(valueOf(m, 'connected_clients{app="student"}')).toBe(0);
  }

  const welcomed = async (): Promise<{ c: RawClient; w: Welcome }> => {
    const c = await rawClient(server.port);
    return { c, w: await c.hello({ app: 'student' }) };
  };

  it('not msgpack → 1007', async () => {
    const { c } = await welcomed();
    c.send(Buffer.from([0xc1, 0x00]));
    await expectClosedWith(c, CloseReasons.notMsgpack);
  });

  it('valid msgpack of the wrong shape → 1007', async () => {
    const { c } = await welcomed();
    c.send(encode({ hello: 'world' }));
    await expectClosedWith(c, CloseReasons.badShape);
  });

  it('a map header announcing billions of entries → 1007', async () => {
    const { c } = await welcomed();
    c.send(Buffer.from('dfffffffff01', 'hex'));
    await expectClosedWith(c, CloseReasons.notMsgpack);
  });

  it('nesting thousands deep → 1007', async () => {
    const { c } = await welcomed();
    c.send(Buffer.from('91'.repeat(1500) + 'c0', 'hex'));
    await expectClosedWith(c, CloseReasons.notMsgpack);
  });

  it('a frame over the protocol limit → 1009', async () => {
    const { c, w } = await welcomed();
    c.send(encodeDelta(1, w.catalog.version, Array.from({ length: 800 }, () => [0, 0, 1]), new Map()));
    await expectClosedWith(c, CloseReasons.frameTooBig);
  });

  it('a frame over the transport payload limit closes the connection', async () => {
    const { c } = await welcomed();
    c.send(Buffer.alloc(70 * 1024, 0x90));
    const closed = await c.closed;
    // ws closes with 1009; uWS cuts the connection without a close frame (1006)
    expect(transport === 'ws' ? [1009] : [1006, 1009]).toContain(closed.code);
    await honestUndisturbed();
  });

  it('an unknown message type → 1002', async () => {
    const { c } = await welcomed();
    c.send(encode([77, 1]));
    await expectClosedWith(c, CloseReasons.unknownMessageType);
  });

  it('a delta before hello → 1002', async () => {
    const c = await rawClient(server.port);
    c.send(encodeDelta(1, 0, [], new Map()));
    await expectClosedWith(c, CloseReasons.helloExpected);
  });

  it('a second hello → 1002', async () => {
    const { c } = await welcomed();
    c.send(encodeHello({ app: 'student' }, null));
    await expectClosedWith(c, CloseReasons.duplicateHello);
  });

  it('a text frame → 1003', async () => {
    const { c } = await welcomed();
    c.send('{"type":"delta"}');
    await expectClosedWith(c, CloseReasons.textFrame);
  });

  it('no subprotocol → accepted, then 4000', async () => {
    const c = await rawClient(server.port, { protocols: [] });
    await expectClosedWith(c, CloseReasons.unsupportedVersion);
  });

  it('an unknown protocol version → accepted with it, then 4000', async () => {
    const c = await rawClient(server.port, { protocols: ['promstream.v9'] });
    expect(c.ws.protocol).toBe('promstream.v9');
    await expectClosedWith(c, CloseReasons.unsupportedVersion);
  });

  it('session labels missing or not allowed → 4003', async () => {
    for (const labels of [{}, { app: 'hacker' }, { app: 'student', extra: 'x' }]) {
      const c = await rawClient(server.port);
      c.send(encodeHello(labels, null));
      expect(await c.closed).toEqual({ code: 4003, reason: CloseReasons.sessionLabelsRejected.reason });
    }
    const m = await honestUndisturbed();
    expect(valueOf(m, 'promstream_protocol_errors_total{reason="session_labels"}')).toBe(3);
  });

  it('no hello within the handshake timeout → 4004', async () => {
    const c = await rawClient(server.port);
    await expectClosedWith(c, CloseReasons.handshakeTimeout);
  });

  it('a resume with a wrong token, unknown id or another epoch → 4001', async () => {
    const { c, w } = await welcomed();
    c.ws.terminate();
    for (const resume of [
      { sessionId: w.sessionId, token: 'forged', epoch: w.epoch },
      { sessionId: 'no-such-session', token: w.token, epoch: w.epoch },
      { sessionId: w.sessionId, token: w.token, epoch: 'another-process' },
    ]) {
      const r = await rawClient(server.port);
      r.send(encodeHello({ app: 'student' }, resume));
      expect(await r.closed).toEqual({ code: 4001, reason: CloseReasons.sessionNotResumable.reason });
    }
    const m = await honestUndisturbed();
    expect(valueOf(m, 'promstream_protocol_errors_total{reason="session_not_resumable"}')).toBe(3);
    // the real session is still resumable with the right token
    const ok = await rawClient(server.port, { query: `?session=${w.sessionId}` });
    const again = await ok.hello({ app: 'student' }, { sessionId: w.sessionId, token: w.token, epoch: w.epoch });
    expect(again).toMatchObject({ sessionId: w.sessionId, resumed: true, lastAppliedSeq: 0 });
    ok.ws.close(1000);
  });

  it('a resume whose URL names another session → 4001', async () => {
    const { c, w } = await welcomed();
    c.ws.terminate();
    const r = await rawClient(server.port, { query: '?session=someone-else' });
    r.send(encodeHello({ app: 'student' }, { sessionId: w.sessionId, token: w.token, epoch: w.epoch }));
    expect((await r.closed).code).toBe(4001);
  });

  it('duplicate seq is acknowledged again and not applied; a skipped seq → 1002', async () => {
    const { c, w } = await welcomed();
    const v = w.catalog.version;
    c.send(encodeDelta(1, v, [[0, 0, 2]], new Map()));
    await c.next((m) => (m.type === 2 && m.lastAppliedSeq === 1 ? m : undefined));
    c.send(encodeDelta(1, v, [[0, 0, 2]], new Map())); // resend after a "lost" ack
    await c.next((m, ) => (m.type === 2 && c.messages.filter((x) => x.type === 2).length === 2 ? m : undefined));
    expect(c.messages.filter((x) => x.type === 2)).toEqual([{ type: 2, lastAppliedSeq: 1, rateLimitedSamples: 0 }, { type: 2, lastAppliedSeq: 1, rateLimitedSamples: 0 }]);
    c.send(encodeDelta(3, v, [[0, 0, 100]], new Map()));
    await expectClosedWith(c, CloseReasons.sequenceGap);
    const m = await scrape(server.metricsPort);
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(2);
  });

  it('a forged seq (0, negative, fractional, string) → 1007 bad shape', async () => {
    for (const seq of [0, -1, 1.5, 'one']) {
      const { c, w } = await welcomed();
      c.send(encode([2, seq, w.catalog.version, [[0, 0, 1]], new Map()]));
      expect(await c.closed).toEqual({ code: 1007, reason: CloseReasons.badShape.reason });
    }
    const m = await honestUndisturbed();
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(0);
  });

  it('uint64 and bigint-sized numbers: as seq → 1007; as a sample value → too_large, dropped alone', async () => {
    const { c, w } = await welcomed();
    // [2, seq=1, version, [[0, 0, 2^64-1], [0, 0, 2]], {}] with the increment as a msgpack uint64
    const version = Buffer.from(encode(w.catalog.version)).toString('hex');
    c.send(Buffer.from(`950201${version}9293000 0cf ffffffffffffffff 93000002 80`.replace(/ /g, ''), 'hex'));
    await c.next((m) => (m.type === 2 && m.lastAppliedSeq === 1 ? m : undefined));
    let m = await scrape(server.metricsPort);
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(2);
    expect(valueOf(m, 'promstream_rejected_samples_total{reason="too_large"}')).toBe(1);
    c.send(Buffer.from(`9502cfffffffffffffffff${version}9080`, 'hex'));
    expect(await c.closed).toEqual({ code: 1007, reason: CloseReasons.badShape.reason });
    m = await honestUndisturbed();
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(2);
  });

  it('a delta on an old catalogue version → 4006, nothing applied', async () => {
    const { c, w } = await welcomed();
    c.send(encodeDelta(1, (w.catalog.version + 1) >>> 0, [[0, 0, 1]], new Map()));
    await expectClosedWith(c, CloseReasons.catalogChanged);
  });

  it('bad samples are dropped and counted one by one; the rest of the frame applies', async () => {
    const { c, w } = await welcomed();
    const samples = [
      [0, 0, 1], // ok: usage_total{feature=a} +1
      [9, 0, 1], // unknown metric
      [0, 7, 1], // label value index not allowed
      [0, 1], // missing label → wrong length
      [0, 0, Number.NaN],
      [0, 0, Number.POSITIVE_INFINITY],
      [0, 0, -3],
      [0, 0, '5'],
      [0, 0, 1e300],
      [1, 0, 0.2, 1, 0], // histogram with too few buckets
      [1, 0, 0.2, 0, 1, 0, 0], // ok: rt_seconds{host=x} one observation in le=0.5
      'not an array',
      [2, 3], // ok: presenting = 3
    ];
    c.send(packFloat.pack([2, 1, w.catalog.version, samples, new Map()]));
    await c.next((m) => (m.type === 2 && m.lastAppliedSeq === 1 ? m : undefined));
    const m = await honestUndisturbed();
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(1);
    expect(valueOf(m, 'rt_seconds_bucket{host="x",le="0.5"}')).toBe(1);
    expect(valueOf(m, 'presenting')).toBe(3);
    const rejected = (reason: string): number => valueOf(m, `promstream_rejected_samples_total{reason="${reason}"}`);
    expect({
      unknown_metric: rejected('unknown_metric'), label_not_allowed: rejected('label_not_allowed'), wrong_length: rejected('wrong_length'),
      non_finite: rejected('non_finite'), negative: rejected('negative'), not_a_number: rejected('not_a_number'), too_large: rejected('too_large'),
      bad_bucket_count: rejected('bad_bucket_count'), not_array: rejected('not_array'),
    }).toEqual({ unknown_metric: 1, label_not_allowed: 1, wrong_length: 1, non_finite: 2, negative: 1, not_a_number: 1, too_large: 1, bad_bucket_count: 1, not_array: 1 });
    expect(valueOf(m, 'promstream_samples_applied_total')).toBe(3 + 2); // + the honest client's two
    expect(valueOf(m, 'connected_clients{app="student"}')).toBe(1);
    c.ws.close(1000);
  });

  it('client-reported drops are counted under known reasons only, capped per frame, apart from the server\'s own', async () => {
    const { c, w } = await welcomed();
    c.send(encodeDelta(1, w.catalog.version, [], new Map([['unknown_metric', 4], ['made_up_reason', 9], ['negative', 2_000_000]])));
    await c.next((m) => (m.type === 2 ? m : undefined));
    const m = await scrape(server.metricsPort);
    expect(valueOf(m, 'promstream_client_dropped_samples_total{reason="unknown_metric"}')).toBe(4);
    // 2 000 000 claimed: a frame counts at most 1 000 000, and the session's bucket holds 1 000 000 in all
    expect(valueOf(m, 'promstream_client_dropped_samples_total{reason="negative"}')).toBe(1_000_000 - 4);
    expect(valueOf(m, 'promstream_rejected_samples_total{reason="unknown_metric"}')).toBe(0);
    expect([...m.keys()].some((k) => k.includes('made_up_reason'))).toBe(false);
    c.ws.close(1000);
  });

  it('a second connection for the same session replaces the first (4002)', async () => {
    const { c, w } = await welcomed();
    const second = await rawClient(server.port, { query: `?session=${w.sessionId}` });
    const again = await second.hello({ app: 'student' }, { sessionId: w.sessionId, token: w.token, epoch: w.epoch });
    expect(again.resumed).toBe(true);
    expect(await c.closed).toEqual({ code: 4002, reason: CloseReasons.sessionReplaced.reason });
    await waitFor(async () => valueOf(await scrape(server.metricsPort), 'connected_clients{app="student"}') === 1, { what: 'one student connection' });
    second.ws.close(1000);
  });
});
