/**
 * npm run bench:relay — relay overhead of the conversation provider.
 *
 * 10 locations, 5,000 ProviderOutboundMessages (emulator → signed webhook → bridge → loopback channel → GHL status),
 * after a short warm-up. The emulator (GHL) runs in its own process (bench/relay-emulator.ts), as GHL is never in ours,
 * with GHL's real rate limit (100 requests / 10 s per location) in both the emulator and the bridge's limiter.
 * Messages are offered at a steady rate just under the ceiling the rate limit allows (one status
 * call per message: LOCATIONS × 100 / 10 s), so the figures show the bridge's own overhead rather
 * than time spent queued behind the limit. Measures, per message:
 *   outbound overhead  = GHL sends the message (webhook fired) → channel send() called
 *                        (includes signing, HTTP delivery, verify, durable intake, the dispatch job that sends)
 *   status overhead    = channel result recorded → GHL status call issued (before the rate-limit wait)
 * and messages/s against that ceiling (the baseline).
 *
 * Env: BENCH_MESSAGES (5000), BENCH_LOCATIONS (10), BENCH_BURST (GHL burst per 10 s, 100),
 *      BENCH_RATE (offered msgs/s, default 95 % of the ceiling; "max" = all at once), BENCH_WARMUP (messages offered
 *      first and not measured, 200), BENCH_TIMELINE=1 (per-second outbound figures), TEST_STORE=postgres.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { generateKeySpec } from '../src/crypto/aes.js';
import { LoopbackInbox } from '../src/channels/index.js';
import { installationsModule } from '../src/installations/index.js';
import { providerModule, type ProviderService } from '../src/provider/index.js';
import { webhooksModule } from '../src/webhooks/index.js';
import { startTestBridge } from '../test/helpers/store.js';
import { install, SCOPES } from '../test/provider/harness.js';
import { startChild, stopChild } from './common.js';

const N = Number(process.env.BENCH_MESSAGES ?? 5000);
const LOCS = Number(process.env.BENCH_LOCATIONS ?? 10);
const BURST = Number(process.env.BENCH_BURST ?? 100);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const INTERVAL = 10_000;

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

// GHL (the emulator) runs in its own process and generates the load: see bench/relay-emulator.ts.
const { child, ready: world } = await startChild<{
  baseUrl: string;
  keys: { ed25519PublicKeyPem: string; rsaPublicKeyPem: string };
  clientId: string;
  clientSecret: string;
  conversationProviderId: string;
  locationIds: string[];
}>(['bench/relay-emulator.ts', String(LOCS), String(BURST), String(INTERVAL)]);
const emu = async <T>(path: string, body?: unknown, method = 'POST'): Promise<T> => {
  const r = await fetch(`${world.baseUrl}${path}`, body === undefined ? {} : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`emulator ${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
};
const locs = world.locationIds;
const inbox = new LoopbackInbox(N + 10);
const b = await startTestBridge({
  modules: [
    webhooksModule({ extraEd25519Keys: [world.keys.ed25519PublicKeyPem], extraRsaKeys: [world.keys.rsaPublicKeyPem] }),
    installationsModule({ limits: { burst: BURST, intervalMs: INTERVAL } }),
    providerModule({ loopbackInbox: inbox }),
  ],
  env: {
    SANDBOX: 'false',
    GHL_CLIENT_ID: world.clientId,
    GHL_CLIENT_SECRET: world.clientSecret,
    GHL_API_BASE: world.baseUrl,
    GHL_MARKETPLACE_BASE: world.baseUrl,
    GHL_SCOPES: SCOPES,
    GHL_CONVERSATION_PROVIDER_ID: world.conversationProviderId,
    PUBLIC_URL: 'http://bridge.test',
    TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
    GHL_RECONCILE_INTERVAL_MIN: '0',
    WORKER_CONCURRENCY: '32',
    LOG_LEVEL: 'silent',
  },
});
await emu(`/_emulator/apps/${world.clientId}`, { providerDeliveryUrl: `${b.url}/webhooks/ghl/provider` }, 'PATCH');
const provider = b.ctx.services.provider as ProviderService;
const contacts: Array<{ loc: string; id: string }> = [];
for (const loc of locs) {
  await install(b.url, loc);
  await provider.configureChannel(loc, { kind: 'loopback' });
  for (const id of await emu<string[]>('/_bench/contacts', { locationId: loc, n: 20, offset: contacts.length })) contacts.push({ loc, id });
}
// Let the install-time API calls leave the rate window before measuring.
await new Promise((r) => setTimeout(r, INTERVAL));

let status: number[] = [];
// The webhook may reach the bridge before the emulator reports the message id: match up at the end.
let sentAt = new Map<string, number>();
let reported = 0;
let lastReport = 0;
provider.events.on('send', (e) => {
  if (e.attempt === 1) sentAt.set(e.messageId, e.at);
});
provider.events.on('status', (e) => status.push(e.at - e.since));
provider.events.on('reported', () => {
  reported++;
  lastReport = Date.now();
});

const ceiling = (LOCS * BURST) / (INTERVAL / 1000);
const rate = process.env.BENCH_RATE === 'max' ? Infinity : Number(process.env.BENCH_RATE ?? ceiling * 0.95);
const offer = async (n: number) => {
  await emu('/_bench/run', { contacts, n, rate: Number.isFinite(rate) ? rate : null, providerId: world.conversationProviderId });
  const deadline = Date.now() + 15 * 60_000;
  while (reported < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
};
// Warm-up (not measured): opens the pool's connections, prepares statements, fills the token and channel caches
// and lets the JIT settle, as a bridge in service has done long before. The measured run follows without a pause.
await offer(WARMUP);
status = [];
sentAt = new Map();
reported = 0;

const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
const elu0 = performance.eventLoopUtilization();
const t0 = Date.now();
await offer(N);
const elu = performance.eventLoopUtilization(elu0);
loopDelay.disable();
const secs = (lastReport - t0) / 1000;
const firedAt = new Map((await emu<{ fired: Array<[string, number]> }>('/_bench/fired')).fired);
const outbound = [...sentAt].flatMap(([id, at]) => (firedAt.has(id) ? [at - firedAt.get(id)!] : []));
if (process.env.BENCH_TIMELINE) {
  // Outbound overhead per second of the run (p50/max), to spot warm-up effects and stalls.
  const per = new Map<number, number[]>();
  for (const [id, at] of sentAt) {
    const f = firedAt.get(id);
    if (f === undefined) continue;
    const k = Math.floor((f - t0) / 1000);
    per.set(k, [...(per.get(k) ?? []), at - f]);
  }
  console.log([...per].sort((x, y) => x[0] - y[0]).map(([k, v]) => `${k}s:${pct(v, 50)}/${Math.max(...v)}`).join(' '));
}
const row = (k: string, v: string) => console.log(`| ${k.padEnd(44)} | ${v.padStart(14)} |`);
console.log(`\nbench:relay — ${N} messages, ${LOCS} locations, loopback channel, store ${b.ctx.store.kind}, offered ${Number.isFinite(rate) ? rate.toFixed(0) + ' msg/s' : 'all at once'}\n`);
console.log(`| ${'metric'.padEnd(44)} | ${'value'.padStart(14)} |`);
console.log(`|${'-'.repeat(46)}|${'-'.repeat(16)}|`);
row('outbound overhead p50 (GHL send → channel send)', `${pct(outbound, 50)} ms`);
row('outbound overhead p99', `${pct(outbound, 99)} ms`);
row('status overhead p50 (result → GHL call)', `${pct(status, 50)} ms`);
row('status overhead p99', `${pct(status, 99)} ms`);
row('messages reported', `${reported}/${N}`);
row('throughput', `${(reported / secs).toFixed(1)} msg/s`);
row('ceiling (GHL limit: 1 status call per msg)', `${ceiling.toFixed(1)} msg/s`);
row('throughput / ceiling', `${((100 * reported) / secs / ceiling).toFixed(0)} %`);
// Where the outbound time goes, per stage (the bridge's own timestamps; the channel send runs inside the dispatch job).
const stages = await sql<{ message_id: string; intake: Date; sending: Date | null }>`
  select po.message_id, we.received_at as intake, po.send_started_at as sending
  from provider_outbound po join webhook_events we on we.source = 'provider' and (we.payload->>'messageId') = po.message_id`.execute(b.ctx.db);
const legs = { 'GHL send → stored by intake': [] as number[], 'stored → channel send (dispatch job)': [] as number[] };
for (const r of stages.rows) {
  const fired = firedAt.get(r.message_id);
  if (fired === undefined) continue; // warm-up
  legs['GHL send → stored by intake'].push(r.intake.getTime() - fired);
  if (r.sending) legs['stored → channel send (dispatch job)'].push(r.sending.getTime() - r.intake.getTime());
}
console.log('');
for (const [k, v] of Object.entries(legs)) row(`  ${k}`, `p50 ${pct(v, 50)} / p99 ${pct(v, 99)} / max ${pct(v, 100)} ms`);
row('  bridge event loop: busy / delay p99', `${(elu.utilization * 100).toFixed(0)} % / ${(loopDelay.percentile(99) / 1e6).toFixed(0)} ms`);
console.log('\nThe status-call leg includes the wait for a GHL rate-limit slot once the burst is used up (by design: the limit is the ceiling).');
await b.close();
await stopChild(child);
process.exit(reported === N ? 0 : 1);
