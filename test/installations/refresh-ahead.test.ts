import { afterEach, describe, expect, it } from 'vitest';
import { STORE } from '../helpers/store.js';
import { install, startBridge, startGhl, type BridgeWithGhl, type GhlWorld } from './harness.js';

let w: GhlWorld | undefined;
const bridges: BridgeWithGhl[] = [];
afterEach(async () => {
  for (const b of bridges.splice(0).reverse()) await b.close();
  await w?.emu.close();
  w = undefined;
});

describe('proactive token refresh', () => {
  it(`tokens expiring every 60 s for 5 minutes of live traffic${STORE === 'postgres' ? ' on two replicas' : ''}: no call ever meets a 401, about one refresh per lifetime`, async () => {
    w = await startGhl({ emulator: { accessTokenTtlSec: 60 } });
    const b1 = await startBridge(w);
    bridges.push(b1);
    const loc = w.locationIds[0]!;
    expect((await install(b1, { locationId: loc })).status).toBe(200);
    // A second replica on the same database (PostgreSQL only: the embedded store is single-process).
    if (STORE === 'postgres')
      bridges.push(await startBridge(w, { env: { DATABASE_SCHEMA: b1.ctx.config.DATABASE_SCHEMA } }));
    const inst = { installation: { locationId: loc }, lane: 'live' as const };
    const before = w.observed.refreshGrants;
    // Time passes in 5 s steps (the emulator's clock, which the bridges' token vaults read too); at every step each
    // replica makes three live calls at once.
    for (let step = 0; step < 60; step++) {
      w.emu.clock.advance(5_000);
      await Promise.all(bridges.flatMap((b) => [0, 1, 2].map(() => b.s.ghl.customFields.list(loc, inst))));
    }
    expect(w.observed.api401).toBe(0);
    // 300 s of 60 s tokens refreshed 30 s before expiry: one refresh every 30 s, 10 in all (not one per call).
    const refreshes = w.observed.refreshGrants - before;
    expect(refreshes).toBeGreaterThanOrEqual(5);
    expect(refreshes).toBeLessThanOrEqual(12);
    expect(w.observed.invalidGrants).toBe(0);
  }, 120_000);
});
