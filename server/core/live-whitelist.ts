import type { Whitelist } from '../config/types.js';
import { SeriesExposition } from '../scrape/exposition.js';
import { ServerCatalog } from './catalog.js';
import { SeriesLayout, SeriesStore } from './series-store.js';

/** One whitelist in force: its catalogue, the series store laid out by it, and their exposition. */
export class WhitelistState {
  readonly store: SeriesStore;
  private rendering: SeriesExposition | null = null;

  /** `region`: a worker's shared memory for the store (SeriesLayout(catalog, maxFrameBytes).bytes). */
  constructor(
    readonly catalog: ServerCatalog,
    maxSampleValue: number,
    region: { readonly layout: SeriesLayout; readonly buffer: SharedArrayBuffer } | null = null,
  ) {
    this.store = new SeriesStore(catalog, maxSampleValue, region);
  }

  /** Made on first use: workers never render (the main thread does, from every worker's store). */
  get exposition(): SeriesExposition {
    return (this.rendering ??= new SeriesExposition(this.store));
  }
}

/**
 * The whitelist the server runs with. A reload builds the next state beside the current one (totals of
 * the series that remain carried over) and swaps it in one assignment, so that every reader (a frame
 * being applied, a scrape, the demo stats) sees either the old whitelist or the new, never a mix.
 */
export class LiveWhitelist {
  private state: WhitelistState;

  constructor(
    whitelist: Whitelist | ServerCatalog,
    private readonly maxSampleValue: number,
    /** With workers: the maxFrameBytes the store's journal is sized for, and this worker's first region. */
    private readonly shared: { readonly maxFrameBytes: number; readonly region: SharedArrayBuffer } | null = null,
  ) {
    const catalog = whitelist instanceof ServerCatalog ? whitelist : new ServerCatalog(whitelist);
    this.state = new WhitelistState(catalog, maxSampleValue, this.regionFor(catalog, shared?.region ?? null));
  }

  private regionFor(catalog: ServerCatalog, buffer: SharedArrayBuffer | null): { layout: SeriesLayout; buffer: SharedArrayBuffer } | null {
    if (this.shared === null || buffer === null) return null;
    return { layout: new SeriesLayout(catalog, this.shared.maxFrameBytes), buffer };
  }

  get current(): WhitelistState {
    return this.state;
  }

  /**
   * Puts a new catalogue in force with the current totals of the series it keeps (in the same tick:
   * no frame can land in the old store after its totals were copied). Returns how many series it kept.
   */
  replace(catalog: ServerCatalog, region: SharedArrayBuffer | null = null): number {
    const next = new WhitelistState(catalog, this.maxSampleValue, this.regionFor(catalog, region));
    const seriesKept = next.store.carryOver(this.state.store);
    this.state = next;
    return seriesKept;
  }
}
