import { describe, expect, it } from 'vitest';
import { CloseReasons } from '../../protocol/index.js';
import { compileOriginRules } from '../http/origin-check.js';
import { Admission } from './admission.js';
import { handlerFixture, upgradeRequest } from './handler.fixture.js';

const rules = (list: string[]) => compileOriginRules(list).rules;

describe('Admission: the upgrade', () => {
  const admission = new Admission({ maxConnections: 10, maxConnectionsPerIp: 0, trustProxy: false, originRules: rules(['https://app.example.com']) }, () => {});
  const cases = [
    { name: 'another path', req: upgradeRequest({ path: '/other' }), want: { accept: false, status: 404, message: 'WebSocket endpoint is /ws' } },
    { name: 'an origin not listed', req: upgradeRequest({ origin: 'https://evil.test' }), want: { accept: false, status: 403, message: 'origin not allowed' } },
    { name: 'a listed origin', req: upgradeRequest({ origin: 'https://app.example.com' }), want: { accept: true, protocol: 'promstream.v2' } },
    { name: 'no origin (not a browser)', req: upgradeRequest(), want: { accept: true, protocol: 'promstream.v2' } },
    { name: 'an unknown version only: echoed, closed after the upgrade', req: upgradeRequest({ protocols: ['promstream.v9'] }), want: { accept: true, protocol: 'promstream.v9' } },
    { name: 'no subprotocol', req: upgradeRequest({ protocols: [] }), want: { accept: true, protocol: null } },
  ];
  for (const c of cases) it(c.name, () => expect(admission.checkUpgrade(c.req)).toEqual(c.want));

  it('refuses every upgrade with 503 once stopped', () => {
    const a = new Admission({ maxConnections: 10, maxConnectionsPerIp: 0, trustProxy: false, originRules: rules(['*']) }, () => {});
    a.stopAdmitting();
    expect(a.checkUpgrade(upgradeRequest())).toEqual({ accept: false, status: 503, message: 'server is shutting down' });
  });

  it('takes the address from the last X-Forwarded-For entry only behind a trusted proxy', () => {
    const req = upgradeRequest({ remoteAddress: '10.0.0.1', forwardedFor: '1.1.1.1, 2.2.2.2' });
    expect(new Admission({ maxConnections: 1, maxConnectionsPerIp: 1, trustProxy: true, originRules: rules(['*']) }, () => {}).addressOf(req)).toBe('2.2.2.2');
    expect(new Admission({ maxConnections: 1, maxConnectionsPerIp: 1, trustProxy: false, originRules: rules(['*']) }, () => {}).addressOf(req)).toBe('10.0.0.1');
  });
});

describe('Admission: limits over the sockets open', () => {
  it('a connection refused at capacity still counts for its address, so the address cannot later exceed its limit (review defect 1)', () => {
    const f = handlerFixture({ maxConnections: 3, maxConnectionsPerIp: 2 });
    const a1 = f.open({ remoteAddress: 'a' });
    f.open({ remoteAddress: 'a' });
    const c = f.open({ remoteAddress: 'c' });
    // At capacity: a third from a is refused as "server full", and counted for a until its socket goes.
    const refused = f.open({ remoteAddress: 'a' });
    expect(refused.peer.closed).toEqual({ code: CloseReasons.serverFull.code, reason: CloseReasons.serverFull.reason });
    expect(f.handler.admission.socketsFrom('a')).toBe(3);
    f.gone(refused.conn, 1006);
    expect(f.handler.admission.socketsFrom('a')).toBe(2);
    f.gone(c.conn, 1006);
    // Room again, but a still holds its two: a third is over the per-address limit.
    const again = f.open({ remoteAddress: 'a' });
    expect(again.peer.closed).toEqual({ code: CloseReasons.tooManyFromAddress.code, reason: CloseReasons.tooManyFromAddress.reason });
    f.gone(again.conn, 1006);
    f.gone(a1.conn, 1006);
    expect(f.handler.admission.socketsFrom('a')).toBe(1);
    expect(f.handler.admission.openSockets).toBe(1);
    expect(f.open({ remoteAddress: 'a' }).peer.closed).toBeNull();
  });

  it('keeps no per-address state when the per-address limit is off', () => {
    const f = handlerFixture({ maxConnections: 2 });
    f.open({ remoteAddress: 'a' });
    f.open({ remoteAddress: 'a' });
    expect(f.handler.admission.socketsFrom('a')).toBe(0);
    expect(f.open({ remoteAddress: 'a' }).peer.closed?.code).toBe(1013);
  });
});
