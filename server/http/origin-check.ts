/**
 * Origin allow-list (--allowed-origins): exact origins ('https://app.example.com'), wildcard
 * subdomains ('*.example.com' or 'https://*.example.com'), or '*'. Rules are parsed once, at start-up,
 * the way the browser's Origin header is (URL parsing lowercases scheme and host and drops a default
 * port), so a rule written 'https://App.example.com' matches the origin 'https://app.example.com'. A
 * request without an Origin header is not a browser and is allowed: the check exists to stop other
 * sites' pages, not scripts.
 */

interface ExactRule {
  readonly kind: 'exact';
  /** scheme://host[:port] as URL parsing gives it for an origin. */
  readonly origin: string;
}

interface WildcardRule {
  readonly kind: 'wildcard';
  /** 'https:' or null for any scheme. */
  readonly protocol: string | null;
  /** '.example.com' (lowercase, port included when the rule has one). */
  readonly hostSuffix: string;
}

export interface OriginRules {
  readonly any: boolean;
  readonly rules: readonly (ExactRule | WildcardRule)[];
}

/** Rules from the option's list; a rule that is no origin is a problem naming it. */
export function compileOriginRules(list: readonly string[]): { rules: OriginRules; problems: string[] } {
  const problems: string[] = [];
  const rules: (ExactRule | WildcardRule)[] = [];
  for (const raw of list) {
    const rule = raw.trim().replace(/\/+$/, '');
    if (rule === '*') continue;
    const wildcard = /^(?:([a-z][a-z0-9+.-]*):\/\/)?\*\.([^*/]+)$/i.exec(rule);
    if (wildcard !== null) {
      const [, scheme, suffix] = wildcard;
      // The suffix parsed as a host, so that case and IDNA are what the browser sends.
      const host = hostOf(`http://x.${suffix!}`);
      if (host === null) problems.push(`"${raw}": *.${suffix!} is not a host`);
      else rules.push({ kind: 'wildcard', protocol: scheme === undefined ? null : `${scheme.toLowerCase()}:`, hostSuffix: host });
      continue;
    }
    const origin = originOf(rule);
    if (origin === null) problems.push(`"${raw}" is not an origin (scheme://host[:port]) nor *.domain`);
    else rules.push({ kind: 'exact', origin });
  }
  return { rules: { any: list.some((r) => r.trim() === '*'), rules }, problems };
}

/** Whether a request with this Origin header (undefined: none) may connect. */
export function originAllowed(origin: string | undefined, allowed: OriginRules): boolean {
  if (origin === undefined || allowed.any) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.host === '') return false;
  const normalized = `${url.protocol}//${url.host}`;
  for (const rule of allowed.rules) {
    if (rule.kind === 'exact') {
      if (rule.origin === normalized) return true;
    } else if ((rule.protocol === null || rule.protocol === url.protocol) && url.host.endsWith(rule.hostSuffix)) {
      return true;
    }
  }
  return false;
}

function originOf(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.host === '' || url.pathname.replace(/\/+$/, '') !== '' || url.search !== '' || url.hash !== '' || url.username !== '') return null;
  return `${url.protocol}//${url.host}`;
}

function hostOf(text: string): string | null {
  try {
    const url = new URL(text);
    return url.host === '' ? null : `.${url.host.slice(url.host.indexOf('.') + 1)}`;
  } catch {
    return null;
  }
}
