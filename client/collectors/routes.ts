/**
 * Routes and page views (init `route`; bundlers: `promstream/collectors/routes`). Counts
 * `page_views_total{route, navigation}` and tells the other collectors which page view, and so which
 * route, the user is on.
 *
 * - The page load is one view, of the kind Navigation Timing says: `navigate`, `reload`,
 *   `back_forward` or `prerender`.
 * - A soft navigation (history.pushState, replaceState, popstate) is a view of kind `soft` when the
 *   address, without its fragment, has changed once the task that changed it is over: several calls in
 *   one transition, or a replaceState to the same address, make one view or none.
 * - A page restored from the back/forward cache (`pageshow` with `persisted`) is a view of kind
 *   `back_forward_cache`: Web Vitals reported again after the restore belong to it.
 *
 * `route` is a string (the page's route) or a function called with the page's URL at each view. What
 * it gives is cut at a `?` or `#` and at 128 characters; anything but a string (or a throw) is no route.
 * The label gets the route when the whitelist lists it, else the whitelist's fallback, so neither a
 * route function nor a hostile page can add a series; without a fallback such views are rejected.
 */
import { claim, hook, release, type CollectorClient, type Slot } from './hooks.js';

export type RouteOption = string | ((url: URL) => unknown);

/** `page_views_total`'s `navigation` label values. */
export type Navigation = 'navigate' | 'reload' | 'back_forward' | 'prerender' | 'soft' | 'back_forward_cache';

export interface PageView {
  /** 1 for the page load, one more for each later view. */
  readonly id: number;
  /** undefined: no route (counted under the whitelist's fallback). */
  readonly route: string | undefined;
  readonly navigation: Navigation;
  /** The address without its fragment. */
  readonly href: string;
}

export interface PageViews {
  /** The view the user is on now. */
  current(): PageView;
  /**
   * The view a Web Vitals report belongs to, from web-vitals' `navigationType` and `navigationURL`: a
   * soft navigation's by its address, a restore's the latest restore, anything else the page load's.
   */
  of(navigationType: string, navigationURL?: string): PageView;
  stop(): void;
}

export interface RoutesOptions {
  readonly route: RouteOption;
  readonly warn?: (message: string) => void;
}

const MAX_ROUTE_LENGTH = 128;
/** Views kept for attributing soft-navigation vitals by address. */
const RECENT_VIEWS = 8;

/** What a route option gave → the route, or undefined: a string cut at `?`/`#` and at 128 characters. */
export function normaliseRoute(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const end = value.search(/[?#]/);
  return (end < 0 ? value : value.slice(0, end)).slice(0, MAX_ROUTE_LENGTH);
}

/** The page load's kind, from Navigation Timing (Level 2's `type`). */
export function hardNavigation(): Navigation {
  const type = (performance.getEntriesByType?.('navigation')[0] as PerformanceNavigationTiming | undefined)?.type;
  return type === 'reload' || type === 'back_forward' || type === 'prerender' ? type : 'navigate';
}

const withoutFragment = (href: string): string => href.split('#')[0]!;

type SoftHandler = () => void;

/** The history wrappers: after the page's call returns, the slot's handler hears of it. */
const historyHook = (key: 'pushState' | 'replaceState'): Slot<SoftHandler> | null =>
  hook<SoftHandler>(history, key, (original, slot) =>
    function (this: unknown) {
      // eslint-disable-next-line prefer-rest-params -- the page's own arguments, passed on untouched
      const result: unknown = Reflect.apply(original, this, arguments);
      try {
        slot.on?.();
      } catch {
        // ours; the page's call has returned already
      }
      return result;
    });

export function startRoutes(client: CollectorClient, { route, warn = (m) => console.warn(m) }: RoutesOptions): PageViews {
  const views: PageView[] = [];
  let id = 0;
  let warned = false;
  let restored: PageView | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const routeNow = (): string | undefined => {
    let given: unknown;
    try {
      given = typeof route === 'function' ? route(new URL(location.href)) : route;
    } catch {
      given = undefined;
    }
    const r = normaliseRoute(given);
    if (r === undefined && !warned) {
      warned = true;
      warn('promstream: route gave no string (or threw); such page views count under the whitelist\'s fallback');
    }
    return r;
  };

  const view = (navigation: Navigation): PageView => {
    const route = routeNow();
    const v: PageView = { id: ++id, route, navigation, href: withoutFragment(location.href) };
    views.push(v);
    if (views.length > RECENT_VIEWS) views.shift();
    client.record('counter', 'page_views_total', route === undefined ? { navigation } : { route, navigation }, 1, true);
    return v;
  };

  const first = view(hardNavigation());
  const current = (): PageView => views[views.length - 1]!;

  const check = (): void => {
    timer = undefined;
    if (withoutFragment(location.href) !== current().href) view('soft');
  };
  // At the end of the task: a transition's several calls are one view.
  const onHistory: SoftHandler = () => {
    if (timer === undefined) timer = setTimeout(check, 0);
  };
  const onPageshow = (e: PageTransitionEvent): void => {
    if (e.persisted) restored = view('back_forward_cache');
  };
  const slots = [historyHook('pushState'), historyHook('replaceState')];
  if (!slots.every((s) => claim(s, onHistory))) warn('promstream: another promstream client in this page watches history; soft navigations are its');
  addEventListener('popstate', onHistory);
  addEventListener('pageshow', onPageshow);

  return {
    current,
    of(navigationType, navigationURL) {
      if (navigationType === 'back-forward-cache') return restored ?? current();
      if (navigationType !== 'soft-navigation') return first;
      const href = navigationURL === undefined ? '' : withoutFragment(navigationURL);
      for (let i = views.length - 1; i >= 0; i--) if (views[i]!.href === href) return views[i]!;
      return current();
    },
    stop() {
      for (const s of slots) release(s, onHistory);
      removeEventListener('popstate', onHistory);
      removeEventListener('pageshow', onPageshow);
      clearTimeout(timer);
    },
  };
}
