/**
 * The page's WebSocket, held by a SharedWorker of the page's own where it can be.
 *
 * Firefox keeps a page that holds an open (or closing) WebSocket out of its back/forward cache, whatever
 * the page does in `pagehide` (docs/BFCACHE-FINDINGS.md). A socket that belongs to a worker is not the
 * document's request, so the page stays cacheable in every engine; the client still closes that socket
 * (4102) when the page is cached and opens a new one when it is shown again, so that a cached page never
 * counts in connected_clients. The worker is made from a blob: URL (the script is on the aggregator's
 * origin, a worker must be on the page's) and has a random name, so that every page gets its own: one
 * socket per page, as connected_clients counts them.
 *
 * Only where it is needed: Gecko. Chromium and WebKit cache a page whose own socket the client closes in
 * `pagehide`, and trying a blob: worker under a strict Content-Security-Policy makes the browser log a
 * violation on every page load. Where the worker cannot be had (no SharedWorker, or a CSP without
 * `worker-src blob:`), the socket is the page's own WebSocket, as in the other engines: everything works,
 * Firefox just does not cache the page. The choice is made once per page, on the first socket, within
 * WORKER_ANSWER_MS.
 */
import type { SocketFactory, SocketLike } from './types.js';

/** How long a new worker has to answer before the page uses sockets of its own. */
const WORKER_ANSWER_MS = 1000;

/** The worker: one WebSocket per id, events posted back as [id, event, …]. Kept to plain ES5 for every engine. */
const WORKER_SOURCE = `var ports=[];onconnect=function(e){var p=e.ports[0],s={};p.onmessage=function(m){var d=m.data,id=d[1],w=s[id];
if(d[0]==="hi"){p.postMessage(["hi"]);return}
if(d[0]==="open"){try{w=s[id]=new WebSocket(d[2],d[3])}catch(x){p.postMessage([id,"close",1006,String(x)]);return}w.binaryType="arraybuffer";
w.onopen=function(){p.postMessage([id,"open"])};w.onmessage=function(v){p.postMessage([id,"message",v.data],v.data instanceof ArrayBuffer?[v.data]:[])};
w.onclose=function(v){delete s[id];p.postMessage([id,"close",v.code,v.reason])};w.onerror=function(){p.postMessage([id,"error"])};return}
if(!w)return;if(d[0]==="send")w.send(d[2]);else if(d[0]==="close")w.close(d[2],d[3]);
else if(d[0]==="drop"){w.onopen=w.onmessage=w.onerror=w.onclose=null;delete s[id];w.close(d[2],d[3])}};ports.push(p);p.start()};`;

type WorkerEvent = [id: number, event: 'open'] | [id: number, event: 'message', data: ArrayBuffer] | [id: number, event: 'close', code: number, reason: string] | [id: number, event: 'error'];

/** A socket whose WebSocket lives in the worker; the same members as the browser's WebSocket, for the core. */
class WorkerHeldSocket implements SocketLike {
  binaryType = 'arraybuffer';
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  readonly #id: number;
  readonly #port: MessagePort;
  readonly #forget: (id: number) => void;

  constructor(
    id: number,
    port: MessagePort,
    forget: (id: number) => void,
  ) {
    this.#id = id;
    this.#port = port;
    this.#forget = forget;
  }

  send(data: Uint8Array): void {
    if (this.readyState !== 1) return;
    // A copy the worker owns: the core may reuse its buffer.
    const copy = data.slice().buffer;
    this.#port.postMessage(['send', this.#id, copy], [copy]);
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    // Nobody listens any more (the core gave the socket up, say for the back/forward cache): the worker
    // closes it without a word back. Firefox evicts a cached page whose MessagePort receives a message.
    if (this.onclose === null) {
      this.#forget(this.#id);
      this.#port.postMessage(['drop', this.#id, code, reason]);
    } else this.#port.postMessage(['close', this.#id, code, reason]);
  }

  event(e: WorkerEvent): void {
    if (e[1] === 'open') {
      this.readyState = 1;
      this.onopen?.({});
    } else if (e[1] === 'message') this.onmessage?.({ data: e[2] });
    else if (e[1] === 'error') this.onerror?.({});
    else {
      this.readyState = 3;
      this.onclose?.({ code: e[2], reason: e[3] });
    }
  }
}

/**
 * A socket that waits to learn whether the worker answers: then it opens in the worker, or, when the
 * worker is not to be had, as a WebSocket of the page's own. Either way the core sees one socket.
 */
class PendingSocket implements SocketLike {
  binaryType = 'arraybuffer';
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  #inner: SocketLike | null = null;
  #closedEarly: { code?: number; reason?: string } | null = null;

  get readyState(): number {
    return this.#inner?.readyState ?? (this.#closedEarly === null ? 0 : 3);
  }

  /** Hands over to the real socket and forwards its events. */
  attach(inner: SocketLike): void {
    if (this.#closedEarly !== null) {
      inner.close(this.#closedEarly.code, this.#closedEarly.reason);
      return;
    }
    this.#inner = inner;
    inner.binaryType = this.binaryType;
    inner.onopen = (ev) => this.onopen?.(ev);
    inner.onmessage = (ev) => this.onmessage?.(ev);
    inner.onclose = (ev) => this.onclose?.(ev);
    inner.onerror = (ev) => this.onerror?.(ev);
  }

  send(data: Uint8Array): void {
    this.#inner?.send(data);
  }

  close(code?: number, reason?: string): void {
    const inner = this.#inner;
    if (inner !== null) {
      // The core stopped listening before it closed (it gave the socket up): so does the inner socket.
      if (this.onclose === null) inner.onopen = inner.onmessage = inner.onclose = null;
      inner.close(code, reason);
    }
    else this.#closedEarly = { ...(code === undefined ? {} : { code }), ...(reason === undefined ? {} : { reason }) };
  }
}

/** Gecko (Firefox) keeps pages with a socket of their own out of its back/forward cache; its UA says "Gecko/<date>". */
export const needsWorkerHeldSocket = (userAgent: string): boolean => /\bGecko\/\d/.test(userAgent);

/** Sockets for the browser client: in a per-page SharedWorker where it answers, else the page's own. */
export function workerHeldSocketFactory(openPageSocket: SocketFactory): SocketFactory {
  let state: 'untried' | 'waiting' | 'worker' | 'page' = 'untried';
  let port: MessagePort | null = null;
  let nextId = 1;
  const sockets = new Map<number, WorkerHeldSocket>();
  const waiting: { socket: PendingSocket; url: string; protocols: string[] }[] = [];

  const settle = (to: 'worker' | 'page'): void => {
    if (state === 'worker' || state === 'page') return;
    state = to;
    for (const w of waiting.splice(0)) w.socket.attach(to === 'worker' ? openInWorker(w.url, w.protocols) : openPageSocket(w.url, w.protocols));
  };

  const openInWorker = (url: string, protocols: string[]): SocketLike => {
    const id = nextId++;
    const socket = new WorkerHeldSocket(id, port!, (gone) => sockets.delete(gone));
    sockets.set(id, socket);
    port!.postMessage(['open', id, url, protocols]);
    return socket;
  };

  const start = (): void => {
    state = 'waiting';
    try {
      const blobUrl = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' }));
      const worker = new SharedWorker(blobUrl, { name: `promstream-${Math.random().toString(36).slice(2)}` });
      port = worker.port;
      worker.onerror = () => settle('page');
      port.onmessage = (m: MessageEvent<unknown>) => {
        const d = m.data;
        if (!Array.isArray(d)) return;
        if (d[0] === 'hi') return settle('worker');
        const socket = sockets.get(d[0] as number);
        if (socket === undefined) return;
        if (d[1] === 'close') sockets.delete(d[0] as number);
        socket.event(d as WorkerEvent);
      };
      port.start();
      port.postMessage(['hi']);
      setTimeout(() => settle('page'), WORKER_ANSWER_MS);
    } catch {
      // No SharedWorker here, or the page's CSP refuses blob: workers at once.
      settle('page');
    }
  };

  return (url, protocols) => {
    if (state === 'untried') {
      if (typeof SharedWorker !== 'function' || typeof Blob !== 'function') state = 'page';
      else start();
    }
    if (state === 'worker') return openInWorker(url, protocols);
    if (state === 'page') return openPageSocket(url, protocols);
    const pending = new PendingSocket();
    waiting.push({ socket: pending, url, protocols });
    return pending;
  };
}
