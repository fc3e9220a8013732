import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeCast, type FakeCast } from '../fakes/cast-server.js';

// The fake itself must follow CAST.md, or the adapter tests prove nothing. Requests the adapter never makes are checked here.
const KEY = `cast_${'0f'.repeat(32)}`;
let fake: FakeCast;
beforeAll(async () => {
  fake = await startFakeCast({ ratePerSecond: 100 });
});
afterAll(async () => {
  await fake.close();
});

async function call(
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${fake.url}${path}`, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.json(), headers: res.headers };
}
const post = (body: string, headers: Record<string, string> = {}, path = '/api/v1/sms/send') =>
  call(path, { method: 'POST', body, headers: { 'x-api-key': KEY, 'content-type': 'application/json', ...headers } });

describe('fake Cast server follows CAST.md', () => {
  it.each([
    ['missing key', '{}', { 'x-api-key': '' }, 401, 'INVALID_API_KEY'],
    ['malformed key', '{}', { 'x-api-key': 'cast_nothex' }, 401, 'INVALID_API_KEY'],
    ['not JSON', '{"to":', {}, 400, 'INVALID_REQUEST'],
    ['wrong content type', '{}', { 'content-type': 'text/plain' }, 400, 'INVALID_REQUEST'],
    ['missing to', '{"message":"x"}', {}, 400, 'VALIDATION_ERROR'],
    ['bad to', '{"to":"abc","message":"x"}', {}, 400, 'VALIDATION_ERROR'],
    ['missing message', '{"to":"09171234567"}', {}, 400, 'VALIDATION_ERROR'],
    [
      'long sender id',
      '{"to":"09171234567","message":"x","sender_id":"ABCDEFGHIJKLMNOPQRSTU"}',
      {},
      400,
      'VALIDATION_ERROR',
    ],
    [
      'long idempotency key',
      '{"to":"09171234567","message":"x"}',
      { 'x-idempotency-key': 'k'.repeat(256) },
      400,
      'VALIDATION_ERROR',
    ],
  ])('%s → %s %s', async (_n, body, headers, status, code) => {
    const r = await post(body, headers);
    expect(r.status).toBe(status);
    expect(r.body).toMatchObject({ success: false, error_code: code, error: expect.any(String) });
  });

  it('legacy /api/sms/send works like /api/v1', async () => {
    const r = await post('{"to":"+639171234567","message":"hi"}', {}, '/api/sms/send');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, message_id: expect.stringMatching(/^CAST/), parts: 1 });
  });

  it('idempotency replay is scoped per API key and marked with X-Idempotent-Replay', async () => {
    const body = '{"to":"09171234567","message":"hi"}';
    const a = await post(body, { 'x-idempotency-key': 'same' });
    const b = await post(body, { 'x-idempotency-key': 'same' });
    const other = await post(body, { 'x-idempotency-key': 'same', 'x-api-key': `cast_${'1e'.repeat(32)}` });
    expect(b.body).toEqual(a.body);
    expect(a.headers.get('x-idempotent-replay')).toBeNull();
    expect(b.headers.get('x-idempotent-replay')).toBe('true');
    expect(other.headers.get('x-idempotent-replay')).toBeNull();
    expect((other.body as { message_id: string }).message_id).not.toBe((a.body as { message_id: string }).message_id);
  });

  it('status endpoint: sent by default, settable, 404 for unknown', async () => {
    const sent = await post('{"to":"09171234567","message":"hi"}');
    const id = (sent.body as { message_id: string }).message_id;
    const get = (i: string) => call(`/api/v1/sms/status/${i}`, { headers: { 'x-api-key': KEY } });
    expect((await get(id)).body).toMatchObject({
      success: true,
      message_id: id,
      status: 'sent',
      sent_at: expect.any(String),
    });
    fake.setStatus(id, 'delivered');
    expect((await get(id)).body).toMatchObject({
      status: 'delivered',
      dlr_status: 'DELIVRD',
      delivered_at: expect.any(String),
    });
    expect(await get('CASTNOPE')).toMatchObject({ status: 404, body: { error_code: 'NOT_FOUND' } });
  });
});
