/**
 * The emulated GHL for bench/fairness.ts, in its own process (GHL is never in the bridge's process: sharing one event
 * loop would put the emulator's 1,000 deliveries of a burst in front of the bridge's own work).
 *
 *   argv: locations
 *   stdout: one JSON line when ready (base URL, keys, app, locations)
 *   POST /_bench/contacts {locationId, n, offset}          → contact ids
 *   POST /_bench/send {locationId, contactId, providerId}  → {id}: one message sent by a GHL user
 *   POST /_bench/burst {locationId, contacts, n, providerId} → {ids}: n messages at once
 *   POST /_bench/times {ids}                               → [[id, createdAtMs, deliveredAtMs | null]]
 * GHL's real rate limit (100 requests / 10 s per location).
 */
import { createEmulator } from '../src/emulator/index.js';
import { serveBenchWorld } from './emulator-world.js';

const nLoc = Number(process.argv[2] ?? 2);
const emu = await createEmulator({
  rsaModulusLength: 1024,
  seed: 7,
  webhookTimeoutMs: 60_000,
  signProviderDeliveries: true,
});
const c = emu.control;
let seq = 0;
const send = (locationId: string, contactId: string, providerId: string) =>
  c.sendMessageAsUser({
    locationId,
    contactId,
    type: 'SMS',
    message: `fairness ${seq++}`,
    conversationProviderId: providerId,
  }).id;

emu.app.post('/_bench/contacts', async (req) => {
  const { locationId, n, offset } = req.body as { locationId: string; n: number; offset: number };
  return Array.from(
    { length: n },
    (_, i) => c.createContact({ locationId, phone: `+1213556${String(1000 + offset + i).padStart(4, '0')}` }).id,
  );
});
emu.app.post('/_bench/send', async (req) => {
  const { locationId, contactId, providerId } = req.body as {
    locationId: string;
    contactId: string;
    providerId: string;
  };
  return { id: send(locationId, contactId, providerId) };
});
emu.app.post('/_bench/burst', async (req) => {
  const { locationId, contacts, n, providerId } = req.body as {
    locationId: string;
    contacts: string[];
    n: number;
    providerId: string;
  };
  return { ids: Array.from({ length: n }, (_, i) => send(locationId, contacts[i % contacts.length]!, providerId)) };
});
emu.app.post('/_bench/times', async (req) => {
  const { ids } = req.body as { ids: string[] };
  return ids.map((id) => {
    const m = c.getMessage(id);
    const d = m?.statusHistory.find((s) => s.status === 'delivered');
    return [id, m?.createdAtMs ?? null, d?.at ?? null];
  });
});

await serveBenchWorld(emu, nLoc);
