import type { Command } from 'commander';
import { migrateToLatest } from '../../infra/db/migrations/index.js';
import { allMigrations } from '../../modules.js';
import { ApiKeyInputError, ApiKeyService } from '../../platform/apikeys/index.js';
import { configOrExit, fail, openStore } from '../common.js';

async function withKeys<T>(fn: (k: ApiKeyService) => Promise<T>): Promise<T> {
  const config = configOrExit();
  const store = await openStore(config);
  try {
    await migrateToLatest(store.db, store.schema, await allMigrations(config));
    return await fn(new ApiKeyService(store.db, undefined));
  } catch (e) {
    if (e instanceof ApiKeyInputError) {
      console.error(`invalid --${e.field === 'name' ? 'name' : 'location'}: ${e.message}`);
      process.exit(2);
    }
    fail(e);
  } finally {
    await store.close();
  }
}

const collect = (v: string, acc: string[]) => [...acc, v];

/** `ghl-bridge api-keys …`: keys of the public /v1 API (chat, triggers, opportunities …). */
export function registerApiKeysCommand(program: Command): void {
  const cmd = program.command('api-keys').description('keys of the public /v1 API, scoped to locations');
  cmd
    .command('create')
    .description('create a key for one or more locations and print it (shown once; only its hash is stored)')
    .requiredOption('--name <name>', 'what the key is for, e.g. the system that holds it')
    .requiredOption('--location <id>', 'a GHL location id the key may act for (repeat for several)', collect, [])
    .action(async (o: { name: string; location: string[] }) => {
      const created = await withKeys((k) => k.create({ name: o.name, locationIds: o.location }));
      console.log(created.key);
      console.error(`created API key ${created.id} for ${o.location.join(', ')}: store it now, it is not shown again`);
    });
  cmd
    .command('list')
    .description('list the keys (id, prefix, locations, last use; never the key)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const keys = await withKeys((k) => k.list());
      if (o.json) return console.log(JSON.stringify(keys, null, 2));
      if (keys.length === 0) return console.log('no API keys (create one with `ghl-bridge api-keys create`)');
      for (const k of keys)
        console.log(
          `${k.id}  ${k.prefix}…  ${k.revokedAt ? 'revoked' : 'active '}  ${k.name}  locations: ${k.locationIds.join(',')}  last used: ${k.lastUsedAt?.toISOString() ?? 'never'}`,
        );
    });
  cmd
    .command('revoke <id>')
    .description('revoke a key: refused from the next request on')
    .action(async (id: string) => {
      const ok = await withKeys((k) => k.revoke(id));
      if (!ok) {
        console.error(`no active API key ${id}`);
        process.exit(1);
      }
      console.log(`revoked ${id}`);
    });
}
