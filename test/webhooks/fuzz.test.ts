import { request } from 'node:http';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLog } from '../helpers/store.js';
import { startBridge, startWorld, type ProviderBridge, type World } from '../provider/harness.js';
import { makeSigner } from './helpers.js';

/**
 * Property-based fuzzing of the unauthenticated surface (webhook intake, channel inbound): whatever arrives, the
 * answer is 2xx, 4xx or 429 — never 5xx — nothing is logged at error level, and the process stays healthy.
 * Bounded run counts keep it well under 30 s in CI; a failure prints fast-check's seed and shrunk counterexample.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 120);
const s = makeSigner();
const INBOUND = `whsec_${Buffer.from('f'.repeat(32)).toString('base64')}`;
let w: World;
let b: ProviderBridge;
let cap: ReturnType<typeof captureLog>;
let port: number;
let loc: string;

beforeAll(async () => {
  cap = captureLog('info');
  w = await startWorld();
  b = await startBridge(w, {
    log: () => cap.log,
    env: { WEBHOOK_EXTRA_ED25519_KEYS: s.edPublicPem.replace(/\n/g, '\\n') },
  });
  loc = w.locationIds[0]!;
  await b.provider.configureChannel(loc, {
    kind: 'http',
    url: 'http://127.0.0.1:9/unused',
    signingSecret: INBOUND,
    inboundSecret: INBOUND,
  });
  port = Number(new URL(b.url).port);
}, 60_000);
afterAll(async () => {
  await b?.close();
  await w?.emu.close();
});

/** Raw HTTP (fetch would normalise paths and refuse some headers). */
function send(method: string, path: string, headers: Record<string, string>, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, headers: { ...headers, 'content-length': String(body.length) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const okStatus = (st: number) => (st >= 200 && st < 300) || (st >= 400 && st < 500) || st === 429;

// Bodies: arbitrary JSON (deep and wide), JSON-looking junk, raw bytes, deep nesting, NUL and lone surrogates.
const jsonBody = fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v));
const nasty = fc.oneof(
  fc.integer({ min: 1, max: 30_000 }).map((d) => '{"a":' + '['.repeat(d) + ']'.repeat(d) + '}'),
  fc.integer({ min: 1, max: 30_000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
  fc.constant('\u0000'),
  fc.constant('{"type":"\ud800"}'),
  fc.constant('{"timestamp":"9999999999999999999"}'),
  fc.constant('{"timestamp":1e400}'),
  fc.string({ unit: 'binary', maxLength: 200 }),
);
const eventLike = fc
  .record(
    {
      type: fc.oneof(
        fc.constantFrom(
          'ContactCreate',
          'INSTALL',
          'UNINSTALL',
          'InboundMessage',
          'OutboundMessage',
          'ProviderOutboundMessage',
          'LocationUpdate',
        ),
        fc.string(),
      ),
      locationId: fc.oneof(fc.constant('loc_1'), fc.string(), fc.integer(), fc.constant(null)),
      companyId: fc.oneof(fc.string(), fc.constant(null)),
      id: fc.oneof(fc.string(), fc.integer()),
      messageId: fc.oneof(fc.string(), fc.integer()),
      webhookId: fc.oneof(fc.uuid(), fc.string(), fc.integer()),
      timestamp: fc.oneof(
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        fc.constant(new Date().toISOString()),
        fc.string(),
        fc.integer(),
        fc.double(),
      ),
      phone: fc.string(),
      message: fc.string(),
      attachments: fc.oneof(fc.array(fc.string()), fc.string()),
      data: fc.jsonValue({ maxDepth: 3 }),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));
const body = fc.oneof(
  jsonBody,
  nasty,
  eventLike,
  fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u).toString('latin1')),
);
const sigHeader = fc.oneof(
  fc.constant(undefined),
  fc.constant('N/A'),
  fc.base64String({ maxLength: 120 }),
  fc.string({ maxLength: 100 }).filter((x) => /^[\x20-\x7e]*$/.test(x)),
);
const contentType = fc.constantFrom(
  'application/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  'application/json; charset=latin1',
);

describe('fuzz: webhook and inbound endpoints never answer 5xx', () => {
  it('webhook intake: random bodies, random or valid signatures, both routes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/webhooks/ghl', '/webhooks/ghl/provider'),
        body,
        sigHeader,
        sigHeader,
        fc.boolean(),
        contentType,
        async (path, text, ed, rsa, signIt, ct) => {
          const raw = Buffer.from(text, 'utf8');
          const headers: Record<string, string> = {};
          if (ct) headers['content-type'] = ct;
          if (signIt) headers['x-ghl-signature'] = s.ed(raw);
          else {
            if (ed !== undefined) headers['x-ghl-signature'] = ed;
            if (rsa !== undefined) headers['x-wh-signature'] = rsa;
          }
          const st = await send('POST', path, headers, raw);
          expect(okStatus(st), `${st} for ${path} ${text.slice(0, 200)}`).toBe(true);
        },
      ),
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 60_000);

  it('channel inbound: random location ids (encoded bytes), bodies, and valid or invalid signatures', async () => {
    const locId = fc.oneof(
      fc.constant(() => loc),
      fc.constantFrom('%00', `${'x'}%00`, '%0a', '%7f', 'x'.repeat(300), '..', '%2e%2e').map((x) => () => x),
      fc.string({ maxLength: 80 }).map((x) => () => encodeURIComponent(x)),
      fc
        .uint8Array({ minLength: 1, maxLength: 12 })
        .map((u) => () => [...u].map((c) => `%${c.toString(16).padStart(2, '0')}`).join('')),
    );
    const inboundBody = fc.oneof(
      body,
      fc
        .record(
          {
            type: fc.constantFrom('message', 'status', 'receipt', 'x'),
            id: fc.string(),
            from: fc.string(),
            text: fc.string(),
            status: fc.string(),
            messageId: fc.string(),
            attachments: fc.oneof(fc.array(fc.string()), fc.string()),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
    );
    await fc.assert(
      fc.asyncProperty(
        locId,
        inboundBody,
        fc.boolean(),
        fc.option(fc.string({ maxLength: 40 }).filter((x) => /^[\x20-\x7e]*$/.test(x))),
        async (id, text, signIt, junkSig) => {
          const raw = Buffer.from(text, 'utf8');
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (signIt) {
            const msgId = `evt_${Math.random().toString(36).slice(2)}`;
            const now = new Date();
            Object.assign(headers, {
              'webhook-id': msgId,
              'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
              'webhook-signature': new Webhook(INBOUND).sign(msgId, now, text),
            });
          } else if (junkSig !== null)
            Object.assign(headers, { 'webhook-id': 'x', 'webhook-timestamp': '1', 'webhook-signature': junkSig });
          const st = await send('POST', `/channels/${id()}/inbound`, headers, raw);
          expect(okStatus(st), `${st} for ${text.slice(0, 200)}`).toBe(true);
        },
      ),
      { numRuns: RUNS, endOnFailure: true },
    );
  }, 60_000);

  it('afterwards: healthy, ready, and nothing was logged at error level', async () => {
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    expect(cap.errors().map((l) => l.msg)).toEqual([]);
  });
});
