/**
 * The emulated GHL for bench/downtime.ts, in its own process (GHL is never in the bridge's process). GHL's real rate
 * limit (100 requests / 10 s per location), signed Delivery-URL calls, no retry of a delivery that meets a closed
 * port, a reset or a 5xx (only a 429 is retried, after GHL's 10 min). It also generates the load, open loop: the
 * messages are offered on their own clock whatever the bridge does.
 *
 *   argv: locations
 *   stdout: one JSON line when ready (base URL, keys, app, locations)
 *   POST /_bench/contacts {locationId, n, offset}        → contact ids
 *   POST /_bench/run {name, contacts, rate, secs, providerId} → starts offering `rate` messages/s in all for `secs` s,
 *                                                           round robin over the contacts (each location its share)
 *   GET  /_bench/report?name&from&to&bin                 → figures of that run; bin (ms): messages final per bin from `from`
 */
import type { ApiCall } from '../src/emulator/state.js';
import { createEmulator } from '../src/emulator/index.js';
import { serveBenchWorld } from './emulator-world.js';

const nLoc = Number(process.argv[2] ?? 10);
const emu = await createEmulator({
  rsaModulusLength: 1024,
  seed: 7,
  signProviderDeliveries: true,
  rateLimit: { burst: 100, intervalMs: 10_000, daily: 1_000_000 },
});
const c = emu.control;
const runs = new Map<string, { fired: Array<{ id: string; at: number }>; done: boolean }>();
// Every answered GHL API call with the location it was made for (from the path's message/contact or the query).
const calls: Array<ApiCall & { loc: string | undefined }> = [];

emu.app.addHook('onResponse', async (req, reply) => {
  const path = req.url.split('?')[0] ?? req.url;
  if (path.startsWith('/_')) return;
  const q = req.query as Record<string, string | undefined>;
  let loc = q.locationId;
  const msg = /^\/conversations\/messages\/([^/]+)\/status$/.exec(path);
  if (msg) loc = c.getMessage(msg[1]!)?.locationId;
  const contact = /^\/contacts\/([^/]+)$/.exec(path);
  if (contact) loc = c.listContacts().find((x) => x.id === contact[1])?.locationId;
  calls.push({ method: req.method, path, status: reply.statusCode, at: emu.clock.now(), loc });
});

emu.app.post('/_bench/contacts', async (req) => {
  const { locationId, n, offset } = req.body as { locationId: string; n: number; offset: number };
  return Array.from(
    { length: n },
    (_, i) =>
      c.createContact({
        locationId,
        firstName: `C${i}`,
        phone: `+1213555${String(1000 + offset + i).padStart(4, '0')}`,
      }).id,
  );
});

emu.app.post('/_bench/run', async (req) => {
  const { name, contacts, rate, secs, providerId } = req.body as {
    name: string;
    contacts: Array<{ loc: string; id: string }>;
    rate: number;
    secs: number;
    providerId: string;
  };
  const run = { fired: [] as Array<{ id: string; at: number }>, done: false };
  runs.set(name, run);
  const n = Math.round(rate * secs);
  void (async () => {
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      // Open loop: message i is offered at t0 + i / rate, whether or not the bridge is up.
      const due = t0 + (i * 1000) / rate;
      if (due > Date.now() + 1) await new Promise((r) => setTimeout(r, due - Date.now()));
      const ct = contacts[i % contacts.length]!;
      const m = c.sendMessageAsUser({
        locationId: ct.loc,
        contactId: ct.id,
        type: 'SMS',
        message: `${name} ${i}`,
        conversationProviderId: providerId,
      });
      run.fired.push({ id: m.id, at: emu.clock.now() });
    }
    run.done = true;
  })();
  return { started: true, n };
});

/** How a provider delivery ended: delivered, or lost (refused, reset, 5xx, timeout), or waiting for a 429 retry. */
function deliveryOutcome(messageId: string, byMessage: Map<string, ReturnType<typeof c.listDeliveries>[number]>) {
  const d = byMessage.get(messageId);
  if (!d) return 'none';
  if (d.state === 'delivered') return 'delivered';
  if (d.state === 'retry_scheduled') return 'retry_429';
  if (d.state !== 'failed') return d.state;
  const a = d.attempts.at(-1);
  if (a?.status !== undefined) return `http_${a.status}`;
  if (/ECONNREFUSED/.test(a?.error ?? '')) return 'refused';
  if (a?.error === 'timeout') return 'timeout';
  return 'reset';
}

emu.app.get('/_bench/report', async (req) => {
  const q = req.query as { name: string; from?: string; to?: string; bin?: string };
  const bin = Number(q.bin ?? 0);
  const hist: number[] = [];
  const run = runs.get(q.name);
  if (!run) return { error: 'no such run' };
  const from = Number(q.from ?? 0);
  const to = Number(q.to ?? Number.MAX_SAFE_INTEGER);
  const byMessage = new Map(c.listDeliveries({ kind: 'provider' }).map((d) => [String(d.payload.messageId), d]));
  const outcomes: Record<string, number> = {};
  let final = 0;
  let pending = 0;
  let lastFinalAt = 0;
  let window = 0;
  let windowFinal = 0;
  let windowLastFinalAt = 0;
  for (const f of run.fired) {
    const m = c.getMessage(f.id)!;
    const isFinal = m.status === 'delivered' || m.status === 'failed';
    const finalAt = isFinal ? (m.statusHistory.at(-1)?.at ?? 0) : 0;
    if (isFinal && bin > 0 && finalAt >= from) {
      const k = Math.floor((finalAt - from) / bin);
      while (hist.length <= k) hist.push(0);
      hist[k]!++;
    }
    if (isFinal) {
      final++;
      lastFinalAt = Math.max(lastFinalAt, finalAt);
    } else pending++;
    const o = deliveryOutcome(f.id, byMessage);
    outcomes[o] = (outcomes[o] ?? 0) + 1;
    if (f.at >= from && f.at < to) {
      window++;
      if (isFinal) {
        windowFinal++;
        windowLastFinalAt = Math.max(windowLastFinalAt, finalAt);
      }
    }
  }
  // GHL API calls answered in [from, to), per location, by kind.
  const perLoc = new Map<string, { export: number; contact: number; status: number; other: number; r429: number }>();
  for (const k of calls) {
    if (k.at < from || k.at >= to || !k.loc) continue;
    const e = perLoc.get(k.loc) ?? { export: 0, contact: 0, status: 0, other: 0, r429: 0 };
    if (k.status === 429) e.r429++;
    else if (k.path === '/conversations/messages/export') e.export++;
    else if (k.path.startsWith('/contacts/')) e.contact++;
    else if (k.path.endsWith('/status')) e.status++;
    else e.other++;
    perLoc.set(k.loc, e);
  }
  return {
    offered: run.fired.length,
    done: run.done,
    firstOfferedAt: run.fired[0]?.at ?? 0,
    lastOfferedAt: run.fired.at(-1)?.at ?? 0,
    final,
    pending,
    lastFinalAt,
    outcomes,
    window: { offered: window, final: windowFinal, lastFinalAt: windowLastFinalAt },
    calls: Object.fromEntries(perLoc),
    hist,
  };
});

await serveBenchWorld(emu, nLoc);
