import type { Command } from 'commander';
import { WorkflowEndpoints } from '../../capabilities/calls/endpoints.js';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { migrateToLatest } from '../../infra/db/migrations/index.js';
import { createLogger } from '../../infra/log/logger.js';
import { allMigrations } from '../../modules.js';
import { configOrExit, fail, openStore } from '../common.js';

const LOCATION_ID = /^[A-Za-z0-9_-]{1,64}$/;

async function withEndpoints<T>(location: string, fn: (e: WorkflowEndpoints) => Promise<T>): Promise<T> {
  if (!LOCATION_ID.test(location)) {
    console.error(`invalid --location: expected a location id (1–64 of A-Z a-z 0-9 _ -), got "${location}"`);
    process.exit(2);
  }
  const config = configOrExit();
  let ring;
  try {
    ring = loadKeyRing(config, createLogger({ level: 'warn' }));
  } catch (e) {
    fail(e);
  }
  const store = await openStore(config);
  try {
    await migrateToLatest(store.db, store.schema, await allMigrations(config));
    return await fn(new WorkflowEndpoints(store.db, ring, config.publicUrl));
  } catch (e) {
    fail(e);
  } finally {
    await store.close();
  }
}

/** `ghl-bridge calls …`: the workflow webhook URL of a location (GHL workflow → Webhook action) and its token. */
export function registerCallsCommand(program: Command): void {
  const cmd = program.command('calls').description('workflow call webhooks: the URL per location and its secret token');
  cmd
    .command('workflow-url')
    .description(
      "print the location's workflow webhook URL (created on first use) to paste into a GHL workflow's Webhook action; it contains the secret token",
    )
    .requiredOption('--location <id>', 'GHL location id')
    .option('--integration <type>', 'tag the location as internal or client (brief 002 routing)')
    .action(async (o: { location: string; integration?: string }) => {
      if (o.integration !== undefined && o.integration !== 'internal' && o.integration !== 'client') {
        console.error(`invalid --integration: expected internal or client, got "${o.integration}"`);
        process.exit(2);
      }
      const integrationType = o.integration as 'internal' | 'client' | undefined;
      console.log(
        await withEndpoints(o.location, (e) => e.url(o.location, integrationType ? { integrationType } : {})),
      );
    });
  cmd
    .command('rotate-token')
    .description('give the location a new workflow webhook token and print the new URL (paste it into every workflow)')
    .requiredOption('--location <id>', 'GHL location id')
    .option('--overlap-hours <h>', 'keep accepting the previous token this long (default 0: refused at once)', '0')
    .action(async (o: { location: string; overlapHours: string }) => {
      const h = Number(o.overlapHours);
      if (!Number.isInteger(h) || h < 0 || h > 24 * 30) {
        console.error(`invalid --overlap-hours: expected a whole number of hours 0–720, got "${o.overlapHours}"`);
        process.exit(2);
      }
      console.log(await withEndpoints(o.location, (e) => e.rotate(o.location, h)));
      console.error(
        h > 0 ? `the previous token stays accepted for ${h} h` : 'the previous token is refused from now on',
      );
    });
}
