import { describe, expect, it } from 'vitest';
import { parseLabels, parseRecordInput } from './record-input.js';

describe('parseRecordInput: whatever a page passes, typed values or a drop reason', () => {
  const cases: { name: string; args: [unknown, unknown, unknown]; want: unknown }[] = [
    { name: 'a plain call', args: ['x_total', { a: 'b' }, 2], want: { name: 'x_total', labels: { a: 'b' }, value: 2 } },
    { name: 'no labels', args: ['x_total', undefined, 1], want: { name: 'x_total', labels: {}, value: 1 } },
    { name: 'null labels', args: ['x_total', null, 1], want: { name: 'x_total', labels: {}, value: 1 } },
    { name: 'a symbol as name', args: [Symbol('x'), {}, 1], want: 'unknown_metric' },
    { name: 'a number as name', args: [42, {}, 1], want: 'unknown_metric' },
    { name: 'a string value', args: ['x_total', {}, '5'], want: 'not_a_number' },
    { name: 'a bigint value', args: ['x_total', {}, 1n], want: 'not_a_number' },
    { name: 'labels as a string', args: ['x_total', 'feature=a', 1], want: 'label_not_allowed' },
    { name: 'labels as an array', args: ['x_total', ['a'], 1], want: 'label_not_allowed' },
    { name: 'a label value that is a number', args: ['x_total', { a: 1 }, 1], want: 'label_not_allowed' },
    {
      name: 'a label getter that throws',
      args: ['x_total', Object.defineProperty({}, 'a', { enumerable: true, get: () => { throw new Error('boom'); } }), 1],
      want: 'label_not_allowed',
    },
    { name: 'a proxy whose traps throw', args: ['x_total', new Proxy({}, { ownKeys: () => { throw new Error('trap'); } }), 1], want: 'label_not_allowed' },
  ];
  for (const c of cases) it(c.name, () => expect(parseRecordInput(...c.args)).toEqual(c.want));

  it('copies the labels: the caller changing its object later does not reach them', () => {
    const labels = { a: 'b' };
    const parsed = parseLabels(labels);
    labels.a = 'c';
    expect(parsed).toEqual({ a: 'b' });
  });
});
