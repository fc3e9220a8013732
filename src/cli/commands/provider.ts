import type { Command } from 'commander';
import type { Config } from '../../infra/config/index.js';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { migrateToLatest } from '../../infra/db/migrations/index.js';
import { createLogger } from '../../infra/log/logger.js';
import { allMigrations } from '../../modules.js';
import { deliveryUrl, DeliveryTokens } from '../../capabilities/provider/delivery-tokens.js';
import { configOrExit, fail, openStore } from '../common.js';

async function withTokens<T>(config: Config, fn: (t: DeliveryTokens) => Promise<T>): Promise<T> {
  let ring;
  try {
    ring = loadKeyRing(config, createLogger({ level: 'warn' }));
  } catch (e) {
    fail(e);
  }
  const store = await openStore(config);
  try {
    await migrateToLatest(store.db, store.schema, await allMigrations(config));
    const t = new DeliveryTokens(store.db, ring, config.PROVIDER_DELIVERY_TOKENS, 0);
    await t.ensure();
    return await fn(t);
  } catch (e) {
    fail(e);
  } finally {
    await store.close();
  }
}

/** `ghl-bridge provider …`: the conversation provider's Delivery URL and its secret token. */
export function registerProviderCommand(program: Command): void {
  const provider = program
    .command('provider')
    .description('the conversation provider Delivery URL and its secret token');
  provider
    .command('delivery-url')
    .description(
      'print the exact Delivery URL to paste into the Marketplace app (Conversation Providers → Delivery URL); it contains the secret token',
    )
    .action(async () => {
      const config = configOrExit();
      const url = await withTokens(config, async (t) => deliveryUrl(config.publicUrl, await t.current()));
      console.log(url);
    });
  provider
    .command('tokens')
    .description('list the accepted Delivery-URL tokens (masked)')
    .action(async () => {
      const config = configOrExit();
      const l = await withTokens(config, (t) => t.list());
      console.log(`source: ${l.source === 'env' ? 'PROVIDER_DELIVERY_TOKENS' : 'database (encrypted)'}`);
      for (const v of l.tokens)
        console.log(
          `  ${v.current ? 'current ' : 'previous'} ${v.masked}${v.retireAt ? `  refused after ${v.retireAt.toISOString()}` : ''}`,
        );
    });
  provider
    .command('rotate-token')
    .description(
      'make a new token current and print the new Delivery URL; the previous token keeps working for the overlap period',
    )
    .option(
      '--overlap-hours <h>',
      'how long the previous token stays accepted (default PROVIDER_TOKEN_OVERLAP_HOURS; 0 = until retired)',
    )
    .option('--retire-previous', 'refuse the previous token(s) at once')
    .action(async (o: { overlapHours?: string; retirePrevious?: boolean }) => {
      const config = configOrExit();
      const overlapHours = o.overlapHours !== undefined ? Number(o.overlapHours) : config.PROVIDER_TOKEN_OVERLAP_HOURS;
      if (!Number.isInteger(overlapHours) || overlapHours < 0) {
        console.error(`invalid --overlap-hours ${o.overlapHours}: expected a whole number of hours ≥ 0`);
        process.exit(2);
      }
      const token = await withTokens(config, (t) =>
        t.rotate({ overlapHours, retirePrevious: o.retirePrevious === true }),
      );
      console.log(deliveryUrl(config.publicUrl, token));
      console.error(
        o.retirePrevious
          ? 'Paste this URL into the Marketplace app now: the previous token is refused from now on.'
          : `Paste this URL into the Marketplace app. The previous token stays accepted ${overlapHours ? `for ${overlapHours} h` : 'until `ghl-bridge provider retire-previous`'}.`,
      );
    });
  provider
    .command('retire-previous')
    .description('refuse every Delivery-URL token but the current one')
    .action(async () => {
      const config = configOrExit();
      const n = await withTokens(config, (t) => t.retirePrevious());
      console.log(`${n} previous token(s) retired`);
    });
  provider
    .command('catch-up')
    .description(
      "read recent messages from GHL and relay this provider's outbound messages GHL never delivered (sends are queued for the running bridge); too old ones are reported failed",
    )
    .option('--location <id>', 'only this location (default: every installed location)')
    .option('--since <time>', 'read from this ISO 8601 time instead of the stored checkpoint')
    .action(async (o: { location?: string; since?: string }) => {
      const config = configOrExit();
      const since = o.since !== undefined ? new Date(o.since) : undefined;
      if (since && Number.isNaN(since.getTime())) {
        console.error(`invalid --since ${o.since}: expected an ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z`);
        process.exit(2);
      }
      if (o.location !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(o.location)) {
        console.error(`invalid --location ${o.location}: expected a GHL location id`);
        process.exit(2);
      }
      const { createBridge } = await import('../../app.js');
      const { bridgeModules } = await import('../../modules.js');
      const log = createLogger({ level: 'warn', secrets: config.secretValues });
      let bridge;
      try {
        bridge = await createBridge(config, { log, modules: await bridgeModules(config) });
      } catch (e) {
        fail(e);
      }
      try {
        const svc = bridge.ctx.services.get('provider');
        const results = await svc.catchUp({
          ...(o.location ? { locationId: o.location } : {}),
          ...(since ? { since } : {}),
        });
        if (!results.length) console.log('no installed locations');
        for (const r of results) {
          console.log(
            `${r.locationId}: caught up ${r.caughtUp}, confirmed ${r.confirmed}, expired (reported failed) ${r.expired}, API calls ${r.calls}${r.error ? `; incomplete: ${r.error}` : ''}`,
          );
        }
        if (results.some((r) => r.caughtUp + r.confirmed + r.expired > 0))
          console.log('sends and status reports are queued; a running bridge (or the next start) carries them out');
        if (results.some((r) => r.error)) process.exitCode = 1;
      } catch (e) {
        fail(e);
      } finally {
        await bridge.close();
      }
    });
}
