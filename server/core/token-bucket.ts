/**
 * A token bucket on a caller-supplied clock: `rate` tokens per second, holding at most `capacity`.
 * Two numbers per bucket, so one per connection and one per session cost nothing to keep.
 */
export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly capacity: number,
    nowMs: number,
    /** Where a saved bucket left off (a session resumed, maybe on another worker); full when absent. */
    saved?: { readonly tokens: number; readonly atMs: number },
  ) {
    this.tokens = saved?.tokens ?? capacity;
    this.lastMs = saved?.atMs ?? nowMs;
  }

  /** What to save to restore the bucket later. */
  get state(): { readonly tokens: number; readonly atMs: number } {
    return { tokens: this.tokens, atMs: this.lastMs };
  }

  /** Takes n tokens if there are that many; false (and takes none) otherwise. */
  take(nowMs: number, n = 1): boolean {
    this.refill(nowMs);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Takes as many of n tokens as there are; returns how many it took. */
  takeUpTo(nowMs: number, n: number): number {
    this.refill(nowMs);
    const got = Math.min(n, Math.floor(this.tokens));
    this.tokens -= got;
    return got;
  }

  /** Gives back one token taken for something that then did not happen. */
  refund(nowMs: number): void {
    this.refill(nowMs);
    this.tokens = Math.min(this.capacity, this.tokens + 1);
  }

  private refill(nowMs: number): void {
    const elapsedMs = nowMs - this.lastMs;
    if (elapsedMs > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + (elapsedMs * this.ratePerSecond) / 1000);
      this.lastMs = nowMs;
    }
  }
}
