import { sql } from 'kysely';
/**
 * npm run bench:relay — relay overhead of the conversation provider.
 *
 * 10 locations, 5,000 ProviderOutboundMessages (emulator → signed webhook → bridge → loopback channel → GHL status),
 * with GHL's real rate limit (100 requests / 10 s per location) in both the emulator and the bridge's limiter.
 * Messages are offered at a steady rate just under the ceiling the rate limit allows (one status
 * call per message: LOCATIONS × 100 / 10 s), so the figures show the bridge's own overhead rather
 * than time spent queued behind the limit. Measures, per message:
 *   outbound overhead  = GHL sends the message (webhook fired) → channel send() called
 *                        (includes signing, HTTP delivery, verify, durable intake, dispatch, send job)
 *   status overhead    = channel result recorded → GHL status call issued (before the rate-limit wait)
 * and messages/s against that ceiling (the baseline).
 *
 * Env: BENCH_MESSAGES (5000), BENCH_LOCATIONS (10), BENCH_BURST (GHL burst per 10 s, 100),
 *      BENCH_RATE (offered msgs/s, default 95 % of the ceiling; "max" = all at once), TEST_STORE=postgres.
 */
import { createEmulator } from '../src/emulator/index.js';
import { generateKeySpec } from '../src/crypto/aes.js';
import { LoopbackInbox } from '../src/channels/index.js';
import { installationsModule } from '../src/installations/index.js';
import { providerModule, type ProviderService } from '../src/provider/index.js';
import { webhooksModule } from '../src/webhooks/index.js';
import { startTestBridge } from '../test/helpers/store.js';
import { install, SCOPES } from '../test/provider/harness.js';

const N = Number(process.env.BENCH_MESSAGES ?? 5000);
const LOCS = Number(process.env.BENCH_LOCATIONS ?? 10);
const BURST = Number(process.env.BENCH_BURST ?? 100);
const INTERVAL = 10_000;

const pct = (xs: number[], p: number) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

const emu = await createEmulator({ rsaModulusLength: 1024, seed: 5, rateLimit: { burst: BURST, intervalMs: INTERVAL, daily: 1_000_000 } });
await emu.listen();
const c = emu.control;
const ag = c.createAgency({ name: 'Bench' });
c.createUser({ companyId: ag.id, type: 'agency' });
const locs = Array.from({ length: LOCS }, (_, i) => c.createLocation({ companyId: ag.id, name: `L${i}` }).id);
const app = c.createApp({ name: 'ghl-bridge', redirectUri: 'http://bridge.test/oauth/callback', scopes: SCOPES, conversationProvider: { type: 'SMS', isCustom: true } });
const inbox = new LoopbackInbox(N + 10);
const b = await startTestBridge({
  modules: [
    webhooksModule({ extraEd25519Keys: [emu.keys.ed25519PublicKeyPem], extraRsaKeys: [emu.keys.rsaPublicKeyPem] }),
    installationsModule({ limits: { burst: BURST, intervalMs: INTERVAL } }),
    providerModule({ loopbackInbox: inbox }),
  ],
  env: {
    SANDBOX: 'false',
    GHL_CLIENT_ID: app.clientId,
    GHL_CLIENT_SECRET: app.clientSecret,
    GHL_API_BASE: emu.baseUrl,
    GHL_MARKETPLACE_BASE: emu.baseUrl,
    GHL_SCOPES: SCOPES,
    GHL_CONVERSATION_PROVIDER_ID: app.conversationProviderId!,
    PUBLIC_URL: 'http://bridge.test',
    TOKEN_ENCRYPTION_KEYS: generateKeySpec('k1'),
    GHL_RECONCILE_INTERVAL_MIN: '0',
    WORKER_CONCURRENCY: '32',
    LOG_LEVEL: 'silent',
  },
});
c.updateApp(app.clientId, { providerDeliveryUrl: `${b.url}/webhooks/ghl/provider` });
const provider = b.ctx.services.provider as ProviderService;
const contacts: Array<{ loc: string; id: string }> = [];
for (const loc of locs) {
  await install(b.url, loc);
  await provider.configureChannel(loc, { kind: 'loopback' });
  for (let i = 0; i < 20; i++) contacts.push({ loc, id: c.createContact({ locationId: loc, firstName: `C${i}`, phone: `+1213555${String(1000 + contacts.length).padStart(4, '0')}` }).id });
}
// Let the install-time API calls leave the rate window before measuring.
await new Promise((r) => setTimeout(r, INTERVAL));

const outbound: number[] = [];
const status: number[] = [];
const firedAt = new Map<string, number>();
let reported = 0;
let lastReport = 0;
provider.events.on('send', (e) => {
  const t = firedAt.get(e.messageId);
  if (e.attempt === 1 && t !== undefined) outbound.push(e.at - t);
});
provider.events.on('status', (e) => status.push(e.at - e.since));
provider.events.on('reported', () => {
  reported++;
  lastReport = Date.now();
});

const ceiling = (LOCS * BURST) / (INTERVAL / 1000);
const rate = process.env.BENCH_RATE === 'max' ? Infinity : Number(process.env.BENCH_RATE ?? ceiling * 0.95);
const t0 = Date.now();
for (let i = 0; i < N; i++) {
  const ct = contacts[i % contacts.length]!;
  // Open-loop pacing: message i is offered at t0 + i / rate.
  const due = t0 + (i * 1000) / rate;
  if (due > Date.now() + 2) await new Promise((r) => setTimeout(r, due - Date.now()));
  else if (i % 200 === 199) await new Promise((r) => setImmediate(r));
  const m = c.sendMessageAsUser({ locationId: ct.loc, contactId: ct.id, type: 'SMS', message: `bench ${i}`, conversationProviderId: app.conversationProviderId! });
  firedAt.set(m.id, Date.now());
}
const deadline = Date.now() + 15 * 60_000;
while (reported < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
const secs = (lastReport - t0) / 1000;
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
// Where the outbound time goes, per stage (from the bridge's own timestamps).
const stages = await sql<{ message_id: string; intake: Date; recorded: Date; sending: Date | null }>`
  select po.message_id, we.received_at as intake, po.received_at as recorded, po.send_started_at as sending
  from provider_outbound po join webhook_events we on we.source = 'provider' and (we.payload->>'messageId') = po.message_id`.execute(b.ctx.db);
const legs = { 'GHL send → stored by intake': [] as number[], 'stored → dispatched (webhook job)': [] as number[], 'dispatched → channel send (send job)': [] as number[] };
for (const r of stages.rows) {
  const fired = firedAt.get(r.message_id);
  if (fired !== undefined) legs['GHL send → stored by intake'].push(r.intake.getTime() - fired);
  legs['stored → dispatched (webhook job)'].push(r.recorded.getTime() - r.intake.getTime());
  if (r.sending) legs['dispatched → channel send (send job)'].push(r.sending.getTime() - r.recorded.getTime());
}
console.log('');
for (const [k, v] of Object.entries(legs)) row(`  ${k}`, `p50 ${pct(v, 50)} / p99 ${pct(v, 99)} ms`);
console.log('\nThe status-call leg includes the wait for a GHL rate-limit slot once the burst is used up (by design: the limit is the ceiling).');
await b.close();
await emu.close();
process.exit(reported === N ? 0 : 1);
