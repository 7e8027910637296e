import type { SocketBudget } from '../transport/types.js';

/**
 * Open sockets, counted for --max-connections and --max-connections-per-ip: in one event loop plainly,
 * with workers in shared memory so that the limits apply to the host.
 */
export interface ConnectionCounts {
  /** Counts a socket that opened; returns the host's open sockets and (when `perAddress`) those from its address, itself included. */
  add(address: string, perAddress: boolean): { readonly total: number; readonly fromAddress: number };
  /** The socket add() counted is gone. */
  remove(address: string, perAddress: boolean): void;
  readonly total: number;
  fromAddress(address: string): number;
}

export class LocalConnectionCounts implements ConnectionCounts {
  private open = 0;
  private readonly perAddress = new Map<string, number>();

  get total(): number {
    return this.open;
  }

  fromAddress(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }

  add(address: string, perAddress: boolean): { total: number; fromAddress: number } {
    this.open++;
    let fromAddress = 0;
    if (perAddress) {
      fromAddress = (this.perAddress.get(address) ?? 0) + 1;
      this.perAddress.set(address, fromAddress);
    }
    return { total: this.open, fromAddress };
  }

  remove(address: string, perAddress: boolean): void {
    this.open--;
    if (!perAddress) return;
    const n = (this.perAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(address);
    else this.perAddress.set(address, n);
  }
}

const HEADER_INTS = 16;
/** Int32s per address entry: two halves of a 64-bit hash of the address, and the count. */
const ENTRY_INTS = 4;
const MAX_PROBES = 256;

/** 64 bits of FNV-1a of the address, as two non-zero-together halves. */
function hashOf(address: string): [number, number] {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
  }
  return h1 === 0 && h2 === 0 ? [1, 0] : [h1 | 0, h2 | 0];
}

/**
 * The host's counts in shared memory. The total is one word every worker changes atomically, so
 * --max-connections is exact. Per address, every worker keeps a table of its own (one writer, no
 * locks) and reads everyone's when a socket arrives: two sockets from one address arriving at the same
 * instant on two workers may both pass the last free place (at most one per worker over the limit);
 * addresses are told apart by a 64-bit hash. When a worker dies the main thread clears its table and
 * takes its sockets out of the total (forgetWorker).
 */
export class SharedConnectionCounts implements ConnectionCounts {
  private readonly i32: Int32Array;
  private readonly tableEntries: number;

  static bytesFor(workers: number, maxConnections: number): number {
    return (HEADER_INTS + workers * SharedConnectionCounts.entriesFor(maxConnections) * ENTRY_INTS) * 4;
  }

  private static entriesFor(maxConnections: number): number {
    let n = 1024;
    while (n < 2 * Math.min(maxConnections, 1 << 20)) n *= 2;
    return n;
  }

  constructor(
    buffer: SharedArrayBuffer,
    private readonly workers: number,
    private readonly worker: number,
    maxConnections: number,
  ) {
    this.i32 = new Int32Array(buffer);
    this.tableEntries = SharedConnectionCounts.entriesFor(maxConnections);
  }

  get total(): number {
    return Atomics.load(this.i32, 0);
  }

  private tableAt(worker: number): number {
    return HEADER_INTS + worker * this.tableEntries * ENTRY_INTS;
  }

  /** Where `hash` sits in a worker's table (-1: not there). */
  private find(worker: number, [h1, h2]: [number, number]): number {
    const base = this.tableAt(worker);
    const mask = this.tableEntries - 1;
    for (let p = 0, e = h1 & mask; p < MAX_PROBES; p++, e = (e + 1) & mask) {
      const at = base + e * ENTRY_INTS;
      const k1 = Atomics.load(this.i32, at);
      const k2 = Atomics.load(this.i32, at + 1);
      if (k1 === h1 && k2 === h2) return at;
      if (k1 === 0 && k2 === 0) return -1;
    }
    return -1;
  }

  fromAddress(address: string): number {
    const hash = hashOf(address);
    let n = 0;
    for (let w = 0; w < this.workers; w++) {
      const at = this.find(w, hash);
      if (at >= 0) n += Atomics.load(this.i32, at + 2);
    }
    return n;
  }

  add(address: string, perAddress: boolean): { total: number; fromAddress: number } {
    const total = Atomics.add(this.i32, 0, 1) + 1;
    if (!perAddress) return { total, fromAddress: 0 };
    const hash = hashOf(address);
    let at = this.find(this.worker, hash);
    if (at < 0) at = this.insert(hash);
    if (at >= 0) Atomics.add(this.i32, at + 2, 1);
    return { total, fromAddress: this.fromAddress(address) };
  }

  /** A place in this worker's table for a new address: an unused entry (count 0) on its probe path, else an empty one. */
  private insert([h1, h2]: [number, number]): number {
    const base = this.tableAt(this.worker);
    const mask = this.tableEntries - 1;
    for (let p = 0, e = h1 & mask; p < MAX_PROBES; p++, e = (e + 1) & mask) {
      const at = base + e * ENTRY_INTS;
      if (Atomics.load(this.i32, at + 2) !== 0) continue;
      // Readers look for the key and read its count: setting the key of a count-0 entry is safe.
      Atomics.store(this.i32, at, h1);
      Atomics.store(this.i32, at + 1, h2);
      return at;
    }
    return -1; // a table full of live addresses on this path: the socket is counted in the total only
  }

  remove(address: string, perAddress: boolean): void {
    Atomics.sub(this.i32, 0, 1);
    if (!perAddress) return;
    const at = this.find(this.worker, hashOf(address));
    if (at >= 0 && Atomics.load(this.i32, at + 2) > 0) Atomics.sub(this.i32, at + 2, 1);
  }

  /** Worker `worker` is gone with `openSockets` still counted: they leave the total, its table is cleared. */
  forgetWorker(worker: number, openSockets: number): void {
    Atomics.sub(this.i32, 0, openSockets);
    const base = this.tableAt(worker);
    for (let i = base; i < base + this.tableEntries * ENTRY_INTS; i++) Atomics.store(this.i32, i, 0);
  }
}

export class LocalSocketBudget implements SocketBudget {
  private open = 0;

  constructor(private readonly max: number) {}

  take(): boolean {
    if (this.open >= this.max) return false;
    this.open++;
    return true;
  }

  give(): void {
    this.open--;
  }
}

/**
 * The host's socket budget in shared memory: one total every worker changes atomically (so the cap is
 * exact), and each worker's own count, so that a worker that dies can be taken out of the total.
 */
export class SharedSocketBudget implements SocketBudget {
  private readonly i32: Int32Array;

  static bytesFor(workers: number): number {
    return (1 + workers) * 4;
  }

  constructor(
    buffer: SharedArrayBuffer,
    private readonly worker: number,
    private readonly max: number,
  ) {
    this.i32 = new Int32Array(buffer);
  }

  get total(): number {
    return Atomics.load(this.i32, 0);
  }

  take(): boolean {
    if (Atomics.add(this.i32, 0, 1) >= this.max) {
      Atomics.sub(this.i32, 0, 1);
      return false;
    }
    Atomics.add(this.i32, 1 + this.worker, 1);
    return true;
  }

  give(): void {
    Atomics.sub(this.i32, 1 + this.worker, 1);
    Atomics.sub(this.i32, 0, 1);
  }

  /** Worker `worker` is gone: the sockets it still counted leave the total. */
  forgetWorker(worker: number): void {
    Atomics.sub(this.i32, 0, Atomics.exchange(this.i32, 1 + worker, 0));
  }
}
