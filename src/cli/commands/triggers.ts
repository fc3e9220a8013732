import type { Command } from 'commander';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { createLogger } from '../../infra/log/logger.js';
import { migrateToLatest } from '../../infra/db/migrations/index.js';
import { allMigrations } from '../../modules.js';
import {
  deleteTrigger,
  listTriggers,
  setTrigger,
  TriggerConfigError,
  type TriggerView,
} from '../../capabilities/pipelines/index.js';
import { configOrExit, fail, openStore } from '../common.js';

function print(v: TriggerView, json?: boolean): void {
  if (json) console.log(JSON.stringify(v));
  else console.log(`${v.locationId}\t${v.name}\t${v.url}\tupdated=${v.updatedAt.toISOString()}`);
}

/** `ghl-bridge triggers set|list|delete`: the GHL workflow inbound-webhook URL of each location's named trigger. */
export function registerTriggersCommand(program: Command): void {
  const triggers = program
    .command('triggers')
    .description(
      'configure workflow triggers: POST /v1/locations/<id>/triggers/<name> → a GHL workflow inbound webhook',
    );
  triggers
    .command('set')
    .description("set the GHL workflow inbound-webhook URL of a location's trigger (stored encrypted, shown masked)")
    .argument('<locationId>', 'GHL location (sub-account) id')
    .argument('<name>', 'trigger name used in the API path')
    .requiredOption('--url <url>', "the workflow's Inbound Webhook URL (…/hooks/<locationId>/webhook-trigger/<id>)")
    .option('--json', 'print JSON')
    .action(async (locationId: string, name: string, o: { url: string; json?: boolean }) => {
      const config = configOrExit();
      const store = await openStore(config);
      try {
        await migrateToLatest(store.db, store.schema, await allMigrations(config));
        const ring = loadKeyRing(config, createLogger({ level: 'silent' }));
        print(await setTrigger(store.db, ring, locationId, name, o.url), o.json);
      } catch (e) {
        if (e instanceof TriggerConfigError) fail(e);
        throw e;
      } finally {
        await store.close();
      }
    });
  triggers
    .command('list')
    .description('list configured triggers (URLs masked)')
    .option('--location <locationId>', 'only this location')
    .option('--json', 'print JSON lines')
    .action(async (o: { location?: string; json?: boolean }) => {
      const config = configOrExit();
      const store = await openStore(config);
      try {
        await migrateToLatest(store.db, store.schema, await allMigrations(config));
        const rows = await listTriggers(store.db, o.location);
        if (!rows.length && !o.json) console.log('no triggers configured');
        for (const v of rows) print(v, o.json);
      } finally {
        await store.close();
      }
    });
  triggers
    .command('delete')
    .description('remove a trigger (calls already accepted then fail: no URL)')
    .argument('<locationId>')
    .argument('<name>')
    .action(async (locationId: string, name: string) => {
      const config = configOrExit();
      const store = await openStore(config);
      try {
        const ok = await deleteTrigger(store.db, locationId, name);
        console.log(ok ? 'deleted' : 'no such trigger');
        if (!ok) process.exitCode = 1;
      } finally {
        await store.close();
      }
    });
}
