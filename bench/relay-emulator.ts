/**
 * The emulated GHL for bench/relay.ts, in its own process: GHL is never in the bridge's process, and sharing one
 * event loop would charge the emulator's signing and bookkeeping to the bridge's overhead. It also generates the load
 * (open loop, as GHL would), so each message's fire time is taken where the webhook leaves.
 *
 *   argv: locations burst intervalMs
 *   stdout: one JSON line when ready (base URL, keys, app, locations)
 *   POST /_bench/contacts {locationId, n}          → contact ids
 *   POST /_bench/run {contacts, n, rate, providerId} → starts offering messages; GET /_bench/fired → {done, fired: [[id, ms]]}
 *   POST /_bench/sign {on} → sign Delivery-URL calls or not; GET /_bench/calls → GHL API calls answered so far
 *   GET /_bench/answers → [status, ms] of every Delivery-URL attempt so far (how the bridge answered)
 */
import { createEmulator } from '../src/emulator/index.js';
import { serveBenchWorld } from './emulator-world.js';

const [nLoc, burst, intervalMs] = process.argv.slice(2).map(Number) as [number, number, number];
const emu = await createEmulator({
  rsaModulusLength: 1024,
  seed: 5,
  rateLimit: { burst, intervalMs, daily: 1_000_000 },
});
const c = emu.control;
const fired: Array<[string, number]> = [];
let done = false;

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
  const { contacts, n, rate, providerId } = req.body as {
    contacts: Array<{ loc: string; id: string }>;
    n: number;
    rate: number | null;
    providerId: string;
  };
  fired.length = 0;
  done = false;
  void (async () => {
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      const ct = contacts[i % contacts.length]!;
      // Open-loop pacing: message i is offered at t0 + i / rate (null = all at once).
      const due = rate ? t0 + (i * 1000) / rate : 0;
      if (due > Date.now() + 2) await new Promise((r) => setTimeout(r, due - Date.now()));
      else if (i % 200 === 199) await new Promise((r) => setImmediate(r));
      const at = Date.now();
      const m = c.sendMessageAsUser({
        locationId: ct.loc,
        contactId: ct.id,
        type: 'SMS',
        message: `bench ${i}`,
        conversationProviderId: providerId,
      });
      fired.push([m.id, at]);
    }
    done = true;
  })();
  return { started: true };
});
emu.app.get('/_bench/fired', async () => ({ done, fired }));
// How the bridge answered the Delivery-URL calls (every attempt, in order): [HTTP status or 0 for no answer, ms].
emu.app.get('/_bench/answers', async () => ({
  answers: c
    .listDeliveries({ kind: 'provider' })
    .flatMap((d) => d.attempts.map((a) => [a.status ?? 0, a.durationMs] as [number, number])),
}));
// Phase switches of bench/relay.ts: signed or unsigned Delivery-URL calls; API calls answered so far, by kind.
emu.app.post('/_bench/sign', async (req) => {
  c.setSignProviderDeliveries((req.body as { on: boolean }).on);
  return { ok: true };
});
emu.app.get('/_bench/calls', async () => ({
  status: c.listApiCalls({ method: 'PUT', pathPattern: '/status$' }).length,
  lookup: c.listApiCalls({ method: 'GET', pathPattern: '^/conversations/messages/(?!export$)[^/]+$' }).length,
  all: c.listApiCalls().length,
}));

await serveBenchWorld(emu, nLoc);
