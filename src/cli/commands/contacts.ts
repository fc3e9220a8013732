import type { Command } from 'commander';
import type { Config } from '../../infra/config/index.js';
import type { Db } from '../../infra/db/index.js';
import { migrateToLatest } from '../../infra/db/migrations/index.js';
import { allMigrations } from '../../modules.js';
import {
  checkDeclaration,
  declareField,
  getMapping,
  MappingInputError,
  refreshJob,
  removeField,
  syncStatus,
  type Mapping,
} from '../../capabilities/contacts/index.js';
import { configOrExit, fail, openStore } from '../common.js';

const LOCATION_ID = /^[A-Za-z0-9_-]{1,64}$/;

function checkLocation(location: string): void {
  if (!LOCATION_ID.test(location)) {
    console.error(`invalid --location: expected a location id (1–64 of A-Z a-z 0-9 _ -), got "${location}"`);
    process.exit(2);
  }
}

async function withDb<T>(config: Config, fn: (db: Db) => Promise<T>): Promise<T> {
  const store = await openStore(config);
  try {
    await migrateToLatest(store.db, store.schema, await allMigrations(config));
    return await fn(store.db);
  } catch (e) {
    if (e instanceof MappingInputError) fail(new Error(`--${e.field === 'dataType' ? 'type' : e.field}: ${e.message}`));
    fail(e);
  } finally {
    await store.close();
  }
}

const collect = (v: string, prev: string[] = []) => [...prev, v];
const print = (json: boolean | undefined, v: unknown, text: () => string) =>
  console.log(json ? JSON.stringify(v, null, 2) : text());

function ghlNote(f: Mapping['fields'][number]): string {
  const parts = [f.ghl?.fieldKey ?? f.ghl?.name, f.pinned ? 'pinned' : undefined].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

function mappingText(m: Mapping): string {
  const head = `location ${m.locationId}  region ${m.region} (${m.regionSource})  refreshed ${m.refreshedAt?.toISOString() ?? 'never'}${m.error ? `\n  ${m.error}` : ''}`;
  if (!m.fields.length) return `${head}\nno logical fields declared`;
  const lines = m.fields.map(
    (f) =>
      `  ${f.logical.padEnd(24)} ${f.dataType.padEnd(16)} ${f.ghl ? `→ ${f.ghl.id}${ghlNote(f)}` : `→ not in GHL (key ${f.fieldKey}, name "${f.name}")`}`,
  );
  return [head, ...lines].join('\n');
}

/** `ghl-bridge contacts …`: the per-location field mapping of the contact push, and the sync status. */
export function registerContactsCommand(program: Command): void {
  const cmd = program
    .command('contacts')
    .description('contact push: per-location custom-field mapping and sync status');
  const mapping = cmd.command('mapping').description('logical fields → the location’s GHL custom fields');
  mapping
    .command('show')
    .description('the cached mapping of a location')
    .requiredOption('--location <id>', 'GHL location id')
    .option('--json', 'print JSON')
    .action(async (o: { location: string; json?: boolean }) => {
      checkLocation(o.location);
      const config = configOrExit();
      const m = await withDb(config, (db) => getMapping(db, o.location, config.CONTACTS_DEFAULT_REGION));
      print(o.json, m, () => mappingText(m));
    });
  mapping
    .command('set')
    .description('declare a logical field (type, key, name, options) or pin it to a GHL field id')
    .requiredOption('--location <id>', 'GHL location id')
    .requiredOption('--field <logical>', 'logical name, e.g. job_title')
    .requiredOption('--type <dataType>', 'GHL data type: TEXT, LARGE_TEXT, NUMERICAL, SINGLE_OPTIONS, …')
    .option('--key <fieldKey>', 'GHL field key to match (default contact.<logical>)')
    .option('--name <name>', 'GHL field name to match and create with')
    .option('--option <value>', 'an option of an option field; repeat for several', collect)
    .option('--field-id <id>', 'pin to this GHL custom field id')
    .option('--remove', 'remove the logical field instead')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        location: string;
        field: string;
        type: string;
        key?: string;
        name?: string;
        option?: string[];
        fieldId?: string;
        remove?: boolean;
        json?: boolean;
      }) => {
        checkLocation(o.location);
        const decl = {
          logical: o.field,
          dataType: o.type.toUpperCase(),
          fieldKey: o.key,
          name: o.name,
          options: o.option,
          fieldId: o.fieldId,
        };
        if (!o.remove)
          try {
            checkDeclaration(decl);
          } catch (e) {
            if (!(e instanceof MappingInputError)) throw e;
            console.error(
              `invalid --${e.field === 'dataType' ? 'type' : e.field === 'logical' ? 'field' : e.field}: ${e.message}`,
            );
            process.exit(2);
          }
        const config = configOrExit();
        const m = await withDb(config, async (db) => {
          if (o.remove) {
            if (!(await removeField(db, o.location, o.field)))
              fail(new Error(`--field: no logical field ${o.field} is declared for ${o.location}`));
          } else await declareField(db, o.location, decl);
          return getMapping(db, o.location, config.CONTACTS_DEFAULT_REGION);
        });
        print(o.json, m, () => mappingText(m));
      },
    );
  mapping
    .command('refresh')
    .description('queue a refresh from GHL (run by the bridge, which holds the tokens); --create makes missing fields')
    .requiredOption('--location <id>', 'GHL location id')
    .option('--create', 'create missing fields with their declared type')
    .action(async (o: { location: string; create?: boolean }) => {
      checkLocation(o.location);
      const ids = await withDb(configOrExit(), (db) =>
        refreshJob.enqueue(db, { locationId: o.location, ...(o.create ? { create: true } : {}) }),
      );
      console.log(
        ids.length
          ? `refresh of ${o.location} queued (job ${ids[0]}); \`ghl-bridge contacts mapping show --location ${o.location}\` shows the result`
          : `a refresh of ${o.location} is already queued`,
      );
    });
  cmd
    .command('status')
    .description('sync status per location: last sync time, status, last error, counts')
    .option('--location <id>', 'only this location')
    .option('--json', 'print JSON')
    .action(async (o: { location?: string; json?: boolean }) => {
      if (o.location) checkLocation(o.location);
      const rows = await withDb(configOrExit(), (db) => syncStatus(db, o.location));
      print(o.json, rows, () =>
        rows.length
          ? rows
              .map((r) => {
                const c = r.counts;
                const counts = c
                  ? `created ${c.created}, updated ${c.updated}, unchanged ${c.unchanged}, conflict ${c.conflict}, failed ${c.failed}`
                  : 'no batch finished';
                return `${r.locationId}  ${r.status ?? 'not synced'}  last sync ${r.lastSyncAt?.toISOString() ?? 'never'}  ${counts}  pending ${r.pendingRecords}  mapped ${r.mappedContacts}${r.lastError ? `\n  last error: ${r.lastError}` : ''}`;
              })
              .join('\n')
          : 'no contact push yet',
      );
    });
}
