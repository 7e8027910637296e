import { describe, expect, it } from 'vitest';
import { SessionTable, type Session } from './session-table.js';
import { TokenBucket } from './token-bucket.js';

const bucket = (): TokenBucket => new TokenBucket(1, 1, 0);

type Conn = { readonly name: string };
const conn = (name: string): Conn => ({ name });
const ids = (sessions: readonly Session<Conn>[]): string[] => sessions.map((s) => s.id);

describe('SessionTable', () => {
  it('creates attached sessions with fresh ids and tokens, seq 0 and no gauges', () => {
    const t = new SessionTable<Conn>();
    const c = conn('c1');
    const a = t.create({ app: 'student' }, c, bucket());
    const b = t.create({ app: 'teacher' }, conn('c2'), bucket());
    expect(a.attachedTo).toBe(c);
    expect(a.lastAppliedSeq).toBe(0);
    expect(a.gauges).toBeNull();
    expect(a.labels).toEqual({ app: 'student' });
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{22}$/); // 16 random bytes, base64url
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(new Set([a.id, a.token, b.id, b.token]).size).toBe(4);
    expect(t.size).toBe(2);
    expect(t.resumable).toBe(0);
  });

  it('finds a session only with its id and exactly its token', () => {
    const t = new SessionTable<Conn>();
    const a = t.create({}, conn('c1'), bucket());
    const b = t.create({}, conn('c2'), bucket());
    expect(t.find(a.id, a.token)).toBe(a);
    expect(t.find(b.id, b.token)).toBe(b);
    expect(t.find(a.id, b.token)).toBeNull(); // wrong token, same length
    expect(t.find(a.id, a.token.slice(0, -1))).toBeNull(); // shorter
    expect(t.find(a.id, `${a.token}x`)).toBeNull(); // longer
    expect(t.find(a.id, '')).toBeNull();
    expect(t.find(a.id, a.token.toUpperCase() === a.token ? a.token.toLowerCase() : a.token.toUpperCase())).toBeNull();
    // same UTF-16 length, different byte length: must not throw
    expect(t.find(a.id, 'é'.repeat(a.token.length))).toBeNull();
    expect(t.find('unknown', a.token)).toBeNull();
    expect(t.find(a.token, a.id)).toBeNull();
  });

  it('detach and attach move a session in and out of the resumable set', () => {
    const t = new SessionTable<Conn>();
    const a = t.create({}, conn('c1'), bucket());
    t.detach(a, 1000);
    expect(a.attachedTo).toBeNull();
    expect(a.detachedAtMs).toBe(1000);
    expect(t.resumable).toBe(1);
    expect(t.find(a.id, a.token)).toBe(a); // still resumable
    const c2 = conn('c2');
    t.attach(a, c2);
    expect(a.attachedTo).toBe(c2);
    expect(t.resumable).toBe(0);
    // an attached session never expires, however old its last detach
    expect(t.expire(1_000_000, 10)).toBe(0);
    expect(t.find(a.id, a.token)).toBe(a);
  });

  it('expires only sessions detached at least ttl ago, oldest detach first', () => {
    const t = new SessionTable<Conn>();
    const [a, b, c] = [t.create({}, conn('a'), bucket()), t.create({}, conn('b'), bucket()), t.create({}, conn('c'), bucket())] as const;
    t.detach(a, 100);
    t.detach(b, 200);
    t.detach(c, 300);
    expect(t.expire(199, 100)).toBe(0); // a detached 99 ms ago
    expect(t.expire(200, 100)).toBe(1); // a exactly ttl ago: gone
    expect(t.find(a.id, a.token)).toBeNull();
    expect(t.find(b.id, b.token)).toBe(b);
    expect(t.resumable).toBe(2);
    expect(t.expire(1000, 100)).toBe(2);
    expect(t.size).toBe(0);
    expect(t.resumable).toBe(0);
  });

  it('a re-detach moves the session to the back of the expiry order', () => {
    const t = new SessionTable<Conn>();
    const a = t.create({}, conn('a'), bucket());
    const b = t.create({}, conn('b'), bucket());
    const c = t.create({}, conn('c'), bucket());
    t.detach(a, 100);
    t.detach(b, 150);
    t.attach(a, conn('a2'));
    t.detach(a, 400); // a again, now last
    t.detach(c, 500);
    // b is first in line; a (400) is not due, so c (500) behind it is not looked at either
    expect(t.expire(460, 100)).toBe(1);
    expect(t.find(b.id, b.token)).toBeNull();
    expect(ids([a, c].filter((s) => t.find(s.id, s.token) !== null))).toEqual(ids([a, c]));
    expect(t.expire(500, 100)).toBe(1);
    expect(t.find(a.id, a.token)).toBeNull();
    expect(t.find(c.id, c.token)).toBe(c);
    expect(t.expire(600, 100)).toBe(1);
    expect(t.size).toBe(0);
  });

  it('detaching an already detached session restarts its ttl', () => {
    const t = new SessionTable<Conn>();
    const a = t.create({}, conn('a'), bucket());
    const b = t.create({}, conn('b'), bucket());
    t.detach(a, 0);
    t.detach(b, 50);
    t.detach(a, 100);
    expect(t.resumable).toBe(2);
    expect(t.expire(149, 100)).toBe(0);
    expect(t.expire(150, 100)).toBe(1); // b (50) is due; a was re-detached at 100
    expect(t.find(a.id, a.token)).toBe(a);
    expect(t.find(b.id, b.token)).toBeNull();
  });

  it('end removes a session, attached or detached, at once', () => {
    const t = new SessionTable<Conn>();
    const a = t.create({}, conn('a'), bucket());
    const b = t.create({}, conn('b'), bucket());
    t.detach(b, 0);
    t.end(a);
    t.end(b);
    expect(t.find(a.id, a.token)).toBeNull();
    expect(t.find(b.id, b.token)).toBeNull();
    expect(t.size).toBe(0);
    expect(t.resumable).toBe(0);
    expect(t.expire(1e9, 1)).toBe(0);
    t.end(a); // ending twice is harmless
    expect(t.size).toBe(0);
  });
});
