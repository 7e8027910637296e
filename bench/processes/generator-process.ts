/**
 * A load-generator process: holds raw ingest connections, HTTP baseline connections or a fleet of
 * protocol sessions, as the parent asks. Several of these run side by side when one process could not hold all
 * the sockets (the open-file limit) or would itself become the bottleneck.
 */
import { serveParent, type IpcRequest } from './child-process.js';
import { RawSessionFleet, type FleetOpen } from '../generators/raw-session-fleet.js';
import { RawHttpLoad, type HttpLoadOpen } from '../generators/raw-http-load.js';
import { RawIngest, type RawIngestOpen } from '../generators/raw-ingest.js';

let ingest: RawIngest | null = null;
let http: RawHttpLoad | null = null;
const fleet = new RawSessionFleet();

const body = <T>(req: IpcRequest): T => req as unknown as T;

serveParent({
  async 'ingest-open'(req) {
    ingest?.close();
    ingest = new RawIngest();
    return ingest.open(body<RawIngestOpen>(req));
  },
  'ingest-start'(req) {
    ingest!.start(body<{ maxFramesPerConnection: number; everyMs?: number; maxUnacked?: number }>(req));
  },
  'ingest-stop'(req) {
    return ingest!.stop(body<{ awaitAcks: boolean; timeoutMs?: number }>(req));
  },
  'ingest-close'() {
    ingest?.close();
    ingest = null;
  },
  async 'http-open'(req) {
    http?.close();
    http = new RawHttpLoad();
    await http.open(body<HttpLoadOpen>(req));
  },
  'http-start'() {
    http!.start();
  },
  'http-stop'() {
    return http!.stop();
  },
  'http-close'() {
    http?.close();
    http = null;
  },
  'fleet-open': (req) => fleet.open(body<FleetOpen>(req)),
  'fleet-record'(req) {
    fleet.record(body<{ everyMs: number; spread: number }>(req));
  },
  'fleet-stop-recording'() {
    fleet.stopRecording();
  },
  'fleet-cut': (req) => fleet.cut(body<{ timeoutMs: number }>(req).timeoutMs),
  'fleet-flush': (req) => fleet.flush(body<{ timeoutMs: number }>(req).timeoutMs),
  'fleet-close': () => fleet.close(),
});
