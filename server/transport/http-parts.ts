/**
 * What both transports' HTTP sides do alike: splitting the request target, reading the offered
 * subprotocols, the plain-text answers of our own, and checking the slow-request deadline.
 */
import { STATUS_CODES } from 'node:http';
import type { HttpResponse } from './types.js';

/** Sec-WebSocket-Protocol is a comma list of tokens in order of preference; repeated headers arrive joined with ', '. */
export function parseProtocols(header: string): string[] {
  return header
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/** '/ws?route=x' → { path: '/ws', query: 'route=x' }. */
export function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q === -1 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

export const statusLine = (status: number): string => `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;

/** One of our own plain-text answers (404, 500, 503, a refused upgrade). */
export function plainText(status: number, body: string): HttpResponse & { readonly body: string } {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body };
}

export const NOT_FOUND = plainText(404, 'not found');
export const INTERNAL_ERROR = plainText(500, 'internal error');
export const SHUTTING_DOWN = plainText(503, 'server is shutting down');

/** The slow-request deadline both transports take; a caller bug, not user input, when it is off. */
export function checkHeadersTimeout(ms: number): void {
  if (!Number.isInteger(ms) || ms < 1) throw new RangeError(`httpHeadersTimeoutMs must be a positive integer (got ${ms})`);
}
