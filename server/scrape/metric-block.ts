import { CLIENT_DROP_REASONS, ClientCloseReasons, CloseCode, CloseReasons, SERVER_REJECT_REASONS, type RejectReason } from '../../protocol/index.js';
import type { LabelSpec } from '../config/types.js';
import { SHARED_PAD_BYTES } from '../core/shared-memory.js';

/** Bucket bounds of promstream_frame_apply_seconds. */
export const FRAME_APPLY_BUCKETS: readonly number[] = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025];

/** Every allowed combination of session label values, in a fixed order (the index connected_clients uses). */
export function combinations(labels: readonly LabelSpec[]): Record<string, string>[] {
  if (labels.length === 0) return [{}];
  const [first, ...rest] = labels as [LabelSpec, ...LabelSpec[]];
  const out: Record<string, string>[] = [];
  for (const tail of combinations(rest)) for (const value of first.allowedValues) out.push({ [first.name]: value, ...tail });
  return out;
}

/**
 * Where each of a worker's own counters sits in its block of numbers. The layout depends only on the
 * protocol's catalogues and the session labels, so the main thread and every worker compute the same.
 */
export class MetricLayout {
  static readonly FRAMES = 0;
  static readonly BYTES = 1;
  static readonly SAMPLES = 2;
  static readonly OPENED = 3;
  static readonly RESUMED = 4;
  static readonly EVICTED = 5;
  /** Gauge: sockets open on this worker (the host-wide count is rebuilt from these when a worker dies). */
  static readonly LIVE = 6;
  /** Gauges of the worker's event loop: delay (p99 of the last interval, seconds) and utilization (0–1). */
  static readonly LOOP_DELAY = 7;
  static readonly LOOP_UTILIZATION = 8;
  private static readonly FIXED = 9;

  readonly rejectReasons: readonly RejectReason[] = SERVER_REJECT_REASONS;
  readonly dropReasons: readonly RejectReason[] = CLIENT_DROP_REASONS;
  readonly errorReasons: readonly string[];
  /** Label values of promstream_closes_total{code}: the known codes, then "other". */
  readonly closeCodes: readonly string[];
  readonly combos: readonly Readonly<Record<string, string>>[];
  readonly rejectedAt: number;
  readonly droppedAt: number;
  readonly errorsAt: number;
  readonly closesAt: number;
  /** FRAME_APPLY_BUCKETS.length + 1 counts (the last +Inf), then the sum. */
  readonly applyAt: number;
  readonly connectedAt: number;
  readonly size: number;
  private readonly rejectIndex: ReadonlyMap<string, number>;
  private readonly dropIndex: ReadonlyMap<string, number>;
  private readonly errorIndex: ReadonlyMap<string, number>;
  private readonly closeIndex: ReadonlyMap<number, number>;

  constructor(sessionLabels: readonly LabelSpec[]) {
    // every reason a close counts, and the one refusal that is no close: an upgrade from an origin not allowed
    this.errorReasons = [...new Set([...Object.values(CloseReasons).flatMap((r) => (r.metric === null ? [] : [r.metric])), 'origin_not_allowed'])];
    const codes = [...new Set<number>([
      ...Object.values(CloseReasons).map((r) => r.code), ...Object.values(ClientCloseReasons).map((r) => r.code),
      CloseCode.GOING_AWAY, CloseCode.NO_STATUS, CloseCode.ABNORMAL,
    ])].sort((a, b) => a - b);
    this.closeCodes = [...codes.map(String), 'other'];
    this.combos = combinations(sessionLabels).map((c) => Object.freeze(c));
    this.rejectIndex = new Map(this.rejectReasons.map((r, i) => [r, i]));
    this.dropIndex = new Map(this.dropReasons.map((r, i) => [r, i]));
    this.errorIndex = new Map(this.errorReasons.map((r, i) => [r, i]));
    this.closeIndex = new Map(codes.map((c, i) => [c, i]));
    let at = MetricLayout.FIXED;
    this.rejectedAt = at;
    at += this.rejectReasons.length;
    this.droppedAt = at;
    at += this.dropReasons.length;
    this.errorsAt = at;
    at += this.errorReasons.length;
    this.closesAt = at;
    at += this.closeCodes.length;
    this.applyAt = at;
    at += FRAME_APPLY_BUCKETS.length + 2;
    this.connectedAt = at;
    at += this.combos.length;
    this.size = at;
  }

  rejected(reason: string): number {
    return this.rejectedAt + (this.rejectIndex.get(reason) ?? -1);
  }

  dropped(reason: string): number {
    const i = this.dropIndex.get(reason);
    return i === undefined ? -1 : this.droppedAt + i;
  }

  error(reason: string): number {
    return this.errorsAt + this.errorIndex.get(reason)!;
  }

  close(code: number): number {
    return this.closesAt + (this.closeIndex.get(code) ?? this.closeCodes.length - 1);
  }

  /** Bytes of a block: its numbers, with SHARED_PAD_BYTES free before and after them. */
  get bytes(): number {
    return this.size * 8 + 2 * SHARED_PAD_BYTES;
  }

  /** The numbers of a block in `buffer` (of `bytes`), for the worker that writes them and the main thread that sums them. */
  values(buffer: SharedArrayBuffer | ArrayBuffer): Float64Array {
    return new Float64Array(buffer, SHARED_PAD_BYTES, this.size);
  }
}

/**
 * One worker's own counters, in a block of numbers (shared memory when there are workers): the worker
 * writes, the main thread sums every worker's block at scrape time. A worker that dies leaves its block
 * behind, so the host's counters never go down (Prometheus would read a drop as a counter reset); its
 * gauges are zeroed, since its connections are gone. Writes are plain additions: one writer per block.
 */
export class MetricBlock {
  readonly values: Float64Array;

  constructor(
    readonly layout: MetricLayout,
    buffer: SharedArrayBuffer | ArrayBuffer = new ArrayBuffer(layout.bytes),
  ) {
    this.values = layout.values(buffer);
  }

  frame(bytes: number): void {
    this.values[MetricLayout.FRAMES]!++;
    this.values[MetricLayout.BYTES]! += bytes;
  }

  samplesApplied(n: number): void {
    this.values[MetricLayout.SAMPLES]! += n;
  }

  sessionOpened(): void {
    this.values[MetricLayout.OPENED]!++;
  }

  sessionResumed(): void {
    this.values[MetricLayout.RESUMED]!++;
  }

  sessionEvicted(): void {
    this.values[MetricLayout.EVICTED]!++;
  }

  live(delta: number): void {
    this.values[MetricLayout.LIVE]! += delta;
  }

  rejected(reason: RejectReason, n: number): void {
    this.values[this.layout.rejected(reason)]! += n;
  }

  /** Drops a client reports; reasons outside the catalogue are not counted (false). */
  clientDropped(reason: string, n: number): boolean {
    const at = this.layout.dropped(reason);
    if (at < 0) return false;
    this.values[at]! += n;
    return true;
  }

  protocolError(reason: string): void {
    this.values[this.layout.error(reason)]!++;
  }

  close(code: number): void {
    this.values[this.layout.close(code)]!++;
  }

  frameApplied(seconds: number): void {
    let i = 0;
    while (i < FRAME_APPLY_BUCKETS.length && seconds > FRAME_APPLY_BUCKETS[i]!) i++;
    const at = this.layout.applyAt;
    this.values[at + i]!++;
    this.values[at + FRAME_APPLY_BUCKETS.length + 1]! += seconds;
  }

  /** A connection of session label combination `combo` joins (+1) or leaves (-1) connected_clients. */
  connected(combo: number, delta: number): void {
    this.values[this.layout.connectedAt + combo]! += delta;
  }

  loop(delaySeconds: number, utilization: number): void {
    this.values[MetricLayout.LOOP_DELAY] = delaySeconds;
    this.values[MetricLayout.LOOP_UTILIZATION] = utilization;
  }

  /** The worker is gone: nothing of its is connected any more. */
  zeroGauges(): void {
    this.values[MetricLayout.LIVE] = 0;
    this.values[MetricLayout.LOOP_DELAY] = 0;
    this.values[MetricLayout.LOOP_UTILIZATION] = 0;
    this.values.fill(0, this.layout.connectedAt, this.layout.connectedAt + this.layout.combos.length);
  }
}
