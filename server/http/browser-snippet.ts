/**
 * The snippet a page pastes (README "Browser", `promstream snippet`): the queue stub and `init`, then the
 * versioned script with its Subresource Integrity value. One function writes it, so the command and the
 * README cannot drift apart (a test compares them).
 */
import type { BrowserScriptManifest } from './browser-script.js';

export interface SnippetOptions {
  /** The aggregator's public base URL as the page reaches it: http(s)://host[:port][/prefix]. */
  readonly baseUrl: string;
  /** Session labels for `init`; without them a placeholder comment says what goes there. */
  readonly labels?: Readonly<Record<string, string>>;
}

/** Characters that need no escaping in an HTML attribute or a single-quoted JavaScript string. */
const SAFE_TEXT = /^[A-Za-z0-9._~:/%@+-]*$/;

/** http(s) (or ws(s)) base URL → the script's base and the WebSocket URL. Throws naming the problem. */
export function snippetUrls(baseUrl: string): { scriptBase: string; wsUrl: string } {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new Error(`--url: not a URL: "${baseUrl}" (e.g. https://metrics.example.com)`);
  }
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  if (!secure && url.protocol !== 'http:' && url.protocol !== 'ws:') throw new Error(`--url: use http(s)://, got "${baseUrl}"`);
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new Error(`--url: the aggregator's base URL takes no query, fragment or credentials: "${baseUrl}"`);
  }
  const prefix = url.pathname.replace(/\/+$/, '');
  if (!SAFE_TEXT.test(url.host + prefix)) throw new Error(`--url: unexpected characters in "${baseUrl}"`);
  return { scriptBase: `${secure ? 'https' : 'http'}://${url.host}${prefix}`, wsUrl: `${secure ? 'wss' : 'ws'}://${url.host}${prefix}/ws` };
}

function labelsLiteral(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return "{ /* your sessionLabels, e.g. app: 'student' */ }";
  const parts = Object.entries(labels).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || !SAFE_TEXT.test(v)) throw new Error(`--labels: "${k}=${v}" is not a label name and a plain value`);
    return `${k}: '${v}'`;
  });
  return parts.length === 0 ? '{}' : `{ ${parts.join(', ')} }`;
}

/** The HTML snippet, ending in a newline. */
export function renderSnippet(manifest: BrowserScriptManifest, options: SnippetOptions): string {
  const { scriptBase, wsUrl } = snippetUrls(options.baseUrl);
  return `<script>
  window.promstream = window.promstream || function () { (promstream.q = promstream.q || []).push(arguments); };
  promstream('init', { url: '${wsUrl}', labels: ${labelsLiteral(options.labels)} });
</script>
<script async src="${scriptBase}/${manifest.file}"
  integrity="${manifest.integrity}" crossorigin="anonymous"></script>
`;
}
