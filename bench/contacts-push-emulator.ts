/**
 * The emulated GHL for bench/contacts-push.ts, in its own process, with GHL's real rate limit.
 *
 *   argv: locations burst intervalMs
 *   GET /_bench/calls → { total, by429, byOp } of GHL API calls answered so far
 */
import { createEmulator } from '../src/emulator/index.js';
import { CONTACT_SCOPES } from '../test/contacts/harness.js';
import { serveBenchWorld } from './emulator-world.js';

const [nLoc, burst, intervalMs] = process.argv.slice(2).map(Number) as [number, number, number];
const emu = await createEmulator({
  rsaModulusLength: 1024,
  seed: 14,
  rateLimit: { burst, intervalMs, daily: 10_000_000 },
});
emu.app.get('/_bench/calls', async () => {
  const byOp: Record<string, number> = {};
  let by429 = 0;
  const calls = emu.control.listApiCalls().filter((x) => !x.path.startsWith('/_bench'));
  for (const x of calls) {
    if (x.status === 429) by429++;
    const k = `${x.method} ${x.path.replace(/[A-Za-z0-9]{20,}/g, ':id')}`;
    byOp[k] = (byOp[k] ?? 0) + 1;
  }
  return { total: calls.length, by429, byOp };
});
const world = await serveBenchWorld(emu, nLoc);
emu.control.updateApp(world.clientId, { scopes: CONTACT_SCOPES });
