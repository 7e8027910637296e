import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CloseReasons, retryPolicyFor } from './index.js';

const doc = readFileSync(new URL('./PROTOCOL.md', import.meta.url), 'utf8');
const section = doc.split('## Close codes')[1]!.split('\n## ')[0]!;
const rows = section.split('\n').filter((l) => /^\| \d{4} \|/.test(l)).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
const clientWord = { backoff: 'backoff', 'new-session': 'new session', never: 'stop' } as const;

describe('close-code catalogue', () => {
  it('PROTOCOL.md lists exactly the catalogue, row for row', () => {
    const fromCode = Object.values(CloseReasons)
      .map((r) => [String(r.code), r.reason, r.metric ?? '–', clientWord[r.retry]])
      .sort((a, b) => a.join().localeCompare(b.join()));
    expect(rows.sort((a, b) => a.join().localeCompare(b.join()))).toEqual(fromCode);
  });

  it('every reason fits a close frame (≤ 123 bytes)', () => {
    for (const r of Object.values(CloseReasons)) expect(Buffer.byteLength(r.reason)).toBeLessThanOrEqual(123);
  });

  it('tells the client what to do for codes outside the catalogue', () => {
    expect(retryPolicyFor(1006)).toBe('backoff');
    expect(retryPolicyFor(1013)).toBe('backoff');
    expect(retryPolicyFor(4001)).toBe('new-session');
    expect(retryPolicyFor(4003)).toBe('never');
  });
});
