/**
 * Option values as people write them: durations with units (500ms, 10s, 2m, 1h; a bare number is
 * seconds, as in Prometheus' config), sizes (65536, 64KiB, 1MiB), and the text of each unit of the
 * option table. Errors name where the text came from (--flag or PROMSTREAM_NAME).
 */
import type { OptionDef } from './option-table.js';

/** Parses '500ms', '10s', '2m', '1h' or a bare number of seconds into ms. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (m === null) throw new Error(`not a duration: "${text}" (use e.g. 500ms, 10s, 2m, 1h; a bare number is seconds)`);
  const unit = m[2] ?? 's';
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(Number(m[1]) * factor);
}

/** Parses '65536', '64KiB', '1MiB', '64kb' into bytes. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$/i.exec(text);
  if (m === null) throw new Error(`not a size: "${text}" (use e.g. 65536, 64KiB, 1MiB)`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const factor = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('g') ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * factor);
}

export const formatDuration = (ms: number): string => (ms % 60_000 === 0 && ms >= 60_000 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
export const formatBytes = (n: number): string => (n % (1024 * 1024) === 0 ? `${n / 1024 / 1024}MiB` : n % 1024 === 0 ? `${n / 1024}KiB` : String(n));

export type OptionValue = string | number | boolean | readonly string[];

/** An option's text (from argv or env) as its value; throws an Error whose message starts with `source`. */
export function readOptionText(d: OptionDef<unknown>, raw: string, source: string): OptionValue {
  try {
    return readText(d, raw);
  } catch (err) {
    throw new Error(`${source}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function readText(d: OptionDef<unknown>, raw: string): OptionValue {
  switch (d.unit) {
    case 'string':
      return raw;
    case 'flag':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off|)$/i.test(raw)) return false;
      throw new Error(`expected true or false, got "${raw}"`);
    case 'port': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`expected a port 0–65535, got "${raw}"`);
      return n;
    }
    case 'duration':
      return parseDuration(raw);
    case 'bytes':
      return parseBytes(raw);
    case 'count':
    case 'whole': {
      const n = Number(raw);
      const min = d.unit === 'count' ? 1 : 0;
      if (raw.trim() === '' || !Number.isInteger(n) || n < min) throw new Error(`expected a whole number ≥ ${min}, got "${raw}"`);
      return n;
    }
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw new Error(`expected a positive number, got "${raw}"`);
      return n;
    }
    case 'list':
    case 'paths':
      return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
    case 'workers': {
      if (raw === 'auto') return raw;
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isInteger(n) || n < (d.min ?? 1) || n > (d.max ?? Infinity)) throw new Error(`expected auto or a whole number ${d.min ?? 1}–${d.max}, got "${raw}"`);
      return n;
    }
    case 'choice': {
      const choices = d.choices ?? [];
      if (!choices.includes(raw)) throw new Error(`expected ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}, got "${raw}"`);
      return raw;
    }
  }
}
