import { describe, expect, it } from 'vitest';
import { compileOriginRules, originAllowed as allowedBy } from './origin-check.js';

/** The check with rules compiled from `list` as --allowed-origins gives them (unusable rules dropped). */
const originAllowed = (origin: string | undefined, list: readonly string[]): boolean => allowedBy(origin, compileOriginRules(list).rules);

describe('originAllowed', () => {
  it('allows a request without an Origin header (not a browser), whatever the list', () => {
    expect(originAllowed(undefined, [])).toBe(true);
    expect(originAllowed(undefined, ['https://app.example.com'])).toBe(true);
  });

  it("'*' allows every origin, even malformed ones and 'null'", () => {
    for (const o of ['https://a.test', 'http://localhost:8080', 'null', 'not a url', '']) expect(originAllowed(o, ['*'])).toBe(true);
    expect(originAllowed('null', ['https://a.test', '*'])).toBe(true);
  });

  it('matches exact origins by scheme, host and port', () => {
    const allowed = ['https://app.example.com', 'http://localhost:8080'];
    expect(originAllowed('https://app.example.com', allowed)).toBe(true);
    expect(originAllowed('http://localhost:8080', allowed)).toBe(true);
    expect(originAllowed('http://app.example.com', allowed)).toBe(false); // scheme
    expect(originAllowed('https://app.example.com:8443', allowed)).toBe(false); // port
    expect(originAllowed('http://localhost:8081', allowed)).toBe(false);
    expect(originAllowed('http://localhost', allowed)).toBe(false);
    expect(originAllowed('https://other.example.com', allowed)).toBe(false);
    expect(originAllowed('https://app.example.com.evil.test', allowed)).toBe(false);
    expect(originAllowed('https://example.com', allowed)).toBe(false);
  });

  it('normalises the origin: default port, host case, a trailing slash', () => {
    expect(originAllowed('https://app.example.com:443', ['https://app.example.com'])).toBe(true);
    expect(originAllowed('https://APP.Example.com', ['https://app.example.com'])).toBe(true);
    expect(originAllowed('https://app.example.com/', ['https://app.example.com'])).toBe(true);
  });

  it('ignores trailing slashes on a rule', () => {
    expect(originAllowed('https://app.example.com', ['https://app.example.com/'])).toBe(true);
    expect(originAllowed('https://app.example.com', ['https://app.example.com//'])).toBe(true);
    expect(originAllowed('http://localhost:8080', ['http://localhost:8080/'])).toBe(true);
  });

  it("'*.example.com' matches any depth of subdomain, on any scheme, but not the apex or look-alikes", () => {
    const allowed = ['*.example.com'];
    expect(originAllowed('https://sub.example.com', allowed)).toBe(true);
    expect(originAllowed('http://sub.example.com', allowed)).toBe(true);
    expect(originAllowed('https://a.b.example.com', allowed)).toBe(true);
    expect(originAllowed('https://SUB.EXAMPLE.COM', allowed)).toBe(true);
    expect(originAllowed('https://example.com', allowed)).toBe(false);
    expect(originAllowed('https://evil-example.com', allowed)).toBe(false);
    expect(originAllowed('https://sub.evil-example.com', allowed)).toBe(false);
    expect(originAllowed('https://example.com.evil.test', allowed)).toBe(false);
    expect(originAllowed('https://sub.example.com.evil.test', allowed)).toBe(false);
    expect(originAllowed('https://sub.example.co', allowed)).toBe(false);
  });

  it('a wildcard rule is matched against host:port, so a port must be in the rule', () => {
    expect(originAllowed('https://sub.example.com:8443', ['*.example.com'])).toBe(false);
    expect(originAllowed('https://sub.example.com:8443', ['*.example.com:8443'])).toBe(true);
  });

  it("'https://*.example.com' requires https", () => {
    const allowed = ['https://*.example.com'];
    expect(originAllowed('https://sub.example.com', allowed)).toBe(true);
    expect(originAllowed('https://a.b.example.com', allowed)).toBe(true);
    expect(originAllowed('http://sub.example.com', allowed)).toBe(false);
    expect(originAllowed('https://example.com', allowed)).toBe(false);
    expect(originAllowed('HTTPS://sub.example.com', ['HTTPS://*.example.com'])).toBe(true);
    expect(originAllowed('http://sub.example.com', ['http://*.example.com'])).toBe(true);
  });

  it('compares rules as the browser sends origins: a rule with capitals matches (review defect 8)', () => {
    expect(originAllowed('https://app.example.com', ['https://App.example.com'])).toBe(true);
    expect(originAllowed('https://app.example.com', ['HTTPS://APP.EXAMPLE.COM:443'])).toBe(true);
    expect(originAllowed('https://sub.example.com', ['https://*.Example.COM'])).toBe(true);
    expect(originAllowed('https://app.example.org', ['https://App.example.com'])).toBe(false);
  });

  it('names every rule that is no origin, and matches nothing with it', () => {
    expect(compileOriginRules(['sub.*.com', '*example.com', 'null', 'app.example.com', 'https://a.test/path', 'https://ok.test', '*']).problems).toEqual([
      '"sub.*.com" is not an origin (scheme://host[:port]) nor *.domain',
      '"*example.com" is not an origin (scheme://host[:port]) nor *.domain',
      '"null" is not an origin (scheme://host[:port]) nor *.domain',
      '"app.example.com" is not an origin (scheme://host[:port]) nor *.domain',
      '"https://a.test/path" is not an origin (scheme://host[:port]) nor *.domain',
    ]);
    expect(originAllowed('https://sub.example.com', ['sub.*.com'])).toBe(false);
    expect(originAllowed('https://sub.example.com', ['*example.com'])).toBe(false);
  });

  it("refuses malformed origins and the opaque 'null' origin unless '*'", () => {
    const allowed = ['https://app.example.com', '*.example.com'];
    for (const o of ['null', 'not a url', '', 'app.example.com', '//app.example.com', 'https://']) {
      expect(originAllowed(o, allowed), o).toBe(false);
    }
    expect(originAllowed('null', ['null'])).toBe(false);
  });

  it('refuses everything but a missing origin with an empty list', () => {
    expect(originAllowed('https://app.example.com', [])).toBe(false);
  });
});
