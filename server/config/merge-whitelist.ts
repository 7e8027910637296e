import { problem } from './document-shape.js';
import type { ConfigProblem, LabelSpec, MetricSpec, Whitelist } from './types.js';

/** What one valid-on-its-own file contributes (see validateWhitelistDocument). */
export interface FileContribution {
  readonly file: string;
  readonly metrics: readonly MetricSpec[];
  readonly sessionLabels: readonly LabelSpec[];
}

/** Suffixes of the series a histogram exposes besides its name (plus `_bucket{le="+Inf"}`). */
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'] as const;
/** How many of the biggest metrics the series-budget problem names. */
const BIGGEST_SHOWN = 3;

/** Series one metric can expose: one per label-value combination, times the buckets, +Inf, _sum and _count of a histogram. */
export function seriesCount(metric: MetricSpec): number {
  const combinations = metric.labels.reduce((n, label) => n * label.allowedValues.length, 1);
  return metric.type === 'histogram' ? combinations * (metric.buckets.length + 3) : combinations;
}

/**
 * Merges the files in order and checks what spans metrics and files: a name defined twice, a
 * histogram series name taken by another metric, session labels defined in two files, and the
 * total series budget.
 */
export function mergeWhitelist(parts: readonly FileContribution[], maxSeries: number): { whitelist: Whitelist; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const byName = new Map<string, MetricSpec>();
  const metrics: MetricSpec[] = [];
  for (const metric of parts.flatMap((part) => part.metrics)) {
    const first = byName.get(metric.name);
    if (first !== undefined) {
      problems.push(problem(metric.file, metric.name, 'name', `metric "${metric.name}" is already defined in ${first.file}`));
      continue;
    }
    byName.set(metric.name, metric);
    metrics.push(metric);
  }

  for (const metric of metrics) {
    if (metric.type !== 'histogram') continue;
    for (const suffix of HISTOGRAM_SUFFIXES) {
      const other = byName.get(metric.name + suffix);
      if (other === undefined) continue;
      problems.push(
        problem(metric.file, metric.name, 'name', `histogram series "${other.name}" is also the name of the ${other.type} defined in ${other.file}`),
      );
    }
  }

  // An empty list contributes nothing, so only files that actually list session labels can conflict.
  const withSessionLabels = parts.filter((part) => part.sessionLabels.length > 0);
  const sessionSource = withSessionLabels[0];
  for (const part of withSessionLabels.slice(1)) {
    problems.push(problem(part.file, undefined, 'sessionLabels', `session labels are already defined in ${sessionSource?.file ?? ''}; define them in one file only`));
  }

  const budgetProblem = checkSeriesBudget(metrics, maxSeries);
  if (budgetProblem !== undefined) problems.push(budgetProblem);

  return {
    whitelist: { metrics, sessionLabels: sessionSource?.sessionLabels ?? [], files: parts.map((part) => part.file) },
    problems,
  };
}

function checkSeriesBudget(metrics: readonly MetricSpec[], maxSeries: number): ConfigProblem | undefined {
  const counted = metrics.map((metric) => ({ metric, series: seriesCount(metric) }));
  const total = counted.reduce((sum, { series }) => sum + series, 0);
  if (total <= maxSeries) return undefined;
  // Array.prototype.sort is stable: ties keep file order.
  const biggest = counted.sort((a, b) => b.series - a.series).slice(0, BIGGEST_SHOWN);
  const list = biggest.map(({ metric, series }) => `${metric.name} ${series} (${metric.file})`).join(', ');
  // The biggest metric is where a fix most likely starts, so the problem points at its file.
  const file = biggest[0]?.metric.file ?? '';
  return problem(file, undefined, undefined, `${total} series in total exceed maxSeries ${maxSeries}; the biggest: ${list}`);
}
