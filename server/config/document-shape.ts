import type { ConfigProblem } from './types.js';

/**
 * Reading a parsed config document, which is untrusted until checked: every value is narrowed by
 * these guards, never cast.
 */
export type UntrustedRecord = Readonly<Record<string, unknown>>;

/** Reports one problem at a field path; bound to a file and, inside a metric, to that metric. */
export type Report = (field: string | undefined, message: string) => void;

export function isRecord(value: unknown): value is UntrustedRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Own properties only: a document lacking `name` must read as undefined, not as something inherited
 * from Object.prototype (`constructor`, `toString`, …).
 */
export function own(record: UntrustedRecord, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The JSON-ish type of a value, for "must be a string, got array". */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

export function joinField(prefix: string, key: string): string {
  return prefix === '' ? key : `${prefix}.${key}`;
}

export function reportUnknownKeys(record: UntrustedRecord, allowed: readonly string[], prefix: string, report: Report): void {
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) report(joinField(prefix, key), `unknown key; expected one of ${allowed.join(', ')}`);
  }
}

/** A problem without the optional parts it lacks (exactOptionalPropertyTypes: absent, not undefined). */
export function problem(file: string, metric: string | undefined, field: string | undefined, message: string): ConfigProblem {
  return {
    file,
    ...(metric !== undefined && { metric }),
    ...(field !== undefined && { field }),
    message,
  };
}
