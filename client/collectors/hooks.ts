/**
 * Replacing a page function (history.pushState, fetch, XMLHttpRequest.prototype.send) once per page,
 * transparently: the wrapper calls the original with the same `this` and arguments and returns what it
 * returned; our part runs in try/catch around it. A second install (init again, a second copy of the
 * script, a bundled client beside the snippet) finds the wrapper by its mark and shares its slot instead
 * of wrapping twice. A stopped collector empties the slot rather than restoring the original, which
 * would undo whatever the page wrapped after us.
 */
import type { MetricType } from '../../protocol/index.js';

/** What the collectors need of a client: ClientCore.record with `loose` labels (BrowserClient has it). */
export interface CollectorClient {
  record(type: MetricType, name: unknown, labels: unknown, value: unknown, loose?: boolean): void;
}

/** Where the current handler of a wrapper lives; null: none (the wrapper only calls the original). */
export interface Slot<H> {
  on: H | null;
}

/** The mark lives under a registered symbol: every copy of the script finds it. */
const MARK = Symbol.for('promstream.hook');

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- the page's own functions, any shape
type Fn = Function;

/**
 * Wraps `owner[key]` once per page with `make(original, slot)`; returns the slot (the existing one when
 * already wrapped), or null when `owner[key]` is not a function here.
 */
export function hook<H>(owner: object, key: string, make: (original: Fn, slot: Slot<H>) => Fn): Slot<H> | null {
  const current: unknown = Reflect.get(owner, key);
  if (typeof current !== 'function') return null;
  const existing = Reflect.get(current, MARK) as Slot<H> | undefined;
  if (existing !== undefined) return existing;
  const slot: Slot<H> = { on: null };
  const wrapper = make(current, slot);
  Object.defineProperty(wrapper, MARK, { value: slot });
  Reflect.set(owner, key, wrapper);
  return slot;
}

/** Takes a slot for `handler`; false when another client's collector holds it already. */
export function claim<H>(slot: Slot<H> | null, handler: H): boolean {
  if (slot === null || slot.on !== null) return false;
  slot.on = handler;
  return true;
}

/** Gives a slot back, if `handler` still holds it. */
export function release<H>(slot: Slot<H> | null, handler: H): void {
  if (slot !== null && slot.on === handler) slot.on = null;
}
