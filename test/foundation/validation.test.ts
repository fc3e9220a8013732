import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeModules } from '../../src/modules.js';
import { startTestBridge, testConfig, type TestBridge } from '../helpers/store.js';

const KEY = 'validation-test-admin-key-0123456789abcdef';
let bridge: TestBridge;
beforeAll(async () => {
  const cfg = testConfig({ ADMIN_API_KEY: KEY });
  bridge = await startTestBridge({ config: cfg, modules: await bridgeModules(cfg) });
});
afterAll(async () => {
  await bridge.close();
});

const call = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(bridge.url + path, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return {
    res,
    body: (await res.json()) as { details?: Array<{ path: string; message: string }> } & Record<string, unknown>,
  };
};
const paths = (b: { details?: Array<{ path: string }> }) => (b.details ?? []).map((d) => d.path).sort();

describe('route schemas validate requests; failures are 400s in the one error shape naming each field', () => {
  it('query string: every bad field is named under query.', async () => {
    const { res, body } = await call('GET', '/admin/webhooks/events?limit=0&status=bogus&since=yesterday');
    expect(res.status).toBe(400);
    expect(body).toMatchObject({ statusCode: 400, error: 'Bad Request', requestId: res.headers.get('x-request-id') });
    expect(paths(body)).toEqual(['query.limit', 'query.since', 'query.status']);
    expect(body.message).toContain('query.limit');
    // Coerced and accepted when valid.
    expect((await call('GET', '/admin/webhooks/events?limit=5&status=dead')).res.status).toBe(200);
  });

  it('path parameters under params., bodies under body. (nested fields and array items too)', async () => {
    const id = await call('GET', '/admin/webhooks/events/abc');
    expect(id.res.status).toBe(400);
    expect(paths(id.body)).toEqual(['params.id']);

    const replay = await call('POST', '/admin/webhooks/replay', { ids: [1, 'two'], dead: 'yes' });
    expect(replay.res.status).toBe(400);
    expect(paths(replay.body)).toEqual(['body.dead', 'body.ids.1']);

    const channel = await call('PUT', '/admin/channels/loc1', {
      config: { kind: 'cast', apiKey: 'nope', inboundApiKey: 'short' },
      defaultRegion: 'USA',
    });
    expect(channel.res.status).toBe(400);
    expect(paths(channel.body)).toEqual(['body.config.apiKey', 'body.config.inboundApiKey', 'body.defaultRegion']);
    expect(JSON.stringify(channel.body)).not.toContain('nope'); // values are not echoed

    const retry = await call('POST', '/admin/api/jobs/retry', { ids: ['x'] });
    expect(retry.res.status).toBe(400);
    expect(paths(retry.body)).toEqual(['body.ids.0']);

    const catchup = await call('POST', '/admin/provider/catch-up', { locationId: 'a b', extra: 1 });
    expect(catchup.res.status).toBe(400);
    expect(paths(catchup.body)).toEqual(['body', 'body.locationId']);
  });
});
