import { describe, it, expect } from 'vitest';
import { validateWhitelistDocument } from './validate-document.js';

const FILE = 'w.json';

function problemsOf(doc: unknown): unknown[] {
  return validateWhitelistDocument(doc, FILE).problems;
}

/** A document with one metric; `metric` replaces the valid counter's keys. */
function oneMetric(metric: Record<string, unknown>): unknown {
  return { allowedMetrics: [{ name: 'm_total', help: 'h', type: 'counter', ...metric }] };
}

describe('validateWhitelistDocument: valid documents', () => {
  it('accepts the DESIGN.md example and returns typed specs', () => {
    const result = validateWhitelistDocument(
      {
        allowedMetrics: [
          { name: 'usage_total', help: 'usage', type: 'counter', labels: [{ name: 'feature', allowedValues: ['quickQuestion', 'showContent'] }] },
          { name: 'firebase_response_time', help: 'rt', type: 'histogram', labels: [], buckets: [0.05, 0.1, 0.5, 1, 5] },
          { name: 'users_presenting', help: 'up', type: 'gauge', labels: [] },
        ],
        sessionLabels: [{ name: 'app', allowedValues: ['student', 'teacher'] }],
      },
      FILE,
    );
    expect(result).toEqual({
      metrics: [
        { name: 'usage_total', help: 'usage', type: 'counter', labels: [{ name: 'feature', allowedValues: ['quickQuestion', 'showContent'] }], buckets: [], file: FILE },
        { name: 'firebase_response_time', help: 'rt', type: 'histogram', labels: [], buckets: [0.05, 0.1, 0.5, 1, 5], file: FILE },
        { name: 'users_presenting', help: 'up', type: 'gauge', labels: [], buckets: [], file: FILE },
      ],
      sessionLabels: [{ name: 'app', allowedValues: ['student', 'teacher'] }],
      problems: [],
    });
  });

  it('defaults labels to none and a histogram to the Prometheus default buckets', () => {
    const result = validateWhitelistDocument({ allowedMetrics: [{ name: 'job:latency_seconds', help: 'h', type: 'histogram' }] }, FILE);
    expect(result.problems).toEqual([]);
    expect(result.sessionLabels).toEqual([]);
    expect(result.metrics).toEqual([
      { name: 'job:latency_seconds', help: 'h', type: 'histogram', labels: [], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], file: FILE },
    ]);
  });

  it('allows a label named le on a counter', () => {
    expect(problemsOf(oneMetric({ labels: [{ name: 'le', allowedValues: ['a'] }] }))).toEqual([]);
  });
});

describe('validateWhitelistDocument: document shape', () => {
  it('rejects a document that is not an object', () => {
    expect(problemsOf([])).toEqual([{ file: FILE, message: 'must be an object with an allowedMetrics array, got array' }]);
    expect(problemsOf(null)).toEqual([{ file: FILE, message: 'must be an object with an allowedMetrics array, got null' }]);
  });

  it('requires allowedMetrics to be an array', () => {
    expect(problemsOf({})).toEqual([{ file: FILE, field: 'allowedMetrics', message: 'is required' }]);
    expect(problemsOf({ allowedMetrics: {} })).toEqual([{ file: FILE, field: 'allowedMetrics', message: 'must be an array of metrics, got object' }]);
  });

  it('rejects a metric that is not an object, naming it by index', () => {
    expect(problemsOf({ allowedMetrics: ['usage_total'] })).toEqual([{ file: FILE, metric: '#0', message: 'must be an object, got string' }]);
  });

  it('reports unknown keys at every level', () => {
    const doc = {
      allowedMetrics: [{ name: 'm', help: 'h', type: 'histogram', bucket: [1], labels: [{ name: 'a', allowedValues: ['x'], values: [] }] }],
      sessionLabels: [{ name: 'app', allowedValues: ['x'], extra: true }],
      allowedMetric: [],
    };
    expect(problemsOf(doc)).toEqual([
      { file: FILE, field: 'allowedMetric', message: 'unknown key; expected one of allowedMetrics, sessionLabels' },
      { file: FILE, metric: 'm', field: 'bucket', message: 'unknown key; expected one of name, help, type, labels, buckets' },
      { file: FILE, metric: 'm', field: 'labels[0].values', message: 'unknown key; expected one of name, allowedValues, fallback' },
      { file: FILE, field: 'sessionLabels[0].extra', message: 'unknown key; expected one of name, allowedValues' },
    ]);
  });

  it('does not read inherited properties as keys', () => {
    const metric: object = Object.create({ name: 'inherited_total' });
    Object.assign(metric, { help: 'h', type: 'counter' });
    expect(problemsOf({ allowedMetrics: [metric] })).toEqual([{ file: FILE, metric: '#0', field: 'name', message: 'is required' }]);
    expect(problemsOf(JSON.parse('{"allowedMetrics": [], "__proto__": {}}'))).toEqual([
      { file: FILE, field: '__proto__', message: 'unknown key; expected one of allowedMetrics, sessionLabels' },
    ]);
  });
});

describe('validateWhitelistDocument: metric fields', () => {
  it('reports wrong types, naming a metric without a usable name by index', () => {
    expect(problemsOf({ allowedMetrics: [{ name: 42, help: 1, type: 7, labels: {} }] })).toEqual([
      { file: FILE, metric: '#0', field: 'name', message: 'must be a string, got number' },
      { file: FILE, metric: '#0', field: 'help', message: 'must be a string, got number' },
      { file: FILE, metric: '#0', field: 'type', message: 'must be a string, got number' },
      { file: FILE, metric: '#0', field: 'labels', message: 'must be an array of labels, got object' },
    ]);
  });

  it('requires a non-empty help and a type', () => {
    expect(problemsOf({ allowedMetrics: [{ name: 'm' }, { name: 'n', help: '  ', type: 'gauge' }] })).toEqual([
      { file: FILE, metric: 'm', field: 'help', message: 'is required' },
      { file: FILE, metric: 'm', field: 'type', message: 'is required' },
      { file: FILE, metric: 'n', field: 'help', message: 'must not be empty' },
    ]);
  });

  it('rejects an unknown type', () => {
    expect(problemsOf(oneMetric({ type: 'summary' }))).toEqual([
      { file: FILE, metric: 'm_total', field: 'type', message: 'unknown metric type "summary"; expected one of counter, gauge, histogram' },
    ]);
  });

  it('checks the metric name grammar', () => {
    expect(problemsOf({ allowedMetrics: [{ name: 'my-metric', help: 'h', type: 'gauge' }, { name: '1st', help: 'h', type: 'gauge' }] })).toEqual([
      { file: FILE, metric: 'my-metric', field: 'name', message: 'invalid metric name "my-metric": must match [a-zA-Z_:][a-zA-Z0-9_:]*' },
      { file: FILE, metric: '1st', field: 'name', message: 'invalid metric name "1st": must match [a-zA-Z_:][a-zA-Z0-9_:]*' },
    ]);
  });

  it("rejects the aggregator's own names", () => {
    const doc = { allowedMetrics: [{ name: 'connected_clients', help: 'h', type: 'gauge' }, { name: 'promstream_x', help: 'h', type: 'gauge' }] };
    expect(problemsOf(doc)).toEqual([
      { file: FILE, metric: 'connected_clients', field: 'name', message: `"connected_clients" is reserved for promstream's own metrics (connected_clients, promstream_*)` },
      { file: FILE, metric: 'promstream_x', field: 'name', message: `"promstream_x" is reserved for promstream's own metrics (connected_clients, promstream_*)` },
    ]);
  });
});

describe('validateWhitelistDocument: labels', () => {
  it('checks the label name grammar and the reserved __ prefix', () => {
    const labels = [
      { name: 'bad-label', allowedValues: ['a'] },
      { name: '__meta', allowedValues: ['a'] },
      { name: 7, allowedValues: ['a'] },
    ];
    expect(problemsOf(oneMetric({ labels }))).toEqual([
      { file: FILE, metric: 'm_total', field: 'labels[0].name', message: 'invalid label name "bad-label": must match [a-zA-Z_][a-zA-Z0-9_]*' },
      { file: FILE, metric: 'm_total', field: 'labels[1].name', message: 'invalid label name "__meta": names starting with __ are reserved for Prometheus' },
      { file: FILE, metric: 'm_total', field: 'labels[2].name', message: 'must be a string, got number' },
    ]);
  });

  it('rejects le on a histogram', () => {
    expect(problemsOf(oneMetric({ type: 'histogram', labels: [{ name: 'le', allowedValues: ['1'] }] }))).toEqual([
      { file: FILE, metric: 'm_total', field: 'labels[0].name', message: 'label "le" is reserved on histograms for the bucket bound' },
    ]);
  });

  it('rejects a duplicate label name', () => {
    const labels = [
      { name: 'a', allowedValues: ['x'] },
      { name: 'b', allowedValues: ['x'] },
      { name: 'a', allowedValues: ['y'] },
    ];
    expect(problemsOf(oneMetric({ labels }))).toEqual([
      { file: FILE, metric: 'm_total', field: 'labels[2].name', message: 'duplicate label "a", first defined at labels[0]' },
    ]);
  });

  it('requires a non-empty list of distinct strings as allowedValues', () => {
    const labels = [
      { name: 'a', allowedValues: [] },
      { name: 'b', allowedValues: ['x', 'y', 'x'] },
      { name: 'c', allowedValues: 'x' },
      { name: 'd', allowedValues: ['x', 1] },
      { name: 'e' },
    ];
    expect(problemsOf(oneMetric({ labels }))).toEqual([
      { file: FILE, metric: 'm_total', field: 'labels[0].allowedValues', message: 'must not be empty' },
      { file: FILE, metric: 'm_total', field: 'labels[1].allowedValues[2]', message: 'duplicate value "x", first at index 0' },
      { file: FILE, metric: 'm_total', field: 'labels[2].allowedValues', message: 'must be an array of strings, got string' },
      { file: FILE, metric: 'm_total', field: 'labels[3].allowedValues[1]', message: 'must be a string, got number' },
      { file: FILE, metric: 'm_total', field: 'labels[4].allowedValues', message: 'is required' },
    ]);
  });

  it('takes a fallback for metric labels: listed already, or added after the allowed values', () => {
    const labels = [
      { name: 'route', allowedValues: ['/', '/a'], fallback: 'other' },
      { name: 'host', allowedValues: ['x', 'other'], fallback: 'other' },
      { name: 'kind', allowedValues: ['k'] },
    ];
    const result = validateWhitelistDocument(oneMetric({ labels }), FILE);
    expect(result.problems).toEqual([]);
    expect(result.metrics[0]!.labels).toEqual([
      { name: 'route', allowedValues: ['/', '/a', 'other'], fallback: 'other' },
      { name: 'host', allowedValues: ['x', 'other'], fallback: 'other' },
      { name: 'kind', allowedValues: ['k'] },
    ]);
    expect(problemsOf(oneMetric({ labels: [{ name: 'route', allowedValues: ['/'], fallback: 7 }] }))).toEqual([
      { file: FILE, metric: 'm_total', field: 'labels[0].fallback', message: 'must be a string (the value to count values outside allowedValues under), got number' },
    ]);
    // Session labels are exact (4003 otherwise): no fallback.
    expect(problemsOf({ allowedMetrics: [], sessionLabels: [{ name: 'app', allowedValues: ['a'], fallback: 'a' }] })).toEqual([
      { file: FILE, field: 'sessionLabels[0].fallback', message: 'unknown key; expected one of name, allowedValues' },
    ]);
  });

  it('applies the same rules to sessionLabels', () => {
    const sessionLabels = [
      { name: '__app', allowedValues: ['a'] },
      { name: 'app', allowedValues: [] },
      { name: 'app', allowedValues: ['a'] },
    ];
    const result = validateWhitelistDocument({ allowedMetrics: [], sessionLabels }, FILE);
    expect(result.sessionLabels).toEqual([]);
    expect(result.problems).toEqual([
      { file: FILE, field: 'sessionLabels[0].name', message: 'invalid label name "__app": names starting with __ are reserved for Prometheus' },
      { file: FILE, field: 'sessionLabels[1].allowedValues', message: 'must not be empty' },
      { file: FILE, field: 'sessionLabels[2].name', message: 'duplicate label "app", first defined at sessionLabels[1]' },
    ]);
    expect(problemsOf({ allowedMetrics: [], sessionLabels: 'app' })).toEqual([
      { file: FILE, field: 'sessionLabels', message: 'must be an array of labels, got string' },
    ]);
  });
});

describe('validateWhitelistDocument: buckets', () => {
  const histogram = (buckets: unknown): unknown => oneMetric({ name: 'h_seconds', type: 'histogram', buckets });

  it('rejects non-numbers and non-finite bounds, and +Inf with its own reason', () => {
    expect(problemsOf(histogram(['1', Number.NaN, -Infinity, 0.5, Infinity]))).toEqual([
      { file: FILE, metric: 'h_seconds', field: 'buckets[0]', message: 'must be a number, got string' },
      { file: FILE, metric: 'h_seconds', field: 'buckets[1]', message: 'must be a finite number, got NaN' },
      { file: FILE, metric: 'h_seconds', field: 'buckets[2]', message: 'must be a finite number, got -Infinity' },
      { file: FILE, metric: 'h_seconds', field: 'buckets[4]', message: 'must not be +Inf: the +Inf bucket is always added' },
    ]);
  });

  it('requires strictly ascending bounds', () => {
    expect(problemsOf(histogram([0.1, 1, 0.5, 1, 2]))).toEqual([
      { file: FILE, metric: 'h_seconds', field: 'buckets[2]', message: 'must be greater than the previous bound 1: buckets must be strictly ascending' },
      { file: FILE, metric: 'h_seconds', field: 'buckets[3]', message: 'must be greater than the previous bound 1: buckets must be strictly ascending' },
    ]);
  });

  it('rejects empty buckets and buckets that are not an array', () => {
    expect(problemsOf(histogram([]))).toEqual([
      { file: FILE, metric: 'h_seconds', field: 'buckets', message: 'must not be empty; omit buckets for the default ones' },
    ]);
    expect(problemsOf(histogram(5))).toEqual([{ file: FILE, metric: 'h_seconds', field: 'buckets', message: 'must be an array of numbers, got number' }]);
  });

  it('rejects buckets on a counter or a gauge', () => {
    expect(problemsOf(oneMetric({ buckets: [1] }))).toEqual([
      { file: FILE, metric: 'm_total', field: 'buckets', message: 'only histograms have buckets; this metric is a counter' },
    ]);
    expect(problemsOf(oneMetric({ type: 'gauge', buckets: [1] }))).toEqual([
      { file: FILE, metric: 'm_total', field: 'buckets', message: 'only histograms have buckets; this metric is a gauge' },
    ]);
  });
});
