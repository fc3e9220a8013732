/**
 * The emulated GHL for bench/chat.ts, in its own process (GHL is never in the bridge's process), with GHL's real rate
 * limit. It also generates the GHL-user replies (open loop), so each reply's fire time is taken where its webhook
 * leaves.
 *
 *   argv: locations burst intervalMs
 *   POST /_bench/replies {targets:[{loc,id}], n, rate, providerId, tag} → starts offering replies; GET /_bench/fired
 *   GET /_bench/created → [[altId, createdAtMs, messageId]] of messages posted through the API with an altId
 *   GET /_bench/calls → GHL API calls answered so far
 */
import { createEmulator } from '../src/emulator/index.js';
import { CHAT_SCOPES } from '../test/chat/harness.js';
import { serveBenchWorld } from './emulator-world.js';

const [nLoc, burst, intervalMs] = process.argv.slice(2).map(Number) as [number, number, number];
const emu = await createEmulator({
  rsaModulusLength: 1024,
  seed: 7,
  rateLimit: { burst, intervalMs, daily: 1_000_000 },
});
const c = emu.control;
const fired: Array<[string, number]> = [];
let done = false;

emu.app.post('/_bench/replies', async (req) => {
  const { targets, n, rate, providerId, tag } = req.body as {
    targets: Array<{ loc: string; id: string }>;
    n: number;
    rate: number;
    providerId: string;
    tag: string;
  };
  fired.length = 0;
  done = false;
  void (async () => {
    const t0 = Date.now();
    for (let i = 0; i < n; i++) {
      const t = targets[i % targets.length]!;
      const due = t0 + (i * 1000) / rate;
      if (due > Date.now() + 2) await new Promise((r) => setTimeout(r, due - Date.now()));
      const at = Date.now();
      const m = c.sendMessageAsUser({
        locationId: t.loc,
        contactId: t.id,
        type: 'SMS',
        message: `${tag} ${i}`,
        conversationProviderId: providerId,
      });
      fired.push([m.id, at]);
    }
    done = true;
  })();
  return { started: true };
});
emu.app.get('/_bench/fired', async () => ({ done, fired }));
emu.app.get('/_bench/created', async () =>
  c
    .listMessages()
    .filter((m) => m.altId && m.source === 'api')
    .map((m) => [m.altId, m.createdAtMs, m.id]),
);
emu.app.post('/_bench/contacts', async (req) => {
  const { locationId, n, offset } = req.body as { locationId: string; n: number; offset: number };
  return Array.from(
    { length: n },
    (_, i) =>
      c.createContact({
        locationId,
        firstName: `B${i}`,
        phone: `+1213556${String(1000 + offset + i).padStart(4, '0')}`,
      }).id,
  );
});
emu.app.get('/_bench/calls', async () => {
  const by: Record<string, number> = {};
  for (const x of c.listApiCalls()) {
    const k = `${x.method} ${x.path.replace(/[A-Za-z0-9]{20,}/g, ':id')} ${x.status}`;
    by[k] = (by[k] ?? 0) + 1;
  }
  return by;
});

const world = await serveBenchWorld(emu, nLoc);
c.updateApp(world.clientId, { scopes: CHAT_SCOPES });
