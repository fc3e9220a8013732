/**
 * Child process for the two-replica refresh race: opens the shared PostgreSQL store as a bridge
 * (no HTTP, no workers), waits for "go" on stdin, then fires concurrent calls for one location.
 */
import { createInterface } from 'node:readline';
import { createBridge } from '../../src/app.js';
import { loadConfig } from '../../src/infra/config/index.js';
import { installationsModule, installationsServices } from '../../src/platform/installations/index.js';
import { createLogger } from '../../src/infra/log/logger.js';

const offset = Number(process.env.CLOCK_OFFSET_MS ?? 0);
const locationId = process.env.RACE_LOCATION_ID!;
const calls = Number(process.env.RACE_CALLS ?? 20);
const config = loadConfig({ ...process.env, WORKER_CONCURRENCY: '0', LOG_LEVEL: 'silent' });
const bridge = await createBridge(config, {
  log: createLogger({ level: 'silent' }),
  modules: [installationsModule({ now: () => Date.now() + offset })],
});
const s = installationsServices(bridge.ctx.services);
const rl = createInterface({ input: process.stdin });
console.log('ready');
await new Promise<void>((r) => rl.once('line', () => r()));
const results = await Promise.allSettled(
  Array.from({ length: calls }, () => s.ghl.customFields.list(locationId, { installation: { locationId } })),
);
const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
console.log(JSON.stringify({ ok: results.length - failed.length, failed }));
rl.close();
await bridge.close();
