import type { MetricType } from '../../protocol/index.js';
import { ErrorCode, PromstreamError } from '../errors.js';

export interface LabelSpec {
  readonly name: string;
  /** Every value a sample may carry; the fallback (when there is one) among them. */
  readonly allowedValues: readonly string[];
  /**
   * Metric labels only: the value a sample is counted under when the client saw a value outside the
   * list (PROTOCOL.md: the label index one past the last). Absent: such samples are rejected.
   */
  readonly fallback?: string;
}

export interface MetricSpec {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly labels: readonly LabelSpec[];
  /** Ascending finite upper bounds without +Inf; empty unless type is histogram. */
  readonly buckets: readonly number[];
  /** The file it came from, for messages. */
  readonly file: string;
}

/** The merged whitelist of every config file: what the server accepts and exposes. */
export interface Whitelist {
  readonly metrics: readonly MetricSpec[];
  readonly sessionLabels: readonly LabelSpec[];
  /** Files read, in order. */
  readonly files: readonly string[];
}

export interface ConfigProblem {
  readonly file: string;
  /** The metric's name (or index when it has none); absent for file-level problems. */
  readonly metric?: string;
  /** Path of the field inside the metric or file, e.g. 'labels[1].allowedValues'. */
  readonly field?: string;
  readonly message: string;
}

/** Thrown by loadWhitelist (and startServer, reload) with every problem found, not just the first. */
export class ConfigError extends PromstreamError {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(ErrorCode.CONFIG_INVALID, `invalid whitelist config (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` + problems.map(formatProblem).join('\n'));
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = [p.file, p.metric !== undefined ? `metric ${p.metric}` : null, p.field ?? null].filter((x) => x !== null).join(': ');
  return `  ${where}: ${p.message}`;
}
