/** Every engine Debian ships, for `describe.each`-style loops: Chromium, Firefox ESR, WebKitGTK. */
import { chromiumEngine } from './chromium.js';
import type { Engine } from './engine.js';
import { firefoxEngine } from './firefox.js';
import { webkitEngine } from './webkit.js';

export type { Engine, EngineBrowser, EngineName, EngineTab, HistoryNavigation } from './engine.js';
export { chromiumEngine, firefoxEngine, webkitEngine };

export const ENGINES: readonly Engine[] = [chromiumEngine, firefoxEngine, webkitEngine];
