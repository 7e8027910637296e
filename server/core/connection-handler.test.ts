/**
 * The protocol state machine frame by frame: real catalogue, store and metrics, recording peers, a clock
 * the test moves (handler.fixture.ts). The end-to-end tests run the same rules over real sockets.
 */
import { describe, expect, it } from 'vitest';
import {
  CloseCode,
  CloseReasons, 
  ServerMessageType,
  decodeServerFrame,
  encode,
  encodeDelta,
  encodeGoodbye,
  encodeHello,
  parseServerMessage,
  type ServerCloseReason,
  type ServerMessage,
  type Welcome,
} from '../../protocol/index.js';
import { EVICTION_GRACE_MS } from './connection-handler.js';
import { handlerFixture, type HandlerFixture, type RecordingPeer } from './handler.fixture.js';

const messagesOf = (peer: RecordingPeer): ServerMessage[] => peer.sent.map((b) => parseServerMessage(decodeServerFrame(b)));
const closedWith = (reason: ServerCloseReason): { code: number; reason: string } => ({ code: reason.code, reason: reason.reason });

function welcomeOf(peer: RecordingPeer): Welcome {
  const w = messagesOf(peer).find((m): m is Welcome => m.type === ServerMessageType.WELCOME);
  if (w === undefined) throw new Error('no welcome');
  return w;
}

/** A connection that said hello and was welcomed. */
function welcomed(f: HandlerFixture, labels: Record<string, string> = { app: 'student' }, resume: Welcome | null = null, address = '127.0.0.1') {
  const { conn, peer } = f.open({ remoteAddress: address, ...(resume === null ? {} : { query: `session=${resume.sessionId}` }) });
  f.handler.onMessage(conn, encodeHello(labels, resume === null ? null : { sessionId: resume.sessionId, token: resume.token, epoch: resume.epoch }), true);
  return { conn, peer, welcome: welcomeOf(peer) };
}

describe('ConnectionHandler: what each first frame gets', () => {
  const cases: { name: string; frame: Uint8Array | string; reason: ServerCloseReason }[] = [
    { name: 'a text frame', frame: 'hello', reason: CloseReasons.textFrame },
    { name: 'bytes that are not msgpack', frame: new Uint8Array([0xc1]), reason: CloseReasons.notMsgpack },
    { name: 'a msgpack value that is not an array', frame: encode(7), reason: CloseReasons.badShape },
    { name: 'an empty array', frame: encode([]), reason: CloseReasons.unknownMessageType },
    { name: 'an array naming no message', frame: encode([9, 1]), reason: CloseReasons.unknownMessageType },
    { name: 'a delta before hello', frame: encodeDelta(1, 0, [], new Map()), reason: CloseReasons.helloExpected },
    { name: 'a hello of the wrong shape', frame: encode([1, 'app', null]), reason: CloseReasons.badShape },
    { name: 'a hello without the session labels', frame: encodeHello({}, null), reason: CloseReasons.sessionLabelsRejected },
    { name: 'a hello with a label value not allowed', frame: encodeHello({ app: 'hacker' }, null), reason: CloseReasons.sessionLabelsRejected },
    { name: 'a resume of an unknown session', frame: encodeHello({ app: 'student' }, { sessionId: 'S', token: 'T', epoch: 'E' }), reason: CloseReasons.sessionNotResumable },
    { name: 'a goodbye before hello', frame: encodeGoodbye(), reason: CloseReasons.helloExpected },
  ];
  for (const c of cases) {
    it(`${c.name}: closed with ${c.reason.code} ${c.reason.metric}, counted`, async () => {
      const f = handlerFixture();
      const { conn, peer } = f.open();
      const frame = c.frame;
      if (typeof frame === 'string') f.handler.onMessage(conn, new TextEncoder().encode(frame), false);
      else f.handler.onMessage(conn, frame, true);
      expect(peer.closed).toEqual(closedWith(c.reason));
      expect(peer.sent).toHaveLength(0);
      expect(await f.metric('promstream_protocol_errors_total', { reason: c.reason.metric! })).toBe(1);
      expect(await f.metric('promstream_closes_total', { code: String(c.reason.code) })).toBe(1);
    });
  }

  it('an unsupported subprotocol is accepted and closed with 4000 at once', async () => {
    const f = handlerFixture();
    const { peer } = f.open({}, 'promstream.v9');
    expect(peer.closed).toEqual(closedWith(CloseReasons.unsupportedVersion));
  });
});

describe('ConnectionHandler: sequence and acks', () => {
  it('applies only the next seq, re-acks a duplicate, closes a gap with 1002', async () => {
    const f = handlerFixture();
    const { conn, peer, welcome } = welcomed(f);
    const v = welcome.catalog.version;
    f.handler.onMessage(conn, encodeDelta(1, v, [[0, 0, 2]], new Map()), true);
    f.handler.onMessage(conn, encodeDelta(1, v, [[0, 0, 2]], new Map()), true);
    f.handler.onMessage(conn, encodeDelta(2, v, [[0, 0, 3]], new Map()), true);
    expect(messagesOf(peer).slice(1)).toEqual([
      { type: ServerMessageType.ACK, lastAppliedSeq: 1, rateLimitedSamples: 0 },
      { type: ServerMessageType.ACK, lastAppliedSeq: 1, rateLimitedSamples: 0 },
      { type: ServerMessageType.ACK, lastAppliedSeq: 2, rateLimitedSamples: 0 },
    ]);
    expect(f.whitelist.current.store.metrics[0]!.values[0]).toBe(5);
    f.handler.onMessage(conn, encodeDelta(4, v, [[0, 0, 3]], new Map()), true);
    expect(peer.closed).toEqual(closedWith(CloseReasons.sequenceGap));
    expect(f.whitelist.current.store.metrics[0]!.values[0]).toBe(5);
  });

  it('a resume learns the last applied seq, and its resend is not applied twice', () => {
    const f = handlerFixture();
    const first = welcomed(f);
    f.handler.onMessage(first.conn, encodeDelta(1, first.welcome.catalog.version, [[0, 1, 4]], new Map()), true);
    f.gone(first.conn, 1006); // the ack was lost with the connection
    const second = welcomed(f, { app: 'student' }, first.welcome);
    expect(second.welcome).toMatchObject({ resumed: true, lastAppliedSeq: 1, sessionId: first.welcome.sessionId });
    f.handler.onMessage(second.conn, encodeDelta(1, first.welcome.catalog.version, [[0, 1, 4]], new Map()), true);
    expect(f.whitelist.current.store.metrics[0]!.values[1]).toBe(4);
  });

  it('a second connection for a session replaces the first with 4002', () => {
    const f = handlerFixture();
    const first = welcomed(f);
    const second = welcomed(f, { app: 'student' }, first.welcome);
    expect(first.peer.closed).toEqual(closedWith(CloseReasons.sessionReplaced));
    expect(second.peer.closed).toBeNull();
  });
});

describe('ConnectionHandler: acks of frames that arrived together', () => {
  /** A handler whose owed acks go out only when the test says (as setImmediate would, after the reads of a turn). */
  const deferred = (options: Parameters<typeof handlerFixture>[0] = {}): { f: HandlerFixture; turn: () => void } => {
    const queue: (() => void)[] = [];
    const f = handlerFixture(options, (send) => queue.push(send));
    return { f, turn: () => queue.splice(0).forEach((send) => send()) };
  };

  it('frames applied in one turn get one cumulative ack; a resend in the same turn adds nothing', () => {
    const { f, turn } = deferred();
    const { conn, peer, welcome } = welcomed(f);
    const v = welcome.catalog.version;
    for (const seq of [1, 2, 3]) f.handler.onMessage(conn, encodeDelta(seq, v, [[0, 0, seq]], new Map()), true);
    f.handler.onMessage(conn, encodeDelta(2, v, [[0, 0, 2]], new Map()), true);
    expect(messagesOf(peer).slice(1)).toEqual([]);
    turn();
    expect(messagesOf(peer).slice(1)).toEqual([{ type: ServerMessageType.ACK, lastAppliedSeq: 3, rateLimitedSamples: 0 }]);
    expect(f.whitelist.current.store.metrics[0]!.values[0]).toBe(6);
    f.handler.onMessage(conn, encodeDelta(4, v, [[0, 0, 1]], new Map()), true);
    turn();
    expect(messagesOf(peer).slice(2)).toEqual([{ type: ServerMessageType.ACK, lastAppliedSeq: 4, rateLimitedSamples: 0 }]);
  });

  it('the one ack says every sample the sample rate dropped in the frames it covers', () => {
    const { f, turn } = deferred({ maxSamplesPerSecond: 1 }); // a bucket of 10 samples
    const { conn, peer, welcome } = welcomed(f);
    const frame = (seq: number): Uint8Array => encodeDelta(seq, welcome.catalog.version, Array.from({ length: 8 }, () => [0, 0, 1]), new Map());
    f.handler.onMessage(conn, frame(1), true);
    f.handler.onMessage(conn, frame(2), true);
    turn();
    expect(messagesOf(peer).slice(1)).toEqual([{ type: ServerMessageType.ACK, lastAppliedSeq: 2, rateLimitedSamples: 6 }]);
  });

  it('what was applied is acknowledged before a close that follows in the same turn', () => {
    const { f, turn } = deferred();
    const { conn, peer, welcome } = welcomed(f);
    const v = welcome.catalog.version;
    f.handler.onMessage(conn, encodeDelta(1, v, [[0, 0, 1]], new Map()), true);
    f.handler.onMessage(conn, encodeDelta(3, v, [[0, 0, 1]], new Map()), true); // a gap: 1002
    expect(messagesOf(peer).slice(1)).toEqual([{ type: ServerMessageType.ACK, lastAppliedSeq: 1, rateLimitedSamples: 0 }]);
    expect(peer.closed).toEqual(closedWith(CloseReasons.sequenceGap));
    turn();
    expect(peer.sent).toHaveLength(2);
  });

  it('a connection gone before its turn is sent nothing', () => {
    const { f, turn } = deferred();
    const { conn, peer, welcome } = welcomed(f);
    f.handler.onMessage(conn, encodeDelta(1, welcome.catalog.version, [[0, 0, 1]], new Map()), true);
    f.gone(conn, 1006);
    turn();
    expect(peer.sent).toHaveLength(1); // the welcome
  });
});

describe('ConnectionHandler: protocol versions', () => {
  it('speaks v1 to a client that offers only v1: three limits, two-element acks even when samples were dropped', () => {
    const f = handlerFixture({ maxSamplesPerSecond: 1 }); // a bucket of 10 samples
    const { conn, peer } = f.open({ protocols: ['promstream.v1'] }, 'promstream.v1');
    f.handler.onMessage(conn, encodeHello({ app: 'student' }, null), true);
    const w = welcomeOf(peer);
    expect(w.limits.maxFramesPerSecond).toBeNull();
    f.handler.onMessage(conn, encodeDelta(1, w.catalog.version, Array.from({ length: 15 }, () => [0, 0, 1]), new Map()), true);
    expect(peer.sent.at(-1)).toEqual(new Uint8Array([0x92, 0x02, 0x01]));
  });

  it('tells a v2 client its frame rate and what the sample rate dropped', () => {
    const f = handlerFixture({ maxSamplesPerSecond: 1, maxFramesPerSecond: 7 });
    const { conn, peer, welcome } = welcomed(f);
    expect(welcome.limits.maxFramesPerSecond).toBe(7);
    f.handler.onMessage(conn, encodeDelta(1, welcome.catalog.version, Array.from({ length: 15 }, () => [0, 0, 1]), new Map()), true);
    expect(messagesOf(peer).at(-1)).toEqual({ type: ServerMessageType.ACK, lastAppliedSeq: 1, rateLimitedSamples: 5 });
    expect(f.whitelist.current.store.metrics[0]!.values[0]).toBe(10);
  });
});

describe('ConnectionHandler: closes it did not send', () => {
  it("counts the client's own close codes by code, not as other (review defect 3)", async () => {
    const f = handlerFixture();
    for (const code of [CloseCode.CLIENT_ACK_TIMEOUT, CloseCode.CLIENT_ACK_TIMEOUT, CloseCode.CLIENT_WELCOME_TIMEOUT, 3999]) f.gone(welcomed(f).conn, code);
    expect(await f.metric('promstream_closes_total', { code: '4100' })).toBe(2);
    expect(await f.metric('promstream_closes_total', { code: '4101' })).toBe(1);
    expect(await f.metric('promstream_closes_total', { code: 'other' })).toBe(1);
  });

  it('a close by the transport itself counts as the server’s, with its reason', async () => {
    const f = handlerFixture();
    const { conn } = welcomed(f);
    f.gone(conn, 1006, CloseReasons.sendQueueFull);
    expect(await f.metric('promstream_protocol_errors_total', { reason: 'send_queue_full' })).toBe(1);
    expect(await f.metric('promstream_closes_total', { code: '1008' })).toBe(1);
    expect(await f.metric('connected_clients', { app: 'student' })).toBe(0);
    expect(f.handler.sessions.resumable).toBe(1);
  });

  it('a socket the server closed stays counted until the transport says it is gone', () => {
    const f = handlerFixture();
    const { conn, peer } = welcomed(f);
    f.handler.onMessage(conn, encodeGoodbye(), true);
    expect(peer.closed).toEqual(closedWith(CloseReasons.goodbye));
    expect(f.handler.live.size).toBe(1);
    expect(f.handler.admission.openSockets).toBe(1);
    f.gone(conn, 1000);
    expect(f.handler.live.size).toBe(0);
    expect(f.handler.admission.openSockets).toBe(0);
  });
});

describe('ConnectionHandler: the session table', () => {
  it('counts sessions evicted by --max-sessions apart from expiries (review defect 5)', async () => {
    const f = handlerFixture({ maxSessions: 1 });
    const first = welcomed(f);
    f.gone(first.conn, 1006);
    expect(f.handler.sessions.resumable).toBe(1);
    f.advance(EVICTION_GRACE_MS);
    welcomed(f);
    expect(f.handler.sessions.size).toBe(1);
    expect(await f.metric('promstream_sessions_evicted_total')).toBe(1);
    expect(await f.metric('promstream_sessions_expired_total')).toBe(0);
    // and an expiry is an expiry
    const g = handlerFixture({ sessionTtlMs: 1000 });
    g.gone(welcomed(g).conn, 1006);
    g.advance(1000);
    g.handler.sweep();
    expect(await g.metric('promstream_sessions_expired_total')).toBe(1);
    expect(await g.metric('promstream_sessions_evicted_total')).toBe(0);
  });

  it('never evicts a session detached less than the eviction grace ago: its lost ack stays a resume (hostile item 3)', () => {
    const f = handlerFixture({ maxSessions: 2 });
    const victim = welcomed(f, { app: 'student' }, null, 'victim');
    f.handler.onMessage(victim.conn, encodeDelta(1, victim.welcome.catalog.version, [[0, 0, 1]], new Map()), true);
    f.gone(victim.conn, 1006); // the ack may never have arrived
    f.gone(welcomed(f, { app: 'student' }, null, 'attacker').conn, 1006);
    f.advance(EVICTION_GRACE_MS - 1);
    const refused = f.open({ remoteAddress: 'attacker' });
    f.handler.onMessage(refused.conn, encodeHello({ app: 'student' }, null), true);
    expect(refused.peer.closed).toEqual(closedWith(CloseReasons.sessionTableFull));
    const resumed = welcomed(f, { app: 'student' }, victim.welcome, 'victim');
    expect(resumed.welcome).toMatchObject({ resumed: true, lastAppliedSeq: 1 });
  });

  it('one address evicts at most its budget of sessions (10, then one a second), however old they are', () => {
    const f = handlerFixture({ maxSessions: 20 });
    for (let i = 0; i < 20; i++) f.gone(welcomed(f, { app: 'student' }, null, `victim-${i}`).conn, 1006);
    f.advance(EVICTION_GRACE_MS);
    const outcomes: (number | null)[] = [];
    for (let i = 0; i < 12; i++) {
      const { conn, peer } = f.open({ remoteAddress: 'attacker' });
      f.handler.onMessage(conn, encodeHello({ app: 'student' }, null), true);
      outcomes.push(peer.closed?.code ?? null);
      f.gone(conn, 1006);
    }
    expect(outcomes).toEqual([...Array<null>(10).fill(null), 1013, 1013]);
    f.advance(1000);
    const again = f.open({ remoteAddress: 'attacker' });
    f.handler.onMessage(again.conn, encodeHello({ app: 'student' }, null), true);
    expect(again.peer.closed).toBeNull();
    // another address has its own budget
    const other = f.open({ remoteAddress: 'elsewhere' });
    f.handler.onMessage(other.conn, encodeHello({ app: 'student' }, null), true);
    expect(other.peer.closed).toBeNull();
  });

  it('refuses a new session with 1013 when every session is connected', () => {
    const f = handlerFixture({ maxSessions: 1 });
    welcomed(f);
    const { conn, peer } = f.open();
    f.handler.onMessage(conn, encodeHello({ app: 'student' }, null), true);
    expect(peer.closed).toEqual(closedWith(CloseReasons.sessionTableFull));
  });
});
