import { DEFAULTS } from '../setup/option-table.js';
import { metricsTooBigForAFrame } from './frame-fit.js';
import { mergeWhitelist, type FileContribution } from './merge-whitelist.js';
import { readConfigFiles } from './read-config-files.js';
import { ConfigError, type ConfigProblem, type Whitelist } from './types.js';
import { validateWhitelistDocument } from './validate-document.js';

export { validateWhitelistDocument } from './validate-document.js';

export interface LoadWhitelistOptions {
  /** Upper bound on the series the whitelist can expose; default DEFAULTS.maxSeries (1,000,000). */
  readonly maxSeries?: number;
  /** The server's protocol frame limit: a metric one sample of which cannot fit is refused; default DEFAULTS.maxFrameBytes. */
  readonly maxFrameBytes?: number;
}

/**
 * Reads, checks and merges the whitelist files. Each path is a file or a directory (its .json, .yaml
 * and .yml files, sorted by name). Throws a ConfigError listing every problem found in every file,
 * so that one start of the server shows all there is to fix.
 */
export async function loadWhitelist(paths: readonly string[], options: LoadWhitelistOptions = {}): Promise<Whitelist> {
  const maxSeries = options.maxSeries ?? DEFAULTS.maxSeries;
  if (!Number.isSafeInteger(maxSeries) || maxSeries < 1) {
    throw new RangeError(`loadWhitelist: maxSeries must be a positive integer, got ${maxSeries}`);
  }
  if (paths.length === 0) throw new RangeError('loadWhitelist: paths must name at least one file or directory');

  const { files, problems } = await readConfigFiles(paths);
  const parts: FileContribution[] = [];
  const documentProblems: ConfigProblem[] = [];
  for (const { file, document } of files) {
    const result = validateWhitelistDocument(document, file);
    documentProblems.push(...result.problems);
    parts.push({ file, metrics: result.metrics, sessionLabels: result.sessionLabels });
  }
  const merged = mergeWhitelist(parts, maxSeries);
  const all = [...problems, ...documentProblems, ...merged.problems, ...metricsTooBigForAFrame(merged.whitelist, options.maxFrameBytes ?? DEFAULTS.maxFrameBytes)];
  if (all.length > 0) throw new ConfigError(all);
  return merged.whitelist;
}
