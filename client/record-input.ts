import { RejectReason } from '../protocol/index.js';
import type { Labels } from './types.js';

/** One recording call, typed. */
export interface RecordInput {
  readonly name: string;
  /** A fresh object of the caller's string-valued labels: later changes to the caller's object do not reach it. */
  readonly labels: Labels;
  readonly value: number;
}

const NO_LABELS: Labels = Object.freeze({});

/**
 * The untrusted arguments of increment/observe/set (a page passes whatever it likes, typed or not) →
 * typed values, or the reason they are dropped. Parsed once, here: what comes out is a plain string, a
 * plain object of strings and a number, whatever came in (getters, proxies, symbols). The value's range
 * (finite, ≥ 0 for counters, ≤ maxSampleValue) is checked where it is recorded.
 */
export function parseRecordInput(name: unknown, labels: unknown, value: unknown): RecordInput | RejectReason {
  if (typeof name !== 'string') return RejectReason.UNKNOWN_METRIC;
  if (typeof value !== 'number') return RejectReason.NOT_A_NUMBER;
  const parsed = parseLabels(labels);
  if (parsed === null) return RejectReason.LABEL_NOT_ALLOWED;
  return { name, labels: parsed, value };
}

/** undefined/null → no labels; a plain object whose own values are all strings → a copy; anything else → null. */
export function parseLabels(labels: unknown): Labels | null {
  if (labels === undefined || labels === null) return NO_LABELS;
  if (typeof labels !== 'object' || Array.isArray(labels)) return null;
  try {
    const out: Record<string, string> = {};
    for (const [key, v] of Object.entries(labels)) {
      if (typeof v !== 'string') return null;
      out[key] = v;
    }
    return out;
  } catch {
    // A getter or proxy trap that throws: the page's own doing, dropped like any other bad label.
    return null;
  }
}
