/**
 * The emulator for bench/ratelimit.ts, in its own process so its CPU does not distort the
 * limiter's timing. Prints one JSON line (base URL, app credentials, location ids) when ready.
 */
import { createEmulator } from '../src/emulator/index.js';

const nLoc = Number(process.argv[2] ?? 50);
// 'lifted': no GHL limits, for the same-run baseline of what the harness and this emulator can do at all.
const lifted = process.argv[3] === 'lifted';
const emu = await createEmulator({
  rsaModulusLength: 1024,
  rateLimit: lifted
    ? { burst: 1_000_000_000, intervalMs: 1000, daily: 1_000_000_000 }
    : { burst: 100, intervalMs: 10_000, daily: 200_000 },
});
let n429 = 0;
let served = 0;
emu.app.addHook('onResponse', async (req, reply) => {
  if (req.url.startsWith('/_') || req.url.startsWith('/oauth/token')) return;
  if (reply.statusCode === 429) n429++;
  else served++;
});
emu.app.get('/_bench/stats', async () => ({ n429, served }));
await emu.listen();
const agency = emu.control.createAgency({ name: 'Bench agency' });
const locationIds = Array.from(
  { length: nLoc },
  (_, i) => emu.control.createLocation({ companyId: agency.id, name: `L${i}` }).id,
);
const app = emu.control.createApp({
  name: 'bench',
  redirectUri: 'http://bench.test/oauth/callback',
  scopes: 'locations/customFields.readonly locations/customFields.write contacts.readonly',
});
console.log(
  JSON.stringify({ baseUrl: emu.baseUrl, clientId: app.clientId, clientSecret: app.clientSecret, locationIds }),
);
process.on('SIGTERM', () => void emu.close().then(() => process.exit(0)));
