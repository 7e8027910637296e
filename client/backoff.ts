/** Reconnect delays: exponential with full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"). */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 250, capMs: 30_000 });

/** Delay before reconnect attempt `attempt` (0-based): uniform in [0, min(cap, base·2^attempt)). */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
