/**
 * The back/forward cache and WebSockets, engine by engine (docs/BFCACHE-FINDINGS.md). Small standalone
 * pages in plain JavaScript, a raw WebSocket to a tiny ws server of the test's own on 127.0.0.1, and one
 * question per page: is the page cached when the user leaves it through a link and comes back with the
 * back button, which lifecycle events fire in which order, and what becomes of the socket.
 *
 * Each variant is one strategy a client could use (close the socket in pagehide, in beforeunload, on
 * visibilitychange → hidden, on freeze, before leaving, ...); `bare` and `listeners` are the controls
 * without a socket, proving that the cache works at all in each automation setup. The expectations
 * below are what was measured; a browser upgrade that changes one fails here with the event log.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { launchChromiumEngine } from '../support/engines/chromium.js';
import { ENGINES, type EngineBrowser, type EngineName, type HistoryNavigation } from '../support/engines/index.js';
import { launchFirefoxEngine } from '../support/engines/firefox.js';
import { launchWebKitEngine } from '../support/engines/webkit.js';
import { waitFor } from '../support/wait-for.js';

/** What a probe page does with its socket. */
const VARIANTS = {
  /** No socket, no listener of the page's own: does the cache work at all here? */
  bare: 'no socket, no listeners',
  /** No socket; listeners for every lifecycle event, beforeunload included. */
  listeners: 'no socket; beforeunload, pagehide, visibilitychange, freeze, resume, pageshow listeners',
  /** No socket; an unload listener, the classic bfcache blocker. */
  unload: 'no socket; an unload listener',
  /** The socket stays open when the page is left. */
  open: 'socket open when leaving',
  /** socket.close(4100) in pagehide (persisted or not), reopened on pageshow(persisted). */
  'close-pagehide': 'close in pagehide, reopen on pageshow(persisted)',
  /** socket.close(4100) in beforeunload, reopened on pageshow(persisted). */
  'close-beforeunload': 'close in beforeunload, reopen on pageshow(persisted)',
  /** socket.close(4100) on visibilitychange → hidden, reopened on pageshow(persisted). */
  'close-hidden': 'close on visibilitychange→hidden, reopen on pageshow(persisted)',
  /** socket.close(4100) on document freeze, reopened on resume. */
  'close-freeze': 'close on freeze, reopen on pageshow(persisted)',
  /** Closed (and the close handshake done) before the user leaves. */
  'closed-before': 'socket opened, then closed before leaving',
  /**
   * close() called before leaving, but the server never answers it (it reads nothing more, pongs
   * included): the socket is CLOSING when the page is left. Only the cache verdict is looked at.
   */
  'closing-before': 'socket CLOSING when leaving (the server never answers the close)',
  /** socket.close(4100) in the Navigation API's navigate event (before beforeunload), where there is one. */
  'close-navigate': 'close in navigation.onnavigate, reopen on pageshow(persisted)',
  /** close-beforeunload, but the next page's server takes 300 ms to answer (a real network's delay). */
  'close-beforeunload+slow': 'close in beforeunload; the next page answers after 300 ms',
  /** close-navigate, with the slow next page. */
  'close-navigate+slow': 'close in navigation.onnavigate; the next page answers after 300 ms',
  /** The socket lives in a dedicated Worker and stays open when the page is left. */
  'worker-open': 'socket open in a dedicated worker when leaving',
  /** The socket lives in a SharedWorker (made from a blob: URL) and stays open when the page is left. */
  'sharedworker-open': 'socket open in a shared worker when leaving',
  /** sharedworker-open, but the page tells the worker in pagehide to close the socket (quietly: no message back), and to open one on pageshow(persisted). */
  'sharedworker-close': 'socket in a shared worker, closed by it on the page\'s pagehide',
  /**
   * sharedworker-close, but in pagehide the page first makes its worker busy for WORKER_BUSY_MS (a
   * loaded machine, a slow thread), then posts the close: does the close still reach it while the page
   * is cached?
   */
  'sharedworker-close+busy': 'socket in a shared worker, closed by it on pagehide; the worker busy when the page is left',
  /** bare, but the page is served with Cache-Control: no-store. */
  'bare+nostore': 'no socket, no listeners; Cache-Control: no-store',
} as const;
type Variant = keyof typeof VARIANTS;

/** The strategy part of a variant (before "+"): what the page does. */
const strategyOf = (variant: Variant): string => variant.split('+')[0]!;
const SOCKETLESS = ['bare', 'listeners', 'unload'];
/** Milliseconds the next page's server waits before answering in this variant. */
const nextDelayOf = (variant: Variant): number => (variant.endsWith('+slow') ? 300 : 0);

/** How long the worker of `sharedworker-close+busy` is busy from the page's pagehide. */
const WORKER_BUSY_MS = 1500;

/** A resumable close code a client can use (1000/1001 end a promstream session; 4100 keeps it). */
const CLIENT_CODE = 4100;

// ---------------------------------------------------------------------------------------------------
// The ws server: logs every open and close, per connection id, with the server's clock.

interface ServerEvent {
  readonly at: number;
  readonly id: string;
  readonly event: 'open' | 'close' | 'pong';
  readonly code?: number;
  readonly reason?: string;
}

class ProbeSocketServer {
  readonly events: ServerEvent[] = [];
  private readonly sockets = new Map<string, WebSocket[]>();
  private constructor(private readonly server: http.Server, private readonly wss: WebSocketServer, readonly port: number) {}

  static async start(): Promise<ProbeSocketServer> {
    const server = http.createServer((_req, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({ server });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const probe = new ProbeSocketServer(server, wss, (server.address() as AddressInfo).port);
    wss.on('connection', (ws, req) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const id = url.searchParams.get('id') ?? '?';
      probe.sockets.set(id, [...(probe.sockets.get(id) ?? []), ws]);
      probe.events.push({ at: Date.now(), id, event: 'open' });
      ws.on('close', (code, reason) => probe.events.push({ at: Date.now(), id, event: 'close', code, reason: reason.toString() }));
      ws.on('pong', () => probe.events.push({ at: Date.now(), id, event: 'pong' }));
      ws.on('error', () => {});
      // A client socket that must stay CLOSING: stop reading, so that its close frame is never answered.
      if (url.searchParams.has('hold')) ws.pause();
    });
    return probe;
  }

  of(id: string): ServerEvent[] {
    return this.events.filter((e) => e.id === id);
  }

  /** Pings the open connections of `id`; a pong (logged) proves the peer, frozen page or not, answers. */
  ping(id: string): number {
    const open = (this.sockets.get(id) ?? []).filter((ws) => ws.readyState === ws.OPEN);
    for (const ws of open) ws.ping();
    return open.length;
  }

  async close(): Promise<void> {
    for (const list of this.sockets.values()) for (const ws of list) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------------
// The pages. No Cache-Control: no-store (Chromium keeps such pages out of its cache: see the
// `no-store` test below), no CSP, plain JavaScript.

/** Logs to sessionStorage (shared by the probe page and the page it links to: same origin, same tab). */
const LOGGER = `
  function log(what, detail) {
    var entries = JSON.parse(sessionStorage.getItem('log') || '[]');
    entries.push([Math.round(performance.timeOrigin + performance.now()), DOC, what].concat(detail === undefined ? [] : [detail]));
    sessionStorage.setItem('log', JSON.stringify(entries));
  }`;

function probePage(variant: Variant, wsPort: number, id: string): string {
  const strategy = strategyOf(variant);
  const listeners = strategy !== 'bare' && strategy !== 'unload';
  const socket = !SOCKETLESS.includes(strategy);
  return `<!doctype html><html><head><meta charset="utf-8"><title>probe ${variant}</title></head>
<body><h1>probe: ${VARIANTS[variant]}</h1><a id="next" href="/next?delay=${nextDelayOf(variant)}">next page</a>
<script>
  var DOC = 'probe';
  var VARIANT = ${JSON.stringify(strategy)};
  var BUSY = ${JSON.stringify(variant.endsWith('+busy'))};
  var URL_WS = 'ws://127.0.0.1:${wsPort}/ws?id=${id}';
  ${LOGGER}
  window.sockets = [];
  function open(why) {
    var ws = new WebSocket(URL_WS + (VARIANT === 'closing-before' ? '&hold' : '') + '&n=' + sockets.length);
    sockets.push(ws);
    ws.onopen = function () { log('ws-open', why); };
    ws.onclose = function (e) { log('ws-close', { code: e.code, wasClean: e.wasClean, why: why }); };
    ws.onerror = function () { log('ws-error', why); };
    return ws;
  }
  function current() { return sockets[sockets.length - 1]; }
  function closeFor(event) {
    var ws = current();
    if (ws && ws.readyState <= 1) { log('ws-close-called', { in: event, readyState: ws.readyState }); ws.close(${CLIENT_CODE}, 'leaving: ' + event); }
  }
  ${listeners ? `
  addEventListener('beforeunload', function () { log('beforeunload'); if (VARIANT === 'close-beforeunload') closeFor('beforeunload'); });
  addEventListener('pagehide', function (e) { log('pagehide', { persisted: e.persisted, ws: current() ? current().readyState : null }); if (VARIANT === 'close-pagehide') closeFor('pagehide'); });
  document.addEventListener('visibilitychange', function () { log('visibilitychange', document.visibilityState); if (VARIANT === 'close-hidden' && document.visibilityState === 'hidden') closeFor('visibilitychange'); });
  document.addEventListener('freeze', function () { log('freeze', { ws: current() ? current().readyState : null }); if (VARIANT === 'close-freeze') closeFor('freeze'); });
  document.addEventListener('resume', function () { log('resume'); });
  addEventListener('pageshow', function (e) {
    log('pageshow', { persisted: e.persisted, ws: current() ? current().readyState : null });
    // Back from the cache: a strategy that closed the socket opens a new one (a client would resume).
    if (e.persisted && VARIANT.indexOf('close-') === 0) open('after restore');
  });
  addEventListener('pageswap', function (e) { log('pageswap', e.activation ? e.activation.navigationType : null); });
  addEventListener('pagereveal', function () { log('pagereveal'); });
  if (window.navigation) navigation.addEventListener('navigate', function (e) { log('navigate', { type: e.navigationType, url: e.destination.url.replace(location.origin, '') }); if (VARIANT === 'close-navigate') closeFor('navigate'); });
  ` : ''}
  ${strategy === 'unload' ? `addEventListener('unload', function () { log('unload'); });` : ''}
  log('load-start', { navigation: !!window.navigation });
  ${strategy === 'worker-open' ? `
  var worker = new Worker(URL.createObjectURL(new Blob([
    'var ws = new WebSocket(' + JSON.stringify(URL_WS) + ');' +
    'ws.onopen = function () { postMessage(["ws-open", 1]); };' +
    'ws.onclose = function (e) { postMessage(["ws-close", { code: e.code, wasClean: e.wasClean, why: "in worker" }]); };'
  ], { type: 'text/javascript' })));
  worker.onmessage = function (e) { log(e.data[0], e.data[1]); if (e.data[0] === 'ws-open') sockets.push({ readyState: 1 }); };
  ` : strategy.indexOf('sharedworker-') === 0 ? `
  var shared = new SharedWorker(URL.createObjectURL(new Blob([
    'var ports = []; var ws = null; var n = 0;' +
    'function openWs() { ws = new WebSocket(' + JSON.stringify(URL_WS) + ' + "&n=" + (n++));' +
    ' ws.onopen = function () { ports.forEach(function (p) { p.postMessage(["ws-open", 1]); }); };' +
    ' ws.onclose = function (e) { ports.forEach(function (p) { p.postMessage(["ws-close", { code: e.code, wasClean: e.wasClean, why: "in shared worker" }]); }); }; }' +
    'onconnect = function (e) { var port = e.ports[0]; ports.push(port);' +
    ' port.onmessage = function (m) { if (m.data === "busy") { var until = Date.now() + ${WORKER_BUSY_MS}; while (Date.now() < until) {} } else if (m.data === "close" && ws) { ws.onopen = ws.onclose = null; ws.close(${CLIENT_CODE}, "page cached"); ws = null; } else if (m.data === "open" && ws === null) openWs(); };' +
    ' if (ws === null) openWs(); else if (ws.readyState === 1) port.postMessage(["ws-open", 1]); };'
  ], { type: 'text/javascript' })));
  shared.port.onmessage = function (e) { log(e.data[0], e.data[1]); if (e.data[0] === 'ws-open') sockets.push({ readyState: 1 }); };
  if (VARIANT === 'sharedworker-close') {
    addEventListener('pagehide', function (e) { if (e.persisted) { if (BUSY) shared.port.postMessage('busy'); shared.port.postMessage('close'); } });
    addEventListener('pageshow', function (e) { if (e.persisted) shared.port.postMessage('open'); });
  }
  ` : socket ? `open('on load');` : ''}
</script></body></html>`;
}

const NEXT_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>next</title></head><body><h1>the next page</h1>
<script>var DOC = 'next'; ${LOGGER} log('load-start'); addEventListener('pageshow', function (e) { log('pageshow', { persisted: e.persisted }); });</script></body></html>`;

async function startPages(wsPort: number, noStore = false): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const headers = { 'content-type': 'text/html; charset=utf-8', ...(noStore || url.searchParams.has('nostore') ? { 'cache-control': 'no-store' } : {}) };
    if (url.pathname === '/probe') res.writeHead(200, headers).end(probePage(url.searchParams.get('variant') as Variant, wsPort, url.searchParams.get('id') ?? '?'));
    // A next page that takes its time, as one from across a network would (the server's delay, not the test's).
    else if (url.pathname === '/next') setTimeout(() => res.writeHead(200, headers).end(NEXT_PAGE), Number(url.searchParams.get('delay') ?? 0));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------
// One round: load the probe, leave it through the link, come back with the back button.

type LogEntry = [number, 'probe' | 'next', string, unknown?];

interface Round {
  readonly variant: Variant;
  readonly history: HistoryNavigation;
  /** The page's own log, both documents, in order. */
  readonly log: readonly LogEntry[];
  /** The server's view of this round's sockets. */
  readonly server: readonly ServerEvent[];
  /** While the user was on the next page: 'closed' (with the code the server got) or 'alive' (a ping was answered). */
  readonly whileAway: { state: 'closed'; code: number | undefined } | { state: 'alive' } | { state: 'none' };
  /** Driver output (Firefox's BFCache log) while the round ran. */
  readonly driverLog: readonly string[];
}

let roundNumber = 0;

async function runRound(browser: EngineBrowser, ws: ProbeSocketServer, origin: string, variant: Variant, output: string[]): Promise<Round> {
  const id = `${browser.engine}-${variant.replace('+', '_')}-${++roundNumber}`;
  const hasSocket = !SOCKETLESS.includes(strategyOf(variant));
  const outputFrom = output.length;
  const tab = await browser.newTab(`${origin}/probe?variant=${encodeURIComponent(variant)}&id=${id}${variant.endsWith('+nostore') ? '&nostore' : ''}`);
  try {
    await tab.evaluate(() => {
      sessionStorage.removeItem('log');
      return null;
    });
    if (hasSocket) {
      await waitFor(() => ws.of(id).some((e) => e.event === 'open'), { what: `${id}: the socket to open` });
      await waitFor(() => tab.evaluate(() => (window as unknown as { sockets: WebSocket[] }).sockets[0]?.readyState === 1), { what: `${id}: the page to see its socket open` });
    }
    if (variant === 'closed-before') {
      await tab.evaluate(() => {
        (window as unknown as { sockets: WebSocket[] }).sockets[0]!.close(4100, 'done');
        return null;
      });
      await waitFor(() => ws.of(id).some((e) => e.event === 'close'), { what: `${id}: the close before leaving` });
      await waitFor(() => tab.evaluate(() => (window as unknown as { sockets: WebSocket[] }).sockets[0]?.readyState === 3), { what: `${id}: CLOSED in the page` });
    }
    if (variant === 'closing-before') {
      const state = await tab.evaluate(() => {
        const s = (window as unknown as { sockets: WebSocket[] }).sockets[0]!;
        s.close(4100, 'done');
        return s.readyState;
      });
      expect(state).toBe(2); // CLOSING, and it stays so: the server reads nothing more
    }
    // Leave through the link, as a user would.
    await tab.click('#next');
    await waitFor(() => tab.evaluate(() => location.pathname === '/next' && document.readyState === 'complete'), { what: `${id}: the next page to load` });
    // +busy: the worker is busy from the probe's pagehide, which came before the next page loaded.
    const busyUntil = variant.endsWith('+busy') ? Date.now() + WORKER_BUSY_MS : 0;
    let whileAway: Round['whileAway'] = { state: 'none' };
    if (hasSocket && variant !== 'closed-before' && variant !== 'closing-before') {
      // Either the server sees the socket close, or a ping sent now is answered: the socket is alive.
      // A busy worker is given its busy time and 500 ms more to close it before a pong counts.
      const pingedAt = Math.max(Date.now(), busyUntil === 0 ? 0 : busyUntil + 500);
      whileAway = await waitFor(() => {
        const mine = ws.of(id);
        const close = mine.find((e) => e.event === 'close');
        if (close !== undefined) return { state: 'closed' as const, code: close.code };
        if (mine.some((e) => e.event === 'pong' && e.at >= pingedAt)) return { state: 'alive' as const };
        if (Date.now() < pingedAt) return undefined;
        ws.ping(id);
        return undefined;
      }, { what: `${id}: the socket to close or answer a ping while the page is away`, timeoutMs: 30_000, intervalMs: 100 });
    }
    const history = await tab.back();
    await waitFor(() => tab.evaluate(() => location.pathname === '/probe' && document.readyState === 'complete'), { what: `${id}: the probe page to be back` });
    if (history.fromBfcache && variant.startsWith('close-')) {
      // The strategy's reconnect after the restore
      await waitFor(() => ws.of(id).filter((e) => e.event === 'open').length === 2, { what: `${id}: the socket reopened after the restore` });
    }
    if (variant === 'open' && history.fromBfcache) {
      // What becomes of the socket that stayed open through the cache: wait until the page or server tells.
      await waitFor(async () => ws.of(id).some((e) => e.event === 'close') || (await tab.evaluate(() => (window as unknown as { sockets: WebSocket[] }).sockets[0]?.readyState === 1)), { what: `${id}: the kept socket's fate after the restore`, timeoutMs: 15_000 });
    }
    const log = await tab.evaluate(() => JSON.parse(sessionStorage.getItem('log') ?? '[]') as LogEntry[]);
    return { variant, history, log, server: ws.of(id), whileAway, driverLog: output.slice(outputFrom) };
  } finally {
    await tab.close().catch(() => undefined);
  }
}

/** The event names of the probe document, in order, with the detail that matters: "pagehide(persisted)". */
function eventOrder(round: Round): string[] {
  return round.log.map(([, doc, what, detail]) => {
    const d = detail as Record<string, unknown> | string | undefined;
    let suffix = '';
    if (what === 'pagehide' || what === 'pageshow') suffix = `(${(d as { persisted: boolean }).persisted ? 'persisted' : 'not persisted'})`;
    else if (what === 'visibilitychange') suffix = `(${String(d)})`;
    else if (what === 'ws-close') suffix = `(${(d as { code: number }).code})`;
    else if (what === 'navigate') suffix = `(${(d as { type: string }).type})`;
    return `${doc}:${what}${suffix}`;
  });
}

function describeRound(round: Round): string {
  const t0 = round.log[0]?.[0] ?? 0;
  const server = round.server.filter((e) => e.event !== 'pong').map((e) => `${e.at - t0}ms server:${e.event}${e.code === undefined ? '' : `(${e.code})`}`);
  return [
    `variant ${round.variant} (${VARIANTS[round.variant]}): fromBfcache=${round.history.fromBfcache} [${round.history.evidence}]${round.history.notRestoredReasons.length > 0 ? ` reasons=${round.history.notRestoredReasons.join(',')}` : ''}`,
    `  while away: ${JSON.stringify(round.whileAway)}`,
    `  page: ${round.log.map(([at, doc, what, detail]) => `${at - t0}ms ${doc}:${what}${detail === undefined ? '' : JSON.stringify(detail)}`).join(' | ')}`,
    `  server: ${server.join(' | ')}`,
    ...(round.driverLog.length > 0 ? [`  driver: ${round.driverLog.slice(0, 40).join(' / ')}`] : []),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------
// What was measured, per engine. `cached`: the page came back from the bfcache. `away`: the socket's
// state at the server while the user was on the next page (the close code the server got).

interface Expectation {
  readonly cached: boolean;
  /** What the server saw of the page's socket while the page was away; a list: any of these (measured to vary). */
  readonly away?: 'alive' | number | readonly ('alive' | number)[];
  /** Chromium: the Page.backForwardCacheNotUsed reasons. */
  readonly reasons?: readonly string[];
}

const MEASURED: Record<EngineName, Record<Variant, Expectation>> = {
  chromium: {
    bare: { cached: true },
    listeners: { cached: true },
    unload: { cached: false, reasons: ['Circumstantial:BrowsingInstanceNotSwapped', 'PageSupportNeeded:UnloadHandlerExistsInMainFrame'] },
    // cached with the socket open: the browser answers the server's pings for the frozen page
    open: { cached: true, away: 'alive' },
    'close-pagehide': { cached: true, away: CLIENT_CODE },
    'close-beforeunload': { cached: true, away: CLIENT_CODE },
    'close-hidden': { cached: true, away: CLIENT_CODE },
    'close-freeze': { cached: true, away: CLIENT_CODE },
    'closed-before': { cached: true },
    'closing-before': { cached: true },
    'close-navigate': { cached: true, away: CLIENT_CODE },
    'close-beforeunload+slow': { cached: true, away: CLIENT_CODE },
    'close-navigate+slow': { cached: true, away: CLIENT_CODE },
    'worker-open': { cached: true, away: 'alive' },
    'sharedworker-open': { cached: true, away: 'alive' },
    // the page's message to its worker in pagehide races the freeze: mostly delivered at once (closed
    // while away), sometimes only when the page is shown again (alive while away)
    'sharedworker-close': { cached: true, away: [CLIENT_CODE, 'alive'] },
    // the worker is frozen with the page: nothing reaches the server until the restore (then a 1001)
    'sharedworker-close+busy': { cached: true, away: 'alive' },
    // Chromium 156 caches no-store pages (that have nothing else against them)
    'bare+nostore': { cached: true },
  },
  firefox: {
    bare: { cached: true },
    listeners: { cached: true },
    unload: { cached: false },
    // "blocked because document has request ws://…": Firefox closes it (1001) before pagehide
    open: { cached: false, away: 1001 },
    'close-pagehide': { cached: false, away: 1001 },
    // closed by the page, but still CLOSING when Firefox decides: not cached either
    'close-beforeunload': { cached: false, away: CLIENT_CODE },
    'close-hidden': { cached: false, away: 1001 },
    'close-freeze': { cached: false, away: 1001 },
    'closed-before': { cached: true },
    'closing-before': { cached: false },
    'close-navigate': { cached: false, away: CLIENT_CODE },
    // the decision is not taken when the next page arrives: 300 ms more change nothing
    'close-beforeunload+slow': { cached: false, away: CLIENT_CODE },
    'close-navigate+slow': { cached: false, away: CLIENT_CODE },
    'worker-open': { cached: false, away: 1001 },
    'sharedworker-open': { cached: true, away: 'alive' },
    // mostly closed at once; on a loaded machine the message can lose the race with the freeze too
    // (one CI run: the real client's page still counted 10 s after it was cached), as +busy shows
    'sharedworker-close': { cached: true, away: [CLIENT_CODE, 'alive'] },
    // the worker is frozen with the page: the message waits for the restore (server: 4100 then the new open)
    'sharedworker-close+busy': { cached: true, away: 'alive' },
    'bare+nostore': { cached: false },
  },
  webkit: {
    bare: { cached: true },
    // an unload listener does not keep a page out of WebKit's page cache (and does not run)
    listeners: { cached: true },
    unload: { cached: true },
    // WebKit closes the socket itself on the way into the cache, with 1001 (ends a promstream session)
    open: { cached: true, away: 1001 },
    'close-pagehide': { cached: true, away: CLIENT_CODE },
    'close-beforeunload': { cached: true, away: CLIENT_CODE },
    'close-hidden': { cached: true, away: CLIENT_CODE },
    // no freeze event in WebKit: the page never closes it, WebKit does (1001)
    'close-freeze': { cached: true, away: 1001 },
    'closed-before': { cached: true },
    'closing-before': { cached: true },
    // no Navigation API in WebKitGTK 2.50: likewise
    'close-navigate': { cached: true, away: 1001 },
    'close-beforeunload+slow': { cached: true, away: CLIENT_CODE },
    'close-navigate+slow': { cached: true, away: 1001 },
    // a worker's socket is left open through the cache (and still open after the restore)
    'worker-open': { cached: true, away: 'alive' },
    'sharedworker-open': { cached: true, away: 'alive' },
    // the page's message to its worker in pagehide is mostly delivered only when the page is shown
    // again (the socket alive while away), sometimes at once (closed while away)
    'sharedworker-close': { cached: true, away: ['alive', CLIENT_CODE] },
    // frozen with the page, as in the other engines: the close comes with the restore
    'sharedworker-close+busy': { cached: true, away: 'alive' },
    'bare+nostore': { cached: true },
  },
};

let ws: ProbeSocketServer;
let pages: { origin: string; close(): Promise<void> };

beforeAll(async () => {
  ws = await ProbeSocketServer.start();
  pages = await startPages(ws.port);
});
afterAll(async () => {
  await pages?.close();
  await ws?.close();
});

const LAUNCH: Record<EngineName, (output: (line: string) => void) => Promise<EngineBrowser>> = {
  chromium: () => launchChromiumEngine(),
  // Firefox says why it does not cache a page in its SHIPBFCache and PageCache log modules (on stderr, every process).
  firefox: (output) => launchFirefoxEngine({ env: { MOZ_LOG: 'SHIPBFCache:5,PageCache:5' }, output }),
  webkit: (output) => launchWebKitEngine({ output }),
};

for (const engine of ENGINES) {
  engine.describe(`the bfcache and a WebSocket in ${engine.name}`, () => {
    let browser: EngineBrowser;
    const output: string[] = [];
    beforeAll(async () => {
      browser = await LAUNCH[engine.name]((line) => {
        if (output.length < 20_000) output.push(line);
      });
    });
    afterAll(async () => {
      await browser?.close();
    });

    it.each(Object.keys(VARIANTS) as Variant[])('%s', async (variant) => {
      const round = await runRound(browser, ws, pages.origin, variant, output);
      console.info(`${engine.name} ${browser.version}\n${describeRound(round)}\n  order: ${eventOrder(round).join(' → ')}`);
      const expected = MEASURED[engine.name][variant];
      const away = round.whileAway.state === 'none' ? undefined : round.whileAway.state === 'alive' ? 'alive' : round.whileAway.code;
      const allowed = Array.isArray(expected.away) ? expected.away : [expected.away];
      expect({ cached: round.history.fromBfcache, away: allowed.includes(away) ? expected.away : away }, describeRound(round)).toEqual({ cached: expected.cached, away: expected.away });
      if (expected.reasons !== undefined) expect(round.history.notRestoredReasons).toEqual(expected.reasons);
    });
  });
}
