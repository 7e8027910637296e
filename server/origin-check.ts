/**
 * Origin allow-list: exact origins ('https://app.example.com'), wildcard subdomains
 * ('*.example.com' or 'https://*.example.com'), or '*'. A request without an Origin header is not a
 * browser and is allowed: the check exists to stop other sites' pages, not scripts.
 */
export function originAllowed(origin: string | undefined, allowed: readonly string[]): boolean {
  if (origin === undefined || allowed.includes('*')) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const normalized = `${url.protocol}//${url.host}`;
  for (const rule of allowed) {
    if (!rule.includes('*')) {
      if (rule.replace(/\/+$/, '') === normalized) return true;
      continue;
    }
    const m = /^(?:([a-z][a-z0-9+.-]*):\/\/)?\*\.(.+)$/i.exec(rule);
    if (m === null) continue;
    const [, scheme, suffix] = m;
    if (scheme !== undefined && `${scheme.toLowerCase()}:` !== url.protocol) continue;
    if (url.host.toLowerCase().endsWith(`.${suffix!.toLowerCase()}`)) return true;
  }
  return false;
}
