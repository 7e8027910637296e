/**
 * WebKit (the Safari engine family): Debian's WebKitGTK. `webkit2gtk-driver` brings `WebKitWebDriver`,
 * which speaks W3C WebDriver (classic: HTTP + JSON) and starts WebKitGTK's MiniBrowser in automation
 * mode. MiniBrowser has no headless mode, so it gets an X display of its own: an Xvfb started here, on
 * a display number Xvfb picks itself (-displayfd), so that parallel test files never collide.
 *
 * The WebDriver client is our own, on fetch: the dozen endpoints these tests need fit in a page, and the
 * maintained npm clients would bring what must not run here: webdriverio resolves and downloads drivers
 * and browsers for its "automation" setup, selenium-webdriver ships selenium-manager, a binary that
 * fetches drivers, and both pull in dozens of packages for features we do not use.
 *
 * One WebDriver session serves every tab: each tab is a window (`type: 'window'`; screenshots work
 * there), and since a session has one current window, commands go through a queue that switches to the
 * tab's window first. The session's first window stays open on about:blank: closing the last window
 * would end the session.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { waitFor } from '../wait-for.js';
import { describeRequiringBinaries, pageshowLogId, pageshowVerdict, type Engine, type EngineBrowser, type EngineTab, type HistoryNavigation } from './engine.js';

/** `WEBKIT_WEBDRIVER_BIN`, else where Debian's `webkit2gtk-driver` package puts it. */
export const webkitDriverBin: string = process.env.WEBKIT_WEBDRIVER_BIN ?? '/usr/bin/WebKitWebDriver';
export const xvfbBin: string = process.env.XVFB_BIN ?? '/usr/bin/Xvfb';

/**
 * `WEBKIT_MINIBROWSER_BIN`, else the first MiniBrowser in a WebKitGTK library directory: Debian ships it
 * in libwebkit2gtk-4.1-0 (a dependency of webkit2gtk-driver) under /usr/lib/<multiarch>/webkit2gtk-4.1/.
 */
export function findMiniBrowser(): string {
  const fromEnv = process.env.WEBKIT_MINIBROWSER_BIN;
  if (fromEnv !== undefined) return fromEnv;
  const roots = ['/usr/lib', '/usr/libexec', ...safeDirs('/usr/lib').filter((d) => d.includes('-linux-'))];
  for (const root of roots) {
    for (const dir of safeDirs(root).filter((d) => /^webkit(2)?gtk-/.test(path.basename(d))).sort().reverse()) {
      const candidate = path.join(dir, 'MiniBrowser');
      if (existsSync(candidate)) return candidate;
    }
  }
  return '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
}

function safeDirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(dir, e.name));
  } catch {
    return [];
  }
}

export interface WebKitLaunchOptions {
  /** More MiniBrowser arguments after --automation, e.g. `--enable-page-cache=true`. */
  readonly browserArgs?: readonly string[];
  /** Extra environment for the driver and so MiniBrowser and its web processes. */
  readonly env?: Readonly<Record<string, string>>;
  /** Every line the driver and MiniBrowser print. */
  readonly output?: (line: string) => void;
}

const W3C_ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

class WebDriverError extends Error {
  constructor(readonly command: string, readonly status: number, readonly error: string, message: string) {
    super(`${command}: HTTP ${status} ${error}: ${message}`);
  }
}

/** The few W3C WebDriver commands the tests use, on one session. */
class WebDriverSession {
  private chain: Promise<unknown> = Promise.resolve();
  private current: string | null = null;

  constructor(private readonly base: string, readonly id: string) {}

  static async create(base: string, capabilities: unknown): Promise<{ session: WebDriverSession; capabilities: Record<string, unknown> }> {
    const value = (await request(base, 'POST', '/session', { capabilities })) as { sessionId: string; capabilities: Record<string, unknown> };
    return { session: new WebDriverSession(base, value.sessionId), capabilities: value.capabilities };
  }

  /** Runs `body` alone on the session with `handle` as the current window (null: whichever it is). */
  exclusive<T>(handle: string | null, body: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (handle !== null && handle !== this.current) {
        await this.send('POST', '/window', { handle });
        this.current = handle;
      }
      return body();
    };
    const result = this.chain.then(run, run);
    this.chain = result.catch(() => undefined);
    return result;
  }

  /** One command (`path` after /session/{id}), outside the queue: call it from inside exclusive(). */
  send(method: 'GET' | 'POST' | 'DELETE', pathname: string, body?: unknown): Promise<unknown> {
    return request(this.base, method, `/session/${this.id}${pathname}`, body ?? (method === 'POST' ? {} : undefined));
  }

  forgetCurrent(): void {
    this.current = null;
  }
}

async function request(base: string, method: string, pathname: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${base}${pathname}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: { value?: unknown };
  try {
    parsed = JSON.parse(text) as { value?: unknown };
  } catch {
    throw new WebDriverError(`${method} ${pathname}`, response.status, 'not json', text.slice(0, 300));
  }
  if (!response.ok) {
    const v = (parsed.value ?? {}) as { error?: string; message?: string };
    throw new WebDriverError(`${method} ${pathname}`, response.status, v.error ?? 'unknown error', v.message ?? text.slice(0, 300));
  }
  return parsed.value;
}

/**
 * The page side of evaluate: runs the function (given as source) with its argument and reports through
 * the async script callback, as { ok } or { error }, so that a rejection keeps its message.
 */
const ASYNC_WRAPPER = (source: string): string => `
const done = arguments[arguments.length - 1];
Promise.resolve().then(() => (${source})(arguments[0])).then(
  (value) => done({ ok: value === undefined ? null : value }),
  (error) => done({ error: String(error && error.stack ? error.stack : error) }));`;

class WebKitTab implements EngineTab {
  constructor(private readonly session: WebDriverSession, readonly handle: string) {}

  private run<T>(body: () => Promise<T>): Promise<T> {
    return this.session.exclusive(this.handle, body);
  }

  async goto(url: string): Promise<void> {
    await this.run(() => this.session.send('POST', '/url', { url }));
    await pageshowLogId(this.evaluate.bind(this));
  }

  async evaluate<R, A = null>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    const result = (await this.run(() => this.session.send('POST', '/execute/async', { script: ASYNC_WRAPPER(fn.toString()), args: [arg ?? null] }))) as { ok?: R; error?: string };
    if (result.error !== undefined) throw new Error(`in the page: ${result.error}`);
    return result.ok as R;
  }

  async click(selector: string): Promise<void> {
    await this.run(async () => {
      const element = (await this.session.send('POST', '/element', { using: 'css selector', value: selector })) as Record<string, string>;
      const id = element[W3C_ELEMENT];
      if (id === undefined) throw new Error(`no element reference for ${selector}`);
      await this.session.send('POST', `/element/${id}/click`);
    });
  }

  back(): Promise<HistoryNavigation> {
    return this.traverse('/back');
  }

  forward(): Promise<HistoryNavigation> {
    return this.traverse('/forward');
  }

  private async traverse(command: '/back' | '/forward'): Promise<HistoryNavigation> {
    const left = await pageshowLogId(this.evaluate.bind(this));
    await this.run(() => this.session.send('POST', command));
    return pageshowVerdict(this.evaluate.bind(this), left);
  }

  async close(): Promise<void> {
    await this.run(async () => {
      await this.session.send('DELETE', '/window');
      this.session.forgetCurrent();
    });
  }
}

/** Starts Xvfb on a display it picks (-displayfd) and resolves with ":N" once it accepts clients. */
async function startXvfb(output: (line: string) => void): Promise<{ display: string; child: ChildProcess }> {
  const child = spawn(xvfbBin, ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp', '-noreset'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  pipeLines(child.stderr, output);
  let number = '';
  let exited: string | null = null;
  child.stdio[3]?.on('data', (chunk: Buffer) => (number += chunk.toString('utf8')));
  child.once('exit', (code, signal) => (exited = `Xvfb exited (${code ?? signal})`));
  const display = await waitFor(() => {
    if (exited !== null) throw new Error(exited);
    return /^\d+\n/.test(number) ? `:${number.trim()}` : undefined;
  }, { what: 'Xvfb to report its display number', timeoutMs: START_TIMEOUT_MS });
  return { display, child };
}

/** A port the kernel says is free (racy: launchWebKitEngine retries when the driver cannot bind it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

function pipeLines(stream: NodeJS.ReadableStream | null | undefined, output: (line: string) => void): void {
  if (stream === null || stream === undefined) return;
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) output(line);
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const grace = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(grace);
}

export async function launchWebKitEngine(options: WebKitLaunchOptions = {}): Promise<EngineBrowser> {
  const output = options.output ?? (() => {});
  const children: ChildProcess[] = [];
  // A crashed test worker must not leave an X server or a browser behind.
  const killOnExit = (): void => {
    for (const c of children) c.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const stopAll = async (): Promise<void> => {
    for (const c of children.reverse()) await stopChild(c);
    process.off('exit', killOnExit);
  };
  try {
    const xvfb = await startXvfb(output);
    children.push(xvfb.child);
    let base = '';
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const driver = spawn(webkitDriverBin, [`--port=${port}`, '--host=127.0.0.1'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...options.env, DISPLAY: xvfb.display, WAYLAND_DISPLAY: '', GDK_BACKEND: 'x11' },
      });
      children.push(driver);
      pipeLines(driver.stdout, output);
      pipeLines(driver.stderr, output);
      base = `http://127.0.0.1:${port}`;
      try {
        await waitFor(async () => {
          if (driver.exitCode !== null) throw new Error(`WebKitWebDriver exited with ${driver.exitCode}`);
          return ((await request(base, 'GET', '/status')) as { ready?: boolean }).ready === true;
        }, { what: `WebKitWebDriver on ${base} to be ready`, timeoutMs: START_TIMEOUT_MS, intervalMs: 50 });
        break;
      } catch (error) {
        await stopChild(driver);
        children.pop();
        if (attempt >= 3) throw error;
      }
    }
    const miniBrowser = findMiniBrowser();
    const { session, capabilities } = await WebDriverSession.create(base, {
      alwaysMatch: { 'webkitgtk:browserOptions': { binary: miniBrowser, args: ['--automation', ...(options.browserArgs ?? [])] } },
    });
    const home = (await session.exclusive(null, () => session.send('GET', '/window'))) as string;
    return {
      engine: 'webkit',
      version: `WebKitGTK ${String(capabilities.browserVersion)} (${String(capabilities.browserName)})`,
      async newTab(url) {
        const created = (await session.exclusive(home, () => session.send('POST', '/window/new', { type: 'window' }))) as { handle: string };
        const tab = new WebKitTab(session, created.handle);
        await tab.goto(url);
        return tab;
      },
      async close() {
        try {
          await session.exclusive(null, () => session.send('DELETE', ''));
        } finally {
          await stopAll();
        }
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

export const webkitEngine: Engine = {
  name: 'webkit',
  describe: describeRequiringBinaries('webkit', { WebKitWebDriver: webkitDriverBin, MiniBrowser: findMiniBrowser(), Xvfb: xvfbBin }, 'apt-get install webkit2gtk-driver xvfb (set WEBKIT_WEBDRIVER_BIN, WEBKIT_MINIBROWSER_BIN, XVFB_BIN to override)'),
  launch: () => launchWebKitEngine(),
};
