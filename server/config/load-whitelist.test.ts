import { afterEach, describe, it, expect } from 'vitest';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadWhitelist } from './load-whitelist.js';
import { ConfigError, type ConfigProblem, type Whitelist } from './types.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// A copy of the original project's whitelist files (shared/fixtures/seed-config), unchanged.
const seedDir = path.resolve(repoRoot, 'test/fixtures/seed-config');
const appFile = path.join(seedDir, 'appMetricConfig.json');
const perfFile = path.join(seedDir, 'performanceTimingMetricConfig.json');
const examplesDir = path.resolve(repoRoot, 'examples');

const PERF_BUCKETS = [0.01, 0.05, 0.1, 0.2, 0.5, 1, 1.2, 1.5, 2, 5, 10];
const PERF_NAMES = [
  'navigationStart', 'unloadEventStart', 'unloadEventEnd', 'fetchStart', 'domainLookupStart', 'domainLookupEnd',
  'connectStart', 'connectEnd', 'requestStart', 'responseStart', 'responseEnd', 'domLoading', 'domInteractive',
  'domContentLoadedEventStart', 'domContentLoadedEventEnd', 'domComplete', 'loadEventStart',
].map((event) => `performance_timing_${event}`);

const tempDirs: string[] = [];
afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => fs.rm(dir, { recursive: true, force: true })));
});

/** A fresh directory holding `files` (name → content; objects are written as JSON). */
async function tempConfig(files: Record<string, string | object>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'promstream-config-'));
  tempDirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    await fs.writeFile(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}

async function problemsOf(paths: readonly string[], options: { maxSeries?: number } = {}): Promise<readonly ConfigProblem[]> {
  const error: unknown = await loadWhitelist(paths, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error instanceof ConfigError ? error.problems : [];
}

function withoutFiles(whitelist: Whitelist): unknown {
  return { ...whitelist, files: [], metrics: whitelist.metrics.map(({ file: _file, ...rest }) => rest) };
}

const counter = (name: string, extra: object = {}): object => ({ name, help: 'h', type: 'counter', ...extra });

describe('loadWhitelist: the original project files', () => {
  it('loads the seed directory unchanged, files sorted by name', async () => {
    const whitelist = await loadWhitelist([seedDir]);
    expect(whitelist.files).toEqual([appFile, perfFile]);
    expect(whitelist.sessionLabels).toEqual([]);
    expect(whitelist.metrics.map((m) => m.name)).toEqual(['app_load_succeeded', 'usage_total', 'firebase_response_time', ...PERF_NAMES]);
    expect(whitelist.metrics.slice(0, 3)).toEqual([
      {
        name: 'app_load_succeeded', help: 'succesful app loads', type: 'counter', buckets: [], file: appFile,
        labels: [{ name: 'app', allowedValues: ['student', 'teacher', 'editor', 'home', 'join'] }],
      },
      {
        name: 'usage_total', help: 'counts of usage, like times a feature has been used, etc', type: 'counter', buckets: [], file: appFile,
        labels: [
          { name: 'browser', allowedValues: ['chrome', 'firefox', 'safari', 'edge'] },
          { name: 'feature', allowedValues: ['quickQuestion', 'selfPacedMode', 'blockStudent', 'showContent'] },
        ],
      },
      {
        name: 'firebase_response_time', help: 'measures firebase response times in seconds', type: 'histogram', file: appFile,
        labels: [{ name: 'firebaseHost', allowedValues: ['pd-dev-1.firebaseio.com', 'pd-dev-2.firebaseio.com'] }],
        buckets: [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100],
      },
    ]);
    for (const metric of whitelist.metrics.slice(3)) {
      expect(metric).toEqual({ name: metric.name, help: 'Performance timing metric', type: 'histogram', labels: [], buckets: PERF_BUCKETS, file: perfFile });
    }
  });

  it('gives the same whitelist for the files named one by one, in the order given', async () => {
    expect(await loadWhitelist([appFile, perfFile])).toEqual(await loadWhitelist([seedDir]));
    const reversed = await loadWhitelist([perfFile, appFile]);
    expect(reversed.files).toEqual([perfFile, appFile]);
    expect(reversed.metrics.map((m) => m.name)).toEqual([...PERF_NAMES, 'app_load_succeeded', 'usage_total', 'firebase_response_time']);
  });

  it('reads a file named both directly and through its directory once', async () => {
    const whitelist = await loadWhitelist([appFile, seedDir]);
    expect(whitelist.files).toEqual([appFile, perfFile]);
    expect(whitelist.metrics).toHaveLength(20);
  });

  it('counts histogram buckets, +Inf, _sum and _count against maxSeries', async () => {
    // 5 + 4·4 counter series, 2·(11+3) firebase series, 17·(11+3) performance series.
    expect((await loadWhitelist([seedDir], { maxSeries: 287 })).metrics).toHaveLength(20);
    expect(await problemsOf([seedDir], { maxSeries: 286 })).toEqual([
      {
        file: appFile,
        message: `287 series in total exceed maxSeries 286; the biggest: firebase_response_time 28 (${appFile}), usage_total 16 (${appFile}), performance_timing_navigationStart 14 (${perfFile})`,
      },
    ]);
  });
});

describe('loadWhitelist: formats and paths', () => {
  it('reads YAML (.yaml and .yml) the same as JSON', async () => {
    const json = await tempConfig({
      'a.json': { allowedMetrics: [counter('usage_total', { labels: [{ name: 'feature', allowedValues: ['x', 'y'] }] })] },
      'b.json': { allowedMetrics: [{ name: 'rt_seconds', help: 'rt', type: 'histogram', buckets: [0.5, 1] }], sessionLabels: [{ name: 'app', allowedValues: ['s'] }] },
    });
    const yaml = await tempConfig({
      'a.yaml': 'allowedMetrics:\n  - name: usage_total\n    help: h\n    type: counter\n    labels:\n      - name: feature\n        allowedValues: [x, y]\n',
      'b.yml': 'allowedMetrics:\n  - { name: rt_seconds, help: rt, type: histogram, buckets: [0.5, 1] }\nsessionLabels:\n  - name: app\n    allowedValues: [s]\n',
      'notes.txt': 'not a config file',
    });
    const fromYaml = await loadWhitelist([yaml]);
    expect(fromYaml.files).toEqual([path.join(yaml, 'a.yaml'), path.join(yaml, 'b.yml')]);
    expect(withoutFiles(fromYaml)).toEqual(withoutFiles(await loadWhitelist([json])));
  });

  it("loads the examples directory: the demo whitelist and the browser collectors' whitelists", async () => {
    const file = path.join(examplesDir, 'demo-whitelist.json');
    const pageFile = path.join(examplesDir, 'page-metrics-whitelist.json');
    const w = await loadWhitelist([examplesDir]);
    const collectorFiles = ['api-metrics', 'errors', 'routes'].map((n) => path.join(examplesDir, `${n}-whitelist.json`));
    expect(w.files).toEqual([collectorFiles[0], file, collectorFiles[1], pageFile, collectorFiles[2]]);
    expect(w.metrics.filter((m) => m.file === file)).toEqual([
      { name: 'demo_clicks_total', help: "Clicks on the demo page's buttons", type: 'counter', labels: [{ name: 'button', allowedValues: ['red', 'green', 'blue'] }], buckets: [], file },
      {
        name: 'demo_task_duration_seconds', help: 'Duration of demo tasks in seconds', type: 'histogram', file,
        labels: [{ name: 'task', allowedValues: ['load', 'save'] }], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      },
      { name: 'demo_tabs_presenting', help: 'Demo tabs currently presenting', type: 'gauge', labels: [], buckets: [], file },
    ]);
    const page = w.metrics.filter((m) => m.file === pageFile);
    expect(page.length).toBe(17 + 5);
    const route = { name: 'route', allowedValues: ['/', '/courses', '/courses/:id', '/settings', 'other'], fallback: 'other' };
    for (const m of page) {
      expect(m.type).toBe('histogram');
      expect(m.name).toMatch(/^(performance_timing_[A-Za-z]+|web_vitals_(lcp|inp|fcp|ttfb)_seconds|web_vitals_cls)$/);
      expect(m.labels).toEqual([route]);
    }
    expect(w.metrics.filter((m) => collectorFiles.includes(m.file)).map((m) => m.name).sort()).toEqual(['browser_errors_total', 'http_client_request_duration_seconds', 'page_views_total']);
    expect(w.sessionLabels).toEqual([{ name: 'app', allowedValues: ['demo', 'student', 'teacher'] }]);
  });

  it('reports a missing path, a directory without config files and an unreadable file', async () => {
    const empty = await tempConfig({ 'README.md': '# nothing here' });
    await fs.mkdir(path.join(empty, 'nested.json'));
    const dangling = await tempConfig({});
    await fs.symlink(path.join(dangling, 'gone.json'), path.join(dangling, 'link.json'));
    const missing = path.join(empty, 'missing.json');
    expect(await problemsOf([missing, empty, dangling])).toEqual([
      { file: missing, message: 'does not exist' },
      { file: empty, message: 'directory has no .json, .yaml, .yml file' },
      { file: path.join(dangling, 'link.json'), message: 'cannot read: does not exist' },
    ]);
  });

  it('reports JSON and YAML syntax errors with line and column', async () => {
    const dir = await tempConfig({
      'a.json': '{\n  "allowedMetrics": [\n    { "name": "x" }\n    { "name": "y" }\n  ]\n}\n',
      'b.json': '{ "allowedMetrics": [',
      'c.yaml': 'allowedMetrics: []\nallowedMetrics: []\n',
    });
    expect(await problemsOf([dir])).toEqual([
      { file: path.join(dir, 'a.json'), message: "invalid JSON at line 4, column 5: Expected ',' or ']' after array element" },
      { file: path.join(dir, 'b.json'), message: 'invalid JSON at line 1, column 22: Unexpected end of JSON input' },
      { file: path.join(dir, 'c.yaml'), message: 'invalid YAML at line 2, column 1: Map keys must be unique' },
    ]);
  });

  it('rejects +Inf written in YAML', async () => {
    const dir = await tempConfig({ 'a.yaml': 'allowedMetrics:\n  - { name: h, help: h, type: histogram, buckets: [1, .inf] }\n' });
    expect(await problemsOf([dir])).toEqual([
      { file: path.join(dir, 'a.yaml'), metric: 'h', field: 'buckets[1]', message: 'must not be +Inf: the +Inf bucket is always added' },
    ]);
  });

  it('validates its options', async () => {
    await expect(loadWhitelist([])).rejects.toThrow(new RangeError('loadWhitelist: paths must name at least one file or directory'));
    await expect(loadWhitelist([seedDir], { maxSeries: 0 })).rejects.toThrow(new RangeError('loadWhitelist: maxSeries must be a positive integer, got 0'));
  });
});

describe('loadWhitelist: problems across metrics and files', () => {
  it('names both files of a metric defined twice, and the file of one defined twice in it', async () => {
    const dir = await tempConfig({
      'a.json': { allowedMetrics: [counter('x_total'), counter('y_total'), counter('y_total')] },
      'b.json': { allowedMetrics: [counter('x_total')] },
    });
    const [a, b] = [path.join(dir, 'a.json'), path.join(dir, 'b.json')];
    expect(await problemsOf([dir])).toEqual([
      { file: a, metric: 'y_total', field: 'name', message: `metric "y_total" is already defined in ${a}` },
      { file: b, metric: 'x_total', field: 'name', message: `metric "x_total" is already defined in ${a}` },
    ]);
  });

  it("rejects a histogram whose _bucket, _sum or _count series is another metric's name", async () => {
    const dir = await tempConfig({
      'a.json': { allowedMetrics: [{ name: 'rt', help: 'h', type: 'histogram' }, counter('rt_count')] },
      'b.json': { allowedMetrics: [{ name: 'rt_sum', help: 'h', type: 'gauge' }] },
    });
    const [a, b] = [path.join(dir, 'a.json'), path.join(dir, 'b.json')];
    expect(await problemsOf([dir])).toEqual([
      { file: a, metric: 'rt', field: 'name', message: `histogram series "rt_sum" is also the name of the gauge defined in ${b}` },
      { file: a, metric: 'rt', field: 'name', message: `histogram series "rt_count" is also the name of the counter defined in ${a}` },
    ]);
  });

  it('rejects session labels defined in more than one file', async () => {
    const sessionLabels = [{ name: 'app', allowedValues: ['s'] }];
    const dir = await tempConfig({
      'a.json': { allowedMetrics: [], sessionLabels },
      'b.json': { allowedMetrics: [], sessionLabels: [] },
      'c.json': { allowedMetrics: [], sessionLabels },
    });
    expect(await problemsOf([dir])).toEqual([
      { file: path.join(dir, 'c.json'), field: 'sessionLabels', message: `session labels are already defined in ${path.join(dir, 'a.json')}; define them in one file only` },
    ]);
  });

  it('reports every problem of a file with many, and of the other files, at once', async () => {
    const dir = await tempConfig({
      'bad.json': {
        allowedMetrics: [
          { name: 'ok_total', help: 'h', type: 'counter' },
          { name: 'bad-name', help: '', type: 'summary', colour: 'red' },
          { help: 'h', type: 'histogram', labels: [{ name: 'le', allowedValues: [] }], buckets: [2, 1] },
          { name: 'g', help: 'h', type: 'gauge', labels: [{ name: 'a', allowedValues: ['x', 'x'] }, { name: 'a', allowedValues: ['y'] }], buckets: [1] },
          { name: 'connected_clients', help: 'h', type: 'gauge' },
        ],
        sessionLabels: [{ name: '__app', allowedValues: ['x'] }],
      },
      'dup.json': { allowedMetrics: [counter('ok_total')] },
      'broken.json': '{',
    });
    const [bad, dup, broken] = ['bad.json', 'dup.json', 'broken.json'].map((name) => path.join(dir, name));
    expect(await problemsOf([dir])).toEqual([
      { file: broken, message: "invalid JSON at line 1, column 2: Expected property name or '}'" },
      { file: bad, metric: 'bad-name', field: 'colour', message: 'unknown key; expected one of name, help, type, labels, buckets' },
      { file: bad, metric: 'bad-name', field: 'name', message: 'invalid metric name "bad-name": must match [a-zA-Z_:][a-zA-Z0-9_:]*' },
      { file: bad, metric: 'bad-name', field: 'help', message: 'must not be empty' },
      { file: bad, metric: 'bad-name', field: 'type', message: 'unknown metric type "summary"; expected one of counter, gauge, histogram' },
      { file: bad, metric: '#2', field: 'name', message: 'is required' },
      { file: bad, metric: '#2', field: 'labels[0].name', message: 'label "le" is reserved on histograms for the bucket bound' },
      { file: bad, metric: '#2', field: 'labels[0].allowedValues', message: 'must not be empty' },
      { file: bad, metric: '#2', field: 'buckets[1]', message: 'must be greater than the previous bound 2: buckets must be strictly ascending' },
      { file: bad, metric: 'g', field: 'labels[0].allowedValues[1]', message: 'duplicate value "x", first at index 0' },
      { file: bad, metric: 'g', field: 'labels[1].name', message: 'duplicate label "a", first defined at labels[0]' },
      { file: bad, metric: 'g', field: 'buckets', message: 'only histograms have buckets; this metric is a gauge' },
      { file: bad, metric: 'connected_clients', field: 'name', message: `"connected_clients" is reserved for promstream's own metrics (connected_clients, promstream_*)` },
      { file: bad, field: 'sessionLabels[0].name', message: 'invalid label name "__app": names starting with __ are reserved for Prometheus' },
      { file: dup, metric: 'ok_total', field: 'name', message: `metric "ok_total" is already defined in ${bad}` },
    ]);
  });

  it('throws a ConfigError whose message lists every problem', async () => {
    const dir = await tempConfig({ 'a.json': { allowedMetrics: [{ name: 'x', help: 'h', type: 'gauge', labels: [{ name: 'l', allowedValues: [] }] }], extra: 1 } });
    const file = path.join(dir, 'a.json');
    const error = await loadWhitelist([dir]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error instanceof ConfigError && [error.code, error.message]).toEqual([
      'PROMSTREAM_CONFIG_INVALID',
      `invalid whitelist config (2 problems):\n  ${file}: extra: unknown key; expected one of allowedMetrics, sessionLabels\n  ${file}: metric x: labels[0].allowedValues: must not be empty`,
    ]);
  });
});
