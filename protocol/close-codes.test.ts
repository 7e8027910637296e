import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ClientCloseReasons, CloseCode, CloseReasons, isKnownCloseCode, isServerCloseReason, retryPolicyFor } from './index.js';

const doc = readFileSync(new URL('./PROTOCOL.md', import.meta.url), 'utf8');
const section = doc.split('## Close codes')[1]!.split('\n## ')[0]!;
const tables = section.split(/\n\n(?=\| code)/).slice(1);
const rowsOf = (table: string): string[][] => table.split('\n').filter((l) => /^\| \d{4} \|/.test(l)).map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
const clientWord = { backoff: 'backoff', 'new-session': 'new session', never: 'stop' } as const;
const sorted = (rows: string[][]): string[][] => [...rows].sort((a, b) => a.join().localeCompare(b.join()));

describe('close-code catalogue', () => {
  it("PROTOCOL.md lists exactly the server's catalogue, row for row", () => {
    const fromCode = Object.values(CloseReasons).map((r) => [String(r.code), r.reason, r.metric ?? '–', clientWord[retryPolicyFor(r.code)]]);
    expect(sorted(rowsOf(tables[0]!))).toEqual(sorted(fromCode));
  });

  it("PROTOCOL.md lists exactly the reference client's closes, row for row", () => {
    const fromCode = Object.values(ClientCloseReasons).map((r) => [String(r.code), r.reason, r.resumable ? 'resumable' : 'ends (after its goodbye)']);
    expect(sorted(rowsOf(tables[1]!))).toEqual(sorted(fromCode));
  });

  it('every reason sharing a code shares the next step (a peer only acts on the code)', () => {
    // The server's: by construction, the policy is a function of the code (retryPolicyFor). The client's:
    const sessionByCode = new Map<number, Set<boolean>>();
    for (const r of Object.values(ClientCloseReasons)) sessionByCode.set(r.code, (sessionByCode.get(r.code) ?? new Set()).add(r.resumable));
    for (const [code, kinds] of sessionByCode) expect([...kinds], `client code ${code}`).toHaveLength(1);
  });

  it('every reason fits a close frame (≤ 123 bytes)', () => {
    for (const r of [...Object.values(CloseReasons), ...Object.values(ClientCloseReasons)]) expect(Buffer.byteLength(r.reason)).toBeLessThanOrEqual(123);
  });

  it('tells the client what to do for codes outside the catalogue', () => {
    expect(retryPolicyFor(1006)).toBe('backoff');
    expect(retryPolicyFor(1001)).toBe('backoff');
    expect(retryPolicyFor(1013)).toBe('backoff');
    expect(retryPolicyFor(4001)).toBe('new-session');
    expect(retryPolicyFor(4003)).toBe('never');
    expect(retryPolicyFor(4999)).toBe('backoff');
  });

  it("knows both directions' codes, so promstream_closes_total never folds the client's own into other (review defect 3)", () => {
    for (const code of [CloseCode.CLIENT_ACK_TIMEOUT, CloseCode.CLIENT_WELCOME_TIMEOUT, 1000, 1001, 1005, 1006, 1012, 4006]) expect(isKnownCloseCode(code), String(code)).toBe(true);
    for (const code of [1004, 3000, 4007, 4999]) expect(isKnownCloseCode(code), String(code)).toBe(false);
  });

  it("tells the server's reasons from the client's", () => {
    expect(isServerCloseReason(CloseReasons.badShape)).toBe(true);
    expect(isServerCloseReason(ClientCloseReasons.badServerFrame)).toBe(false);
    expect(isServerCloseReason({ code: 1007, reason: 'message has the wrong shape' })).toBe(false);
  });
});
