import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { expect, it } from 'vitest';
import { ServerMessageType,  SUBPROTOCOL, decodeServerFrame, encodeDelta, encodeHello, parseServerMessage } from '../../protocol/index.js';
import { scrape, valueOf } from '../support/scrape.js';
import { describeEachTransport, startTestServer } from '../support/server-harness.js';

const openssl = ['/usr/bin/openssl', '/bin/openssl'].find((p) => existsSync(p));
if (openssl === undefined) {
  if (process.env['CI']) throw new Error('openssl is missing and CI is set: apt-get install openssl');
  console.warn('SKIPPED: openssl not found; the wss:// end-to-end tests need it to make a certificate');
}

function selfSigned(): { certFile: string; keyFile: string; ca: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'promstream-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(openssl!, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  return { certFile, keyFile, ca: readFileSync(certFile) };
}

describeEachTransport('wss:// without a proxy over %s', (transport) => {
  it.skipIf(openssl === undefined)('a client says hello, streams and is counted over TLS', async () => {
    const { certFile, keyFile, ca } = selfSigned();
    const server = await startTestServer(transport, { tls: { certFile, keyFile } });
    try {
      const health = await new Promise<number>((resolve, reject) => {
        import('node:https').then(({ get }) => get(`https://127.0.0.1:${server.port}/healthz`, { ca }, (res) => resolve(res.statusCode ?? 0)).on('error', reject), reject);
      });
      expect(health).toBe(200);
      const ws = new WebSocket(`wss://127.0.0.1:${server.port}/ws`, [SUBPROTOCOL], { ca });
      ws.on('error', () => {});
      const messages: ReturnType<typeof parseServerMessage>[] = [];
      const acked = new Promise<void>((resolve) => {
        ws.on('message', (data: Buffer) => {
          const msg = parseServerMessage(decodeServerFrame(data));
          messages.push(msg);
          if (msg.type === ServerMessageType.WELCOME) ws.send(encodeDelta(1, msg.catalog.version, [[0, 2, 9]], new Map()));
          else resolve();
        });
      });
      ws.on('open', () => ws.send(encodeHello({ app: 'student' }, null)));
      await acked;
      expect(messages.map((m) => m.type)).toEqual([ServerMessageType.WELCOME, ServerMessageType.ACK]);
      const m = await scrape(server.metricsPort);
      expect(valueOf(m, 'usage_total{feature="c"}')).toBe(9);
      expect(valueOf(m, 'connected_clients{app="student"}')).toBe(1);
      ws.close(1000);
    } finally {
      await server.close();
    }
  });
});
