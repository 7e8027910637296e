import type { Whitelist } from '../config/types.js';
import { SeriesExposition } from '../scrape/exposition.js';
import { ServerCatalog } from './catalog.js';
import { SeriesStore } from './series-store.js';

/** One whitelist in force: its catalogue, the series store laid out by it, and their exposition. */
export class WhitelistState {
  readonly store: SeriesStore;
  readonly exposition: SeriesExposition;

  constructor(
    readonly catalog: ServerCatalog,
    maxSampleValue: number,
  ) {
    this.store = new SeriesStore(catalog, maxSampleValue);
    this.exposition = new SeriesExposition(this.store);
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
    whitelist: Whitelist,
    private readonly maxSampleValue: number,
  ) {
    this.state = new WhitelistState(new ServerCatalog(whitelist), maxSampleValue);
  }

  get current(): WhitelistState {
    return this.state;
  }

  /**
   * Puts a new catalogue in force with the current totals of the series it keeps (in the same tick:
   * no frame can land in the old store after its totals were copied). Returns how many series it kept.
   */
  replace(catalog: ServerCatalog): number {
    const next = new WhitelistState(catalog, this.maxSampleValue);
    const seriesKept = next.store.carryOver(this.state.store);
    this.state = next;
    return seriesKept;
  }
}
