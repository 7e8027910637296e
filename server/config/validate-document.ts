import { METRIC_TYPES, type MetricType } from '../../protocol/index.js';
import { isRecord, own, problem, reportUnknownKeys, typeName, type Report } from './document-shape.js';
import type { ConfigProblem, LabelSpec, MetricSpec } from './types.js';
import { validateLabelList } from './validate-labels.js';

/** The classic Prometheus metric name grammar (no UTF-8 names: older servers and clients reject them). */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const DOCUMENT_KEYS: readonly string[] = ['allowedMetrics', 'sessionLabels'];
const METRIC_KEYS: readonly string[] = ['name', 'help', 'type', 'labels', 'buckets'];

/** The Prometheus client libraries' default buckets, so a histogram without `buckets` means the same here. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/** promstream exposes these itself; a whitelisted metric of the same name would be exposed twice. */
export function isReservedMetricName(name: string): boolean {
  return name === 'connected_clients' || name.startsWith('promstream_');
}

export interface DocumentResult {
  /** The metrics that passed every check of their own, in document order. */
  metrics: MetricSpec[];
  sessionLabels: LabelSpec[];
  problems: ConfigProblem[];
}

/**
 * Checks one parsed config file: its shape, and each metric and session label on its own. Checks
 * that span metrics or files (duplicates, derived series names, the series budget) are in
 * merge-whitelist.ts.
 */
export function validateWhitelistDocument(doc: unknown, file: string): DocumentResult {
  const problems: ConfigProblem[] = [];
  const result: DocumentResult = { metrics: [], sessionLabels: [], problems };
  const report: Report = (field, message) => problems.push(problem(file, undefined, field, message));
  if (!isRecord(doc)) {
    report(undefined, `must be an object with an allowedMetrics array, got ${typeName(doc)}`);
    return result;
  }
  reportUnknownKeys(doc, DOCUMENT_KEYS, '', report);

  const allowedMetrics = own(doc, 'allowedMetrics');
  if (allowedMetrics === undefined) report('allowedMetrics', 'is required');
  else if (!Array.isArray(allowedMetrics)) report('allowedMetrics', `must be an array of metrics, got ${typeName(allowedMetrics)}`);
  else {
    allowedMetrics.forEach((item: unknown, index) => {
      const metric = validateMetric(item, index, file, problems);
      if (metric !== undefined) result.metrics.push(metric);
    });
  }

  const sessionLabels = own(doc, 'sessionLabels');
  if (sessionLabels !== undefined) {
    result.sessionLabels = validateLabelList(sessionLabels, 'sessionLabels', { histogram: false, session: true }, report) ?? [];
  }
  return result;
}

function validateMetric(item: unknown, index: number, file: string, problems: ConfigProblem[]): MetricSpec | undefined {
  const rawName = isRecord(item) ? own(item, 'name') : undefined;
  const metric = typeof rawName === 'string' && rawName !== '' ? rawName : `#${index}`;
  let valid = true;
  const report: Report = (field, message) => {
    problems.push(problem(file, metric, field, message));
    valid = false;
  };
  if (!isRecord(item)) {
    report(undefined, `must be an object, got ${typeName(item)}`);
    return undefined;
  }
  reportUnknownKeys(item, METRIC_KEYS, '', report);
  const name = validateMetricName(rawName, report);
  const help = validateHelp(own(item, 'help'), report);
  const type = validateType(own(item, 'type'), report);
  const rawLabels = own(item, 'labels');
  const labels = rawLabels === undefined ? [] : validateLabelList(rawLabels, 'labels', { histogram: type === 'histogram' }, report);
  const buckets = validateBuckets(own(item, 'buckets'), type, report);
  if (!valid || name === undefined || help === undefined || type === undefined || labels === undefined || buckets === undefined) {
    return undefined;
  }
  return { name, help, type, labels, buckets, file };
}

function validateMetricName(value: unknown, report: Report): string | undefined {
  if (value === undefined) report('name', 'is required');
  else if (typeof value !== 'string') report('name', `must be a string, got ${typeName(value)}`);
  else if (!METRIC_NAME.test(value)) report('name', `invalid metric name "${value}": must match [a-zA-Z_:][a-zA-Z0-9_:]*`);
  else if (isReservedMetricName(value)) report('name', `"${value}" is reserved for promstream's own metrics (connected_clients, promstream_*)`);
  else return value;
  return undefined;
}

function validateHelp(value: unknown, report: Report): string | undefined {
  if (value === undefined) report('help', 'is required');
  else if (typeof value !== 'string') report('help', `must be a string, got ${typeName(value)}`);
  else if (value.trim() === '') report('help', 'must not be empty');
  else return value;
  return undefined;
}

function validateType(value: unknown, report: Report): MetricType | undefined {
  if (value === undefined) {
    report('type', 'is required');
    return undefined;
  }
  if (typeof value !== 'string') {
    report('type', `must be a string, got ${typeName(value)}`);
    return undefined;
  }
  const type = METRIC_TYPES.find((t) => t === value);
  if (type === undefined) report('type', `unknown metric type "${value}"; expected one of ${METRIC_TYPES.join(', ')}`);
  return type;
}

/** `type` is undefined when it was itself invalid; the buckets are still checked then, to report everything at once. */
function validateBuckets(value: unknown, type: MetricType | undefined, report: Report): readonly number[] | undefined {
  if (value === undefined) return type === 'histogram' ? DEFAULT_BUCKETS : [];
  if (type !== undefined && type !== 'histogram') {
    report('buckets', `only histograms have buckets; this metric is a ${type}`);
    return undefined;
  }
  if (!Array.isArray(value)) {
    report('buckets', `must be an array of numbers, got ${typeName(value)}`);
    return undefined;
  }
  if (value.length === 0) {
    report('buckets', 'must not be empty; omit buckets for the default ones');
    return undefined;
  }
  const buckets: number[] = [];
  let previous: number | undefined;
  value.forEach((bound: unknown, index) => {
    const at = `buckets[${index}]`;
    if (typeof bound !== 'number') report(at, `must be a number, got ${typeName(bound)}`);
    // Every histogram gets its +Inf bucket from the exposition; listing it would expose it twice.
    else if (bound === Infinity) report(at, 'must not be +Inf: the +Inf bucket is always added');
    else if (!Number.isFinite(bound)) report(at, `must be a finite number, got ${bound}`);
    else if (previous !== undefined && bound <= previous) {
      report(at, `must be greater than the previous bound ${previous}: buckets must be strictly ascending`);
    } else {
      buckets.push(bound);
      previous = bound;
    }
  });
  return buckets.length === value.length ? buckets : undefined;
}
