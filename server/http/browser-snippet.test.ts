import { describe, expect, it } from 'vitest';
import { renderSnippet, snippetUrls } from './browser-snippet.js';

const manifest = { file: 'promstream.0123456789ab.js', hash: '0123456789ab', integrity: 'sha384-AbC+/=', bytes: 1, gzipBytes: 1 };

describe('the browser snippet', () => {
  it('derives the script base and the WebSocket URL from the public base URL', () => {
    expect(snippetUrls('https://metrics.example.com')).toEqual({ scriptBase: 'https://metrics.example.com', wsUrl: 'wss://metrics.example.com/ws' });
    expect(snippetUrls('http://127.0.0.1:3000/')).toEqual({ scriptBase: 'http://127.0.0.1:3000', wsUrl: 'ws://127.0.0.1:3000/ws' });
    expect(snippetUrls('https://example.com/metrics/')).toEqual({ scriptBase: 'https://example.com/metrics', wsUrl: 'wss://example.com/metrics/ws' });
    expect(snippetUrls('wss://example.com')).toEqual({ scriptBase: 'https://example.com', wsUrl: 'wss://example.com/ws' });
  });

  it('refuses what is not a plain base URL, naming --url', () => {
    for (const bad of ['metrics.example.com', 'ftp://x', 'https://x/?a=1', 'https://u:p@x', "https://x/a'b"]) {
      expect(() => snippetUrls(bad), bad).toThrow(/^--url: /);
    }
  });

  it('is the stub, init and the versioned script with its integrity', () => {
    expect(renderSnippet(manifest, { baseUrl: 'https://m.example.com', labels: { app: 'student' } })).toBe(`<script>
  window.promstream = window.promstream || function () { (promstream.q = promstream.q || []).push(arguments); };
  promstream('init', { url: 'wss://m.example.com/ws', labels: { app: 'student' } });
</script>
<script async src="https://m.example.com/promstream.0123456789ab.js"
  integrity="sha384-AbC+/=" crossorigin="anonymous"></script>
`);
    expect(renderSnippet(manifest, { baseUrl: 'https://m.example.com' })).toContain("labels: { /* your sessionLabels, e.g. app: 'student' */ }");
    expect(() => renderSnippet(manifest, { baseUrl: 'https://m.example.com', labels: { app: "x'); alert(1); ('" } })).toThrow(/^--labels: /);
  });
});
