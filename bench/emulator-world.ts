/**
 * The GHL world every benchmark emulator (bench/*-emulator.ts) serves: one agency, `locations` sub-accounts and our app
 * registered as a custom SMS conversation provider. Listens, then prints the one JSON ready line that
 * bench/common.ts `startEmulator` reads, and closes on SIGTERM.
 */
import type { Emulator } from '../src/emulator/index.js';
import { SCOPES } from '../test/provider/harness.js';
import type { BenchWorld } from './common.js';

export async function serveBenchWorld(emu: Emulator, locations: number): Promise<BenchWorld> {
  await emu.listen();
  const c = emu.control;
  const ag = c.createAgency({ name: 'Bench' });
  c.createUser({ companyId: ag.id, type: 'agency' });
  const locationIds = Array.from(
    { length: locations },
    (_, i) => c.createLocation({ companyId: ag.id, name: `L${i}` }).id,
  );
  const app = c.createApp({
    name: 'ghl-bridge',
    redirectUri: 'http://bridge.test/oauth/callback',
    scopes: SCOPES,
    conversationProvider: { type: 'SMS', isCustom: true },
  });
  const world: BenchWorld = {
    baseUrl: emu.baseUrl,
    keys: emu.keys,
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    conversationProviderId: app.conversationProviderId!,
    locationIds,
  };
  console.log(JSON.stringify(world));
  process.on('SIGTERM', () => void emu.close().then(() => process.exit(0)));
  return world;
}
