import { describe, expect, it } from 'vitest';
import { CloseReasons, encodeHello } from '../../protocol/index.js';
import { handlerFixture } from './handler.fixture.js';
import { CLOSE_GRACE_MS, sweepIntervalMs } from './liveness.js';

describe('liveness sweep', () => {
  it('closes a connection without hello at the handshake timeout (4004)', () => {
    const f = handlerFixture({ handshakeTimeoutMs: 500 });
    const { peer } = f.open();
    f.advance(499);
    f.handler.sweep();
    expect(peer.closed).toBeNull();
    f.advance(1);
    f.handler.sweep();
    expect(peer.closed?.code).toBe(CloseReasons.handshakeTimeout.code);
  });

  it('pings a connection silent for half the idle timeout, once, and drops it at the full timeout', () => {
    const f = handlerFixture({ idleTimeoutMs: 1000 });
    const { conn, peer } = f.open();
    f.handler.onMessage(conn, encodeHello({ app: 'student' }, null), true);
    f.advance(499);
    f.handler.sweep();
    expect(peer.pings).toBe(0);
    f.advance(1);
    f.handler.sweep();
    f.handler.sweep();
    expect(peer.pings).toBe(1);
    f.handler.onPong(conn);
    f.advance(999);
    f.handler.sweep();
    expect(peer.closed).toBeNull();
    expect(peer.pings).toBe(2);
    f.advance(1);
    f.handler.sweep();
    expect(peer.closed?.code).toBe(CloseReasons.idleTimeout.code);
    expect(peer.terminated).toBe(true);
  });

  it('drops a socket the server closed once it has had CLOSE_GRACE_MS to go', () => {
    const f = handlerFixture();
    const { conn, peer } = f.open({}, 'promstream.v9');
    expect(peer.closed?.code).toBe(4000);
    f.advance(CLOSE_GRACE_MS - 1);
    f.handler.sweep();
    expect(peer.terminated).toBe(false);
    f.advance(1);
    f.handler.sweep();
    expect(peer.terminated).toBe(true);
    expect(conn.phase).toBe('closing');
  });

  it('sweeps at a quarter of the shorter deadline, between 50 ms and 1 s', () => {
    expect(sweepIntervalMs({ idleTimeoutMs: 30_000, handshakeTimeoutMs: 10_000 })).toBe(1000);
    expect(sweepIntervalMs({ idleTimeoutMs: 1000, handshakeTimeoutMs: 10_000 })).toBe(250);
    expect(sweepIntervalMs({ idleTimeoutMs: 1000, handshakeTimeoutMs: 100 })).toBe(50);
  });
});
