/**
 * npm run bench:relay — relay overhead of the conversation provider.
 *
 * 10 locations, 5,000 ProviderOutboundMessages per path (emulator → Delivery URL → bridge → loopback channel → GHL
 * status), after a short warm-up, on two paths in one run: signed Delivery-URL calls (no confirmation), then unsigned
 * calls to the token URL confirmed by the signed OutboundMessage event (as real GHL sends them; PROVIDER_CONFIRMATION
 * decides, default event_then_lookup). Per path it also counts GHL API calls per message (from the emulator). The emulator (GHL) runs in its own process (bench/relay-emulator.ts), as GHL is never in ours,
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
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { LoopbackInbox } from '../src/capabilities/channels/index.js';
import { installationsModule } from '../src/platform/installations/index.js';
import { providerModule } from '../src/capabilities/provider/index.js';
import { webhooksModule } from '../src/platform/webhooks/index.js';
import { startTestBridge } from '../test/helpers/store.js';
import { install } from '../test/provider/harness.js';
import { bridgeEnv, fileLogger, pct, startEmulator, stopChild } from './common.js';

const N = Number(process.env.BENCH_MESSAGES ?? 5000);
const LOCS = Number(process.env.BENCH_LOCATIONS ?? 10);
const BURST = Number(process.env.BENCH_BURST ?? 100);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const INTERVAL = 10_000;

// GHL (the emulator) runs in its own process and generates the load: see bench/relay-emulator.ts.
const {
  child,
  world,
  call: emu,
} = await startEmulator(['bench/relay-emulator.ts', String(LOCS), String(BURST), String(INTERVAL)]);
// The bridge logs at the shipped level (LOG_LEVEL's default, info; the hot paths log requests at warn) into a file.
const logFile = join(mkdtempSync(join(tmpdir(), 'ghl-bridge-relay-')), 'bridge.log');
const locs = world.locationIds;
const inbox = new LoopbackInbox(N + 10);
const b = await startTestBridge({
  modules: [
    webhooksModule({ extraEd25519Keys: [world.keys.ed25519PublicKeyPem], extraRsaKeys: [world.keys.rsaPublicKeyPem] }),
    installationsModule({ limits: { burst: BURST, intervalMs: INTERVAL } }),
    providerModule({ loopbackInbox: inbox }),
  ],
  env: { ...bridgeEnv(world), WORKER_CONCURRENCY: '32' },
  log: fileLogger(logFile),
});
const provider = b.ctx.services.get('provider');
const contacts: Array<{ loc: string; id: string }> = [];
for (const loc of locs) {
  await install(b.url, loc);
  await provider.configureChannel(loc, { kind: 'loopback' });
  for (const id of await emu<string[]>('/_bench/contacts', { locationId: loc, n: 20, offset: contacts.length }))
    contacts.push({ loc, id });
}
// Let the install-time API calls leave the rate window before measuring.
await new Promise((r) => setTimeout(r, INTERVAL));

const ceiling = (LOCS * BURST) / (INTERVAL / 1000);
const rate = process.env.BENCH_RATE === 'max' ? Infinity : Number(process.env.BENCH_RATE ?? ceiling * 0.95);

interface PhaseResult {
  label: string;
  outbound: number[];
  status: number[];
  reported: number;
  secs: number;
  callsPerMsg: { status: number; lookup: number; all: number };
  confirmedBy: Record<string, number>;
  elu: number;
  loopP99: number;
  legs: Record<string, number[]>;
}

/** One measured phase: warm-up, then N messages offered at `rate`; figures from this phase only. */
async function phase(label: string, deliveryUrl: string, signed: boolean, appWebhooks: boolean): Promise<PhaseResult> {
  await emu('/_bench/sign', { on: signed });
  await emu(
    `/_emulator/apps/${world.clientId}`,
    { providerDeliveryUrl: deliveryUrl, webhookUrl: appWebhooks ? `${b.url}/webhooks/ghl` : 'http://127.0.0.1:9/none' },
    'PATCH',
  );
  let status: number[] = [];
  // The webhook may reach the bridge before the emulator reports the message id: match up at the end.
  let sentAt = new Map<string, number>();
  let reported = 0;
  let lastReport = 0;
  const onSend = (e: { messageId: string; attempt: number; at: number }) => {
    if (e.attempt === 1) sentAt.set(e.messageId, e.at);
  };
  const onStatus = (e: { at: number; since: number }) => status.push(e.at - e.since);
  const onReported = () => {
    reported++;
    lastReport = Date.now();
  };
  provider.events.on('send', onSend);
  provider.events.on('status', onStatus);
  provider.events.on('reported', onReported);
  const offer = async (n: number) => {
    await emu('/_bench/run', {
      contacts,
      n,
      rate: Number.isFinite(rate) ? rate : null,
      providerId: world.conversationProviderId,
    });
    const deadline = Date.now() + 15 * 60_000;
    while (reported < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  };
  // Warm-up (not measured): opens the pool's connections, prepares statements, fills the token and channel caches
  // and lets the JIT settle, as a bridge in service has done long before. The measured run follows without a pause.
  await offer(WARMUP);
  status = [];
  sentAt = new Map();
  reported = 0;
  // Let the warm-up's API calls leave the rate window, so each phase starts with the same budget.
  await new Promise((r) => setTimeout(r, INTERVAL));
  const calls0 = await emu<{ status: number; lookup: number; all: number }>('/_bench/calls', undefined, 'GET');

  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  const elu0 = performance.eventLoopUtilization();
  const t0 = Date.now();
  await offer(N);
  const elu = performance.eventLoopUtilization(elu0);
  loopDelay.disable();
  provider.events.off('send', onSend);
  provider.events.off('status', onStatus);
  provider.events.off('reported', onReported);
  const calls1 = await emu<{ status: number; lookup: number; all: number }>('/_bench/calls', undefined, 'GET');
  const secs = (lastReport - t0) / 1000;
  const firedAt = new Map((await emu<{ fired: Array<[string, number]> }>('/_bench/fired', undefined, 'GET')).fired);
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
    console.log(
      label,
      [...per]
        .sort((x, y) => x[0] - y[0])
        .map(([k, v]) => `${k}s:${pct(v, 50)}/${Math.max(...v)}`)
        .join(' '),
    );
  }
  // Where the outbound time goes, per stage (the bridge's own timestamps; the channel send runs inside a job).
  const stages = await sql<{ message_id: string; intake: Date; sending: Date | null; confirmed_by: string | null }>`
    select po.message_id, we.received_at as intake, po.send_started_at as sending, po.confirmed_by
    from provider_outbound po join webhook_events we on we.source = 'provider' and (we.payload->>'messageId') = po.message_id`.execute(
    b.ctx.db,
  );
  const legs = { 'GHL send → stored by intake': [] as number[], 'stored → channel send': [] as number[] };
  const confirmedBy: Record<string, number> = {};
  for (const r of stages.rows) {
    const fired = firedAt.get(r.message_id);
    if (fired === undefined) continue; // warm-up or the other phase
    legs['GHL send → stored by intake'].push(r.intake.getTime() - fired);
    if (r.sending) legs['stored → channel send'].push(r.sending.getTime() - r.intake.getTime());
    confirmedBy[r.confirmed_by ?? 'none'] = (confirmedBy[r.confirmed_by ?? 'none'] ?? 0) + 1;
  }
  const per = (k: 'status' | 'lookup' | 'all') => (calls1[k] - calls0[k]) / N;
  return {
    label,
    outbound,
    status,
    reported,
    secs,
    callsPerMsg: { status: per('status'), lookup: per('lookup'), all: per('all') },
    confirmedBy,
    elu: elu.utilization,
    loopP99: loopDelay.percentile(99) / 1e6,
    legs,
  };
}

const token = await provider.tokens.current();
const results = [
  await phase('signed', `${b.url}/webhooks/ghl/provider`, true, false),
  await phase('unsigned+confirmed', `${b.url}/webhooks/ghl/provider/${token}`, false, true),
];

const col = (r: PhaseResult[], f: (x: PhaseResult) => string) => r.map((x) => f(x).padStart(22)).join(' | ');
const row = (k: string, v: string) => console.log(`| ${k.padEnd(50)} | ${v} |`);
console.log(
  `\nbench:relay — ${N} messages per path, ${LOCS} locations, loopback channel, store ${b.ctx.store.kind}, offered ${Number.isFinite(rate) ? rate.toFixed(0) + ' msg/s' : 'all at once'}; confirmation ${b.ctx.config.PROVIDER_CONFIRMATION}; LOG_LEVEL=${b.ctx.config.LOG_LEVEL} (log in ${logFile})\n`,
);
row(
  'metric',
  col(results, (x) => x.label),
);
console.log(`|${'-'.repeat(52)}|${results.map(() => '-'.repeat(24)).join('|')}|`);
row(
  'outbound overhead p50 (GHL send → channel send)',
  col(results, (x) => `${pct(x.outbound, 50)} ms`),
);
row(
  'outbound overhead p99',
  col(results, (x) => `${pct(x.outbound, 99)} ms`),
);
for (const k of Object.keys(results[0]!.legs))
  row(
    `  ${k} p50 / p99`,
    col(results, (x) => `${pct(x.legs[k]!, 50)} / ${pct(x.legs[k]!, 99)} ms`),
  );
row(
  'status overhead p50 / p99 (result → GHL call)',
  col(results, (x) => `${pct(x.status, 50)} / ${pct(x.status, 99)} ms`),
);
row(
  'confirmed by',
  col(results, (x) =>
    Object.entries(x.confirmedBy)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
  ),
);
row(
  'GHL API calls per message (status PUT + lookup GET)',
  col(
    results,
    (x) => `${x.callsPerMsg.all.toFixed(2)} (${x.callsPerMsg.status.toFixed(2)} + ${x.callsPerMsg.lookup.toFixed(2)})`,
  ),
);
row(
  'per-location ceiling (100 / 10 s ÷ calls per msg)',
  col(results, (x) => `${(BURST / (INTERVAL / 1000) / Math.max(1, x.callsPerMsg.all)).toFixed(1)} msg/s`),
);
row(
  'messages reported',
  col(results, (x) => `${x.reported}/${N}`),
);
row(
  'throughput',
  col(results, (x) => `${(x.reported / x.secs).toFixed(1)} msg/s`),
);
row(
  `throughput / ceiling (${ceiling.toFixed(0)} msg/s at 1 call per msg)`,
  col(results, (x) => `${((100 * x.reported) / x.secs / ceiling).toFixed(0)} %`),
);
row(
  'bridge event loop: busy / delay p99',
  col(results, (x) => `${(x.elu * 100).toFixed(0)} % / ${x.loopP99.toFixed(0)} ms`),
);
console.log(
  `\nPROVIDER_CONFIRMATION=lookup (or event_then_lookup when the event comes later than PROVIDER_CONFIRMATION_WAIT_MS) adds a GET per message: 2 calls per message halve the per-location ceiling to ${(BURST / (INTERVAL / 1000) / 2).toFixed(1)} msg/s.`,
);
console.log(
  'The status-call leg includes the wait for a GHL rate-limit slot once the burst is used up (by design: the limit is the ceiling).',
);
const ok = results.every((x) => x.reported === N);
await b.close();
await stopChild(child);
process.exit(ok ? 0 : 1);
