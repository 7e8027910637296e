import { randomFillSync, timingSafeEqual } from 'node:crypto';

/**
 * Every session of the host, in one table of fixed slots in shared memory, so that a session can be
 * resumed on whichever worker its reconnect lands on, and two workers can never both apply its next
 * frame.
 *
 * A slot's state is one 32-bit word, `generation << 8 | owner`: owner 0 is a free slot, 255 a session
 * that waits for a resume (detached), k + 1 a session attached to a connection on worker k. Whoever
 * changes the owner does it with one compare-and-swap of the whole word, so between reading "detached"
 * and taking the session there is no window for another worker: of two workers resuming the same
 * session, exactly one swap succeeds (test: slot-table.race.test.ts). Only the owner writes the slot's
 * other fields (its last applied seq, its budgets); it writes them before it gives the slot up, and the
 * next owner reads them after its swap, through the same word (Atomics orders them). The generation
 * grows every time a slot is freed, so an old session id can never name the session that took its slot.
 *
 * A session id names its slot and generation (8 bytes, base64url); its token is 16 random bytes kept in
 * the slot and compared in constant time. Ids are opaque to clients (PROTOCOL.md).
 */

export const OWNER_FREE = 0;
export const OWNER_DETACHED = 255;
/** The largest number of workers an owner byte can name (1 … 254). */
export const MAX_WORKERS = 254;

/** Bytes per slot: two cache lines, so that two workers' sessions never share one. */
const SLOT_BYTES = 128;
const HEADER_BYTES = 128;
const TOKEN_BYTES = 16;
// Int32 fields of a slot (index within the slot's Int32 view)
const STATE = 0;
const LABELS = 1;
// Float64 fields of a slot
const SEQ = 1;
const DETACHED_AT = 2;
const SAMPLE_TOKENS = 3;
const SAMPLE_AT = 4;
const DROP_TOKENS = 5;
const DROP_AT = 6;
// takeFrom() reads a bucket as tokens, then its clock in the next field.
const TOKEN_AT = 56;
// Int32 header fields
const USED = 0;
const DETACHED = 1;
const HIGH_WATER = 2;

const GEN_MASK = 0x7f_ffff;
const word = (gen: number, owner: number): number => ((gen & GEN_MASK) << 8) | owner;
const ownerOf = (state: number): number => state & 0xff;
const genOf = (state: number): number => (state >>> 8) & GEN_MASK;

/** A token bucket's state as it is kept in a slot: tokens and the time they were counted at. */
export interface BucketState {
  readonly tokens: number;
  readonly atMs: number;
}

/** What acquire() found: the session is now the caller's, was already, is gone, or belongs to a live worker. */
export type Acquired = { readonly kind: 'taken' } | { readonly kind: 'mine' } | { readonly kind: 'gone' } | { readonly kind: 'owned'; readonly worker: number };

export class SlotTable {
  readonly capacity: number;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly bytes: Uint8Array;
  private cursor: number;

  /** Bytes of shared memory a table of `capacity` slots needs. */
  static bytesFor(capacity: number): number {
    return HEADER_BYTES + capacity * SLOT_BYTES;
  }

  /** `buffer` from bytesFor(capacity), zeroed (every slot free); every worker wraps the same one. */
  constructor(readonly buffer: SharedArrayBuffer, worker: number) {
    this.capacity = Math.floor((buffer.byteLength - HEADER_BYTES) / SLOT_BYTES);
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.bytes = new Uint8Array(buffer);
    // Each worker starts looking for free slots in a part of its own, so that allocations rarely race.
    this.cursor = Math.floor((this.capacity * worker) / MAX_WORKERS) % Math.max(1, this.capacity);
  }

  /** Sessions held (attached or detached). */
  get used(): number {
    return Atomics.load(this.i32, USED);
  }

  /** Sessions waiting for a resume. */
  get detached(): number {
    return Atomics.load(this.i32, DETACHED);
  }

  private i(slot: number): number {
    return (HEADER_BYTES + slot * SLOT_BYTES) >> 2;
  }

  private f(slot: number): number {
    return (HEADER_BYTES + slot * SLOT_BYTES) >> 3;
  }

  state(slot: number): number {
    return Atomics.load(this.i32, this.i(slot) + STATE);
  }

  /**
   * A new session owned by `owner` (1 … 254): its slot, or -1 when the table is full. The slot's seq
   * starts at 0 and its token is fresh.
   */
  allocate(owner: number, labels: number, sample: BucketState): number {
    if (Atomics.add(this.i32, USED, 1) >= this.capacity) {
      Atomics.sub(this.i32, USED, 1);
      return -1;
    }
    // `used` was below capacity, so a free slot exists (or is about to: one being freed right now).
    for (let tries = 0; tries < 2 * this.capacity + 2; tries++) {
      const slot = this.cursor;
      this.cursor = slot + 1 === this.capacity ? 0 : slot + 1;
      const at = this.i(slot) + STATE;
      const s = Atomics.load(this.i32, at);
      if (ownerOf(s) !== OWNER_FREE) continue;
      if (Atomics.compareExchange(this.i32, at, s, word(genOf(s), owner)) !== s) continue;
      const f = this.f(slot);
      this.i32[this.i(slot) + LABELS] = labels;
      this.f64[f + SEQ] = 0;
      this.f64[f + DETACHED_AT] = 0;
      this.f64[f + SAMPLE_TOKENS] = sample.tokens;
      this.f64[f + SAMPLE_AT] = sample.atMs;
      this.f64[f + DROP_TOKENS] = Number.NaN;
      this.f64[f + DROP_AT] = 0;
      randomFillSync(this.bytes, HEADER_BYTES + slot * SLOT_BYTES + TOKEN_AT, TOKEN_BYTES);
      for (let hw = Atomics.load(this.i32, HIGH_WATER); hw < slot + 1; hw = Atomics.load(this.i32, HIGH_WATER)) {
        if (Atomics.compareExchange(this.i32, HIGH_WATER, hw, slot + 1) === hw) break;
      }
      return slot;
    }
    Atomics.sub(this.i32, USED, 1);
    return -1;
  }

  /** The session id of the session in `slot` now. */
  idOf(slot: number): string {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(slot, 0);
    b.writeUInt32BE(genOf(this.state(slot)), 4);
    return b.toString('base64url');
  }

  tokenOf(slot: number): string {
    const at = HEADER_BYTES + slot * SLOT_BYTES + TOKEN_AT;
    return Buffer.from(this.bytes.subarray(at, at + TOKEN_BYTES)).toString('base64url');
  }

  /** The slot and generation an id names, or null when it names none of this table's. */
  parseId(id: string): { readonly slot: number; readonly gen: number } | null {
    if (id.length !== 11) return null;
    const b = Buffer.from(id, 'base64url');
    if (b.length !== 8 || b.toString('base64url') !== id) return null;
    const slot = b.readUInt32BE(0);
    const gen = b.readUInt32BE(4);
    return slot < this.capacity && gen <= GEN_MASK ? { slot, gen } : null;
  }

  /** Whether `token` is the slot's token; constant time in the token's content. */
  tokenMatches(slot: number, token: string): boolean {
    const given = Buffer.from(token, 'base64url');
    if (given.length !== TOKEN_BYTES) return false;
    const at = HEADER_BYTES + slot * SLOT_BYTES + TOKEN_AT;
    return timingSafeEqual(given, this.bytes.subarray(at, at + TOKEN_BYTES));
  }

  labelsOf(slot: number): number {
    return this.i32[this.i(slot) + LABELS]!;
  }

  /**
   * Takes the session of generation `gen` in `slot` for `owner`, if it waits for a resume. 'mine': the
   * caller owns it already; 'owned': a live worker does (ask it to release); 'gone': ended or expired.
   */
  acquire(slot: number, gen: number, owner: number): Acquired {
    const at = this.i(slot) + STATE;
    for (;;) {
      const s = Atomics.load(this.i32, at);
      const o = ownerOf(s);
      if (genOf(s) !== gen || o === OWNER_FREE) return { kind: 'gone' };
      if (o === owner) return { kind: 'mine' };
      if (o !== OWNER_DETACHED) return { kind: 'owned', worker: o - 1 };
      if (Atomics.compareExchange(this.i32, at, s, word(gen, owner)) === s) {
        Atomics.sub(this.i32, DETACHED, 1);
        return { kind: 'taken' };
      }
    }
  }

  /** The owner gives the session up for a resume (its connection went), from `nowMs` on. */
  release(slot: number, owner: number, nowMs: number): void {
    const at = this.i(slot) + STATE;
    const s = Atomics.load(this.i32, at);
    if (ownerOf(s) !== owner) return;
    this.f64[this.f(slot) + DETACHED_AT] = nowMs;
    if (Atomics.compareExchange(this.i32, at, s, word(genOf(s), OWNER_DETACHED)) === s) Atomics.add(this.i32, DETACHED, 1);
  }

  /** The owner ends the session (goodbye): the slot is free, under a new generation. */
  end(slot: number, owner: number): void {
    const at = this.i(slot) + STATE;
    const s = Atomics.load(this.i32, at);
    if (ownerOf(s) !== owner) return;
    if (Atomics.compareExchange(this.i32, at, s, word(genOf(s) + 1, OWNER_FREE)) === s) Atomics.sub(this.i32, USED, 1);
  }

  /** Frees a detached slot (expiry, eviction); false when someone took or freed it first. */
  private freeDetached(slot: number, s: number): boolean {
    if (Atomics.compareExchange(this.i32, this.i(slot) + STATE, s, word(genOf(s) + 1, OWNER_FREE)) !== s) return false;
    Atomics.sub(this.i32, DETACHED, 1);
    Atomics.sub(this.i32, USED, 1);
    return true;
  }

  /** Frees every session detached at or before `detachedByMs`; returns how many. */
  expire(detachedByMs: number): number {
    let n = 0;
    const end = Atomics.load(this.i32, HIGH_WATER);
    for (let slot = 0; slot < end; slot++) {
      const s = this.state(slot);
      if (ownerOf(s) === OWNER_DETACHED && this.f64[this.f(slot) + DETACHED_AT]! <= detachedByMs && this.freeDetached(slot, s)) n++;
    }
    return n;
  }

  /** Frees the session that has waited longest for a resume, if it was detached at or before `detachedByMs`. */
  evictOldestDetached(detachedByMs: number): boolean {
    for (let attempt = 0; attempt < 8; attempt++) {
      let oldest = -1;
      let oldestAt = Infinity;
      let oldestState = 0;
      const end = Atomics.load(this.i32, HIGH_WATER);
      for (let slot = 0; slot < end; slot++) {
        const s = this.state(slot);
        if (ownerOf(s) !== OWNER_DETACHED) continue;
        const t = this.f64[this.f(slot) + DETACHED_AT]!;
        if (t < oldestAt) {
          oldest = slot;
          oldestAt = t;
          oldestState = s;
        }
      }
      if (oldest < 0 || oldestAt > detachedByMs) return false;
      if (this.freeDetached(oldest, oldestState)) return true;
    }
    return false;
  }

  /** After worker `worker` is gone: every session it owned waits for a resume from `nowMs`. Returns how many. */
  reclaim(worker: number, nowMs: number): number {
    let n = 0;
    const owner = worker + 1;
    const end = Atomics.load(this.i32, HIGH_WATER);
    for (let slot = 0; slot < end; slot++) {
      const s = this.state(slot);
      if (ownerOf(s) !== owner) continue;
      this.f64[this.f(slot) + DETACHED_AT] = nowMs;
      if (Atomics.compareExchange(this.i32, this.i(slot) + STATE, s, word(genOf(s), OWNER_DETACHED)) === s) {
        Atomics.add(this.i32, DETACHED, 1);
        n++;
      }
    }
    return n;
  }

  seqOf(slot: number): number {
    return this.f64[this.f(slot) + SEQ]!;
  }

  /** The owner records the last seq it applied (before it acknowledges it). */
  setSeq(slot: number, seq: number): void {
    this.f64[this.f(slot) + SEQ] = seq;
  }

  sampleBucket(slot: number): BucketState {
    const f = this.f(slot);
    return { tokens: this.f64[f + SAMPLE_TOKENS]!, atMs: this.f64[f + SAMPLE_AT]! };
  }

  /** null until the session first reported drops. */
  dropBucket(slot: number): BucketState | null {
    const f = this.f(slot);
    const tokens = this.f64[f + DROP_TOKENS]!;
    return Number.isNaN(tokens) ? null : { tokens, atMs: this.f64[f + DROP_AT]! };
  }

  /**
   * The owner takes as many of `n` tokens as the session's samples budget holds (`ratePerSecond`,
   * at most `capacity`), in place in the slot: no copy of it lives outside the table, so there is
   * nothing to save when the session is given up.
   */
  takeSamples(slot: number, nowMs: number, n: number, ratePerSecond: number, capacity: number): number {
    return this.takeFrom(this.f(slot) + SAMPLE_TOKENS, nowMs, n, ratePerSecond, capacity);
  }

  /** The same for the budget of reported drops, which starts full the first time the session reports any. */
  takeDrops(slot: number, nowMs: number, n: number, ratePerSecond: number, capacity: number): number {
    const at = this.f(slot) + DROP_TOKENS;
    if (Number.isNaN(this.f64[at])) {
      this.f64[at] = capacity;
      this.f64[at + 1] = nowMs;
    }
    return this.takeFrom(at, nowMs, n, ratePerSecond, capacity);
  }

  /** A token bucket (TokenBucket.takeUpTo) whose tokens are at f64[at] and its clock at f64[at + 1]. */
  private takeFrom(at: number, nowMs: number, n: number, ratePerSecond: number, capacity: number): number {
    const f64 = this.f64;
    let tokens = f64[at]!;
    const elapsedMs = nowMs - f64[at + 1]!;
    if (elapsedMs > 0) {
      tokens = Math.min(capacity, tokens + (elapsedMs * ratePerSecond) / 1000);
      f64[at + 1] = nowMs;
    }
    const got = Math.min(n, Math.floor(tokens));
    f64[at] = tokens - got;
    return got;
  }

  /** Sets the budgets as saved elsewhere (tests; takeSamples/takeDrops keep them in place). */
  saveBuckets(slot: number, sample: BucketState, drop: BucketState | null): void {
    const f = this.f(slot);
    this.f64[f + SAMPLE_TOKENS] = sample.tokens;
    this.f64[f + SAMPLE_AT] = sample.atMs;
    this.f64[f + DROP_TOKENS] = drop === null ? Number.NaN : drop.tokens;
    this.f64[f + DROP_AT] = drop === null ? 0 : drop.atMs;
  }
}
