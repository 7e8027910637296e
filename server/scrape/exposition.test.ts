import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServerCatalog } from '../core/catalog.js';
import type { MetricSpec, Whitelist } from '../config/types.js';
import { SeriesExposition, formatValue } from './exposition.js';
import { RejectReason } from '../../protocol/index.js';
import { oneLoopState } from '../setup/one-loop.js';
import { SeriesStore } from '../core/series-store.js';

const metrics: MetricSpec[] = [
  {
    name: 'usage_total', help: 'Feature usage.', type: 'counter', file: 't.json', buckets: [],
    labels: [
      { name: 'feature', allowedValues: ['a', 'b'] },
      { name: 'browser', allowedValues: ['x', 'y', 'z'] },
    ],
  },
  {
    name: 'rt_seconds', help: 'Response time.', type: 'histogram', file: 't.json', buckets: [0.1, 0.5, 1],
    labels: [{ name: 'host', allowedValues: ['h0', 'h1'] }],
  },
  { name: 'plain_seconds', help: 'No labels.', type: 'histogram', file: 't.json', buckets: [0.25, 2.5e-7], labels: [] },
  { name: 'presenting', help: 'Tabs presenting.', type: 'gauge', file: 't.json', buckets: [], labels: [] },
  {
    name: 'escaped', help: 'Back\\slash and\nnewline and "quotes" kept.', type: 'gauge', file: 't.json', buckets: [],
    labels: [{ name: 'v', allowedValues: ['a\\b', 'say "hi"', 'two\nlines'] }],
  },
];
const whitelist: Whitelist = { metrics, sessionLabels: [], files: ['t.json'] };
const newStore = (): SeriesStore => new SeriesStore(new ServerCatalog(whitelist), 1e9);

describe('SeriesExposition', () => {
  it('renders every series at 0 from the start, with exact HELP/TYPE, label order, le values and escaping', () => {
    expect(new SeriesExposition(newStore()).render()).toBe(
      [
        '# HELP usage_total Feature usage.',
        '# TYPE usage_total counter',
        'usage_total{feature="a",browser="x"} 0',
        'usage_total{feature="a",browser="y"} 0',
        'usage_total{feature="a",browser="z"} 0',
        'usage_total{feature="b",browser="x"} 0',
        'usage_total{feature="b",browser="y"} 0',
        'usage_total{feature="b",browser="z"} 0',
        '# HELP rt_seconds Response time.',
        '# TYPE rt_seconds histogram',
        'rt_seconds_bucket{host="h0",le="0.1"} 0',
        'rt_seconds_bucket{host="h0",le="0.5"} 0',
        'rt_seconds_bucket{host="h0",le="1"} 0',
        'rt_seconds_bucket{host="h0",le="+Inf"} 0',
        'rt_seconds_sum{host="h0"} 0',
        'rt_seconds_count{host="h0"} 0',
        'rt_seconds_bucket{host="h1",le="0.1"} 0',
        'rt_seconds_bucket{host="h1",le="0.5"} 0',
        'rt_seconds_bucket{host="h1",le="1"} 0',
        'rt_seconds_bucket{host="h1",le="+Inf"} 0',
        'rt_seconds_sum{host="h1"} 0',
        'rt_seconds_count{host="h1"} 0',
        '# HELP plain_seconds No labels.',
        '# TYPE plain_seconds histogram',
        'plain_seconds_bucket{le="0.25"} 0',
        'plain_seconds_bucket{le="2.5e-7"} 0',
        'plain_seconds_bucket{le="+Inf"} 0',
        'plain_seconds_sum 0',
        'plain_seconds_count 0',
        '# HELP presenting Tabs presenting.',
        '# TYPE presenting gauge',
        'presenting 0',
        '# HELP escaped Back\\\\slash and\\nnewline and "quotes" kept.',
        '# TYPE escaped gauge',
        'escaped{v="a\\\\b"} 0',
        'escaped{v="say \\"hi\\""} 0',
        'escaped{v="two\\nlines"} 0',
        '',
      ].join('\n'),
    );
  });

  it('renders applied values: histogram buckets cumulative, _count the total, gauges signed', () => {
    const store = new SeriesStore(new ServerCatalog(whitelist), 1e30);
    const g = new Map<number, number>();
    expect(store.apply([0, 1, 2, 5], g)).toBeNull(); // feature=b, browser=z
    expect(store.apply([0, 0, 1, 0.5], g)).toBeNull(); // feature=a, browser=y
    expect(store.apply([1, 1, 3.75, 2, 0, 1, 3], g)).toBeNull(); // host=h1
    expect(store.apply([3, -2.5], g)).toBeNull();
    expect(store.apply([4, 2, 1e21], g)).toBeNull();
    const text = new SeriesExposition(store).render();
    const lines = text.split('\n');
    expect(lines).toContain('usage_total{feature="b",browser="z"} 5');
    expect(lines).toContain('usage_total{feature="a",browser="y"} 0.5');
    expect(lines).toContain('usage_total{feature="a",browser="z"} 0');
    const h1 = lines.filter((l) => l.startsWith('rt_seconds') && l.includes('host="h1"'));
    expect(h1).toEqual([
      'rt_seconds_bucket{host="h1",le="0.1"} 2',
      'rt_seconds_bucket{host="h1",le="0.5"} 2',
      'rt_seconds_bucket{host="h1",le="1"} 3',
      'rt_seconds_bucket{host="h1",le="+Inf"} 6',
      'rt_seconds_sum{host="h1"} 3.75',
      'rt_seconds_count{host="h1"} 6',
    ]);
    expect(lines).toContain('rt_seconds_count{host="h0"} 0');
    expect(lines).toContain('presenting -2.5');
    expect(lines).toContain('escaped{v="two\\nlines"} 1e+21');
  });

  it('formats values as the Prometheus text format reads them', () => {
    expect([0, -0, 1, 0.1, -2.5, 1e21, 2.5e-7, NaN, Infinity, -Infinity].map(formatValue)).toEqual([
      '0', '0', '1', '0.1', '-2.5', '1e+21', '2.5e-7', 'NaN', '+Inf', '-Inf',
    ]);
  });

  it('renders metric names and label names without escaping (the whitelist grammar keeps them safe)', () => {
    const text = new SeriesExposition(newStore()).render();
    expect(text.endsWith('\n')).toBe(true);
    expect(text.split('\n').filter((l) => l.startsWith('# TYPE')).length).toBe(metrics.length);
  });

  it('writes exactly what one template string per line would, for any values (fast-check)', () => {
    const store = newStore();
    const exposition = new SeriesExposition(store);
    const value = fc.oneof(fc.integer({ min: -(2 ** 40), max: 2 ** 53 }), fc.double(), fc.constantFrom(0, -0, 1e21, 2 ** 53, -(2 ** 53) - 2, 0.1));
    fc.assert(
      fc.property(fc.array(value, { minLength: 64, maxLength: 64 }), (values) => {
        let k = 0;
        for (const m of store.metrics) {
          for (let i = 0; i < m.values.length; i++) m.values[i] = values[k++ % values.length]!;
          for (let i = 0; i < m.sums.length; i++) m.sums[i] = values[k++ % values.length]!;
        }
        expect(exposition.render()).toBe(referenceRender(store));
      }),
      { numRuns: 300 },
    );
  });

  it('renders the same bytes in one go, in slices of any size and with the trailer appended', async () => {
    const store = newStore();
    store.metrics.forEach((m, i) => m.values.forEach((_, j) => (m.values[j] = i * 100 + j)));
    const exposition = new SeriesExposition(store);
    const whole = exposition.render();
    expect(exposition.renderBytes('# tail\n').toString()).toBe(`${whole}# tail\n`);
    for (const slice of [1, 2, 5, 7, 1000]) expect((await exposition.renderBytesInSlices('x', slice)).toString(), String(slice)).toBe(`${whole}x`);
  });
});

/** The exposition written the plain way, one template string per line: what the buffer render must match. */
function referenceRender(store: SeriesStore): string {
  let out = '';
  for (const m of store.metrics) {
    const e = m.entry;
    const name = e.spec.name;
    out += `# HELP ${name} ${e.spec.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${e.type}\n`;
    const labelSets: string[] = [];
    for (let s = 0; s < e.seriesCount; s++) {
      let rest = s;
      const parts: string[] = [];
      for (let i = e.spec.labels.length - 1; i >= 0; i--) {
        const l = e.spec.labels[i]!;
        const v = l.allowedValues[rest % e.radices[i]!]!;
        rest = Math.floor(rest / e.radices[i]!);
        parts.unshift(`${l.name}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
      }
      labelSets.push(parts.length === 0 ? '' : `{${parts.join(',')}}`);
    }
    if (e.type !== 'histogram') {
      labelSets.forEach((labels, s) => (out += `${name}${labels} ${formatValue(m.values[s]!)}\n`));
      continue;
    }
    const les = [...e.spec.buckets.map(formatValue), '+Inf'];
    labelSets.forEach((labels, s) => {
      const open = labels === '' ? '{' : `${labels.slice(0, -1)},`;
      let cumulative = 0;
      les.forEach((le, b) => {
        cumulative += m.values[s * e.bucketCount + b]!;
        out += `${name}_bucket${open}le="${le}"} ${formatValue(cumulative)}\n`;
      });
      out += `${name}_sum${labels} ${formatValue(m.sums[s]!)}\n${name}_count${labels} ${formatValue(cumulative)}\n`;
    });
  }
  return out;
}

describe('promtool check metrics', () => {
  const promtool = '/usr/bin/promtool';
  const check = (text: string): { status: number | null; report: string } => {
    const run = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (run.error !== undefined) throw run.error;
    return { status: run.status, report: `${run.stdout}${run.stderr}`.trim() };
  };
  const havePromtool = (): boolean => {
    if (existsSync(promtool)) return true;
    if (process.env['CI'] !== undefined) throw new Error(`${promtool} is missing and CI is set: install promtool`);
    console.warn(`SKIPPED: ${promtool} not found; promtool check metrics did not run`);
    return false;
  };
  const fullOutput = async (): Promise<string> => {
    const store = newStore();
    expect(store.apply([1, 0, 0.3, 1, 1, 0, 0], new Map())).toBeNull();
    const { block, metrics } = oneLoopState([{ name: 'app', allowedValues: ['a', 'b'] }], 10, '0.0.0');
    block.close(1000);
    block.rejected(RejectReason.NOT_ARRAY, 1);
    return new SeriesExposition(store).render() + (await metrics.registry.metrics());
  };

  it('finds the whole /metrics output valid, without a single lint remark (exit 0)', async () => {
    if (!havePromtool()) return;
    const { status, report } = check(await fullOutput());
    expect(report).toBe('');
    expect(status).toBe(0);
  });

  it('reports a badly named whitelisted counter, proving the check runs', () => {
    if (!havePromtool()) return;
    const bad: Whitelist = {
      metrics: [{ name: 'usage', help: 'no _total suffix', type: 'counter', file: 't.json', buckets: [], labels: [] }],
      sessionLabels: [], files: ['t.json'],
    };
    const { status, report } = check(new SeriesExposition(new SeriesStore(new ServerCatalog(bad), 1)).render());
    expect(report).toContain('usage counter metrics should have "_total" suffix');
    expect(status).toBe(3);
  });
});
