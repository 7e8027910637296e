import { inspect } from 'node:util';

export interface WaitForOptions {
  /** What is being waited for, in words; it leads the timeout error ("timed out waiting for <what>"). */
  what: string;
  /** Give up after this many milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Pause between two probes in milliseconds (default 20). */
  intervalMs?: number;
}

const NOT_YET = Symbol('not yet');

/**
 * Polls `probe` until it returns (or resolves to) a truthy value and returns that value.
 *
 * This is the polling primitive of the test suite: tests wait for a condition with a deadline, never
 * for a fixed time. A probe that throws or rejects counts as "not yet" (a server that is still starting
 * refuses connections); the timeout error names `what` and the last value or error seen, so a failing
 * end-to-end test says what it was looking at rather than just "timeout".
 *
 * A probe that hangs (a fetch through a frozen proxy) is abandoned at the deadline instead of holding
 * the test until vitest's own timeout.
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitForOptions): Promise<NonNullable<T>> {
  const { what, timeoutMs = 10_000, intervalMs = 20 } = options;
  const deadline = Date.now() + timeoutMs;
  let last: { kind: 'none' } | { kind: 'value'; value: unknown } | { kind: 'error'; error: unknown } = { kind: 'none' };
  let attempts = 0;
  let lastProbeHung = false;

  for (;;) {
    attempts += 1;
    try {
      const value = await beforeDeadline(Promise.resolve().then(probe), deadline);
      if (value === NOT_YET) {
        lastProbeHung = true;
        break;
      }
      if (value) return value as NonNullable<T>; // truthy, hence neither null nor undefined
      last = { kind: 'value', value };
    } catch (error) {
      last = { kind: 'error', error };
    }
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) break;
    await delay(Math.min(intervalMs, remainingMs));
  }

  const seen = [
    last.kind === 'none'
      ? 'the probe never answered'
      : last.kind === 'value'
        ? `last value: ${inspect(last.value, { depth: 4, breakLength: Infinity })}`
        : `last error: ${last.error instanceof Error ? last.error.message : inspect(last.error)}`,
    ...(lastProbeHung && last.kind !== 'none' ? ['the last probe was still pending at the deadline'] : []),
  ].join('; ');
  throw new Error(`timed out after ${timeoutMs} ms (${attempts} probes) waiting for ${what}; ${seen}`, {
    cause: last.kind === 'error' ? last.error : undefined,
  });
}

/** `call`'s result, or an error naming `what` once `timeoutMs` passes first: for calls with no timeout of their own. */
export async function answerWithin<T>(what: string, call: Promise<T>, timeoutMs: number): Promise<T> {
  const result = await beforeDeadline(call, Date.now() + timeoutMs);
  if (result === NOT_YET) throw new Error(`${what}: no answer in ${timeoutMs} ms`);
  return result;
}

/** Resolves with the probe's result, or with NOT_YET once the deadline passes first. */
function beforeDeadline<T>(result: Promise<T>, deadline: number): Promise<T | typeof NOT_YET> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof NOT_YET>((resolve) => {
    timer = setTimeout(() => resolve(NOT_YET), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([result, expired]).finally(() => clearTimeout(timer));
}

/** The pause between probes; private so that tests cannot reach for a sleep. */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
