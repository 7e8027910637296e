import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { GaugeParts } from './series-store.js';
import type { TokenBucket } from './token-bucket.js';

export interface Session<C> {
  readonly id: string;
  readonly token: string;
  /** Session label values in the whitelist's sessionLabels order, as a prom-client label object. */
  readonly labels: Readonly<Record<string, string>>;
  lastAppliedSeq: number;
  /** The live connection's handle, or null while the session waits for a resume. */
  attachedTo: C | null;
  /** Its gauge values; created with its first delta, so an idle session does not carry an empty Map. */
  gauges: GaugeParts | null;
  /** When it was detached (ms, monotonic clock), for expiry. */
  detachedAtMs: number;
  /** Samples-per-second budget, created by the owner of the table. */
  readonly sampleBudget: TokenBucket;
  /** Budget for the drop counts the client reports, made the first time it reports any. */
  dropBudget: TokenBucket | null;
}

const newId = (): string => randomBytes(16).toString('base64url');

/**
 * Sessions by id. Detached sessions sit in a second map in detach order; since every one has the same
 * TTL, expiry only ever looks at the front of that map.
 */
export class SessionTable<C> {
  private readonly byId = new Map<string, Session<C>>();
  private readonly detached = new Map<string, Session<C>>();

  get size(): number {
    return this.byId.size;
  }

  get resumable(): number {
    return this.detached.size;
  }

  create(labels: Readonly<Record<string, string>>, attachTo: C, sampleBudget: TokenBucket): Session<C> {
    const session: Session<C> = { id: newId(), token: newId(), labels, lastAppliedSeq: 0, attachedTo: attachTo, gauges: null, detachedAtMs: 0, sampleBudget, dropBudget: null };
    this.byId.set(session.id, session);
    return session;
  }

  /** The session if the id exists and the token proves it; null otherwise (never says which). */
  find(id: string, token: string): Session<C> | null {
    const session = this.byId.get(id);
    if (session === undefined) return null;
    const a = Buffer.from(session.token);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b) ? session : null;
  }

  attach(session: Session<C>, handle: C): void {
    session.attachedTo = handle;
    this.detached.delete(session.id);
  }

  detach(session: Session<C>, nowMs: number): void {
    session.attachedTo = null;
    session.detachedAtMs = nowMs;
    this.detached.delete(session.id); // re-insert at the back: insertion order is detach order
    this.detached.set(session.id, session);
  }

  end(session: Session<C>): void {
    this.byId.delete(session.id);
    this.detached.delete(session.id);
  }

  /** Whether the session that has waited longest for a resume was detached at or before `detachedByMs`. */
  hasDetachedBy(detachedByMs: number): boolean {
    for (const session of this.detached.values()) return session.detachedAtMs <= detachedByMs;
    return false;
  }

  /**
   * Drops the session that has waited longest for a resume, if it was detached at or before
   * `detachedByMs`; false when there is none that old (every session connected, or detached since).
   */
  evictOldestDetached(detachedByMs = Infinity): boolean {
    for (const session of this.detached.values()) {
      if (session.detachedAtMs > detachedByMs) return false;
      this.end(session);
      return true;
    }
    return false;
  }

  /** Every session, connected or not. */
  all(): IterableIterator<Session<C>> {
    return this.byId.values();
  }

  /** Drops sessions detached for longer than ttlMs; returns how many. */
  expire(nowMs: number, ttlMs: number): number {
    let n = 0;
    for (const session of this.detached.values()) {
      if (nowMs - session.detachedAtMs < ttlMs) break;
      this.end(session);
      n++;
    }
    return n;
  }
}
