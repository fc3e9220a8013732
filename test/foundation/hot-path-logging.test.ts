import { afterEach, describe, expect, it } from 'vitest';
import { webhooksModule } from '../../src/platform/webhooks/index.js';
import { captureLog, startTestBridge, type TestBridge } from '../helpers/store.js';

let b: TestBridge | undefined;
afterEach(async () => {
  await b?.close();
  b = undefined;
});

/** Request lines Fastify logs for `url` ("incoming request" / "request completed"). */
function requestLines(lines: Array<{ msg?: string; [k: string]: unknown }>, url: string) {
  return lines.filter(
    (l) =>
      (l.msg === 'incoming request' && (l.req as { url?: string } | undefined)?.url === url) ||
      (l.msg === 'request completed' &&
        lines.some(
          (i) =>
            i.reqId === l.reqId && i.msg === 'incoming request' && (i.req as { url?: string } | undefined)?.url === url,
        )),
  );
}

describe('request logging on the hot paths (#18 item 2)', () => {
  it('by default GHL webhook requests are counted in metrics, not logged per request; other routes still log at info', async () => {
    const cap = captureLog('info');
    b = await startTestBridge({ modules: [webhooksModule()], env: { LOG_LEVEL: 'info' }, log: () => cap.log });
    for (let i = 0; i < 3; i++)
      await fetch(`${b.url}/webhooks/ghl`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
    await fetch(`${b.url}/no-such-route`);
    expect(requestLines(cap.lines, '/webhooks/ghl')).toEqual([]);
    expect(requestLines(cap.lines, '/no-such-route').length).toBe(2);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    const counted = [
      ...metrics.matchAll(/^ghl_bridge_http_requests_total\{[^}]*route="\/webhooks\/ghl"[^}]*\} (\d+)$/gm),
    ].reduce((s, m) => s + Number(m[1]), 0);
    expect(counted).toBe(3);
  });

  it('LOG_HOT_PATH_REQUESTS=true logs them at info again', async () => {
    const cap = captureLog('info');
    b = await startTestBridge({
      modules: [webhooksModule()],
      env: { LOG_LEVEL: 'info', LOG_HOT_PATH_REQUESTS: 'true' },
      log: () => cap.log,
    });
    await fetch(`${b.url}/webhooks/ghl`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(requestLines(cap.lines, '/webhooks/ghl').length).toBe(2);
  });
});
