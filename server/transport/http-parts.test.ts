import { describe, expect, it } from 'vitest';
import { announcesBody } from './http-parts.js';

describe('announcesBody', () => {
  it('no framing headers, or a single Content-Length of 0: no body', () => {
    expect(announcesBody({})).toBe(false);
    expect(announcesBody({ 'content-length': '0' })).toBe(false);
    expect(announcesBody({ 'content-length': ' 0 ' })).toBe(false);
  });

  it('any Transfer-Encoding, any other Content-Length, or several: a body (refused)', () => {
    for (const te of ['chunked', 'xchunked', 'gzip, chunked', '']) expect(announcesBody({ 'transfer-encoding': te }), te).toBe(true);
    for (const cl of ['5', '0, 34', '0, 0', 'abc', '-1', '']) expect(announcesBody({ 'content-length': cl }), cl).toBe(true);
  });
});
