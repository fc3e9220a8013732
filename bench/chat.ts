/**
 * npm run bench:chat — two-way chat sync overhead (issue 13).
 *
 * 10 locations × 5 chat clients, GHL (bench/chat-emulator.ts) in its own process with GHL's real rate limit (100
 * requests / 10 s per location) in both the emulator and the bridge's limiter. Traffic is offered open loop at 95 % of
 * the ceiling that limit allows (each pushed message costs one Add Inbound call, each reply one status call: LOCATIONS
 * × 100 / 10 s messages per second, split evenly between the two directions). Two phases in one run:
 *   baseline: the pre-existing paths — channel inbound (POST /channels/:loc/inbound, signed) → GHL, and GHL user SMS
 *             to contacts the chat API does not know → the HTTP channel;
 *   chat:     POST /v1/…/chat/messages → GHL, and GHL user replies to linked contacts → the HTTP channel with chat ids.
 * Per message:
 *   push overhead  = request sent to the bridge → the message created in GHL (the emulator's clock at its handler, so
 *                    the emulator's own time after that is excluded)
 *   reply overhead = GHL fires the Delivery-URL webhook → the chat product's receiver has the reply
 * plus throughput (messages/s both ways, against the ceiling) and echoes (replies that were bridge-created messages,
 * external ids posted twice).
 *
 * Env: BENCH_MESSAGES (per direction and phase, 2000), BENCH_LOCATIONS (10), BENCH_BURST (100), BENCH_RATE (msgs/s
 * each way; default 95 % of half the ceiling), TEST_STORE=postgres.
 */
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { chatModule } from '../src/capabilities/chat/index.js';
import { providerModule } from '../src/capabilities/provider/index.js';
import { apiKeysModule } from '../src/platform/apikeys/index.js';
import { installationsModule } from '../src/platform/installations/index.js';
import { webhooksModule } from '../src/platform/webhooks/index.js';
import { startTestBridge } from '../test/helpers/store.js';
import { install } from '../test/provider/harness.js';
import { CHAT_SCOPES, SIGNING } from '../test/chat/harness.js';
import { bridgeEnv, fileLogger, pct, startEmulator, stopChild, table } from './common.js';

const N = Number(process.env.BENCH_MESSAGES ?? 2000);
const LOCS = Number(process.env.BENCH_LOCATIONS ?? 10);
const BURST = Number(process.env.BENCH_BURST ?? 100);
const INTERVAL = 10_000;
const CLIENTS = 5;
const INBOUND = `whsec_${Buffer.from('chat-bench-inbound-secret-0123456789').toString('base64')}`;

const {
  child,
  world,
  call: emu,
} = await startEmulator(['bench/chat-emulator.ts', String(LOCS), String(BURST), String(INTERVAL)]);
const logFile = join(mkdtempSync(join(tmpdir(), 'ghl-bridge-chat-')), 'bridge.log');

// The chat product's receiver (HTTP channel): arrival time per GHL message id, and the bodies.
const arrived = new Map<string, number>();
const bodies: Array<{ messageId: string; chat?: { clientId: string } }> = [];
const rx = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (d: Buffer) => chunks.push(d));
  req.on('end', () => {
    const at = Date.now();
    const b = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messageId: string; chat?: { clientId: string } };
    if (!arrived.has(b.messageId)) arrived.set(b.messageId, at);
    bodies.push(b);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"delivered"}');
  });
});
await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
const rxAddr = rx.address();
const rxUrl = `http://127.0.0.1:${typeof rxAddr === 'object' && rxAddr ? rxAddr.port : 0}/chat`;

const b = await startTestBridge({
  modules: [
    webhooksModule({ extraEd25519Keys: [world.keys.ed25519PublicKeyPem], extraRsaKeys: [world.keys.rsaPublicKeyPem] }),
    installationsModule({ limits: { burst: BURST, intervalMs: INTERVAL } }),
    apiKeysModule(),
    providerModule(),
    chatModule(),
  ],
  env: {
    ...bridgeEnv(world),
    GHL_SCOPES: CHAT_SCOPES,
    WORKER_CONCURRENCY: '32',
    PROVIDER_CATCHUP_INTERVAL_MS: '0',
    CHAT_RECONCILE_INTERVAL_MS: '0',
  },
  log: fileLogger(logFile),
});
await emu(
  `/_emulator/apps/${world.clientId}`,
  {
    providerDeliveryUrl: `${b.url}/webhooks/ghl/provider/${await b.ctx.services.get('provider').tokens.current()}`,
    webhookUrl: `${b.url}/webhooks/ghl`,
  },
  'PATCH',
);
const provider = b.ctx.services.get('provider');
const locs = world.locationIds;
for (const loc of locs) {
  await install(b.url, loc);
  await provider.configureChannel(loc, { kind: 'http', url: rxUrl, signingSecret: SIGNING, inboundSecret: INBOUND });
}
const { key } = await b.ctx.services.get('apiKeys').create({ name: 'bench', locationIds: locs });
const auth = `Bearer ${key}`;
const wh = new Webhook(INBOUND);

const phone = (loc: number, i: number) => `+1415556${String(1000 + loc * 10 + i).padStart(4, '0')}`;
const push = (loc: string, li: number, i: number, id: string) =>
  fetch(`${b.url}/v1/locations/${loc}/chat/messages`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({
      conversationId: `bc-${li}-${i % CLIENTS}`,
      client: { externalId: `bench-${li}-${i % CLIENTS}`, phone: phone(li, i % CLIENTS) },
      message: {
        externalId: id,
        direction: i % 2 ? 'outbound' : 'inbound',
        text: `chat ${id}`,
        sentAt: new Date().toISOString(),
      },
    }),
  });
const channelPush = (loc: string, li: number, i: number, id: string) => {
  const body = JSON.stringify({
    type: 'message',
    id,
    from: `+1415557${String(1000 + li * 10 + (i % CLIENTS)).padStart(4, '0')}`,
    text: `base ${id}`,
  });
  const ts = new Date();
  return fetch(`${b.url}/channels/${loc}/inbound`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)),
      'webhook-signature': wh.sign(id, ts, body),
    },
    body,
  });
};

// Warm-up (not measured): one message per client on both paths creates the custom fields, contacts and conversations.
const warm: Array<Promise<Response>> = [];
for (const [li, loc] of locs.entries())
  for (let i = 0; i < CLIENTS; i++) {
    warm.push(push(loc, li, i, `warm-${li}-${i}`));
    warm.push(channelPush(loc, li, i, `warmb-${li}-${i}`));
  }
for (const r of await Promise.all(warm))
  if (r.status !== 202) throw new Error(`warm-up push: ${r.status} ${await r.text()}`);
const created = async () =>
  new Map(
    (await emu<Array<[string, number, string]>>('/_bench/created', undefined, 'GET')).map(([a, t, id]) => [
      a,
      { t, id },
    ]),
  );
for (;;) {
  if ((await created()).size >= 2 * LOCS * CLIENTS) break;
  await new Promise((r) => setTimeout(r, 250));
}
const linked = new Map<string, string>();
for (const r of await b.ctx.db.selectFrom('chat_clients').select(['location_id', 'contact_id']).execute())
  if (r.contact_id) linked.set(r.contact_id, r.location_id);
const linkedTargets = [...linked].map(([id, loc]) => ({ loc, id }));
const unlinkedTargets: Array<{ loc: string; id: string }> = [];
for (const [i, loc] of locs.entries())
  for (const id of await emu<string[]>('/_bench/contacts', { locationId: loc, n: CLIENTS, offset: i * CLIENTS }))
    unlinkedTargets.push({ loc, id });
await new Promise((r) => setTimeout(r, INTERVAL)); // let the warm-up calls leave the rate window

const ceiling = (LOCS * BURST) / (INTERVAL / 1000);
const rate = Number(process.env.BENCH_RATE ?? (ceiling * 0.95) / 2);

let retries = 0;
async function phase(label: string, chat: boolean) {
  const sent = new Map<string, number>();
  const t0 = Date.now();
  await emu('/_bench/replies', {
    targets: chat ? linkedTargets : unlinkedTargets,
    n: N,
    rate,
    providerId: world.conversationProviderId,
    tag: label,
  });
  const inflight: Array<Promise<unknown>> = [];
  for (let i = 0; i < N; i++) {
    const due = t0 + (i * 1000) / rate;
    if (due > Date.now() + 2) await new Promise((r) => setTimeout(r, due - Date.now()));
    const li = i % LOCS;
    const id = `${label}-${i}`;
    sent.set(id, Date.now());
    const send = async (): Promise<unknown> => {
      // As a chat product would: a push that failed to connect is sent again (idempotent on the id).
      for (let a = 0; ; a++) {
        try {
          return await (await (chat ? push : channelPush)(locs[li]!, li, Math.floor(i / LOCS), id)).arrayBuffer();
        } catch (e) {
          if (a >= 5) throw e;
          retries++;
        }
      }
    };
    inflight.push(send());
  }
  await Promise.all(inflight);
  let fired: Array<[string, number]> = [];
  let made = new Map<string, { t: number; id: string }>();
  const deadline = Date.now() + 300_000;
  for (;;) {
    const f = await emu<{ done: boolean; fired: Array<[string, number]> }>('/_bench/fired', undefined, 'GET');
    fired = f.fired;
    made = await created();
    const pushesIn = [...sent.keys()].filter((k) => made.has(k)).length;
    const repliesIn = fired.filter(([id]) => arrived.has(id)).length;
    if ((f.done && pushesIn >= N && repliesIn >= N) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const end = Math.max(
    ...[...sent.keys()].map((k) => made.get(k)?.t ?? 0),
    ...fired.map(([id]) => arrived.get(id) ?? 0),
  );
  const pushMs = [...sent].filter(([k]) => made.has(k)).map(([k, at]) => made.get(k)!.t - at);
  const replyMs = fired.filter(([id]) => arrived.has(id)).map(([id, at]) => arrived.get(id)! - at);
  return {
    label,
    pushMs,
    replyMs,
    secs: (end - t0) / 1000,
    done: pushMs.length + replyMs.length,
    firedIds: fired.map(([id]) => id),
  };
}

if (process.env.BENCH_DEBUG) console.log(await emu('/_bench/calls', undefined, 'GET'));
const base = await phase('base', false);
if (process.env.BENCH_DEBUG) console.log(await emu('/_bench/calls', undefined, 'GET'), logFile);
await new Promise((r) => setTimeout(r, INTERVAL));
const chat = await phase('chat', true);

const own = new Set(
  (await b.ctx.db.selectFrom('chat_messages').select('ghl_message_id').execute()).map((r) => r.ghl_message_id),
);
const echoesToChat = bodies.filter((x) => own.has(x.messageId)).length;
const alt = (await emu<Array<[string, number, string]>>('/_bench/created', undefined, 'GET')).map(([a]) => a);
const echoesToGhl = alt.length - new Set(alt).size;
const chatFired = new Set(chat.firedIds);
const missingChatIds = bodies.filter((x) => chatFired.has(x.messageId) && !x.chat).length;

const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const rows = [base, chat].map((p) => [
  p.label,
  f(pct(p.pushMs, 50)),
  f(pct(p.pushMs, 99)),
  f(pct(p.replyMs, 50)),
  f(pct(p.replyMs, 99)),
  `${p.done}/${2 * N}`,
  f(p.done / p.secs),
  `${((100 * p.done) / p.secs / ceiling).toFixed(0)} %`,
]);
console.log(
  `\nbench:chat — ${process.env.TEST_STORE === 'postgres' ? 'PostgreSQL' : 'PGlite'}, ${LOCS} locations, ${N} messages each way per phase, offered ${rate.toFixed(1)} msg/s each way (95 % of the ${ceiling} msg/s ceiling)\n`,
);
console.log(
  table(['phase', 'push p50 ms', 'push p99 ms', 'reply p50 ms', 'reply p99 ms', 'done', 'msg/s', 'of ceiling'], rows),
);
console.log(
  `\nratio chat/baseline: push p99 ${f(pct(chat.pushMs, 99) / pct(base.pushMs, 99))}×, reply p99 ${f(pct(chat.replyMs, 99) / pct(base.replyMs, 99))}×`,
);
console.log(
  `echoes: ${echoesToChat} bridge-created messages sent to the chat product, ${echoesToGhl} external ids posted twice into GHL`,
);
console.log(
  `replies without chat ids in the chat phase: ${missingChatIds}; pushes re-sent after a connect failure: ${retries}`,
);
await b.close();
await stopChild(child);
rx.close();
