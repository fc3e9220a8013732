import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestBridge, type TestBridge } from '../helpers/store.js';
import { webhooksModule } from '../../src/platform/webhooks/index.js';

let b: TestBridge | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await b?.close();
  b = undefined;
});

/** A raw client that writes `head` at once, then one byte of `drip` every 200 ms; resolves how long until the server closed it. */
function slowClient(port: number, head: string, drip = ''): { closedAfter: Promise<number>; received: () => string } {
  const s = connect(port, '127.0.0.1');
  sockets.push(s);
  const started = Date.now();
  let got = '';
  s.on('data', (d) => (got += d.toString()));
  s.on('error', () => {});
  s.on('connect', () => s.write(head));
  let i = 0;
  const t = setInterval(() => {
    if (!s.destroyed && s.writable) s.write(drip[i++ % Math.max(1, drip.length)] ?? 'x');
  }, 200);
  const closedAfter = new Promise<number>((resolve) =>
    s.on('close', () => {
      clearInterval(t);
      resolve(Date.now() - started);
    }),
  );
  return { closedAfter, received: () => got };
}

/** Resolves with the value, or with Infinity if it is not settled within `ms` (the connection was never cut). */
const within = (p: Promise<number>, ms: number) =>
  Promise.race([p, new Promise<number>((r) => setTimeout(() => r(Infinity), ms).unref())]);

describe('slow clients are cut at the configured timeouts', () => {
  it('slowloris headers, a dripping body, a silent connection and an idle keep-alive connection are all closed', async () => {
    b = await startTestBridge({
      modules: [webhooksModule()],
      env: {
        HTTP_HEADERS_TIMEOUT_MS: '1500',
        HTTP_REQUEST_TIMEOUT_MS: '3000',
        HTTP_KEEP_ALIVE_TIMEOUT_MS: '1500',
        HTTP_CONNECTION_TIMEOUT_MS: '60000',
      },
    });
    const port = Number(new URL(b.url).port);
    // 15 slowloris connections: headers that never end (one more header byte every 200 ms).
    const loris = Array.from({ length: 15 }, () =>
      slowClient(port, 'POST /webhooks/ghl HTTP/1.1\r\nHost: x\r\nX-Slow: ', 'abcdefgh'),
    );
    // Headers complete, body promised (1000 bytes) and dripped.
    const body = slowClient(
      port,
      'POST /webhooks/ghl HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{',
      'a',
    );
    // Connects and says nothing.
    const silent = slowClient(port, '');
    // One quick request on a keep-alive connection, then idle (the drip is empty: it sends nothing more).
    const idle = connect(port, '127.0.0.1');
    sockets.push(idle);
    let idleGot = '';
    idle.on('data', (d) => (idleGot += d.toString()));
    const idleStart = Date.now();
    const idleClosed = new Promise<number>((r) => idle.on('close', () => r(Date.now() - idleStart)));
    idle.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');

    // Deadlines are checked every second; allow that plus scheduling slack on a busy machine.
    const slack = 3000;
    const lorisTimes = await Promise.all(loris.map((c) => within(c.closedAfter, 1500 + slack + 2000)));
    for (const t of lorisTimes) {
      expect(t).toBeGreaterThanOrEqual(1400);
      expect(t).toBeLessThan(1500 + slack);
    }
    const bodyTime = await within(body.closedAfter, 3000 + slack + 2000);
    expect(bodyTime).toBeGreaterThanOrEqual(2900);
    expect(bodyTime).toBeLessThan(3000 + slack);
    expect(body.received()).toMatch(/^HTTP\/1\.1 408/);
    const silentTime = await within(silent.closedAfter, 1500 + slack + 2000);
    expect(silentTime).toBeLessThan(1500 + slack);
    const idleTime = await within(idleClosed, 1500 + slack + 2000);
    expect(idleGot).toMatch(/^HTTP\/1\.1 200/);
    expect(idleTime).toBeGreaterThanOrEqual(1400);
    expect(idleTime).toBeLessThan(1500 + slack);
    // The server is fine afterwards.
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
  }, 30_000);

  it('refuses a headers timeout longer than the request timeout at start, naming the variable', async () => {
    const { loadConfig } = await import('../../src/infra/config/index.js');
    expect(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' })).toThrow(
      /HTTP_HEADERS_TIMEOUT_MS: expected at most HTTP_REQUEST_TIMEOUT_MS/,
    );
  });
});
