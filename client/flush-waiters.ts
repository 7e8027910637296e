import { ClientErrorCode, PromstreamClientError } from './errors.js';

interface Waiter {
  /** The record serial that must be acknowledged. */
  readonly target: number;
  resolve(): void;
  reject(err: Error): void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/**
 * The promises of flush(): each waits for the acknowledgement of everything recorded before it (a
 * record serial), across reconnects, bounded by a timeout. Acks are cumulative, so settling is "every
 * waiter whose target is covered".
 */
export class FlushWaiters {
  #waiters: Waiter[] = [];

  readonly #timeoutMs: number;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  get size(): number {
    return this.#waiters.length;
  }

  /** Resolves once settle() is called with a serial ≥ target; rejects with PROMSTREAM_FLUSH_TIMEOUT after the timeout. */
  wait(target: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        target,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          reject(new PromstreamClientError(ClientErrorCode.FLUSH_TIMEOUT, `promstream flush not acknowledged within ${this.#timeoutMs} ms`));
        }, this.#timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Resolves every waiter whose target is covered by `ackedSerial`. */
  settle(ackedSerial: number): void {
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) {
      if (w.target <= ackedSerial) {
        clearTimeout(w.timer);
        w.resolve();
      } else still.push(w);
    }
    this.#waiters = still;
  }

  rejectAll(err: Error): void {
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }
}
