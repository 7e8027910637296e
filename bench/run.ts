/**
 * `npm run bench`: runs the scenarios, prints a table per scenario and writes bench/RESULTS.md.
 * Exit code 0 when every correctness check held, 1 when a total was off, 2 on a usage error.
 */
import { writeFileSync } from 'node:fs';
import { BenchContext } from './scenarios/context.js';
import { machineInfo, planCpus } from './report/machine.js';
import { BenchUsageError, HELP, parseBenchArgs, type BenchOptions } from './options.js';
import { Progress } from './report/progress.js';
import { Report } from './report/report.js';
import { baselineSteps, runBaseline } from './scenarios/baseline.js';
import { connectionsSteps, runConnections } from './scenarios/connections.js';
import { ingestSteps, runIngest } from './scenarios/ingest.js';
import { ingestWorkersSteps, runIngestWorkers } from './scenarios/ingest-workers.js';
import { scrapeSteps, runScrape } from './scenarios/scrape.js';
import { judgeTargets } from './report/targets.js';

async function main(argv: readonly string[]): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof BenchUsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\n\n${HELP}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const started = performance.now();
  const cpus = planCpus(options.pin);
  const machine = machineInfo(cpus);
  const command = `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`;
  const report = new Report(machine, command, new Date());
  const has = (s: BenchOptions['scenarios'][number]): boolean => options.scenarios.includes(s);

  const progress = new Progress();
  const run = new BenchContext(options, progress, report, cpus);
  const sessions = { connections: has('connections'), storm: has('storm'), connectionsWorkers: has('connections-workers'), stormWorkers: has('storm-workers') };
  const anySessions = Object.values(sessions).some(Boolean);
  if (has('ingest-workers') || has('connections-workers') || has('storm-workers')) run.prepareWsWorkers();
  progress.totalSteps =
    (has('ingest') ? ingestSteps(run) : 0) + (has('ingest-workers') ? ingestWorkersSteps(run) : 0) + (has('baseline') ? baselineSteps(run) : 0) +
    (has('scrape') ? scrapeSteps(run) : 0) + (anySessions ? connectionsSteps(run, sessions) : 0);
  progress.note(`promstream bench: ${options.scenarios.join(', ')}${options.quick ? ' (quick)' : ''}${options.scenarios.some((s) => s.endsWith('-workers')) ? `, --workers ${options.workers} vs 1` : ''}; ${machine.cpus} CPUs, ${machine.node}, ${machine.pinning}`);

  try {
    const ingest = has('ingest') ? await runIngest(run) : null;
    const ingestWorkers = has('ingest-workers') ? await runIngestWorkers(run) : null;
    const baseline = has('baseline') ? await runBaseline(run, ingest) : null;
    const scrape = has('scrape') ? await runScrape(run) : null;
    const connections = anySessions ? await runConnections(run, sessions) : null;
    if (!options.quick && options.target === null) judgeTargets(report, { ingest, ingestWorkers, baseline, scrape, connections }, options);
  } finally {
    await run.close();
  }
  machine.durationS = (performance.now() - started) / 1000;
  progress.note('');
  process.stdout.write(report.text());
  if (options.out !== null) {
    report.write(options.out);
    process.stdout.write(`wrote ${options.out}\n`);
  }
  if (options.json !== null) {
    writeFileSync(options.json, JSON.stringify({ machine, command, checks: report.checks, targets: report.targets, data: report.data }, null, 2));
  }
  if (!report.allExact) process.stderr.write('bench: some totals did not match what was sent (see Correctness)\n');
  return report.allExact ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
